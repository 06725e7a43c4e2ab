// The hosted login page in the user's language, in Debian's Chromium with the
// official @auth0/auth0-spa-js app:
//
// A. The app asks for French (`ui_locales: 'fr'` in spa-js's
//    authorizationParams): the page is French (`<html lang="fr">`), a wrong
//    password is answered in French on the same page, and Alice logs in
//    through it back to the app.
// B. No `ui_locales`; the browser's own language is French (Playwright's
//    `locale`, sent as Accept-Language): the page is French too, and the
//    login goes through.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { callApp, openApp, startNavigatingCall, submitCredentials } from '../lib/flows.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, e2eTenantYaml, SPA_CLIENT_ID } from '../lib/tenant.mjs';
import { decodeJwt, explainFailure, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 120_000;
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

/** A fresh browser context (with Playwright `options`) and page, diagnostics printed if `fn` throws. */
async function inBrowser(name, options, fn) {
  const rec = await newRecordingContext(browser, options);
  const page = await rec.context.newPage();
  try {
    return await explainFailure(
      name,
      [
        ['page URL', () => page.url()],
        ['page text', async () => (await page.locator('body').innerText({ timeout: 2_000 })).slice(0, 3_000)],
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      () => fn({ page, rec }),
    );
  } finally {
    await rec.context.close();
  }
}

/** From the app: loginWithRedirect with `params`, until the hosted form shows. */
async function toLoginPage(page, params) {
  await openApp(page, { app, server, clientId: SPA_CLIENT_ID, audience: `${server.issuer}me/` });
  await startNavigatingCall(page, 'login', params);
  await page.waitForURL((u) => u.origin === server.origin, { timeout: WAIT_MS });
  await page.locator('input[name="username"]').waitFor({ state: 'visible', timeout: WAIT_MS });
}

/** The hosted page is the French one. */
async function assertFrench(page) {
  assert.equal(await page.getAttribute('html', 'lang'), 'fr');
  assert.equal(await page.locator('h1').innerText(), 'Se connecter à latchkey e2e');
  assert.equal(await page.locator('label[for="password"]').innerText(), 'Mot de passe');
  assert.equal(await page.locator('form[action="/login"] button[type="submit"]').innerText(), 'Continuer');
}

/** Submits Alice's password and follows the redirect to the app, whose callback exchanges the code. */
async function logInAsAlice(page) {
  await Promise.all([
    page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
    submitCredentials(page, { username: ALICE.email, password: ALICE.password }),
  ]);
  const cb = new URL(page.url());
  assert.ok(!cb.searchParams.has('error'), `authorization error: ${cb.searchParams.get('error_description')}`);
  await callApp(page, 'init');
  await callApp(page, 'handleCallback');
  const user = await callApp(page, 'getUser');
  assert.equal(user?.email, ALICE.email);
  const token = await callApp(page, 'getToken');
  assert.equal(decodeJwt(token).payload.iss, server.issuer);
}

test('A: ui_locales=fr from spa-js: the page, a wrong password, then the login', { timeout: TEST_MS }, () =>
  inBrowser('A (ui_locales)', {}, async ({ page }) => {
    await toLoginPage(page, { ui_locales: 'fr' });
    await assertFrench(page);

    await Promise.all([
      page.waitForLoadState('load'),
      submitCredentials(page, { username: ALICE.email, password: 'not-her-password' }),
    ]);
    await page.locator('#login-error').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await page.locator('#login-error').innerText(), 'Adresse e-mail ou mot de passe incorrect.');
    await assertFrench(page);
    // The error is tied to the fields, in French as in English.
    assert.equal(await page.getAttribute('#password', 'aria-describedby'), 'login-error');

    await logInAsAlice(page);
  }),
);

test('B: a French browser (Accept-Language) gets the French page and logs in', { timeout: TEST_MS }, () =>
  inBrowser('B (Accept-Language)', { locale: 'fr-FR' }, async ({ page, rec }) => {
    await toLoginPage(page, {});
    const authorize = rec.requests.find((r) => new URL(r.url).pathname === '/authorize');
    assert.ok(authorize, 'the browser went to /authorize');
    assert.ok(!new URL(authorize.url).searchParams.has('ui_locales'), 'no ui_locales was sent');
    const accept = Object.entries(authorize.headers).find(([k]) => k.toLowerCase() === 'accept-language')?.[1];
    assert.match(accept || '', /^fr-FR/);
    await assertFrench(page);
    await logInAsAlice(page);
  }),
);
