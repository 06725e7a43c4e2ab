// Passwordless login on the hosted page in a real browser: the spa-js app
// sends the browser to latchkey's login page, whose tenant has an `email`
// (passwordless) connection for the app beside its database connection; the
// user asks for a code by email, the code is read from the mail that arrives
// at the test's SMTP server (lib/mail.mjs), a wrong code is told beside its
// field, and the right one brings the browser back to the app logged in, a
// user of the `email` connection made at this first login.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { callApp, openApp, startNavigatingCall } from '../lib/flows.mjs';
import { startMailServer } from '../lib/mail.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { e2eTenant, SPA_CLIENT_ID, toYaml } from '../lib/tenant.mjs';
import { explainFailure, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 120_000;
const LOG_TAIL = 30_000;

let app;
let mail;
let server;
let browser;

before(async () => {
  app = await startApp();
  mail = await startMailServer();
  server = await startLatchkey({
    env: mail.env,
    tenantYaml: (port) => {
      const tenant = e2eTenant({ port, appOrigin: app.origin });
      tenant.connections = [
        ...tenant.connections,
        { name: 'email', strategy: 'email', enabled_clients: [SPA_CLIENT_ID] },
      ];
      tenant.email_provider = mail.provider;
      return toYaml(tenant);
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await mail?.stop();
  await app?.stop();
});

/** The six-digit code of a mail's text. */
function codeOf(message) {
  const code = message.text.match(/\b\d{6}\b/)?.[0];
  assert.ok(code, `a six-digit code in the mail: ${message.text}`);
  return code;
}

test('spa-js → hosted page → a code by email → logged in', { timeout: TEST_MS }, async () => {
  const rec = await newRecordingContext(browser);
  const page = await rec.context.newPage();
  try {
    await explainFailure(
      'passwordless email',
      [
        ['requests', () => rec.describeRequests()],
        ['console', () => rec.describeConsole()],
        ['mail received', () => mail.describe()],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      async () => {
        const email = 'pat@example.com';
        await openApp(page, { app, server, clientId: SPA_CLIENT_ID, audience: `${server.issuer}me/` });
        await startNavigatingCall(page, 'login');
        await page.waitForURL((u) => u.origin === server.origin, { timeout: WAIT_MS });

        // Beside the password form: the address field, found by its label.
        const address = page.getByLabel('Email address').and(page.locator('input[name="email"]'));
        await address.waitFor({ state: 'visible', timeout: WAIT_MS });
        await address.fill(email);
        await page.getByRole('button', { name: 'Email me a code' }).click();

        const code = page.getByLabel('Enter the code');
        await code.waitFor({ state: 'visible', timeout: WAIT_MS });
        assert.equal(await code.getAttribute('autocomplete'), 'one-time-code');
        assert.equal(await page.locator('#passwordless-to').innerText(), email);
        const right = codeOf(await mail.next(email));

        // A wrong code: told beside the field, the field marked invalid.
        await code.fill(right === '000000' ? '000001' : '000000');
        await code.press('Enter');
        await page.locator('#code-error').waitFor({ state: 'visible', timeout: WAIT_MS });
        assert.equal(await page.locator('#code-error').innerText(), 'The code you entered is invalid');
        assert.equal(await page.getByLabel('Enter the code').getAttribute('aria-invalid'), 'true');
        assert.equal(await page.getByLabel('Enter the code').getAttribute('aria-describedby'), 'code-error');

        // The right one, from the keyboard: back at the app with a code.
        await page.getByLabel('Enter the code').fill(right);
        await Promise.all([
          page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
          page.getByLabel('Enter the code').press('Enter'),
        ]);
        const cb = new URL(page.url());
        assert.ok(cb.searchParams.get('code'), `a code at /cb: ${cb.search}`);
        await callApp(page, 'init');
        await callApp(page, 'handleCallback');
        const claims = await callApp(page, 'getIdTokenClaims');
        assert.match(claims.sub, /^email\|/, JSON.stringify(claims));
        assert.equal(claims.email, email);
        assert.equal(claims.email_verified, true);
        assert.deepEqual(claims.amr, ['otp']);
        assert.equal(mail.received(email).length, 1, 'one code mailed');
      },
    );
  } finally {
    await rec.context.close();
  }
});
