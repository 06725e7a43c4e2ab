// DPoP with the official @auth0/auth0-spa-js (useDpop: true) in Debian's
// Chromium against a latchkey tenant that requires DPoP nonces: spa-js logs
// in, its tokens come back bound to the browser's key (token_type DPoP,
// cnf.jkt), it retries with the server's nonce where asked (use_dpop_nonce
// and DPoP-Nonce, at the token endpoint and at the My Account API), and its
// own My Account client (client.myAccount) works with the bound token —
// both with silent authentication and with refresh tokens.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { callApp, loginWithRedirect, openApp } from '../lib/flows.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, e2eTenant, MY_ACCOUNT_SCOPES, SPA_CLIENT_ID, toYaml } from '../lib/tenant.mjs';
import { decodeJwt, explainFailure } from '../lib/util.mjs';

const TEST_MS = 180_000;
const LOG_TAIL = 30_000;
const SCOPE = ['openid', 'profile', 'email', 'offline_access', ...MY_ACCOUNT_SCOPES].join(' ');

let app;
let server;
let browser;

before(async () => {
  app = await startApp();
  server = await startLatchkey({
    tenantYaml: (port) => toYaml({ ...e2eTenant({ port, appOrigin: app.origin }), dpop: { require_nonce: true } }),
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await app?.stop();
});

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
        ['page fetch log', async () => JSON.stringify((await callApp(page, 'fetchLog')).slice(-20), null, 2)],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      () => fn({ page, rec }),
    );
  } finally {
    await rec.context.close();
  }
}

const header = (entry, name) =>
  Object.entries(entry.headers || {}).find(([k]) => k.toLowerCase() === name)?.[1];

for (const refresh of [false, true]) {
  const mode = refresh ? 'refresh tokens' : 'silent authentication';
  test(`spa-js useDpop (${mode}): bound tokens, nonces, client.myAccount`, { timeout: TEST_MS }, () =>
    inBrowser(`DPoP (${mode})`, async ({ page, rec }) => {
      await openApp(page, {
        app,
        server,
        clientId: SPA_CLIENT_ID,
        audience: `${server.origin}/me/`,
        refresh,
        scope: SCOPE,
        dpop: true,
      });
      await loginWithRedirect(page, { app, server, user: ALICE });

      // The code exchange: the first proof had no nonce, the retry had one.
      const exchanges = rec.requests.filter((r) => r.method === 'POST' && new URL(r.url).pathname === '/oauth/token');
      assert.ok(exchanges.length >= 2, `a use_dpop_nonce answer and a retry: ${exchanges.map((r) => r.status).join(', ')}`);
      assert.equal(exchanges[0].status, 400, 'the first exchange is asked for a nonce');
      assert.equal(exchanges.at(-1).status, 200, 'the retry succeeds');

      const token = await callApp(page, 'getToken');
      const payload = decodeJwt(token).payload;
      assert.ok(payload.cnf?.jkt, `the access token is bound: ${JSON.stringify(payload)}`);

      const since = (await callApp(page, 'fetchLog')).length;
      const methods = await callApp(page, 'myAccountGetAuthenticationMethods');
      assert.ok(Array.isArray(methods), `a list of methods: ${JSON.stringify(methods)}`);
      const calls = (await callApp(page, 'fetchLog', since)).filter((e) => new URL(e.url).pathname.startsWith('/me/v1/'));
      const asked = calls.find((e) => e.status === 401);
      assert.ok(asked, `the API asked for a nonce first: ${JSON.stringify(calls, null, 2)}`);
      assert.match(asked.responseHeaders?.['www-authenticate'] || '', /error="use_dpop_nonce"/);
      assert.ok(asked.responseHeaders?.['dpop-nonce'], 'with a DPoP-Nonce header spa-js can read (CORS)');
      const ok = calls.find((e) => e.status === 200);
      assert.ok(ok, `a successful My Account call: ${JSON.stringify(calls, null, 2)}`);
      assert.match(header(ok, 'authorization') || '', /^DPoP /, 'the DPoP scheme');
      assert.ok(header(ok, 'dpop'), 'with a proof');
      assert.equal(decodeJwt(header(ok, 'dpop')).payload.ath !== undefined, true, 'the proof carries ath');
    }),
  );
}
