// Small helpers shared by the end-to-end tests.

import net from 'node:net';

/** Default upper bound for any single wait in these tests. */
export const WAIT_MS = 30_000;

/**
 * A TCP port that was free a moment ago: bind port 0 on 127.0.0.1, read the
 * port the kernel chose, close. (There is a small race with other processes;
 * acceptable for tests.)
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Races `promise` against a timer, so that nothing in a test waits forever.
 * `what` names the operation in the error message.
 */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `fn` until it returns a truthy value or `ms` elapse. */
export async function waitUntil(fn, { ms = WAIT_MS, every = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(every);
  }
}

/** Decodes the payload of a compact JWS without verifying it. */
export function decodeJwt(token) {
  if (typeof token !== 'string') throw new TypeError(`not a JWT: ${JSON.stringify(token)}`);
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error(`not a compact JWS (${parts.length} parts): ${token.slice(0, 40)}…`);
  const json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: json(parts[0]), payload: json(parts[1]) };
}

/** `aud` as an array, whatever its shape in the token. */
export const audiences = (payload) => (Array.isArray(payload.aud) ? payload.aud : [payload.aud]);

/** Space-separated `scope` claim as an array. */
export const scopes = (payload) => (typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : []);

/**
 * Runs `fn`; if it throws, prints the given diagnostics (server log, browser
 * console, …) to stderr before rethrowing, so a failing run explains itself.
 * `diagnostics` is a list of `[title, () => string]`.
 */
export async function explainFailure(name, diagnostics, fn) {
  try {
    return await fn();
  } catch (err) {
    const out = [`\n===== ${name} failed: ${err && err.stack ? err.stack : err} =====`];
    for (const [title, get] of diagnostics) {
      let text;
      try {
        text = await get();
      } catch (e) {
        text = `(could not collect: ${e.message})`;
      }
      out.push(`----- ${title} -----\n${text || '(empty)'}`);
    }
    out.push(`===== end of ${name} diagnostics =====\n`);
    process.stderr.write(out.join('\n') + '\n');
    throw err;
  }
}
