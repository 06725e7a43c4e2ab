// A real SMTP server for the tests (the npm package `smtp-server`), on
// 127.0.0.1 with a port the kernel chooses, that latchkey's tenant mails
// through: it requires AUTH (PLAIN or LOGIN) with a password the tenant names
// by environment variable, as an operator's relay would, keeps every message
// it accepts (parsed with `mailparser`), and lets a test wait for the next
// message to an address, failing loudly after a bounded wait.
//
//   const mail = await startMailServer();
//   tenant.email_provider = mail.provider;                 // the tenant file's `email_provider`
//   server = await startLatchkey({ tenantYaml, env: mail.env });
//   const m = await mail.next('alice@example.com');        // {envelope, from, to, subject, text, html, links, …}
//   mail.link(m, '/u/reset-password')                      // the link in it, as a URL
//   await mail.stop();

import crypto from 'node:crypto';

import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

import { WAIT_MS } from './util.mjs';

/** The login latchkey's tenant uses with this server. */
export const SMTP_USERNAME = 'latchkey';
/** The environment variable (of the latchkey process) that holds the SMTP password. */
export const SMTP_PASSWORD_ENV = 'LATCHKEY_E2E_SMTP_PASSWORD';
/** The tenant's sender. */
export const MAIL_FROM = Object.freeze({ name: 'latchkey e2e', address: 'no-reply@e2e.test' });

const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Lower-cased, for comparing addresses. */
const norm = (address) => String(address).trim().toLowerCase();

/**
 * Starts the server. Resolves once it listens.
 *
 * @returns {Promise<{
 *   port: number,
 *   provider: object,             // the tenant file's `email_provider` for this server
 *   env: Record<string,string>,   // environment for the latchkey process (the SMTP password)
 *   messages: object[],           // every message received, oldest first
 *   next: (to: string, opts?: {timeoutMs?: number}) => Promise<object>,
 *   received: (to: string) => object[],
 *   link: (message: object, pathname: string) => URL,
 *   describe: () => string,
 *   stop: () => Promise<void>,
 * }>}
 */
export async function startMailServer() {
  const password = crypto.randomBytes(18).toString('base64url');
  /** Every accepted message, parsed, oldest first. */
  const messages = [];
  /** Messages not yet handed out by `next`, per recipient. */
  const unread = new Map();
  /** Waiters of `next`, per recipient, oldest first: `{deliver(message), abandon(why)}`. */
  const waiters = new Map();
  /** What the server refused or failed at, for diagnostics. */
  const problems = [];

  const deliver = (message) => {
    messages.push(message);
    for (const rcpt of message.envelope.to) {
      const queue = waiters.get(rcpt);
      if (queue && queue.length) {
        queue.shift().deliver(message);
      } else {
        if (!unread.has(rcpt)) unread.set(rcpt, []);
        unread.get(rcpt).push(message);
      }
    }
  };

  const server = new SMTPServer({
    name: 'mail.e2e.test',
    banner: 'latchkey e2e mail',
    secure: false,
    // No TLS here: latchkey connects with `security: none`, and the password
    // travels over loopback only.
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    size: MAX_MESSAGE_BYTES,
    logger: false,
    onAuth(auth, _session, callback) {
      const ok =
        auth.username === SMTP_USERNAME &&
        typeof auth.password === 'string' &&
        auth.password.length === password.length &&
        crypto.timingSafeEqual(Buffer.from(auth.password), Buffer.from(password));
      if (!ok) {
        problems.push(`AUTH ${auth.method} refused for ${JSON.stringify(auth.username)}`);
        return callback(new Error('Invalid username or password'));
      }
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('error', (err) => {
        problems.push(`DATA failed: ${err.message}`);
        callback(err);
      });
      stream.on('end', async () => {
        if (stream.sizeExceeded) {
          problems.push('a message over the size limit was refused');
          const err = new Error('Message exceeds the size limit');
          err.responseCode = 552;
          return callback(err);
        }
        const raw = Buffer.concat(chunks);
        let parsed;
        try {
          parsed = await simpleParser(raw);
        } catch (err) {
          problems.push(`a message could not be parsed: ${err.message}`);
          return callback(err);
        }
        const text = parsed.text || '';
        deliver({
          envelope: {
            from: session.envelope.mailFrom ? norm(session.envelope.mailFrom.address) : '',
            to: session.envelope.rcptTo.map((r) => norm(r.address)),
          },
          user: session.user,
          from: parsed.from?.value?.[0]
            ? { name: parsed.from.value[0].name, address: norm(parsed.from.value[0].address) }
            : null,
          to: (parsed.to?.value || []).map((a) => norm(a.address)),
          subject: parsed.subject || '',
          date: parsed.date,
          text,
          html: typeof parsed.html === 'string' ? parsed.html : '',
          headers: parsed.headers,
          links: [...text.matchAll(/https?:\/\/[^\s<>"]+/g)].map((m) => m[0]),
          raw: raw.toString('utf8'),
        });
        callback();
      });
    },
  });
  server.on('error', (err) => problems.push(`server error: ${err.message}`));

  await new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.server.address();

  const describe = () => {
    const lines = messages.map(
      (m, i) => `#${i + 1} to ${m.envelope.to.join(', ')} from ${m.envelope.from}: ${JSON.stringify(m.subject)}`,
    );
    return [`SMTP server on 127.0.0.1:${port}, ${messages.length} message(s)`, ...lines, ...problems].join('\n');
  };

  /**
   * The next message to `to` that no earlier call returned: one already
   * received, or the first to arrive. Rejects after `timeoutMs` (or when the
   * server is stopped first), naming the address and what the server did
   * receive.
   */
  const next = (to, { timeoutMs = WAIT_MS } = {}) => {
    const rcpt = norm(to);
    const queue = unread.get(rcpt);
    if (queue && queue.length) return Promise.resolve(queue.shift());
    return new Promise((resolve, reject) => {
      const waiter = {
        deliver(message) {
          clearTimeout(timer);
          resolve(message);
        },
        abandon(why) {
          clearTimeout(timer);
          reject(new Error(`no mail to ${rcpt}: ${why}\n${describe()}`));
        },
      };
      const timer = setTimeout(() => {
        const list = waiters.get(rcpt) || [];
        const at = list.indexOf(waiter);
        if (at >= 0) list.splice(at, 1);
        reject(new Error(`no mail to ${rcpt} within ${timeoutMs} ms\n${describe()}`));
      }, timeoutMs);
      if (!waiters.has(rcpt)) waiters.set(rcpt, []);
      waiters.get(rcpt).push(waiter);
    });
  };

  /** Every message received for `to` so far (read or not). */
  const received = (to) => messages.filter((m) => m.envelope.to.includes(norm(to)));

  /** The one link in `message` whose path is `pathname`, as a URL; throws if there is none or several. */
  const link = (message, pathname) => {
    const found = message.links.map((l) => new URL(l)).filter((u) => u.pathname === pathname);
    if (found.length !== 1) {
      throw new Error(`expected one link to ${pathname} in the mail, found ${found.length}:\n${message.text}`);
    }
    return found[0];
  };

  const stop = () =>
    new Promise((resolve) => {
      for (const list of waiters.values()) {
        for (const waiter of list.splice(0)) waiter.abandon('the mail server was stopped');
      }
      server.close(() => resolve());
    });

  return {
    port,
    provider: {
      smtp: {
        host: '127.0.0.1',
        port,
        security: 'none',
        from: `${MAIL_FROM.name} <${MAIL_FROM.address}>`,
        username: SMTP_USERNAME,
        password_env: SMTP_PASSWORD_ENV,
        timeout_seconds: 10,
      },
    },
    env: { [SMTP_PASSWORD_ENV]: password },
    messages,
    next,
    received,
    link,
    describe,
    stop,
  };
}
