// Connected accounts (Token Vault) with the official @auth0/auth0-spa-js in
// Debian's Chromium, against a real upstream OpenID provider: the program the
// integration tests use (`oidc-provider`, crates/latchkey/tests/upstream/oidc/),
// started here as a child process. spa-js logs in on the hosted login page,
// then its own connectAccountWithRedirect() asks the My Account API to connect
// (POST /me/v1/connected-accounts/connect) and sends the browser to latchkey's
// connect URI, which sends it on to the provider; the user signs in on the
// provider's own login form; the provider comes back through
// {issuer}login/callback, which sends the browser to the app's /cb with a
// connect_code; spa-js's handleRedirectCallback() completes it (POST …/complete).
// The app then lists the account and deletes it with a token spa-js gives it
// (spa-js has no list or delete call of its own).
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { callApp, loginWithRedirect, openApp, startNavigatingCall } from '../lib/flows.mjs';
import { ALICE, SPA_CLIENT_ID } from '../lib/tenant.mjs';
import { startWithUpstream } from '../lib/upstream.mjs';
import { explainFailure, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 180_000;
const LOG_TAIL = 30_000;

const CONNECTION = 'acme-idp';
const CONNECTED_ACCOUNT_SCOPES = [
  'create:me:connected_accounts',
  'read:me:connected_accounts',
  'delete:me:connected_accounts',
];
const SCOPE = ['openid', 'profile', 'email', 'offline_access', ...CONNECTED_ACCOUNT_SCOPES].join(' ');
/** Alice's account at the provider: another name, another password. */
const CAROL = Object.freeze({ sub: 'carol-upstream', email: 'carol@idp.example', password: 'Upstream-pa55-word' });

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
      options: { scope: 'openid profile email offline_access' },
      connected_accounts: { active: true },
    },
    users: [{ ...CAROL, email_verified: true, name: 'Carol Upstream' }],
    adjustTenant: (tenant) => {
      const grant = tenant.client_grants.find((g) => g.client_id === SPA_CLIENT_ID);
      grant.scope = [...grant.scope, ...CONNECTED_ACCOUNT_SCOPES];
    },
  }));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await provider?.stop();
  await server?.stop();
  await app?.stop();
});

async function providerCounters() {
  const res = await fetch(`${provider.issuer}__test/counters`);
  assert.equal(res.status, 200);
  return res.json();
}

test('spa-js connectAccountWithRedirect: the provider\'s login form, back with a connect_code, completed, listed, deleted', { timeout: TEST_MS }, async () => {
  const rec = await newRecordingContext(browser);
  const page = await rec.context.newPage();
  try {
    await explainFailure(
      'connected accounts',
      [
        ['page URL', () => page.url()],
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
        ['provider output (tail)', () => provider.log().slice(-LOG_TAIL)],
      ],
      async () => {
        // Refresh tokens kept in localStorage: the app leaves its page for the provider and
        // comes back, and spa-js needs a My Account token on its return to complete.
        await openApp(page, {
          app,
          server,
          clientId: SPA_CLIENT_ID,
          audience: `${server.origin}/me/`,
          refresh: true,
          cache: 'localstorage',
          scope: SCOPE,
        });
        await loginWithRedirect(page, { app, server, user: ALICE });

        const before = await callApp(page, 'meFetch', 'GET', '/connected-accounts/accounts', 'read:me:connected_accounts');
        assert.equal(before.status, 200, JSON.stringify(before));
        assert.deepEqual(before.body.accounts, [], 'no account connected yet');

        // spa-js: POST /connect, then the browser to latchkey's connect URI and on to the provider.
        const providerOrigin = new URL(provider.issuer).origin;
        await startNavigatingCall(page, 'connectAccount', {
          connection: CONNECTION,
          scopes: ['openid', 'profile', 'email', 'offline_access'],
          appState: { returnTo: '/settings' },
        });
        await page.waitForURL((u) => u.origin === providerOrigin, { timeout: WAIT_MS });
        await page.locator('#login input[name="username"]').waitFor({ state: 'visible', timeout: WAIT_MS });

        const connect = rec.requests.find((r) => r.method === 'POST' && new URL(r.url).pathname === '/me/v1/connected-accounts/connect');
        assert.equal(connect?.status, 201, 'connect answered 201');
        const viaLatchkey = rec.requests.find((r) => {
          const u = new URL(r.url);
          return u.origin === server.origin && u.pathname === '/connected-accounts/connect' && u.searchParams.has('ticket');
        });
        assert.ok(viaLatchkey, 'the browser went through latchkey\'s connect URI with the ticket');
        const authorize = new URL(page.url());
        assert.equal(authorize.pathname.startsWith('/interaction/'), true, `the provider's login form: ${page.url()}`);

        // The user signs in at the provider, on its own form.
        await page.fill('#login input[name="username"]', CAROL.email);
        await page.fill('#login input[name="password"]', CAROL.password);
        await Promise.all([
          page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
          page.click('#login button[type="submit"]'),
        ]);
        const back = new URL(page.url());
        assert.equal(back.searchParams.get('error'), null, `no error at /cb: ${page.url()}`);
        assert.ok(back.searchParams.get('connect_code'), `a connect_code at /cb: ${page.url()}`);
        assert.ok(back.searchParams.get('state'), 'the app\'s state at /cb');
        assert.ok(
          rec.requests.some((r) => {
            const u = new URL(r.url);
            return u.origin === server.origin && u.pathname === '/login/callback';
          }),
          'the provider came back through latchkey\'s /login/callback',
        );
        const counters = await providerCounters();
        assert.equal(counters.token?.authorization_code, 1, `latchkey exchanged the code once: ${JSON.stringify(counters)}`);

        // spa-js: handleRedirectCallback sees its connect transaction and completes it.
        await callApp(page, 'init');
        const result = await callApp(page, 'handleCallback');
        assert.equal(result.response_type, 'connect_code', JSON.stringify(result));
        assert.equal(result.connection, CONNECTION);
        assert.equal(result.access_type, 'offline');
        assert.deepEqual(result.appState, { returnTo: '/settings' });
        assert.ok(result.id, 'the connected account has an ID');
        assert.ok(Array.isArray(result.scopes) && result.scopes.includes('openid'), JSON.stringify(result.scopes));
        const complete = rec.requests.find((r) => r.method === 'POST' && new URL(r.url).pathname === '/me/v1/connected-accounts/complete');
        assert.equal(complete?.status, 201, 'complete answered 201');

        const listed = await callApp(page, 'meFetch', 'GET', '/connected-accounts/accounts', 'read:me:connected_accounts');
        assert.equal(listed.status, 200, JSON.stringify(listed));
        assert.equal(listed.body.accounts.length, 1, JSON.stringify(listed.body));
        const [account] = listed.body.accounts;
        assert.equal(account.id, result.id);
        assert.equal(account.connection, CONNECTION);
        assert.equal(account.access_type, 'offline');

        const gone = await callApp(page, 'meFetch', 'DELETE', `/connected-accounts/accounts/${encodeURIComponent(account.id)}`, 'delete:me:connected_accounts');
        assert.equal(gone.status, 204, JSON.stringify(gone));
        const after = await callApp(page, 'meFetch', 'GET', '/connected-accounts/accounts', 'read:me:connected_accounts');
        assert.equal(after.status, 200, JSON.stringify(after));
        assert.deepEqual(after.body.accounts, [], 'the account is gone');
        const again = await callApp(page, 'meFetch', 'DELETE', `/connected-accounts/accounts/${encodeURIComponent(account.id)}`, 'delete:me:connected_accounts');
        assert.equal(again.status, 404, `deleting it again: ${JSON.stringify(again)}`);
        // Its refresh token was revoked at the provider.
        assert.ok((await providerCounters()).requests?.revocation >= 1, 'a revocation request reached the provider');
      },
    );
  } finally {
    await rec.context.close();
  }
});
