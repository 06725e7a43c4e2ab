// Multi-factor login on the hosted page, in Debian's Chromium with the
// official @auth0/auth0-spa-js app:
//
// 1. MFA "always": Alice has no second factor, so after her password the page
//    leads her through enrolling an authenticator app (the code computed here
//    from the key the page shows) and shows her recovery code once; she logs
//    out and in again with password then TOTP.
// 2. Same tenant: Alice logs in with password then her recovery code, which is
//    replaced (the page shows the new one once); the old one no longer works.
// 3. Same tenant: Bob enrolls a security key at login (Chrome's virtual
//    authenticator as a USB CTAP2 key) and logs in again with password then
//    that key.
// 4. The My Account API's Default Policy (require_2fa): spa-js silent token
//    renewal (hidden iframe, prompt=none) works within the window, fails with
//    unmet_authentication_requirements once the server's clock has moved past
//    it (LATCHKEY_CLOCK_OFFSET_FILE: the test moves time, it never sleeps), and
//    works again after an interactive login where the page asks for the second
//    factor alone.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { callApp, goToHostedLogin, openApp, startNavigatingCall, submitCredentials, tryApp } from '../lib/flows.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, BOB, e2eTenant, MY_ACCOUNT_SCOPES, SPA_CLIENT_ID, toYaml } from '../lib/tenant.mjs';
import { totp } from '../lib/totp.mjs';
import { decodeJwt, explainFailure, WAIT_MS } from '../lib/util.mjs';
import { addVirtualAuthenticator } from '../lib/virtual-authenticator.mjs';

const TEST_MS = 180_000;
const LOG_TAIL = 30_000;
const SCOPE = ['openid', 'profile', 'email', 'offline_access', ...MY_ACCOUNT_SCOPES].join(' ');
const MULTI_FACTOR = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';

let app;
let browser;
/** MFA always, with security keys among the factors. */
let strict;
/** The Default Policy on, with a clock the test can move. */
let policy;
let clockFile;

before(async () => {
  app = await startApp();
  strict = await startLatchkey({
    tenantYaml: (port) =>
      toYaml({
        ...e2eTenant({ port, appOrigin: app.origin }),
        factors: ['password', 'totp', 'recovery-code', 'webauthn-roaming'],
        mfa: { policy: 'always' },
      }),
  });
  clockFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'latchkey-clock-')), 'offset');
  await fs.writeFile(clockFile, '0\n');
  policy = await startLatchkey({
    tenantYaml: (port) => {
      const t = e2eTenant({ port, appOrigin: app.origin });
      return toYaml({ ...t, my_account_api: { ...t.my_account_api, require_2fa: true } });
    },
    env: { LATCHKEY_CLOCK_OFFSET_FILE: clockFile },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await strict?.stop();
  await policy?.stop();
  await app?.stop();
});

/** What test 1 leaves for test 2: Alice's TOTP key and recovery code. */
const alice = { secret: null, recoveryCode: null, lastStep: 0 };

/** A code for `secret` that no earlier login used (TOTP steps are single use). */
function freshCode(holder) {
  const now = Math.floor(Date.now() / 30_000);
  // The server accepts the next step too; never reuse a step.
  const step = Math.max(now, holder.lastStep + 1);
  assert.ok(step <= now + 1, 'a TOTP step is still free (at most two logins per 30 s)');
  holder.lastStep = step;
  return totp(holder.secret, { time: step * 30_000 });
}

async function inBrowser(server, name, fn, { authenticator = null } = {}) {
  const rec = await newRecordingContext(browser);
  const page = await rec.context.newPage();
  const key = authenticator ? await addVirtualAuthenticator(rec.context, page, authenticator) : null;
  try {
    return await explainFailure(
      name,
      [
        ['page URL', () => page.url()],
        ['page text', async () => (await page.locator('body').innerText({ timeout: 2_000 })).slice(0, 3_000)],
        ...(key ? [['virtual authenticator', () => key.describe()]] : []),
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      () => fn({ page, rec, key }),
    );
  } finally {
    await rec.context.close();
  }
}

const audience = (server) => `${server.origin}/me/`;

async function open(page, server) {
  await openApp(page, { app, server, clientId: SPA_CLIENT_ID, audience: audience(server), refresh: false, scope: SCOPE });
}

/** App → hosted page → password; returns once the second step's page is shown. */
async function password(page, server, user) {
  await goToHostedLogin(page, { server });
  await Promise.all([
    page.waitForURL((u) => u.origin === server.origin && u.pathname === '/login', { timeout: WAIT_MS }),
    submitCredentials(page, { username: user.email, password: user.password }),
  ]);
  await page.locator('h1').waitFor({ state: 'visible', timeout: WAIT_MS });
}

/** Clicks `selector`, lands on the app's /cb, finishes the login there; the ID token's claims. */
async function backToApp(page, click) {
  await Promise.all([page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }), click()]);
  const cb = new URL(page.url());
  assert.ok(!cb.searchParams.has('error'), `authorization error: ${cb.searchParams.get('error')}: ${cb.searchParams.get('error_description')}`);
  await callApp(page, 'init');
  await callApp(page, 'handleCallback');
  const claims = await callApp(page, 'getIdTokenClaims');
  return claims;
}

async function heading(page) {
  return (await page.locator('h1').innerText()).trim();
}

async function logout(page) {
  await Promise.all([
    page.waitForURL((u) => u.origin === app.origin && u.pathname === '/', { timeout: WAIT_MS }),
    startNavigatingCall(page, 'logout'),
  ]);
}

const submitIn = (page, action) => page.click(`form[action="${action}"] button[type="submit"]`);

test('1: password, then an authenticator app enrolled at login; then password and TOTP', { timeout: TEST_MS }, () =>
  inBrowser(strict, '1 (TOTP)', async ({ page }) => {
    await open(page, strict);
    await password(page, strict, ALICE);
    assert.equal(await heading(page), 'Secure your account');
    await Promise.all([page.waitForSelector('#manual-code', { timeout: WAIT_MS }), page.click('#enroll-totp')]);
    assert.equal(await page.locator('.qr svg').count(), 1, 'the page shows a QR code');
    alice.secret = (await page.locator('#manual-code').innerText()).trim();
    await page.fill('#code', freshCode(alice));
    await Promise.all([
      page.waitForSelector('#recovery-code', { timeout: WAIT_MS }),
      submitIn(page, '/login/mfa/enroll/verify'),
    ]);
    alice.recoveryCode = (await page.locator('#recovery-code').innerText()).trim();
    assert.match(alice.recoveryCode, /^[A-Z]{24}$/);
    let claims = await backToApp(page, () => submitIn(page, '/login/continue'));
    assert.deepEqual(claims.amr, ['pwd', 'mfa', 'otp']);
    assert.equal(claims.acr, MULTI_FACTOR);
    const token = decodeJwt(await callApp(page, 'getToken')).payload;
    assert.deepEqual(token.amr, ['pwd', 'mfa', 'otp'], 'silent renewal keeps the session amr');

    await logout(page);
    await open(page, strict);
    await password(page, strict, ALICE);
    assert.equal(await heading(page), "Verify it's you");
    await page.fill('#code', freshCode(alice));
    claims = await backToApp(page, () => submitIn(page, '/login/mfa/verify'));
    assert.deepEqual(claims.amr, ['pwd', 'mfa', 'otp']);
  }),
);

test('2: password, then the recovery code, replaced and shown once', { timeout: TEST_MS }, () =>
  inBrowser(strict, '2 (recovery code)', async ({ page }) => {
    assert.ok(alice.recoveryCode, 'test 1 enrolled Alice');
    await open(page, strict);
    await password(page, strict, ALICE);
    await page.selectOption('#method', { label: 'Recovery code' });
    await Promise.all([page.waitForSelector('label[for="code"]:has-text("recovery code")'), submitIn(page, '/login/mfa')]);
    await page.fill('#code', alice.recoveryCode);
    await Promise.all([page.waitForSelector('#recovery-code', { timeout: WAIT_MS }), submitIn(page, '/login/mfa/verify')]);
    const fresh = (await page.locator('#recovery-code').innerText()).trim();
    assert.notEqual(fresh, alice.recoveryCode, 'a new recovery code');
    const claims = await backToApp(page, () => submitIn(page, '/login/continue'));
    assert.deepEqual(claims.amr, ['pwd', 'mfa']);

    // The old code is spent.
    await logout(page);
    await open(page, strict);
    await password(page, strict, ALICE);
    await page.selectOption('#method', { label: 'Recovery code' });
    await Promise.all([page.waitForSelector('label[for="code"]:has-text("recovery code")'), submitIn(page, '/login/mfa')]);
    await page.fill('#code', alice.recoveryCode);
    await Promise.all([page.waitForSelector('.error'), submitIn(page, '/login/mfa/verify')]);
    assert.match(await page.locator('.error').innerText(), /not right/);
    alice.recoveryCode = fresh;
  }),
);

test('3: password, then a security key enrolled at login; then password and the key', { timeout: TEST_MS }, () =>
  inBrowser(
    strict,
    '3 (security key)',
    async ({ page, key }) => {
      await open(page, strict);
      await password(page, strict, BOB);
      await Promise.all([page.waitForSelector('#key-button'), page.click('#enroll-webauthn-roaming')]);
      await Promise.all([page.waitForSelector('#recovery-code', { timeout: WAIT_MS }), page.click('#key-button')]);
      const creds = await key.credentials();
      assert.equal(creds.length, 1, 'the key holds one credential');
      assert.equal(creds[0].isResidentCredential, false, 'a second-factor key needs no discoverable credential');
      let claims = await backToApp(page, () => submitIn(page, '/login/continue'));
      assert.deepEqual(claims.amr, ['pwd', 'mfa', 'hwk']);

      // My Account lists it.
      const methods = await callApp(page, 'myAccountGetAuthenticationMethods', 'webauthn-roaming');
      assert.equal(methods.length, 1);
      assert.equal(methods[0].key_id, creds[0].credentialId);

      await logout(page);
      await open(page, strict);
      await password(page, strict, BOB);
      assert.equal(await page.locator('#key-button').getAttribute('data-kind'), 'webauthn-roaming');
      claims = await backToApp(page, () => page.click('#key-button'));
      assert.deepEqual(claims.amr, ['pwd', 'mfa', 'hwk']);
      const asserted = key.events.filter((e) => e.event === 'asserted');
      assert.equal(asserted.length, 1, 'the key signed once');
    },
    { authenticator: { transport: 'usb', hasResidentKey: false } },
  ),
);

test('4: the Default Policy: silent renewal fails after the window, works after the challenge', { timeout: TEST_MS }, () =>
  inBrowser(policy, '4 (Default Policy)', async ({ page }) => {
    const holder = { secret: null, lastStep: 0 };
    await open(page, policy);
    // No factor yet: the policy lets Alice in with her password.
    await goToHostedLogin(page, { server: policy });
    let claims = await backToApp(page, () => submitCredentials(page, { username: ALICE.email, password: ALICE.password }));
    assert.deepEqual(claims.amr, ['pwd']);
    // She enrolls an authenticator app through My Account.
    const challenge = await callApp(page, 'myAccountEnrollmentChallenge', { type: 'totp' });
    holder.secret = challenge.manual_input_code;
    await callApp(page, 'myAccountEnrollmentVerify', {
      type: 'totp',
      location: challenge.location,
      auth_session: challenge.auth_session,
      otp_code: freshCode(holder),
    });

    // Her session has no second factor: silent renewal for My Account is refused ...
    let silent = await tryApp(page, 'getToken');
    assert.equal(silent.ok, false, JSON.stringify(silent));
    assert.equal(silent.error, 'login_required', JSON.stringify(silent));
    // ... until she gives one: the page asks for the second factor alone.
    await startNavigatingCall(page, 'login');
    await page.waitForURL((u) => u.origin === policy.origin, { timeout: WAIT_MS });
    await page.locator('#code').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await page.locator('input[name="password"]').count(), 0, 'no password asked');
    await page.fill('#code', freshCode(holder));
    claims = await backToApp(page, () => submitIn(page, '/login/mfa/verify'));
    assert.deepEqual(claims.amr, ['pwd', 'mfa', 'otp']);
    let token = await callApp(page, 'getToken');
    assert.deepEqual(decodeJwt(token).payload.amr, ['pwd', 'mfa', 'otp']);

    // Ten minutes later: still within the window.
    await fs.writeFile(clockFile, '600\n');
    token = await callApp(page, 'getToken');
    assert.ok(token);
    // Past it: the policy's error.
    await fs.writeFile(clockFile, '901\n');
    silent = await tryApp(page, 'getToken');
    assert.equal(silent.ok, false, JSON.stringify(silent));
    assert.equal(silent.error, 'unmet_authentication_requirements', JSON.stringify(silent));

    // Interactively: the second factor again, then silent renewal works.
    await startNavigatingCall(page, 'login');
    await page.waitForURL((u) => u.origin === policy.origin, { timeout: WAIT_MS });
    await page.locator('#code').waitFor({ state: 'visible', timeout: WAIT_MS });
    // The server's clock is 901 s ahead: its TOTP steps too.
    const ahead = { secret: holder.secret, lastStep: Math.floor((Date.now() + 901_000) / 30_000) - 1 };
    const code = totp(ahead.secret, { time: (ahead.lastStep + 1) * 30_000 });
    await page.fill('#code', code);
    await backToApp(page, () => submitIn(page, '/login/mfa/verify'));
    token = await callApp(page, 'getToken');
    const payload = decodeJwt(token).payload;
    assert.deepEqual(payload.amr, ['pwd', 'mfa', 'otp']);
  }),
);
