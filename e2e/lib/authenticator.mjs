// latchkey's reference push authenticator (`latchkey-authenticator`) as a
// separate process: enroll a device from an enrollment URI, read its TOTP
// code, and listen for the tenant's signed webhook with `--json`, following
// its events (one JSON object per line on stdout) and answering its questions
// (lines on stdin).
//
// A tenant's signed webhook takes every device's notifications; a bridge
// here (as an operator's would) routes each, unchanged and still signed, to
// the listener of the device whose push token it names, and keeps what it
// carried (the transaction token and challenge, for tests that answer as the
// device themselves).
//
// The binary comes from LATCHKEY_AUTHENTICATOR_BIN, else it is the
// `latchkey-authenticator` beside LATCHKEY_BIN (cargo builds both into the
// same directory).

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { freePort, WAIT_MS, withTimeout } from './util.mjs';

const LOG_LIMIT = 1024 * 1024;
const STOP_GRACE_MS = 5_000;

/** The name of the environment variable holding the webhook's secret, for latchkey and the authenticator. */
export const WEBHOOK_SECRET_ENV = 'E2E_PUSH_WEBHOOK_SECRET';

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

/** The authenticator binary's absolute path, or a loud error saying how to build it. */
export async function authenticatorBinary() {
  const base = process.env.INIT_CWD || process.cwd();
  let bin = process.env.LATCHKEY_AUTHENTICATOR_BIN;
  if (!bin) {
    if (!process.env.LATCHKEY_BIN) {
      throw new Error('LATCHKEY_BIN is not set (the authenticator is looked for beside it)');
    }
    bin = path.join(path.dirname(path.resolve(base, process.env.LATCHKEY_BIN)), 'latchkey-authenticator');
  }
  const abs = path.resolve(base, bin);
  try {
    await fs.access(abs, fsc.X_OK);
  } catch {
    throw new Error(
      `the push authenticator binary is missing (${abs}): build it with \`cargo build -p latchkey-authenticator\`, ` +
        'or point LATCHKEY_AUTHENTICATOR_BIN at it',
    );
  }
  return abs;
}

/** Runs the authenticator once to its end: {code, stdout, stderr}. */
async function runOnce(args, { env = {}, timeoutMs = WAIT_MS } = {}) {
  const bin = await authenticatorBinary();
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c) => (stderr += c.toString('utf8')));
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  try {
    return await withTimeout(done, timeoutMs, `latchkey-authenticator ${args.join(' ')}`);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

/**
 * One device: a state file of its own (in a fresh temporary directory), a
 * listener port chosen beforehand, and the webhook's secret.
 */
export async function newDevice({ name = 'e2e phone', secret }) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'latchkey-device-'));
  const state = path.join(dir, 'state.json');
  const port = await freePort();
  const pushToken = crypto.randomBytes(16).toString('hex');
  const device = {
    name,
    state,
    port,
    pushToken,
    webhookUrl: `http://127.0.0.1:${port}/`,
    /** Enrolls from an `otpauth://` enrollment URI (the ticket is spent). */
    async enroll(uri, { force = false } = {}) {
      const args = [
        '--state',
        state,
        'enroll',
        '--uri',
        uri,
        '--name',
        name,
        '--push-token',
        pushToken,
        ...(force ? ['--force'] : []),
      ];
      const r = await runOnce(args);
      if (r.code !== 0) throw new Error(`latchkey-authenticator enroll failed (${r.code}): ${r.stderr}${r.stdout}`);
      return r;
    },
    /** What `enroll` would answer, without throwing: {code, stdout, stderr}. */
    tryEnroll(uri) {
      return runOnce(['--state', state, 'enroll', '--uri', uri, '--name', name, '--force']);
    },
    /** The current TOTP code of the enrollment. */
    async code() {
      const r = await runOnce(['--state', state, 'code']);
      if (r.code !== 0) throw new Error(`latchkey-authenticator code failed (${r.code}): ${r.stderr}`);
      const m = r.stdout.match(/\b(\d{6})\b/);
      if (!m) throw new Error(`latchkey-authenticator code printed no code: ${r.stdout}`);
      return m[1];
    },
    /** The enrollment the state file holds. */
    async saved() {
      return JSON.parse(await fs.readFile(state, 'utf8'));
    },
    /**
     * A challenge response for `notification` signed with this device's key,
     * as the authenticator makes it (for a test answering as the device).
     */
    async challengeResponse(notification, { accepted = true, issuer }) {
      const saved = await device.saved();
      const key = crypto.createPrivateKey({ key: Buffer.from(saved.device.key, 'base64'), format: 'der', type: 'pkcs8' });
      const now = Math.floor(Date.now() / 1000);
      const part = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const input = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({
        iss: saved.device.identifier,
        sub: notification.c,
        aud: `${issuer}appliance-mfa/api/resolve-transaction`,
        iat: now,
        exp: now + 30,
        auth0_guardian_method: 'push',
        auth0_guardian_accepted: accepted,
      })}`;
      return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
    },
    /** `remove`: the device account deleted on the server, then the state file. */
    async removeAccount() {
      const r = await runOnce(['--state', state, 'remove']);
      if (r.code !== 0) throw new Error(`latchkey-authenticator remove failed (${r.code}): ${r.stderr}`);
      return r;
    },
    /** Starts `listen --json` (answers asked on stdin); see Listener. */
    listen() {
      return Listener.start({ state, port, secret });
    },
    async remove() {
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return device;
}

/**
 * `latchkey-authenticator listen --json`: its events in order, waited for
 * one by one, and its questions answered on stdin.
 */
export class Listener {
  #child;
  #events = [];
  #waiters = [];
  #output = '';
  #exit = null;

  static async start({ state, port, secret }) {
    const bin = await authenticatorBinary();
    const args = [
      '--state',
      state,
      'listen',
      '--addr',
      `127.0.0.1:${port}`,
      '--webhook-secret-env',
      WEBHOOK_SECRET_ENV,
      '--json',
    ];
    const child = spawn(bin, args, {
      env: { ...process.env, [WEBHOOK_SECRET_ENV]: secret },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(child);
    const listener = new Listener(child);
    await listener.next((e) => e.event === 'listening', 'the authenticator to listen');
    return listener;
  }

  constructor(child) {
    this.#child = child;
    let pending = '';
    child.stdout.on('data', (chunk) => {
      const text = chunk.toString('utf8');
      this.#keep(text);
      pending += text;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (!line) continue;
        let event;
        try {
          event = JSON.parse(line);
        } catch {
          event = { event: 'unparsed', line };
        }
        this.#events.push(event);
        this.#wake();
      }
    });
    child.stderr.on('data', (chunk) => this.#keep(chunk.toString('utf8')));
    child.on('exit', (code, signal) => {
      running.delete(child);
      this.#exit = { code, signal };
      this.#wake();
    });
  }

  #keep(text) {
    this.#output += text;
    if (this.#output.length > LOG_LIMIT) this.#output = this.#output.slice(-LOG_LIMIT);
  }

  #wake() {
    for (const w of [...this.#waiters]) w();
  }

  /**
   * The first event not yet taken that `match` accepts, taken (events before
   * it stay); waits for it up to WAIT_MS.
   */
  next(match, what = 'an event') {
    return withTimeout(
      new Promise((resolve, reject) => {
        const look = () => {
          const i = this.#events.findIndex(match);
          if (i >= 0) {
            const [event] = this.#events.splice(i, 1);
            this.#waiters = this.#waiters.filter((w) => w !== look);
            resolve(event);
          } else if (this.#exit) {
            this.#waiters = this.#waiters.filter((w) => w !== look);
            reject(new Error(`the authenticator exited (${JSON.stringify(this.#exit)}) before ${what}:\n${this.#output}`));
          }
        };
        this.#waiters.push(look);
        look();
      }),
      WAIT_MS,
      `${what} from the authenticator`,
    );
  }

  /** The next notification shown (optionally of transaction `txlnkid`). */
  notification(txlnkid) {
    return this.next((e) => e.event === 'notification' && (!txlnkid || e.txlnkid === txlnkid), 'a notification');
  }

  /** The next resolution, or the error answering a transaction ended in. */
  outcome(txlnkid) {
    return this.next(
      (e) => (e.event === 'resolved' || e.event === 'error') && (!txlnkid || e.txlnkid === txlnkid),
      'a resolution',
    );
  }

  /** A line on the authenticator's stdin (an answer to its question). */
  answer(line) {
    this.#child.stdin.write(`${line}\n`);
  }

  /** Every event not yet taken. */
  pending() {
    return [...this.#events];
  }

  log() {
    return this.#output;
  }

  async stop() {
    if (this.#exit) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * The webhook bridge: `url` for the tenant's `push_notifications.webhook`;
 * `route(device)` sends the notifications for that device's push token to
 * its listener; `received` is every body it took, in order.
 */
export async function startBridge() {
  const routes = new Map();
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      let parsed = null;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        // answered below
      }
      const target = parsed && routes.get(parsed.push_credentials?.token);
      if (!target) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"no device has that push token"}');
        return;
      }
      received.push(parsed);
      try {
        const answer = await fetch(target, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-latchkey-signature': req.headers['x-latchkey-signature'] ?? '',
          },
          body,
          signal: AbortSignal.timeout(WAIT_MS),
        });
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
      } catch (err) {
        res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ message: err.message }));
      }
    });
  });
  const port = await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
  return {
    url: `http://127.0.0.1:${port}/notify`,
    received,
    route(device) {
      routes.set(device.pushToken, device.webhookUrl);
    },
    /** The last notification of transaction `txlnkid` the bridge carried. */
    notification(txlnkid) {
      const found = received.filter((b) => b.notification?.txlnkid === txlnkid).pop();
      if (!found) throw new Error(`the bridge carried no notification of ${txlnkid}`);
      return found.notification;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
