// The official Auth0 SPA SDK (@auth0/auth0-spa-js, unmodified) in Debian's
// Chromium against a real latchkey: redirect login on the hosted page,
// refresh tokens, silent authentication in a hidden iframe
// (response_mode=web_message), logout, and a failed login.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import {
  callApp,
  goToHostedLogin,
  loginWithRedirect,
  openApp,
  startNavigatingCall,
  submitCredentials,
  tryApp,
} from '../lib/flows.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, e2eTenantYaml, SPA_CLIENT_ID } from '../lib/tenant.mjs';
import { audiences, decodeJwt, explainFailure, scopes, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 180_000;
const LOG_TAIL = 30_000;

let app;
let server;
let browser;

before(async () => {
  app = await startApp();
  server = await startLatchkey({
    tenantYaml: (port) => e2eTenantYaml({ port, appOrigin: app.origin }),
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await app?.stop();
});

const myAccountAudience = () => `${server.issuer}me/`;

/** A fresh browser context and page, with diagnostics printed if `fn` throws. */
async function inBrowser(name, fn) {
  const rec = await newRecordingContext(browser);
  const page = await rec.context.newPage();
  try {
    return await explainFailure(
      name,
      [
        ['page URL', () => page.url()],
        ['page text', async () => (await page.locator('body').innerText({ timeout: 2_000 })).slice(0, 3_000)],
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
        ['app server requests', () => app.requests.join('\n')],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      () => fn({ page, rec }),
    );
  } finally {
    await rec.context.close();
  }
}

/** Requests the browser made to a path on the latchkey origin. */
const serverRequests = (rec, method, pathname) =>
  rec.requests.filter((r) => {
    const u = new URL(r.url);
    return r.method === method && u.origin === server.origin && u.pathname === pathname;
  });

const formField = (body, name) => new URLSearchParams(body || '').get(name);

/** A token-endpoint POST body may be form-encoded (spa-js default) or JSON. */
function tokenRequestGrantType(r) {
  const ct = Object.entries(r.headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1] || '';
  if (ct.includes('json')) {
    try {
      return JSON.parse(r.postData || '{}').grant_type;
    } catch {
      return undefined;
    }
  }
  return formField(r.postData, 'grant_type');
}

function assertMyAccountToken(token, what) {
  assert.equal(typeof token, 'string', `${what}: expected an access token string`);
  const { header, payload } = decodeJwt(token);
  assert.ok(header.alg, `${what}: JWT header has alg`);
  assert.ok(
    audiences(payload).includes(myAccountAudience()),
    `${what}: aud ${JSON.stringify(payload.aud)} should contain ${myAccountAudience()}`,
  );
  assert.equal(payload.iss, server.issuer, `${what}: iss`);
  assert.ok(
    scopes(payload).includes('read:me:authentication_methods'),
    `${what}: scope ${JSON.stringify(payload.scope)} should include read:me:authentication_methods`,
  );
  return payload;
}

test('A: redirect login, refresh-token renewal and logout', { timeout: TEST_MS }, () =>
  inBrowser('A (refresh tokens)', async ({ page, rec }) => {
    await openApp(page, {
      app,
      server,
      clientId: SPA_CLIENT_ID,
      audience: myAccountAudience(),
      refresh: true,
      cache: 'memory', // spa-js keeps the refresh token in its Web Worker
    });

    await loginWithRedirect(page, { app, server, user: ALICE });

    const [authorize] = serverRequests(rec, 'GET', '/authorize');
    assert.ok(authorize, 'the browser went to GET /authorize');
    const authorizeUrl = new URL(authorize.url);
    assert.equal(authorizeUrl.searchParams.get('client_id'), SPA_CLIENT_ID);
    assert.equal(authorizeUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.match(authorizeUrl.searchParams.get('scope'), /\boffline_access\b/);

    const user = await callApp(page, 'getUser');
    assert.ok(user, 'getUser() returned a user');
    assert.equal(user.email, ALICE.email);
    assert.ok(user.sub, 'the ID token has a sub');

    const codeExchanges = serverRequests(rec, 'POST', '/oauth/token').filter(
      (r) => tokenRequestGrantType(r) === 'authorization_code',
    );
    assert.equal(codeExchanges.length, 1, 'one authorization_code exchange at /oauth/token');

    const token = await callApp(page, 'getToken');
    assertMyAccountToken(token, 'token from refresh');

    const refreshes = serverRequests(rec, 'POST', '/oauth/token').filter(
      (r) => tokenRequestGrantType(r) === 'refresh_token',
    );
    assert.ok(refreshes.length >= 1, 'getTokenSilently (cacheMode off) POSTed grant_type=refresh_token to /oauth/token');
    assert.equal(refreshes.at(-1).status, 200, 'the refresh-token request succeeded');
    assert.equal(serverRequests(rec, 'GET', '/authorize').length, 1, 'no iframe fallback: still one /authorize');

    // A second renewal works with the (possibly rotated) refresh token.
    const token2 = await callApp(page, 'getToken');
    assertMyAccountToken(token2, 'token from second refresh');

    // Logout: /v2/logout, back to the app's "/".
    await Promise.all([
      page.waitForURL((u) => u.origin === app.origin && u.pathname === '/', { timeout: WAIT_MS }),
      startNavigatingCall(page, 'logout'),
    ]);
    const [logout] = serverRequests(rec, 'GET', '/v2/logout');
    assert.ok(logout, 'the browser went to GET /v2/logout');
    const logoutUrl = new URL(logout.url);
    assert.equal(logoutUrl.searchParams.get('client_id'), SPA_CLIENT_ID);
    assert.equal(logoutUrl.searchParams.get('returnTo'), `${app.origin}/`);

    // The server session is gone: silent authentication on a fresh client fails.
    await callApp(page, 'init', { useRefreshTokens: false });
    const silent = await tryApp(page, 'getToken');
    assert.equal(silent.ok, false, `silent authentication after logout must fail, got ${JSON.stringify(silent)}`);
    assert.equal(silent.error, 'login_required', `expected login_required, got ${JSON.stringify(silent)}`);
  }),
);

test('B: silent authentication in a hidden iframe (response_mode=web_message)', { timeout: TEST_MS }, () =>
  inBrowser('B (silent authentication)', async ({ page, rec }) => {
    await openApp(page, {
      app,
      server,
      clientId: SPA_CLIENT_ID,
      audience: myAccountAudience(),
      refresh: false,
      cache: 'localstorage',
    });

    await loginWithRedirect(page, { app, server, user: ALICE });
    const user = await callApp(page, 'getUser');
    assert.equal(user?.email, ALICE.email);

    // Forget every token spa-js holds; only the server's login session remains.
    await callApp(page, 'clearCache');
    const keys = await callApp(page, 'storageKeys');
    assert.deepEqual(keys.filter((k) => k.startsWith('@@auth0spajs@@')), [], 'spa-js cache is empty');
    await callApp(page, 'init');

    const isSilent = (r) => {
      const q = new URL(r.url).searchParams;
      return q.get('prompt') === 'none' && q.get('response_mode') === 'web_message';
    };
    const silentBefore = serverRequests(rec, 'GET', '/authorize').filter(isSilent).length;

    const token = await callApp(page, 'getToken');
    assertMyAccountToken(token, 'token from silent authentication');

    const silent = serverRequests(rec, 'GET', '/authorize').filter(isSilent);
    assert.ok(
      silent.length > silentBefore,
      'getTokenSilently loaded /authorize?prompt=none&response_mode=web_message in an iframe',
    );
    const last = silent.at(-1);
    assert.equal(last.status, 200, 'the web_message response is an HTML page (200), not a redirect');
    assert.equal(new URL(last.url).searchParams.get('redirect_uri'), `${app.origin}/cb`);

    const codeExchanges = serverRequests(rec, 'POST', '/oauth/token').filter(
      (r) => tokenRequestGrantType(r) === 'authorization_code',
    );
    assert.ok(codeExchanges.length >= 2, 'the iframe code was exchanged at /oauth/token');
    assert.equal(
      serverRequests(rec, 'POST', '/oauth/token').filter((r) => tokenRequestGrantType(r) === 'refresh_token').length,
      0,
      'no refresh tokens in this mode',
    );

    const again = await callApp(page, 'getUser');
    assert.equal(again?.email, ALICE.email, 'the silently obtained ID token is for alice');
  }),
);

test('C: a wrong password shows an error on the hosted page and does not redirect', { timeout: TEST_MS }, () =>
  inBrowser('C (wrong password)', async ({ page, rec }) => {
    await openApp(page, {
      app,
      server,
      clientId: SPA_CLIENT_ID,
      audience: myAccountAudience(),
      refresh: true,
      cache: 'memory',
    });
    await goToHostedLogin(page, { server });

    await submitCredentials(page, { username: ALICE.email, password: 'not-the-password' });
    const error = page.locator('.error');
    await error.first().waitFor({ state: 'visible', timeout: WAIT_MS });
    const text = (await error.first().innerText()).trim();
    assert.ok(text.length > 0, 'the error element has text');
    assert.doesNotMatch(text, /not-the-password/, 'the error does not echo the password');

    assert.equal(new URL(page.url()).origin, server.origin, 'still on the hosted login page');
    const toCallback = rec.requests.filter((r) => {
      const u = new URL(r.url);
      return u.origin === app.origin && u.pathname === '/cb';
    });
    assert.equal(toCallback.length, 0, 'no redirect to the app after a failed login');
    assert.equal(await page.locator('input[name="password"]').count(), 1, 'the form is shown again');

    // The re-rendered form still works with the right password.
    await Promise.all([
      page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
      submitCredentials(page, { username: ALICE.email, password: ALICE.password }),
    ]);
    assert.ok(new URL(page.url()).searchParams.get('code'), 'code after retrying with the right password');
  }),
);
