// Push notifications end to end: latchkey's reference authenticator
// (`latchkey-authenticator`, a separate process) as the user's phone, the
// tenant's signed webhook reaching it through a bridge on loopback, and the
// hosted login page in Debian's Chromium with the official spa-js app.
//
// 1. The MFA API: Alice, with MFA "always" and no factor, enrolls the
//    authenticator through /mfa/associate (the mfa-oob grant answers
//    authorization_pending until the device enrolled, then the tokens).
// 2. The MFA API at login: a challenge approved on the device (polled too
//    fast first: slow_down), a second challenge response for the resolved
//    transaction refused, and a challenge rejected on the device.
// 3. Chromium: password, then the page's push option approved on the device;
//    with the token of that login, a second device enrolled through the My
//    Account API (verify refused until the device enrolled), and removed from
//    the device itself.
// 4. Chromium at 320 px wide: rejected on the device, the page says so (its
//    status line a polite live region); "Send again" from the keyboard; then
//    approved.
// 5. Chromium with number matching: the number read from the page and typed
//    into the authenticator.
// 6. Chromium without JavaScript: the panel, approved on the device, then its
//    "I approved it — continue" button back to the app with a code.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md); the
// authenticator binary is the one beside it.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { newDevice, startBridge, WEBHOOK_SECRET_ENV } from '../lib/authenticator.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { callApp, goToHostedLogin, openApp, submitCredentials } from '../lib/flows.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, e2eTenant, MY_ACCOUNT_SCOPES, SPA_CLIENT_ID, toYaml } from '../lib/tenant.mjs';
import { decodeJwt, explainFailure, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 180_000;
const LOG_TAIL = 30_000;
const SCOPE = ['openid', 'profile', 'email', 'offline_access', ...MY_ACCOUNT_SCOPES].join(' ');
const PASSWORD_REALM = 'http://auth0.com/oauth/grant-type/password-realm';
const MFA_OOB = 'http://auth0.com/oauth/grant-type/mfa-oob';
const CONNECTION = 'Username-Password-Authentication';

const secret = crypto.randomBytes(24).toString('base64url');

let app;
let browser;
let bridge;
/** MFA always, push through the bridge. */
let plain;
/** The same, with number matching. */
let matching;
/** Alice's phone on each server, and their listeners. */
let phone;
let matchingPhone;
let listener;
let matchingListener;
/** Each server's clock offset file (LATCHKEY_CLOCK_OFFSET_FILE) and offset. */
const clocks = new Map();

function tenantYaml(port, { numberMatching }) {
  const t = e2eTenant({ port, appOrigin: app.origin });
  for (const c of t.clients) {
    if (c.client_id === SPA_CLIENT_ID) c.grant_types.push(PASSWORD_REALM, MFA_OOB);
  }
  return toYaml({
    ...t,
    factors: ['password', 'totp', 'recovery-code', 'push-notification'],
    mfa: { policy: 'always' },
    push_notifications: {
      number_matching: numberMatching,
      webhook: { url: bridge.url, secret_env: WEBHOOK_SECRET_ENV },
    },
  });
}

before(async () => {
  app = await startApp();
  bridge = await startBridge();
  const start = async (numberMatching) => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'latchkey-clock-')), 'offset');
    await fs.writeFile(file, '0\n');
    const server = await startLatchkey({
      tenantYaml: (port) => tenantYaml(port, { numberMatching }),
      env: { [WEBHOOK_SECRET_ENV]: secret, LATCHKEY_CLOCK_OFFSET_FILE: file },
      args: ['--outbound-allow-loopback'],
    });
    clocks.set(server, { file, offset: 0 });
    return server;
  };
  plain = await start(false);
  matching = await start(true);
  phone = await newDevice({ name: 'Alice phone', secret });
  matchingPhone = await newDevice({ name: 'Alice tablet', secret });
  bridge.route(phone);
  bridge.route(matchingPhone);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await listener?.stop();
  await matchingListener?.stop();
  await plain?.stop();
  await matching?.stop();
  await bridge?.close();
  await app?.stop();
  await phone?.remove();
  await matchingPhone?.remove();
});

/**
 * Moves a server's clock forward instead of waiting. Sparingly: the
 * authenticator signs with the real clock, and its challenge responses live
 * 30 seconds.
 */
async function advance(server, seconds) {
  const clock = clocks.get(server);
  clock.offset += seconds;
  await fs.writeFile(clock.file, `${clock.offset}\n`);
}

async function form(server, pathname, fields, headers = {}) {
  const res = await fetch(`${server.origin}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

async function json(server, method, pathname, body, token) {
  const res = await fetch(`${server.origin}${pathname}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Alice's password through the password-realm grant: the mfa_token of its mfa_required. */
async function mfaToken(server) {
  const r = await form(server, '/oauth/token', {
    grant_type: PASSWORD_REALM,
    client_id: SPA_CLIENT_ID,
    username: ALICE.email,
    password: ALICE.password,
    realm: CONNECTION,
    scope: 'openid',
  });
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.equal(r.body.error, 'mfa_required');
  return r.body.mfa_token;
}

const poll = (server, mfa_token, oob_code) =>
  form(server, '/oauth/token', { grant_type: MFA_OOB, client_id: SPA_CLIENT_ID, mfa_token, oob_code });

/** The MFA API's enrollment of `device` for Alice on `server`; the tokens it ends with. */
async function enrollThroughMfaApi(server, device) {
  const token = await mfaToken(server);
  const assoc = await json(
    server,
    'POST',
    '/mfa/associate',
    { client_id: SPA_CLIENT_ID, authenticator_types: ['oob'], oob_channels: ['auth0'] },
    token,
  );
  assert.equal(assoc.status, 200, JSON.stringify(assoc.body));
  assert.equal(assoc.body.authenticator_type, 'oob');
  assert.equal(assoc.body.oob_channel, 'auth0');
  assert.match(assoc.body.barcode_uri, /^otpauth:\/\/totp\//);
  const pending = await poll(server, token, assoc.body.oob_code);
  assert.equal(pending.status, 400, JSON.stringify(pending.body));
  assert.equal(pending.body.error, 'authorization_pending');
  // Polled again within 5 s while pending: slow_down.
  const soon = await poll(server, token, assoc.body.oob_code);
  assert.equal(soon.body.error, 'slow_down', JSON.stringify(soon.body));
  await device.enroll(assoc.body.barcode_uri);
  // Enrolled: the next poll confirms it at once.
  const done = await poll(server, token, assoc.body.oob_code);
  assert.equal(done.status, 200, JSON.stringify(done.body));
  return { tokens: done.body, recoveryCodes: assoc.body.recovery_codes };
}

/** Alice's push authenticator on `server`, as the MFA API lists it. */
async function pushAuthenticator(server, token) {
  const list = await json(server, 'GET', '/mfa/authenticators', undefined, token);
  assert.equal(list.status, 200, JSON.stringify(list.body));
  const found = list.body.find((a) => a.oob_channel === 'auth0');
  assert.ok(found, `no push authenticator in ${JSON.stringify(list.body)}`);
  return found;
}

async function challenge(server, token, authenticatorId) {
  const r = await form(server, '/mfa/challenge', {
    client_id: SPA_CLIENT_ID,
    mfa_token: token,
    challenge_type: 'oob',
    authenticator_id: authenticatorId,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

function diagnostics(server, extra = []) {
  return [
    ['authenticator output', () => listener?.log()],
    ['number-matching authenticator output', () => matchingListener?.log()],
    ['bridge', () => JSON.stringify(bridge.received.map((b) => b.notification?.txlnkid))],
    ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
    ...extra,
  ];
}

test('1: the MFA API enrolls the authenticator (associate, then mfa-oob until the device enrolled)', { timeout: TEST_MS }, () =>
  explainFailure('1 (MFA API enrollment)', diagnostics(plain), async () => {
    const { tokens, recoveryCodes } = await enrollThroughMfaApi(plain, phone);
    assert.ok(Array.isArray(recoveryCodes) && recoveryCodes.length === 1, 'a first association shows a recovery code');
    assert.ok(tokens.access_token);
    // The app's TOTP code answers too, as the push method's `otp`.
    assert.match(await phone.code(), /^\d{6}$/);
    listener = await phone.listen();
  }),
);

test('2: the MFA API at login: slow_down, approved, a second response refused, rejected', { timeout: TEST_MS }, () =>
  explainFailure('2 (MFA API login)', diagnostics(plain), async () => {
    assert.ok(listener, 'test 1 enrolled the phone');
    let token = await mfaToken(plain);
    const push = await pushAuthenticator(plain, token);
    assert.equal(push.authenticator_type, 'oob');
    assert.equal(push.name, 'Alice phone');

    let sent = await challenge(plain, token, push.id);
    let shown = await listener.notification();
    assert.equal(shown.application, 'E2E single-page app');
    assert.equal(shown.number_matching, false);
    // Not answered yet; polled again at once: slow down.
    let r = await poll(plain, token, sent.oob_code);
    assert.equal(r.body.error, 'authorization_pending', JSON.stringify(r.body));
    r = await poll(plain, token, sent.oob_code);
    assert.equal(r.body.error, 'slow_down', JSON.stringify(r.body));
    listener.answer('y');
    let outcome = await listener.outcome(shown.txlnkid);
    assert.deepEqual([outcome.event, outcome.accepted], ['resolved', true], JSON.stringify(outcome));
    // Answered: the next poll is served at once.
    r = await poll(plain, token, sent.oob_code);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(decodeJwt(r.body.access_token).payload.amr, ['pwd', 'mfa']);

    // The device's key answering the resolved transaction again: refused.
    const n = bridge.notification(shown.txlnkid);
    const again = await fetch(`${plain.origin}/appliance-mfa/api/resolve-transaction`, {
      method: 'POST',
      headers: { authorization: `Bearer ${n.txtkn}`, 'content-type': 'application/json' },
      body: JSON.stringify({ challenge_response: await phone.challengeResponse(n, { issuer: plain.issuer }) }),
      signal: AbortSignal.timeout(WAIT_MS),
    });
    const refusal = await again.json();
    assert.equal(again.status, 404, JSON.stringify(refusal));
    assert.equal(refusal.errorCode, 'transaction_not_found');

    // Rejected on the device.
    token = await mfaToken(plain);
    sent = await challenge(plain, token, push.id);
    shown = await listener.notification();
    listener.answer('n that was not me');
    outcome = await listener.outcome(shown.txlnkid);
    assert.deepEqual([outcome.event, outcome.accepted], ['resolved', false], JSON.stringify(outcome));
    r = await poll(plain, token, sent.oob_code);
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.deepEqual([r.body.error, r.body.error_description], ['invalid_grant', 'MFA Authorization rejected.']);
  }),
);

async function inBrowser(server, name, fn, contextOptions = {}) {
  const rec = await newRecordingContext(browser, contextOptions);
  const page = await rec.context.newPage();
  try {
    return await explainFailure(
      name,
      diagnostics(server, [
        ['page URL', () => page.url()],
        ['page text', async () => (await page.locator('body').innerText({ timeout: 2_000 })).slice(0, 3_000)],
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
      ]),
      () => fn({ page, rec }),
    );
  } finally {
    await rec.context.close();
  }
}

async function open(page, server) {
  await openApp(page, { app, server, clientId: SPA_CLIENT_ID, audience: `${server.origin}/me/`, refresh: false, scope: SCOPE });
}

/** App → hosted page → password; returns once the push panel waits. */
async function passwordThenPush(page, server) {
  await goToHostedLogin(page, { server });
  await Promise.all([
    page.waitForURL((u) => u.origin === server.origin && u.pathname === '/login', { timeout: WAIT_MS }),
    submitCredentials(page, { username: ALICE.email, password: ALICE.password }),
  ]);
  await page.locator('#push-status').waitFor({ state: 'visible', timeout: WAIT_MS });
}

const status = async (page) => (await page.locator('#push-status').innerText()).trim();

/** The page finishes on its own once approved: the app's /cb, the callback handled; the ID token's claims. */
async function backToApp(page, answer) {
  await Promise.all([page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }), answer()]);
  const cb = new URL(page.url());
  assert.ok(!cb.searchParams.has('error'), `authorization error: ${cb.searchParams.get('error')}: ${cb.searchParams.get('error_description')}`);
  await callApp(page, 'init');
  await callApp(page, 'handleCallback');
  return callApp(page, 'getIdTokenClaims');
}

test('3: Chromium: password then push approved; a second device enrolled through My Account with that login', { timeout: TEST_MS }, () =>
  inBrowser(plain, '3 (page approved, My Account)', async ({ page }) => {
    assert.ok(listener, 'test 1 enrolled the phone');
    await open(page, plain);
    await passwordThenPush(page, plain);
    assert.equal(await status(page), 'Waiting for your approval…');
    assert.equal((await page.locator('#push-device').innerText()).trim(), 'Alice phone');
    assert.equal(await page.locator('#push-number').count(), 0, 'no number without number matching');
    const shown = await listener.notification();
    assert.equal(shown.application, 'E2E single-page app');
    const claims = await backToApp(page, async () => listener.answer('y'));
    assert.deepEqual(claims.amr, ['pwd', 'mfa']);
    const token = await callApp(page, 'getToken');

    // A second device, through the My Account API with the token of that login.
    const tablet = await newDevice({ name: 'Alice laptop', secret });
    try {
      const started = await json(plain, 'POST', '/me/v1/authentication-methods', { type: 'push-notification' }, token);
      assert.equal(started.status, 202, JSON.stringify(started.body));
      assert.match(started.body.barcode_uri, /^otpauth:\/\/totp\//);
      const verify = () =>
        json(plain, 'POST', `/me/v1/authentication-methods/${encodeURIComponent(started.body.id)}/verify`, { auth_session: started.body.auth_session }, token);
      const early = await verify();
      assert.equal(early.status, 400, 'not confirmed before the device enrolled');
      await tablet.enroll(started.body.barcode_uri);
      const confirmed = await verify();
      assert.equal(confirmed.status, 201, JSON.stringify(confirmed.body));
      assert.equal(confirmed.body.type, 'push-notification');
      let list = await json(plain, 'GET', '/me/v1/authentication-methods', undefined, token);
      assert.equal(list.body.authentication_methods.filter((m) => m.type === 'push-notification').length, 2);
      // The device removes itself: the method is gone.
      await tablet.removeAccount();
      list = await json(plain, 'GET', '/me/v1/authentication-methods', undefined, token);
      const left = list.body.authentication_methods.filter((m) => m.type === 'push-notification');
      assert.equal(left.length, 1, JSON.stringify(left));
      assert.notEqual(left[0].id, confirmed.body.id);
    } finally {
      await tablet.remove();
    }
  }),
);

test('4: Chromium at 320 px: rejected on the device, the page says so; sent again from the keyboard and approved', { timeout: TEST_MS }, () =>
  inBrowser(plain, '4 (page rejected)', async ({ page }) => {
    await page.setViewportSize({ width: 320, height: 640 });
    await open(page, plain);
    await passwordThenPush(page, plain);
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 320, 'nothing wider than 320 px');
    assert.equal(await page.locator('#push-status').getAttribute('role'), 'status');
    assert.equal(await page.locator('#push-status').getAttribute('aria-live'), 'polite');
    let shown = await listener.notification();
    listener.answer('n');
    await listener.outcome(shown.txlnkid);
    await page.waitForFunction(
      () => /rejected/.test(document.getElementById('push-status').textContent),
      null,
      { timeout: WAIT_MS },
    );
    assert.match(await status(page), /^The sign-in was rejected on Alice phone\./);
    assert.equal(await page.locator('#push-continue').isVisible(), false);
    // "Send again" is spaced 10 s apart: the servers' clock moves instead.
    await advance(plain, 11);
    await page.focus('#push-again button');
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/login/mfa', { timeout: WAIT_MS }),
      page.keyboard.press('Enter'),
    ]);
    assert.equal(await status(page), 'Waiting for your approval…');
    shown = await listener.notification();
    const claims = await backToApp(page, async () => listener.answer('y'));
    assert.deepEqual(claims.amr, ['pwd', 'mfa']);
  }),
);

test('5: Chromium with number matching: the number on the page typed into the authenticator', { timeout: TEST_MS }, () =>
  inBrowser(matching, '5 (number matching)', async ({ page }) => {
    await enrollThroughMfaApi(matching, matchingPhone);
    matchingListener = await matchingPhone.listen();
    await open(page, matching);
    await passwordThenPush(page, matching);
    const number = (await page.locator('#push-number').innerText()).trim();
    assert.match(number, /^\d{2}$/);
    const shown = await matchingListener.notification();
    assert.equal(shown.number_matching, true);
    const claims = await backToApp(page, async () => {
      matchingListener.answer('y');
      matchingListener.answer(number);
    });
    assert.deepEqual(claims.amr, ['pwd', 'mfa']);
  }),
);

test('6: Chromium without JavaScript: approved on the device, then "I approved it — continue"', { timeout: TEST_MS }, () =>
  inBrowser(
    plain,
    '6 (no JavaScript)',
    async ({ page, rec }) => {
      const verifier = crypto.randomBytes(32).toString('base64url');
      const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
      const authorize = new URL('/authorize', plain.origin);
      for (const [k, v] of Object.entries({
        client_id: SPA_CLIENT_ID,
        response_type: 'code',
        redirect_uri: `${app.origin}/cb`,
        scope: 'openid',
        state: 'no-script',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      })) {
        authorize.searchParams.set(k, v);
      }
      await page.goto(authorize.href);
      await submitCredentials(page, { username: ALICE.email, password: ALICE.password });
      await page.locator('#push-status').waitFor({ state: 'visible', timeout: WAIT_MS });
      assert.equal(await status(page), 'Waiting for your approval…');
      const shown = await listener.notification();
      listener.answer('y');
      const outcome = await listener.outcome(shown.txlnkid);
      assert.equal(outcome.accepted, true, JSON.stringify(outcome));
      await Promise.all([
        page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
        page.click('#push-continue button'),
      ]);
      const cb = new URL(page.url());
      assert.equal(cb.searchParams.get('state'), 'no-script');
      assert.ok(cb.searchParams.get('code'), `a code at ${cb}`);
      assert.equal(rec.requests.filter((r) => r.url.includes('/login/mfa/push/status')).length, 0, 'no script polled');
      const exchanged = await form(plain, '/oauth/token', {
        grant_type: 'authorization_code',
        client_id: SPA_CLIENT_ID,
        code: cb.searchParams.get('code'),
        redirect_uri: `${app.origin}/cb`,
        code_verifier: verifier,
      });
      assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
      assert.deepEqual(decodeJwt(exchanged.body.id_token).payload.amr, ['pwd', 'mfa']);
    },
    { javaScriptEnabled: false },
  ),
);
