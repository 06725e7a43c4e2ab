// auth0-js (Auth0's browser SDK for the implicit flow, unmodified) in
// Chromium against a real latchkey: WebAuth.authorize with
// responseType "token id_token" to the hosted login page, back to the app
// with the tokens in the fragment, and parseHash checking them as auth0-js
// does (state, nonce, the ID token's signature against the JWKS, issuer,
// audience, at_hash); the access token then works at /userinfo.
// And its database-connection calls from the app's origin (CORS), the tenant
// mailing through a real SMTP server in the test (lib/mail.mjs):
// webAuth.signup (the user made, then logged in; the same address again and
// a weak password refused as auth0-js reports Auth0's errors) and
// webAuth.changePassword (Auth0's sentence for a known and an unknown
// address, a mail only to the known one); and webAuth.client.login, the
// password-realm grant from the app's origin (tokens for the right
// password, Auth0's 403 invalid_grant for a wrong one); and
// webAuth.passwordlessStart with send "link": the magic link read from the
// mail brings the browser back to the app, where parseHash takes the tokens
// (the state and nonce auth0-js kept when it asked), and works once.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { submitCredentials } from '../lib/flows.mjs';
import { startMailServer } from '../lib/mail.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, e2eTenant, toYaml } from '../lib/tenant.mjs';
import { explainFailure, freePort, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 120_000;
const LOG_TAIL = 30_000;
const CLIENT_ID = 'auth0-js-app';
const require = createRequire(import.meta.url);
const CONNECTION = 'Username-Password-Authentication';
const AUTH0_JS = path.join(path.dirname(require.resolve('auth0-js/package.json')), 'build', 'auth0.min.js');

let server;
let mail;
let browser;
let appBase;
let appServer;

/** The app's one page: auth0-js configured for latchkey, on / and /cb. */
function page() {
  const config = {
    domain: server.origin,
    clientID: CLIENT_ID,
    redirectUri: `${appBase}/cb`,
    responseType: 'token id_token',
    scope: 'openid profile email',
    overrides: { __token_issuer: server.issuer, __jwks_uri: `${server.issuer}.well-known/jwks.json` },
  };
  return `<!doctype html><html><head><meta charset="utf-8"><title>auth0-js</title></head><body>
<script src="/auth0.min.js"></script>
<script>
window.webAuth = new auth0.WebAuth(${JSON.stringify(config)});
if (location.pathname === '/cb') {
  webAuth.parseHash(function (err, result) { window.parsed = { err: err, result: result }; });
}
// A database-connection call's callback as data: auth0-js's error object
// without its "original" member (the raw request, not serialisable), or the result.
function settle(call, options) {
  return new Promise(function (resolve) {
    webAuth[call](options, function (err, result) {
      if (err) {
        var e = {};
        ['code', 'description', 'name', 'policy', 'statusCode'].forEach(function (k) { if (k in err) e[k] = err[k]; });
        resolve({ err: e });
      } else {
        resolve({ result: result });
      }
    });
  });
}
window.signup = function (options) { return settle('signup', options); };
// The Authentication API's password-realm login (webAuth.client.login).
window.realmLogin = function (options) {
  return new Promise(function (resolve) {
    webAuth.client.login(options, function (err, result) {
      if (err) {
        var e = {};
        ['code', 'description', 'error', 'statusCode'].forEach(function (k) { if (k in err) e[k] = err[k]; });
        resolve({ err: e });
      } else {
        resolve({ result: result });
      }
    });
  });
};
window.changePassword = function (options) { return settle('changePassword', options); };
window.passwordlessStart = function (options) { return settle('passwordlessStart', options); };
</script></body></html>`;
}

before(async () => {
  const appPort = await freePort();
  appBase = `http://localhost:${appPort}`;
  mail = await startMailServer();
  server = await startLatchkey({
    env: mail.env,
    tenantYaml: (port) => {
      const tenant = e2eTenant({ port, appOrigin: appBase });
      tenant.clients.push({
        client_id: CLIENT_ID,
        name: 'E2E auth0-js app',
        app_type: 'spa',
        callbacks: [`${appBase}/cb`],
        allowed_origins: [appBase],
        web_origins: [appBase],
        grant_types: ['implicit', 'http://auth0.com/oauth/grant-type/password-realm'],
      });
      tenant.connections = [
        ...tenant.connections,
        { name: 'email', strategy: 'email', enabled_clients: [CLIENT_ID] },
      ];
      tenant.email_provider = mail.provider;
      return toYaml(tenant);
    },
  });
  const bundle = await fs.readFile(AUTH0_JS);
  appServer = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, appBase);
    if (pathname === '/auth0.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(bundle);
    } else if (pathname === '/' || pathname === '/cb') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page());
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve, reject) => {
    appServer.listen(appPort, '127.0.0.1', resolve);
    appServer.on('error', reject);
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (appServer ? appServer.close(resolve) : resolve()));
  await server?.stop();
  await mail?.stop();
});

/** A fresh browser context on the app's page, with diagnostics printed if `fn` throws. */
async function inApp(name, fn) {
  const rec = await newRecordingContext(browser);
  const tab = await rec.context.newPage();
  try {
    return await explainFailure(
      name,
      [
        ['page URL', () => tab.url()],
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
        ['mail received', () => mail.describe()],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      async () => {
        await tab.goto(`${appBase}/`);
        return fn(tab, rec);
      },
    );
  } finally {
    await rec.context.close();
  }
}

/** WebAuth.authorize, the hosted login page with `user`'s credentials, and parseHash's result. */
async function authorizeAs(tab, user) {
  await Promise.all([
    tab.waitForURL((u) => u.origin === server.origin, { timeout: WAIT_MS }),
    tab.evaluate(() => window.webAuth.authorize()),
  ]);
  const q = new URL(tab.url()).searchParams;
  assert.equal(q.get('response_type'), 'token id_token');
  await tab.locator('input[name="username"]').waitFor({ state: 'visible', timeout: WAIT_MS });
  await Promise.all([
    tab.waitForURL((u) => u.origin === appBase && u.pathname === '/cb', { timeout: WAIT_MS }),
    submitCredentials(tab, { username: user.email, password: user.password }),
  ]);
  assert.ok(new URL(tab.url()).hash.includes('access_token='), 'the tokens came in the fragment');
  await tab.waitForFunction(() => window.parsed, null, { timeout: WAIT_MS });
  const { err, result } = await tab.evaluate(() => window.parsed);
  assert.equal(err, null, `parseHash: ${JSON.stringify(err)}`);
  return result;
}

test('token id_token: authorize, the hosted login page, parseHash', { timeout: TEST_MS }, () =>
  inApp('auth0-js', async (tab) => {
    const result = await authorizeAs(tab, ALICE);
    assert.equal(result.tokenType, 'Bearer');
    assert.ok(result.expiresIn > 0);
    assert.ok(!result.refreshToken, 'no refresh token from the authorization endpoint');
    assert.equal(result.idTokenPayload.iss, server.issuer);
    assert.equal(result.idTokenPayload.aud, CLIENT_ID);
    assert.equal(result.idTokenPayload.email, ALICE.email);
    assert.ok(result.idTokenPayload.at_hash, 'at_hash (checked by auth0-js)');

    const info = await fetch(`${server.issuer}userinfo`, {
      headers: { authorization: `Bearer ${result.accessToken}` },
      signal: AbortSignal.timeout(WAIT_MS),
    });
    assert.equal(info.status, 200);
    assert.equal((await info.json()).email, ALICE.email);
  }),
);

test('signup: a user made from the app, who then logs in; the same address again and a weak password refused in Auth0\'s words', { timeout: TEST_MS }, () =>
  inApp('auth0-js signup', async (tab, rec) => {
    const user = { email: 'erin@example.com', password: 'Erin-signs-up-3', name: 'Erin Example' };
    const made = await tab.evaluate(
      (o) => window.signup(o),
      { connection: CONNECTION, email: user.email, password: user.password, user_metadata: { plan: 'team' } },
    );
    assert.equal(made.err, undefined, JSON.stringify(made.err));
    // auth0-js camel-cases the answer's members: `_id` comes back as `Id`.
    assert.equal(made.result.email, user.email);
    assert.equal(made.result.emailVerified, false);
    assert.match(made.result.Id, /^[A-Za-z0-9_-]+$/);
    const [post] = rec.requests.filter((r) => r.method === 'POST' && r.url === `${server.origin}/dbconnections/signup`);
    assert.equal(post.status, 200, 'a cross-origin POST from the app, answered through CORS');
    assert.deepEqual(JSON.parse(post.postData).user_metadata, { plan: 'team' }, 'auth0-js sent user_metadata');
    mail.link(await mail.next(user.email), '/u/email-verification');

    const again = await tab.evaluate(
      (o) => window.signup(o),
      { connection: CONNECTION, email: user.email, password: 'Another-password-4' },
    );
    assert.deepEqual(again.err, {
      code: 'invalid_signup',
      description: 'Invalid sign up',
      name: 'BadRequestError',
      statusCode: 400,
    });

    const weak = await tab.evaluate(
      (o) => window.signup(o),
      { connection: CONNECTION, email: 'frank@example.com', password: 'short' },
    );
    assert.ok(weak.err, `a weak password must be refused: ${JSON.stringify(weak)}`);
    assert.equal(weak.err.code, 'invalid_password');
    assert.equal(weak.err.name, 'PasswordStrengthError');
    assert.equal(weak.err.statusCode, 400);
    assert.equal(weak.err.description.verified, false);
    const length = weak.err.description.rules.find((r) => r.code === 'lengthAtLeast');
    assert.ok(length, `a lengthAtLeast rule: ${JSON.stringify(weak.err.description.rules)}`);
    assert.equal(length.verified, false);
    assert.deepEqual(length.format, [8]);
    assert.equal(typeof length.message, 'string');
    assert.equal(typeof weak.err.policy, 'string');

    const result = await authorizeAs(tab, user);
    assert.equal(result.idTokenPayload.sub, `auth0|${made.result.Id}`, 'the user signed up is the one logged in');
    assert.equal(result.idTokenPayload.email, user.email);
    assert.equal(result.idTokenPayload.email_verified, false);
    assert.equal(mail.received('frank@example.com').length, 0, 'no user, no mail');
  }),
);

test('changePassword: Auth0\'s sentence for a known and an unknown address, a mail only to the known one', { timeout: TEST_MS }, () =>
  inApp('auth0-js changePassword', async (tab) => {
    const sentence = "We've just sent you an email to reset your password.";
    const unknown = await tab.evaluate((o) => window.changePassword(o), { connection: CONNECTION, email: 'nobody@example.com' });
    assert.deepEqual(unknown, { result: sentence });
    const known = await tab.evaluate((o) => window.changePassword(o), { connection: CONNECTION, email: ALICE.email });
    assert.deepEqual(known, { result: sentence });
    const link = mail.link(await mail.next(ALICE.email), '/u/reset-password');
    assert.equal(`${link.origin}/`, server.issuer);
    // The unknown address was asked for first: a mail to it would have been sent before Alice's.
    assert.equal(mail.received('nobody@example.com').length, 0, 'no mail to an address without an account');
  }),
);

test('client.login: the password-realm grant from the app, tokens for the right password and Auth0\'s refusal for a wrong one', { timeout: TEST_MS }, () =>
  inApp('auth0-js client.login', async (tab, rec) => {
    const ok = await tab.evaluate((o) => window.realmLogin(o), {
      realm: CONNECTION, username: ALICE.email, password: ALICE.password, scope: 'openid profile email',
    });
    assert.ok(ok.result, `login: ${JSON.stringify(ok.err)}`);
    assert.equal(ok.result.tokenType, 'Bearer');
    assert.ok(ok.result.accessToken && ok.result.idToken, JSON.stringify(Object.keys(ok.result)));
    const claims = JSON.parse(Buffer.from(ok.result.idToken.split('.')[1], 'base64url').toString());
    assert.equal(claims.email, ALICE.email);
    assert.equal(claims.aud, CLIENT_ID);
    const [post] = rec.requests.filter((r) => r.method === 'POST' && r.url === `${server.origin}/oauth/token`);
    assert.ok(post, 'auth0-js posted to /oauth/token');
    const userinfo = await tab.evaluate(async ({ url, token }) => {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: await res.json() };
    }, { url: `${server.origin}/userinfo`, token: ok.result.accessToken });
    assert.equal(userinfo.status, 200);
    assert.equal(userinfo.body.email, ALICE.email);

    const wrong = await tab.evaluate((o) => window.realmLogin(o), {
      realm: CONNECTION, username: ALICE.email, password: 'not-her-password', scope: 'openid',
    });
    assert.deepEqual(wrong.err, {
      code: 'invalid_grant', description: 'Wrong email or password.', statusCode: 403,
    });
  }));

test('passwordlessStart with a link: the mailed link signs in at the app once, parseHash checks it', { timeout: TEST_MS }, () =>
  inApp('auth0-js passwordless link', async (tab) => {
    const email = 'link-user@example.com';
    const started = await tab.evaluate(
      (email) => window.passwordlessStart({ connection: 'email', send: 'link', email }),
      email,
    );
    assert.ok(!started.err, `passwordlessStart: ${JSON.stringify(started.err)}`);
    assert.equal(started.result.email, email);
    const message = await mail.next(email);
    assert.match(message.subject, /^Log in to /);
    const link = message.text.split('\n').map((l) => l.trim()).find((l) => l.includes('/passwordless/verify_redirect?'));
    assert.ok(link, `a link in the mail: ${message.text}`);
    assert.ok(link.startsWith(server.issuer), link);
    const asked = new URL(link).searchParams;
    assert.equal(asked.get('response_type'), 'token id_token');
    assert.ok(asked.get('state') && asked.get('nonce'), 'auth0-js sent its state and nonce');

    // Opened in the browser that asked (the app's storage holds the state).
    await Promise.all([
      tab.waitForURL((u) => u.origin === appBase && u.pathname === '/cb', { timeout: WAIT_MS }),
      tab.goto(link),
    ]);
    await tab.waitForFunction(() => window.parsed, null, { timeout: WAIT_MS });
    const { err, result } = await tab.evaluate(() => window.parsed);
    assert.equal(err, null, `parseHash: ${JSON.stringify(err)}`);
    assert.match(result.idTokenPayload.sub, /^email\|/);
    assert.equal(result.idTokenPayload.email, email);
    assert.equal(result.idTokenPayload.email_verified, true);

    // Opened again: an error for the app, no tokens.
    await Promise.all([
      tab.waitForURL((u) => u.origin === appBase && u.pathname === '/cb', { timeout: WAIT_MS }),
      tab.goto(link),
    ]);
    const hash = new URL(tab.url()).hash;
    assert.ok(hash.includes('error=access_denied'), hash);
    assert.ok(!hash.includes('access_token='), hash);
  }),
);
