// Accounts people make and recover themselves, against a real latchkey whose
// tenant mails through a real SMTP server in the test (lib/mail.mjs), with
// the database connection requiring a verified email:
//
// 1. The mail itself: a sign-up at /dbconnections/signup (Auth0's
//    Authentication API, as auth0-js posts it) is answered, and its
//    verification mail arrives over SMTP, addressed, parsed, with the link to
//    {issuer}u/email-verification; waiting for a mail that never comes fails
//    loudly.
// 2. "Sign up" on the hosted page (spa-js as the app): the page asks to
//    verify first, the right password is refused until then, the mailed link
//    opened in the browser says "Email verified" (and "already been used" the
//    second time), then a login whose ID token says `email_verified: true`.
// 3. `screen_hint=signup` through spa-js's authorizationParams, at 320 px
//    wide and from the keyboard alone: a weak password refused on the page
//    (the rule in an alert, the address kept, the focus on the password),
//    then signed up and mailed; no console errors.
// 4. "Forgot password?", the mailed link, a weak password refused visibly, a
//    new one set (the reset page at 320 px, from the keyboard), the link
//    refused the second time; the old password refused
//    and the new one logging in; a browser logged in before the reset finds
//    its refresh token refused (`invalid_grant`) and its session over
//    (silent authentication: `login_required`).
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { callApp, goToHostedLogin, openApp, startNavigatingCall, submitCredentials, tryApp } from '../lib/flows.mjs';
import { MAIL_FROM, startMailServer } from '../lib/mail.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { BOB, e2eTenant, SPA_CLIENT_ID, toYaml } from '../lib/tenant.mjs';
import { decodeJwt, explainFailure, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 120_000;
const LOG_TAIL = 30_000;
const CONNECTION = 'Username-Password-Authentication';

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
        {
          name: CONNECTION,
          require_email_verification: true,
          // Longer than the default and three character types, so that a
          // weak password can pass the form's own `minlength` and still be
          // refused by the policy, on the page.
          password_policy: { min_length: 10, character_types: ['lowercase', 'uppercase', 'number'] },
        },
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

/** Runs `fn`, printing the server's output and the mail received if it throws. */
const explained = (name, fn, more = []) =>
  explainFailure(
    name,
    [...more, ['mail received', () => mail.describe()], ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)]],
    fn,
  );

/** POSTs JSON to the server, as auth0-js does; the status and the body (JSON or text). */
async function postJson(path, body) {
  const res = await fetch(`${server.origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

test('1: a sign-up at /dbconnections/signup mails its verification link over SMTP', { timeout: TEST_MS }, () =>
  explained('1 (mail)', async () => {
    const email = 'mail-check@example.com';
    const signup = await postJson('/dbconnections/signup', {
      client_id: SPA_CLIENT_ID,
      connection: CONNECTION,
      email,
      password: 'Mail-check-2-ok',
    });
    assert.equal(signup.status, 200, JSON.stringify(signup.body));
    assert.equal(signup.body.email, email);
    assert.equal(signup.body.email_verified, false);

    const m = await mail.next(email);
    assert.deepEqual(m.envelope.to, [email], 'one recipient in the envelope');
    assert.deepEqual(m.to, [email], 'the To header');
    assert.deepEqual(m.from, MAIL_FROM, 'the From header: the tenant\'s sender');
    assert.equal(m.envelope.from, MAIL_FROM.address);
    assert.equal(m.user, 'latchkey', 'latchkey authenticated with the relay');
    assert.ok(m.subject.length > 0, 'a subject');
    const link = mail.link(m, '/u/email-verification');
    assert.equal(`${link.origin}/`, server.issuer, 'the link is on the tenant the mail came from');
    assert.match(link.searchParams.get('ticket'), /^[A-Za-z0-9_-]{40,}$/, 'a ticket of 256 bits or so');
    assert.ok(m.html.includes(link.searchParams.get('ticket')), 'the HTML part carries the same link');
    assert.equal(mail.received(email).length, 1, 'one mail for one sign-up');

    await assert.rejects(mail.next(email, { timeoutMs: 200 }), (err) => {
      assert.match(err.message, /no mail to mail-check@example\.com within 200 ms/);
      assert.match(err.message, /1 message\(s\)/, 'the failure lists what did arrive');
      return true;
    });
  }),
);

// ---------------------------------------------------------------------------
// In the browser
// ---------------------------------------------------------------------------

/**
 * Console lines that are errors (console.error or an uncaught exception).
 * Chromium's own "Failed to load resource: the server responded with a status
 * of …" lines are left out: it writes one for every page answered 4xx (the
 * refusals these tests ask for: a used link's 400, an unverified login's 403)
 * and for the favicon the hosted pages do not have; the links' statuses are
 * asserted where they are followed.
 */
const consoleErrors = (rec) =>
  rec.consoleLines.filter(
    (l) => /^\[(error|pageerror)\]/.test(l) && !/^\[error\] Failed to load resource: the server responded with a status of 4\d\d /.test(l),
  );

/**
 * Runs `fn` with a way to open browser contexts (each its own cookies and
 * storage: `open(options)` → {page, rec}), closing them all at the end and
 * printing their requests and console if `fn` throws.
 */
async function inBrowser(name, fn) {
  const opened = [];
  const open = async (options = {}) => {
    const rec = await newRecordingContext(browser, options);
    const page = await rec.context.newPage();
    opened.push({ rec, page });
    return { rec, page };
  };
  const perContext = () =>
    opened
      .map(({ rec, page }, i) =>
        [
          `--- context ${i + 1}: ${page.url()}`,
          `requests:\n${rec.describeRequests()}`,
          `console:\n${rec.describeConsole()}`,
        ].join('\n'),
      )
      .join('\n');
  const pageText = async () => {
    const last = opened.at(-1);
    return last ? (await last.page.locator('body').innerText({ timeout: 2_000 })).slice(0, 3_000) : '';
  };
  try {
    return await explained(name, () => fn(open), [
      ['browser contexts', perContext],
      ['last page text', pageText],
      ['app server requests', () => app.requests.join('\n')],
    ]);
  } finally {
    for (const { rec } of opened) await rec.context.close();
  }
}

/** The spa-js app, with refresh tokens kept in localStorage. */
const openSpa = (page, opts = {}) =>
  openApp(page, {
    app,
    server,
    clientId: SPA_CLIENT_ID,
    audience: `${server.issuer}me/`,
    refresh: true,
    cache: 'localstorage',
    ...opts,
  });

/** The hosted page's notice (heading and message) once one is shown. */
async function notice(page) {
  await page.locator('#notice').waitFor({ state: 'visible', timeout: WAIT_MS });
  return {
    heading: (await page.locator('h1').innerText()).trim(),
    message: (await page.locator('#notice').innerText()).trim(),
  };
}

/** Submits the hosted login form and comes back to the app's /cb with spa-js's tokens; the ID token's claims. */
async function logInToApp(page, user) {
  await Promise.all([
    page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
    submitCredentials(page, user),
  ]);
  const cb = new URL(page.url());
  assert.ok(cb.searchParams.get('code'), `a code at /cb: ${cb.search}`);
  await callApp(page, 'init');
  await callApp(page, 'handleCallback');
  return callApp(page, 'getIdTokenClaims');
}

test('2: "Sign up" on the hosted page, verify first, the mailed link, then log in verified', { timeout: TEST_MS }, () =>
  inBrowser('2 (sign-up link)', async (open) => {
    const user = { username: 'carol@example.com', password: 'Carol-signs-up-1' };
    const { page, rec } = await open();
    await openSpa(page);
    await goToHostedLogin(page, { server });
    await Promise.all([
      page.waitForURL((u) => u.origin === server.origin && u.pathname === '/login/signup', { timeout: WAIT_MS }),
      page.click('#signup-link'),
    ]);
    await page.fill('#email', user.username);
    await page.fill('#password', user.password);
    await page.click('button[type="submit"]');
    assert.deepEqual(await notice(page), {
      heading: 'Verify your email',
      message: "We've sent you an email with a link to verify your address. Follow it, then log in.",
    });

    // Not yet: the right password of an unverified user is refused, with an offer to mail the link again.
    await openSpa(page);
    await goToHostedLogin(page, { server });
    await submitCredentials(page, user);
    assert.deepEqual(await notice(page), {
      heading: 'Verify your email',
      message: 'Please verify your email before logging in.',
    });
    assert.equal(await page.locator('button', { hasText: 'Send the verification email again' }).count(), 1);

    const m = await mail.next(user.username);
    const link = mail.link(m, '/u/email-verification');
    assert.equal(`${link.origin}/`, server.issuer);
    assert.equal((await page.goto(link.href)).status(), 200);
    assert.deepEqual(await notice(page), {
      heading: 'Email verified',
      message: 'Your email address was verified. You can now log in.',
    });
    // The link works once.
    assert.equal((await page.goto(link.href)).status(), 400, 'a used link is a 400 page');
    assert.deepEqual(await notice(page), {
      heading: 'This link does not work',
      message: 'This link has already been used.',
    });

    await openSpa(page);
    await goToHostedLogin(page, { server });
    const claims = await logInToApp(page, user);
    assert.equal(claims.email, user.username);
    assert.equal(claims.email_verified, true, 'the ID token says the email is verified');
    const token = await callApp(page, 'getToken');
    assert.equal(decodeJwt(token).payload.sub, claims.sub, 'the app has an access token for the same user');
    assert.equal(mail.received(user.username).length, 1, 'one mail: the sign-up\'s');
    assert.deepEqual(consoleErrors(rec), [], 'no console errors');
  }),
);

test('3: screen_hint=signup through spa-js, at 320 px, keyboard only: a weak password refused on the page, then signed up', { timeout: TEST_MS }, () =>
  inBrowser('3 (screen_hint, keyboard, 320 px)', async (open) => {
    const email = 'dave@example.com';
    const { page, rec } = await open({ viewport: { width: 320, height: 640 } });
    await openSpa(page);
    await startNavigatingCall(page, 'login', { screen_hint: 'signup' });
    await page.waitForURL((u) => u.origin === server.origin, { timeout: WAIT_MS });
    await page.locator('#email').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await page.locator('h1').innerText(), /^Sign up to /, 'the sign-up screen, not the login form');
    const authorize = rec.requests.find((r) => new URL(r.url).pathname === '/authorize');
    assert.equal(new URL(authorize.url).searchParams.get('screen_hint'), 'signup', 'spa-js sent screen_hint');
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 320, 'nothing wider than 320 px');

    const focused = () => page.evaluate(() => document.activeElement && document.activeElement.id);
    assert.equal(await focused(), 'email', 'the address field has the focus');
    await page.keyboard.type(email);
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'password');
    // Long enough for the field's own check, short of the policy's character types.
    await page.keyboard.type('only-lowercase-1');
    await Promise.all([page.waitForURL((u) => u.pathname === '/login/signup', { timeout: WAIT_MS }), page.keyboard.press('Enter')]);
    const error = page.locator('#signup-error');
    await error.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await error.getAttribute('role'), 'alert');
    assert.equal(
      (await error.innerText()).trim(),
      'The password must contain at least one of each: lowercase letters (a–z), uppercase letters (A–Z), numbers (0–9).',
    );
    assert.equal(await page.locator('#password').getAttribute('aria-describedby'), 'signup-error');
    assert.equal(await page.inputValue('#email'), email, 'the address is kept');
    assert.equal(await focused(), 'password', 'the focus is back on the password');
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 320, 'the error fits in 320 px');
    assert.equal(mail.received(email).length, 0, 'no user, no mail');

    await page.keyboard.type('Dave-signs-up-2');
    await page.keyboard.press('Enter');
    assert.deepEqual(await notice(page), {
      heading: 'Verify your email',
      message: "We've sent you an email with a link to verify your address. Follow it, then log in.",
    });
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 320, 'the notice fits in 320 px');
    const m = await mail.next(email);
    mail.link(m, '/u/email-verification');
    assert.deepEqual(consoleErrors(rec), [], 'no console errors');
  }),
);

test('4: "Forgot password?", the mailed link, a weak password refused, a new one set: the old session, refresh token and password are dead', { timeout: TEST_MS }, () =>
  inBrowser('4 (password reset)', async (open) => {
    const newPassword = 'Bob-has-a-new-one-7';

    // Another browser logged in as Bob before the reset, holding a refresh token that works.
    const old = await open();
    await openSpa(old.page);
    await goToHostedLogin(old.page, { server });
    const firstClaims = await logInToApp(old.page, { username: BOB.email, password: BOB.password });
    assert.equal(firstClaims.email, BOB.email);
    await callApp(old.page, 'getToken'); // a refresh-token grant, answered

    const { page, rec } = await open();
    await openSpa(page);
    await goToHostedLogin(page, { server });
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/login/forgot-password', { timeout: WAIT_MS }),
      page.click('#forgot-password'),
    ]);
    await page.fill('#email', BOB.email);
    await page.click('button[type="submit"]');
    assert.deepEqual(await notice(page), {
      heading: 'Check your email',
      message: "We've just sent you an email to reset your password.",
    });

    const m = await mail.next(BOB.email);
    const link = mail.link(m, '/u/reset-password');
    assert.equal(`${link.origin}/`, server.issuer);
    // The reset page at 320 px, from the keyboard alone.
    await page.setViewportSize({ width: 320, height: 640 });
    assert.equal((await page.goto(link.href)).status(), 200);
    assert.equal((await page.locator('h1').innerText()).trim(), 'Change your password');
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 320, 'nothing wider than 320 px');
    const focused = () => page.evaluate(() => document.activeElement && document.activeElement.id);
    assert.equal(await focused(), 'password', 'the new password field has the focus');
    // Long enough for the field's own `minlength`, refused by the policy, visibly.
    await page.keyboard.type('lowercase-only-9');
    await page.keyboard.press('Enter');
    const error = page.locator('#reset-error');
    await error.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(
      (await error.innerText()).trim(),
      'The password must contain at least one of each: lowercase letters (a–z), uppercase letters (A–Z), numbers (0–9).',
    );
    assert.equal(await error.getAttribute('role'), 'alert');
    assert.equal(await page.locator('#password').getAttribute('aria-invalid'), 'true');
    assert.equal(await focused(), 'password', 'the focus is back on the password');
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 320, 'the error fits in 320 px');

    await page.keyboard.type(newPassword);
    await page.keyboard.press('Enter');
    assert.deepEqual(await notice(page), {
      heading: 'Password changed',
      message: 'Your password has been changed. Log in with your new password.',
    });
    assert.deepEqual(consoleErrors(rec), [], 'no console errors');
    await page.setViewportSize({ width: 1280, height: 720 });
    // The link works once.
    assert.equal((await page.goto(link.href)).status(), 400, 'a used link is a 400 page');
    assert.deepEqual(await notice(page), {
      heading: 'Invalid link',
      message: 'This link has already been used.',
    });

    // The old password is refused; the new one logs in.
    await openSpa(page);
    await goToHostedLogin(page, { server });
    await submitCredentials(page, { username: BOB.email, password: BOB.password });
    const refused = page.locator('#login-error');
    await refused.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal((await refused.innerText()).trim(), 'Wrong email or password.');
    const claims = await logInToApp(page, { username: BOB.email, password: newPassword });
    assert.equal(claims.sub, firstClaims.sub, 'the same user');
    await callApp(page, 'getToken');

    // The browser logged in before the reset: its refresh token is refused, and so is its session.
    const renewed = await tryApp(old.page, 'getToken');
    assert.equal(renewed.ok, false, `the old refresh token must be refused: ${JSON.stringify(renewed)}`);
    assert.equal(renewed.error, 'invalid_grant', JSON.stringify(renewed));
    await callApp(old.page, 'init', { useRefreshTokens: false });
    const silent = await tryApp(old.page, 'getToken');
    assert.equal(silent.ok, false, `the old session must be over: ${JSON.stringify(silent)}`);
    assert.equal(silent.error, 'login_required', JSON.stringify(silent));
    assert.equal(mail.received(BOB.email).length, 1, 'one mail: the reset link');
  }),
);
