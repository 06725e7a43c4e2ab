// express-openid-connect (Auth0's Express middleware, unmodified, in its
// default configuration: response_type=id_token, response_mode=form_post,
// scope "openid profile email", every route requiring a login) against a
// real latchkey, in Chromium: the app sends the browser to /authorize, the
// user signs in on the hosted login page, latchkey posts the ID token to the
// app's /callback, the app checks it (signature, issuer, audience, nonce) and
// opens its session; /logout ends it.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';

import express from 'express';
import { auth } from 'express-openid-connect';

import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { submitCredentials } from '../lib/flows.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, e2eTenant, toYaml } from '../lib/tenant.mjs';
import { explainFailure, freePort, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 120_000;
const LOG_TAIL = 30_000;
const CLIENT_ID = 'express-app';

let server;
let browser;
let appBase;
let appServer;
const appRequests = [];

before(async () => {
  const appPort = await freePort();
  appBase = `http://localhost:${appPort}`;
  server = await startLatchkey({
    tenantYaml: (port) => {
      const tenant = e2eTenant({ port, appOrigin: appBase });
      // A regular web app with the implicit grant type: the middleware's
      // default flow needs nothing else (no secret is sent for id_token).
      tenant.clients.push({
        client_id: CLIENT_ID,
        name: 'E2E Express app',
        app_type: 'regular_web',
        client_secret: crypto.randomBytes(24).toString('base64url'),
        callbacks: [`${appBase}/callback`],
        allowed_logout_urls: [`${appBase}/`],
        grant_types: ['implicit'],
      });
      return toYaml(tenant);
    },
  });

  const app = express();
  app.use((req, _res, next) => {
    appRequests.push(`${req.method} ${req.originalUrl}`);
    next();
  });
  app.use(
    auth({
      issuerBaseURL: server.issuer,
      baseURL: appBase,
      clientID: CLIENT_ID,
      secret: crypto.randomBytes(32).toString('hex'),
    }),
  );
  app.get('/', (req, res) => {
    res.type('text/plain').send(`Signed in as ${req.oidc.user.email} (${req.oidc.user.sub})`);
  });
  app.get('/claims', (req, res) => {
    res.json(req.oidc.idTokenClaims);
  });
  await new Promise((resolve, reject) => {
    appServer = app.listen(appPort, '127.0.0.1', resolve);
    appServer.on('error', reject);
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (appServer ? appServer.close(resolve) : resolve()));
  await server?.stop();
});

test('default configuration: id_token + form_post login, then logout', { timeout: TEST_MS }, async () => {
  const rec = await newRecordingContext(browser);
  const page = await rec.context.newPage();
  try {
    await explainFailure(
      'express-openid-connect',
      [
        ['page URL', () => page.url()],
        ['page text', async () => (await page.locator('body').innerText({ timeout: 2_000 })).slice(0, 3_000)],
        ['browser requests', () => rec.describeRequests()],
        ['app requests', () => appRequests.join('\n')],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      async () => {
        // Every route requires a login: to latchkey's hosted page.
        await page.goto(`${appBase}/`);
        await page.waitForURL((u) => u.origin === server.origin, { timeout: WAIT_MS });
        await page.locator('input[name="username"]').waitFor({ state: 'visible', timeout: WAIT_MS });

        const authorize = rec.requests.find((r) => new URL(r.url).pathname === '/authorize');
        assert.ok(authorize, 'the browser went to /authorize');
        const q = new URL(authorize.url).searchParams;
        assert.equal(q.get('response_type'), 'id_token', 'the middleware asks for an ID token');
        assert.equal(q.get('response_mode'), 'form_post');
        assert.ok(q.get('nonce'), 'with a nonce');

        await Promise.all([
          page.waitForURL((u) => u.origin === appBase && u.pathname === '/', { timeout: WAIT_MS }),
          submitCredentials(page, { username: ALICE.email, password: ALICE.password }),
        ]);
        const callback = rec.requests.find((r) => r.method === 'POST' && r.url === `${appBase}/callback`);
        assert.ok(callback, 'latchkey posted the answer to the app');
        const posted = new URLSearchParams(callback.postData || '');
        assert.ok(posted.get('id_token'), 'an ID token in the posted form');
        assert.equal(posted.get('access_token'), null, 'no access token for id_token');
        assert.match(await page.locator('body').innerText(), new RegExp(`Signed in as ${ALICE.email}`));

        const claims = await (await page.goto(`${appBase}/claims`)).json();
        assert.equal(claims.iss, server.issuer);
        assert.equal(claims.aud, CLIENT_ID);
        assert.equal(claims.nonce, q.get('nonce'));
        assert.equal(claims.email, ALICE.email);

        // Logout ends the app's session (the middleware's default leaves
        // latchkey's: a visit afterwards goes back through /authorize, where
        // single sign-on answers at once).
        const out = await rec.context.request.get(`${appBase}/logout`, { maxRedirects: 0 });
        assert.equal(out.status(), 302);
        assert.equal(new URL(out.headers().location).href, `${appBase}/`);
        const cookies = await rec.context.cookies(appBase);
        assert.ok(!cookies.some((c) => c.name === 'appSession'), 'the app session cookie is gone');
        const res = await rec.context.request.get(`${appBase}/claims`, { maxRedirects: 0 });
        assert.equal(res.status(), 302, 'signed out of the app');
        assert.ok(res.headers().location.startsWith(`${server.issuer}authorize?`), res.headers().location);
        // Back through latchkey's session: signed in again, a new nonce.
        await page.goto(`${appBase}/claims`);
        await page.waitForURL(`${appBase}/claims`, { timeout: WAIT_MS });
        const again = JSON.parse(await page.locator('body').innerText());
        assert.equal(again.sub, claims.sub);
        assert.notEqual(again.nonce, claims.nonce);
      },
    );
  } finally {
    await rec.context.close();
  }
});
