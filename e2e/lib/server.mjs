// Boots a real latchkey server for a test.
//
// The binary comes from the environment variable LATCHKEY_BIN (absolute, or
// relative to the directory npm was started from). Each
// server gets a fresh temporary data directory and tenant file, a port chosen
// beforehand, and no LATCHKEY_MASTER_KEY (development mode generates one).

import { spawn } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { freePort, sleep, WAIT_MS } from './util.mjs';

const LOG_LIMIT = 4 * 1024 * 1024; // keep at most the last 4 MiB of output
const STOP_GRACE_MS = 10_000;

/** Every server started by this process, so none outlives it. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

async function resolveBinary() {
  const bin = process.env.LATCHKEY_BIN;
  if (!bin) {
    throw new Error(
      'LATCHKEY_BIN is not set: point it at the latchkey server binary, e.g. from the repository root ' +
        '`cargo build && LATCHKEY_BIN=target/debug/latchkey npm --prefix e2e test`',
    );
  }
  // npm runs scripts inside e2e/; resolve a relative path against the
  // directory npm was started from (INIT_CWD), as the user would expect.
  const abs = path.resolve(process.env.INIT_CWD || process.cwd(), bin);
  try {
    await fs.access(abs, fsc.X_OK);
  } catch {
    throw new Error(`LATCHKEY_BIN=${bin} does not name an executable file (resolved to ${abs}); build the server first`);
  }
  return abs;
}

/**
 * Starts latchkey and waits until GET /healthz answers 200.
 *
 * @param {object} opts
 * @param {(port: number) => string} opts.tenantYaml  tenant file contents for
 *   the chosen port (its domain must be `localhost:PORT`)
 * @param {Record<string,string>} [opts.env]  extra environment variables
 * @param {string[]} [opts.args]  extra arguments after `serve …` (e.g. `--outbound-allow-loopback`)
 * @param {number} [opts.readyTimeoutMs]
 * @returns {Promise<{port:number, origin:string, issuer:string, dataDir:string,
 *   tenantFile:string, log:() => string, stop:() => Promise<void>}>}
 */
export async function startLatchkey({ tenantYaml, env = {}, args: extraArgs = [], readyTimeoutMs = WAIT_MS } = {}) {
  if (typeof tenantYaml !== 'function') {
    throw new TypeError('startLatchkey: tenantYaml must be a function of the port returning the tenant file');
  }
  const bin = await resolveBinary();
  const port = await freePort();
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'latchkey-e2e-'));
  const dataDir = path.join(tmp, 'data');
  await fs.mkdir(dataDir);
  const tenantFile = path.join(tmp, 'tenant.yaml');
  await fs.writeFile(tenantFile, tenantYaml(port));

  const childEnv = { ...process.env, RUST_LOG: 'info', NO_COLOR: '1', ...env };
  delete childEnv.LATCHKEY_MASTER_KEY;

  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--tenant-file', tenantFile, ...extraArgs];
  const child = spawn(bin, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);

  let output = '';
  const verbose = process.env.LATCHKEY_E2E_VERBOSE === '1';
  const capture = (stream) => (chunk) => {
    output += chunk.toString('utf8');
    if (output.length > LOG_LIMIT) output = output.slice(-LOG_LIMIT);
    if (verbose) stream.write(chunk);
  };
  child.stdout.on('data', capture(process.stderr));
  child.stderr.on('data', capture(process.stderr));

  let exit = null; // {code, signal} once the process is gone
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      running.delete(child);
      resolve(exit);
    });
  });
  let spawnError = null;
  child.on('error', (err) => {
    spawnError = err;
  });

  const cmdline = [bin, ...args].join(' ');
  const log = () => `$ ${cmdline}\n${output}`;

  const cleanup = async () => {
    if (process.env.LATCHKEY_E2E_KEEP === '1') return;
    await fs.rm(tmp, { recursive: true, force: true });
  };

  const stop = async () => {
    if (!exit && !spawnError) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    await cleanup();
  };

  // Wait for readiness: /healthz → 200, or fail with the server's output.
  const healthz = `http://127.0.0.1:${port}/healthz`;
  const deadline = Date.now() + readyTimeoutMs;
  let lastProblem = 'no answer yet';
  for (;;) {
    if (spawnError) {
      await cleanup();
      throw new Error(`could not start latchkey (${cmdline}): ${spawnError.message}`);
    }
    if (exit) {
      await cleanup();
      throw new Error(
        `latchkey exited before becoming ready (code ${exit.code}, signal ${exit.signal})\n----- server output -----\n${log()}`,
      );
    }
    try {
      const res = await fetch(healthz, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
      lastProblem = `GET /healthz answered ${res.status}`;
    } catch (err) {
      lastProblem = `GET /healthz failed: ${err.cause?.code || err.message}`;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `latchkey did not become ready within ${readyTimeoutMs} ms (${lastProblem})\n----- server output -----\n${log()}`,
      );
    }
    await sleep(100);
  }

  const origin = `http://localhost:${port}`;
  return { port, origin, issuer: `${origin}/`, dataDir, tenantFile, log, stop };
}
