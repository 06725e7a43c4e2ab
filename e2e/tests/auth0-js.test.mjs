// auth0-js (Auth0's browser SDK for the implicit flow, unmodified) in
// Chromium against a real latchkey: WebAuth.authorize with
// responseType "token id_token" to the hosted login page, back to the app
// with the tokens in the fragment, and parseHash checking them as auth0-js
// does (state, nonce, the ID token's signature against the JWKS, issuer,
// audience, at_hash); the access token then works at /userinfo.
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
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, e2eTenant, toYaml } from '../lib/tenant.mjs';
import { explainFailure, freePort, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 120_000;
const LOG_TAIL = 30_000;
const CLIENT_ID = 'auth0-js-app';
const require = createRequire(import.meta.url);
const AUTH0_JS = path.join(path.dirname(require.resolve('auth0-js/package.json')), 'build', 'auth0.min.js');

let server;
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
</script></body></html>`;
}

before(async () => {
  const appPort = await freePort();
  appBase = `http://localhost:${appPort}`;
  server = await startLatchkey({
    tenantYaml: (port) => {
      const tenant = e2eTenant({ port, appOrigin: appBase });
      tenant.clients.push({
        client_id: CLIENT_ID,
        name: 'E2E auth0-js app',
        app_type: 'spa',
        callbacks: [`${appBase}/cb`],
        allowed_origins: [appBase],
        web_origins: [appBase],
        grant_types: ['implicit'],
      });
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
});

test('token id_token: authorize, the hosted login page, parseHash', { timeout: TEST_MS }, async () => {
  const rec = await newRecordingContext(browser);
  const tab = await rec.context.newPage();
  try {
    await explainFailure(
      'auth0-js',
      [
        ['page URL', () => tab.url()],
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      async () => {
        await tab.goto(`${appBase}/`);
        await Promise.all([
          tab.waitForURL((u) => u.origin === server.origin, { timeout: WAIT_MS }),
          tab.evaluate(() => window.webAuth.authorize()),
        ]);
        const q = new URL(tab.url()).searchParams;
        assert.equal(q.get('response_type'), 'token id_token');
        await tab.locator('input[name="username"]').waitFor({ state: 'visible', timeout: WAIT_MS });
        await Promise.all([
          tab.waitForURL((u) => u.origin === appBase && u.pathname === '/cb', { timeout: WAIT_MS }),
          submitCredentials(tab, { username: ALICE.email, password: ALICE.password }),
        ]);
        assert.ok(new URL(tab.url()).hash.includes('access_token='), 'the tokens came in the fragment');
        await tab.waitForFunction(() => window.parsed, null, { timeout: WAIT_MS });
        const { err, result } = await tab.evaluate(() => window.parsed);
        assert.equal(err, null, `parseHash: ${JSON.stringify(err)}`);
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
      },
    );
  } finally {
    await rec.context.close();
  }
});
