// Logging in with an upstream identity provider, with the official
// @auth0/auth0-spa-js in Debian's Chromium: the hosted login page's
// "Continue with …" button, and spa-js's own `connection` parameter straight
// to the provider. The provider is the program the integration tests use
// (`oidc-provider` behind its own login form, crates/latchkey/tests/upstream/oidc/),
// started here as a child process; the user signs in on its form, the
// provider comes back through latchkey's {issuer}login/callback, and spa-js
// gets a code for a user made from the provider's account
// (`oidc|acme-idp|<sub>`). Cancelling at the provider reaches spa-js as
// `access_denied`.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { callApp, openApp, startNavigatingCall, tryApp } from '../lib/flows.mjs';
import { SPA_CLIENT_ID } from '../lib/tenant.mjs';
import { startWithUpstream } from '../lib/upstream.mjs';
import { explainFailure, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 180_000;
const LOG_TAIL = 30_000;

const CONNECTION = 'acme-idp';
/** Dana's account at the provider; she has none at latchkey before her first login. */
const DANA = Object.freeze({ sub: 'dana-upstream', email: 'dana@idp.example', password: 'Dana-at-the-pr0vider' });

let app;
let server;
let provider;
let browser;

before(async () => {
  app = await startApp();
  ({ server, provider } = await startWithUpstream({
    app,
    connection: {
      name: CONNECTION,
      display_name: 'Acme Workforce',
      options: { scope: 'openid profile email' },
    },
    users: [{ ...DANA, email_verified: true, name: 'Dana Upstream' }],
  }));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await provider?.stop();
  await server?.stop();
  await app?.stop();
});

/** A fresh browser context and page, with diagnostics printed if `fn` throws. */
async function inBrowser(name, fn) {
  const rec = await newRecordingContext(browser);
  const page = await rec.context.newPage();
  try {
    return await explainFailure(
      name,
      [
        ['page URL', () => page.url()],
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
        ['provider output (tail)', () => provider.log().slice(-LOG_TAIL)],
      ],
      () => fn({ page, rec }),
    );
  } finally {
    await rec.context.close();
  }
}

const providerOrigin = () => new URL(provider.issuer).origin;

/** The app, configured for redirect logins (for the My Account API) with refresh tokens. */
const open = (page) =>
  openApp(page, {
    app,
    server,
    clientId: SPA_CLIENT_ID,
    audience: `${server.origin}/me/`,
    refresh: true,
    cache: 'localstorage',
    scope: 'openid profile email offline_access read:me:factors',
  });

/** On the provider's login form: Dana signs in; back on the app's /cb. */
async function signInAtProvider(page) {
  await page.locator('#login input[name="username"]').waitFor({ state: 'visible', timeout: WAIT_MS });
  await page.fill('#login input[name="username"]', DANA.email);
  await page.fill('#login input[name="password"]', DANA.password);
  await Promise.all([
    page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
    page.click('#login button[type="submit"]'),
  ]);
  const back = new URL(page.url());
  assert.equal(back.searchParams.get('error'), null, `no error at /cb: ${page.url()}`);
}

/** spa-js finishes the login; Dana's user as spa-js sees it. */
async function finish(page) {
  await callApp(page, 'init');
  await callApp(page, 'handleCallback');
  const user = await callApp(page, 'getUser');
  assert.equal(user.sub, `oidc|${CONNECTION}|${DANA.sub}`, JSON.stringify(user));
  assert.equal(user.email, DANA.email);
  assert.equal(user.email_verified, true);
  assert.equal(user.name, 'Dana Upstream');
  const claims = await callApp(page, 'getIdTokenClaims');
  assert.equal(claims.iss, server.issuer);
  // A refresh token of latchkey's own, through spa-js's worker.
  const token = await callApp(page, 'getToken');
  assert.ok(typeof token === 'string' && token.length > 0, 'spa-js got an access token');
  return user;
}

test('the hosted page\'s button: through the provider\'s login form and back to spa-js', { timeout: TEST_MS }, async () => {
  await inBrowser('button', async ({ page, rec }) => {
    await open(page);
    await startNavigatingCall(page, 'login');
    await page.waitForURL((u) => u.origin === server.origin, { timeout: WAIT_MS });
    const button = page.locator(`#connection-${CONNECTION}`);
    await button.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal((await button.innerText()).trim(), 'Continue with Acme Workforce');
    await Promise.all([
      page.waitForURL((u) => u.origin === providerOrigin(), { timeout: WAIT_MS }),
      button.click(),
    ]);
    await signInAtProvider(page);
    assert.ok(
      rec.requests.some((r) => new URL(r.url).origin === server.origin && new URL(r.url).pathname === '/login/callback'),
      'the provider came back through latchkey\'s /login/callback',
    );
    await finish(page);
  });
});

test('spa-js\'s connection parameter: straight to the provider, the same user', { timeout: TEST_MS }, async () => {
  await inBrowser('connection=', async ({ page, rec }) => {
    await open(page);
    await startNavigatingCall(page, 'login', { connection: CONNECTION });
    await page.waitForURL((u) => u.origin === providerOrigin(), { timeout: WAIT_MS });
    const authorize = rec.requests.find((r) => new URL(r.url).origin === server.origin && new URL(r.url).pathname === '/authorize');
    assert.equal(new URL(authorize.url).searchParams.get('connection'), CONNECTION, 'spa-js sent the connection');
    assert.ok(
      !rec.requests.some((r) => new URL(r.url).pathname === '/login/upstream'),
      'no login page on the way',
    );
    await signInAtProvider(page);
    await finish(page);
  });
});

test('cancelling at the provider reaches spa-js as access_denied', { timeout: TEST_MS }, async () => {
  await inBrowser('cancel', async ({ page }) => {
    await open(page);
    await startNavigatingCall(page, 'login', { connection: CONNECTION });
    await page.waitForURL((u) => u.origin === providerOrigin(), { timeout: WAIT_MS });
    await page.locator('#abort button[type="submit"]').waitFor({ state: 'visible', timeout: WAIT_MS });
    await Promise.all([
      page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
      page.click('#abort button[type="submit"]'),
    ]);
    assert.equal(new URL(page.url()).searchParams.get('error'), 'access_denied', page.url());
    await callApp(page, 'init');
    const r = await tryApp(page, 'handleCallback');
    assert.equal(r.ok, false, JSON.stringify(r));
    assert.equal(r.error, 'access_denied', JSON.stringify(r));
    assert.equal((await callApp(page, 'isAuthenticated')), false);
  });
});
