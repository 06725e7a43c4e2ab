// Passkeys in Debian's Chromium against a real latchkey, with the DevTools
// virtual authenticator (lib/virtual-authenticator.mjs) standing in for the
// user's device:
//
// 1. spa-js (@auth0/auth0-spa-js, unmodified): log in with the password, enroll
//    a passkey through spa-js's My Account client (`client.myAccount`), list it,
//    log out, log in again on the hosted login page with "Sign in with a
//    passkey" (#passkey-login), log out, and once more through the hosted page's
//    passkey autofill (conditional mediation). Failures of the hosted-page part
//    start with "[hosted login page: passkey sign-in]".
// 2. Native passkeys (Auth0's Passkey API) from a plain page (app/native.html):
//    /passkey/register → create() → the webauthn grant at /oauth/token → the My
//    Account API with that token → /passkey/challenge → get() → the grant again
//    (and once more with the same answer: refused).
//
// How spa-js 2.28.3 handles passkeys in client.myAccount
// (node_modules/@auth0/auth0-spa-js/src/myaccount/): enrollmentChallenge({type: 'passkey'})
// POSTs the options as JSON and returns the server's body as parsed JSON plus `id` and
// `location` from the Location header; `authn_params_public_key` is typed
// PasskeyCreationOptions (from @auth0/auth0-auth-js: base64url strings) and is NOT
// converted for navigator.credentials.create(). enrollmentVerify({type: 'passkey',
// location, auth_session, authn_response}) POSTs {auth_session, authn_response} to
// `${location}/verify`, authn_response typed PasskeyCredentialResponse (base64url
// strings). So the WebAuthn ceremony in between is the app's: app/webauthn.js decodes
// the options, calls create() and returns credential.toJSON(), which is sent as it is
// (latchkey accepts the members toJSON() adds beyond the document's schema).
//
// WebAuthn runs on the page's origin: the app's pages use http://localhost:APPPORT
// (listed in the tenant's `passkeys.origins`), the hosted login page the server's
// own origin; the RP ID `localhost` covers both.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext } from '../lib/browser.mjs';
import { callApp, goToHostedLogin, loginWithRedirect, openApp, startNavigatingCall, tryApp } from '../lib/flows.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, e2eTenantYaml, MY_ACCOUNT_SCOPES, SPA_CLIENT_ID } from '../lib/tenant.mjs';
import { audiences, decodeJwt, explainFailure, scopes, WAIT_MS, withTimeout } from '../lib/util.mjs';
import { addVirtualAuthenticator } from '../lib/virtual-authenticator.mjs';

const TEST_MS = 180_000;
const LOG_TAIL = 30_000;
/** How long the hosted login page gets to show its passkey button once the login form is there. */
const BUTTON_MS = 5_000;

const FULL_SCOPE = ['openid', 'profile', 'email', 'offline_access', ...MY_ACCOUNT_SCOPES].join(' ');
const NATIVE_SCOPE = 'openid offline_access read:me:authentication_methods';

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

const myAccountAudience = () => `${server.origin}/me/`;
const apiBase = () => `${server.origin}/me/v1`;
const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const json = (v) => JSON.stringify(v, null, 2);

/**
 * A fresh context and page with a virtual authenticator; diagnostics (the
 * authenticator's credentials and events, the page's WebAuthn ceremonies and
 * fetch log, the browser's requests, the server's output) printed if `fn` throws.
 */
async function inBrowser(name, fn, { pageDiagnostics = [] } = {}) {
  const rec = await newRecordingContext(browser);
  const page = await rec.context.newPage();
  const authenticator = await addVirtualAuthenticator(rec.context, page);
  try {
    return await explainFailure(
      name,
      [
        ['page URL', () => page.url()],
        ['page text', async () => (await page.locator('body').innerText({ timeout: 2_000 })).slice(0, 3_000)],
        ['virtual authenticator', () => authenticator.describe()],
        ...pageDiagnostics.map(([title, get]) => [title, () => get(page)]),
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
        ['app server requests', () => app.requests.join('\n')],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      () => fn({ page, rec, authenticator }),
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

function assertCreationOptions(o, { userName }, what) {
  assert.ok(o && typeof o === 'object', `${what}: creation options are an object: ${json(o)}`);
  assert.equal(typeof o.challenge, 'string', `${what}: challenge is a base64url string`);
  assert.match(o.challenge, /^[A-Za-z0-9_-]{22,}$/, `${what}: challenge is base64url (at least 16 bytes)`);
  assert.equal(o.rp?.id, 'localhost', `${what}: rp.id is the host's name`);
  assert.equal(typeof o.rp?.name, 'string', `${what}: rp.name`);
  assert.match(o.user?.id ?? '', /^[A-Za-z0-9_-]+$/, `${what}: user.id is base64url`);
  assert.equal(o.user?.name, userName, `${what}: user.name`);
  assert.ok(
    Array.isArray(o.pubKeyCredParams) && o.pubKeyCredParams.some((p) => p.type === 'public-key' && p.alg === -7),
    `${what}: pubKeyCredParams offers ES256 (-7): ${json(o.pubKeyCredParams)}`,
  );
  // Discoverable: the later logins (hosted page, /passkey/challenge) offer no credential list.
  assert.equal(o.authenticatorSelection?.residentKey, 'required', `${what}: residentKey "required" (a discoverable credential)`);
}

function assertRegistrationJson(c, what) {
  assert.equal(c.type, 'public-key', `${what}: type`);
  assert.equal(c.id, c.rawId, `${what}: id = rawId (base64url)`);
  assert.equal(typeof c.response?.clientDataJSON, 'string', `${what}: response.clientDataJSON`);
  assert.equal(typeof c.response?.attestationObject, 'string', `${what}: response.attestationObject`);
}

/** The one resident credential the authenticator holds, checked against what the page got. */
async function theCredential(authenticator, { credentialId, userHandle }, what) {
  const creds = await authenticator.credentials();
  assert.equal(creds.length, 1, `${what}: the virtual authenticator holds one credential: ${json(creds)}`);
  const [c] = creds;
  assert.equal(c.credentialId, credentialId, `${what}: the authenticator's credential is the one the page got`);
  assert.equal(c.rpId, 'localhost', `${what}: scoped to RP ID localhost`);
  assert.equal(c.isResidentCredential, true, `${what}: a resident (discoverable) credential`);
  if (userHandle) assert.equal(c.userHandle, userHandle, `${what}: user handle = the options' user.id`);
  return c;
}

function assertPasskeyMethod(m, { keyId }, what) {
  assert.ok(m && typeof m === 'object', `${what}: a method object: ${json(m)}`);
  assert.equal(m.type, 'passkey', `${what}: type`);
  assert.match(m.id ?? '', /^passkey\|\S+$/, `${what}: id is "passkey|…"`);
  assert.notEqual(m.id, 'passkey|new', `${what}: the confirmed method has its own id`);
  assert.equal(m.key_id, keyId, `${what}: key_id is the credential ID (base64url)`);
  assert.equal(typeof m.public_key, 'string', `${what}: public_key`);
  assert.ok(m.usage?.includes('primary'), `${what}: usage includes primary: ${json(m.usage)}`);
  assert.ok(typeof m.created_at === 'string' && !Number.isNaN(Date.parse(m.created_at)), `${what}: created_at is a date-time`);
}

// ---------------------------------------------------------------------------

async function webauthnLog(page) {
  const r = await tryApp(page, 'webauthnLog').catch((e) => ({ ok: false, message: e.message }));
  return r.ok ? json(r.value) : `(unavailable: ${r.message})`;
}

async function fetchLog(page) {
  const r = await tryApp(page, 'fetchLog').catch((e) => ({ ok: false, message: e.message }));
  if (!r.ok) return `(unavailable: ${r.message})`;
  return r.value
    .map((e) => `#${e.seq} ${e.method} ${e.url} -> ${e.error ? `FAILED (${e.error})` : e.status}` +
      (e.body ? `\n    > ${e.body.slice(0, 600)}` : '') +
      (e.responseBody ? `\n    < ${e.responseBody.slice(0, 1_000)}` : ''))
    .join('\n');
}

/** Calls an app function that must succeed; the error names the step and what the server said. */
async function step(page, what, name, ...args) {
  const r = await tryApp(page, name, ...args);
  if (!r?.ok) {
    const extra = ['status', 'type', 'title', 'detail', 'step']
      .filter((k) => r?.[k] !== undefined)
      .map((k) => `${k}=${JSON.stringify(r[k])}`)
      .join(' ');
    throw new Error(`${what}: e2e.${name}() failed: ${r?.error}: ${r?.message}${extra ? ` [${extra}]` : ''}`);
  }
  return r.value;
}

/** Errors of the hosted-login-page half carry this prefix, so that its failure is told apart. */
const HOSTED = '[hosted login page: passkey sign-in]';

async function hosted(what, fn) {
  try {
    return await fn();
  } catch (err) {
    err.message = `${HOSTED} ${what}: ${err.message}`;
    throw err;
  }
}

function assertCallback(page) {
  const cb = new URL(page.url());
  if (cb.searchParams.has('error')) {
    throw new Error(`authorization error at /cb: ${cb.searchParams.get('error')}: ${cb.searchParams.get('error_description')}`);
  }
  assert.ok(cb.searchParams.get('code'), 'the callback carries an authorization code');
}

/** The last hosted-page login was the passkey's: a new assertion, the counter moved, no password posted. */
async function usedThePasskey({ rec, authenticator, credential, signCountBefore, loginPostsBefore, what }) {
  return hosted(`${what}: the login used the passkey`, async () => {
    const after = await theCredential(authenticator, { credentialId: credential.id }, `after ${what}`);
    assert.ok(after.signCount > signCountBefore, `the virtual authenticator signed with the enrolled passkey (signature counter ${signCountBefore} → ${after.signCount}): ${json(authenticator.events)}`);
    const passwordPosts = serverRequests(rec, 'POST', '/login')
      .slice(loginPostsBefore)
      .filter((r) => new URLSearchParams(r.postData || '').has('password'));
    assert.equal(passwordPosts.length, 0, 'no password was posted for this login');
    return after;
  });
}

/** On /cb: spa-js exchanges the code; the user is alice, with her sub. */
async function completesAsAlice(page, firstUser) {
  await callApp(page, 'init');
  await callApp(page, 'handleCallback');
  const user = await callApp(page, 'getUser');
  assert.equal(user?.email, ALICE.email, `getUser() is alice again: ${json(user)}`);
  assert.equal(user?.sub, firstUser.sub, 'the same sub as the password login');
  const token = await callApp(page, 'getToken');
  const { payload } = decodeJwt(token);
  assert.equal(payload.sub, firstUser.sub, "the access token is alice's");
  assert.ok(audiences(payload).includes(myAccountAudience()), `access token aud ${json(payload.aud)}`);
}

test('spa-js: enroll a passkey through client.myAccount, then log in with it on the hosted page', { timeout: TEST_MS }, () =>
  inBrowser(
    'passkey enrollment (My Account) and hosted-page passkey login',
    async ({ page, rec, authenticator }) => {
      // ---- Part 1: My Account enrollment through spa-js (server API: /me/v1) ----
      await openApp(page, {
        app,
        server,
        clientId: SPA_CLIENT_ID,
        audience: myAccountAudience(),
        refresh: true,
        cache: 'memory',
        scope: FULL_SCOPE,
      });
      await loginWithRedirect(page, { app, server, user: ALICE });
      const firstUser = await callApp(page, 'getUser');
      assert.equal(firstUser?.email, ALICE.email, 'logged in with the password as alice');

      const factors = await step(page, 'getFactors', 'myAccountGetFactors');
      assert.ok(factors.some((f) => f.type === 'passkey'), `passkey is among the tenant's factors: ${json(factors)}`);
      const before = await step(page, 'getAuthenticationMethods (before)', 'myAccountGetAuthenticationMethods');
      assert.equal(before.filter((m) => m.type === 'passkey').length, 0, `no passkey yet: ${json(before)}`);

      const ch = await step(page, 'enrollmentChallenge', 'myAccountEnrollmentChallenge', { type: 'passkey' });
      assert.match(
        ch.location ?? '',
        new RegExp(`^${escapeRegExp(apiBase())}/authentication-methods/passkey%7Cnew$`),
        `Location (read by spa-js) is …/authentication-methods/passkey%7Cnew: ${ch.location}`,
      );
      assert.equal(ch.id, 'passkey|new', 'spa-js\'s id = decodeURIComponent(last segment of Location)');
      assert.equal(typeof ch.auth_session, 'string', 'auth_session');
      const options = ch.authn_params_public_key;
      assertCreationOptions(options, { userName: ALICE.email }, 'enrollment options');
      assert.equal(typeof options.challenge, 'string', 'spa-js hands the options over as the server\'s JSON (not converted)');

      const credential = await step(page, 'navigator.credentials.create() with the enrollment options', 'passkeyCreate', options);
      assertRegistrationJson(credential, 'the new credential (toJSON)');
      await theCredential(authenticator, { credentialId: credential.id, userHandle: options.user.id }, 'after create()');

      const method = await step(page, 'enrollmentVerify', 'myAccountEnrollmentVerify', {
        type: 'passkey',
        location: ch.location,
        auth_session: ch.auth_session,
        authn_response: credential,
      });
      assertPasskeyMethod(method, { keyId: credential.id }, 'verify response');

      const listed = await step(page, 'getAuthenticationMethods (after)', 'myAccountGetAuthenticationMethods');
      const passkeys = listed.filter((m) => m.type === 'passkey');
      assert.equal(passkeys.length, 1, `one passkey listed: ${json(listed)}`);
      assertPasskeyMethod(passkeys[0], { keyId: credential.id }, 'listed passkey');
      assert.equal(passkeys[0].id, method.id, 'the listed passkey is the verified one');
      assert.ok(listed.some((m) => m.type === 'password'), `the password is still there: ${json(listed)}`);

      // Log out (server session and spa-js cache), back on the app's /.
      await Promise.all([
        page.waitForURL((u) => u.origin === app.origin && u.pathname === '/', { timeout: WAIT_MS }),
        startNavigatingCall(page, 'logout'),
      ]);
      await callApp(page, 'init');
      assert.equal(await callApp(page, 'isAuthenticated'), false, 'logged out');

      // ---- Part 2: the hosted login page (GET /authorize) signs in with the passkey ----
      // Chromium's virtual authenticator answers a conditional (autofill) request at once, so on a
      // page that starts one the passkey login happens before anything can be clicked. For the
      // button, the page sees a browser without passkey autofill: an init script, on the server's
      // origin only, makes PublicKeyCredential.isConditionalMediationAvailable() resolve false.
      // Part 3 then logs in through the autofill.
      const noAutofill = await page.addInitScript((serverOrigin) => {
        if (location.origin === serverOrigin && window.PublicKeyCredential) {
          PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
        }
      }, server.origin);
      const signCountBefore = (await authenticator.credentials())[0].signCount;
      const assertedBefore = authenticator.events.filter((e) => e.event === 'asserted').length;
      const loginPostsBefore = serverRequests(rec, 'POST', '/login').length;
      await goToHostedLogin(page, { server });

      const button = page.locator('button#passkey-login');
      await hosted('the "Sign in with a passkey" button', async () => {
        try {
          await button.waitFor({ state: 'visible', timeout: BUTTON_MS });
        } catch {
          const html = await page.content().catch(() => '(unreadable)');
          const main = (html.match(/<main\b[\s\S]*?<\/main>/i)?.[0] ?? html).slice(0, 2_000);
          throw new Error(
            `GET /authorize shows no visible <button id="passkey-login"> within ${BUTTON_MS} ms although the tenant ` +
              `enables passkeys (factors include "passkey"): the hosted login page does not offer passkey sign-in ` +
              `(yet?).\n  page: ${page.url()}\n  its <main>:\n${main}`,
          );
        }
        assert.equal((await button.textContent())?.trim(), 'Sign in with a passkey', 'button text');
        assert.equal(await button.getAttribute('type'), 'button', 'a type="button" (not a form submit)');
      });
      await hosted('conditional UI on the username field', async () => {
        const autocomplete = (await page.locator('input[name="username"]').getAttribute('autocomplete')) ?? '';
        assert.ok(
          autocomplete.split(/\s+/).includes('webauthn'),
          `the username input's autocomplete "${autocomplete}" includes the "webauthn" token (passkey autofill)`,
        );
      });
      await hosted('before the click', async () => {
        assert.equal(
          authenticator.events.filter((e) => e.event === 'asserted').length,
          assertedBefore,
          `nothing was signed before the click (no autofill request): ${json(authenticator.events)}`,
        );
        assert.equal(new URL(page.url()).origin, server.origin, 'still on the hosted login page');
      });

      await hosted('clicking #passkey-login returns to the app', async () => {
        await Promise.all([
          page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
          button.click({ timeout: WAIT_MS }),
        ]);
        assertCallback(page);
      });
      await noAutofill.dispose();
      const afterButton = await usedThePasskey({ rec, authenticator, credential, signCountBefore, loginPostsBefore, what: 'clicking #passkey-login' });
      await hosted('spa-js completes the login (button)', () => completesAsAlice(page, firstUser));

      // ---- Part 3: the hosted login page's passkey autofill (conditional mediation) ----
      await Promise.all([
        page.waitForURL((u) => u.origin === app.origin && u.pathname === '/', { timeout: WAIT_MS }),
        startNavigatingCall(page, 'logout'),
      ]);
      await callApp(page, 'init');
      assert.equal(await callApp(page, 'isAuthenticated'), false, 'logged out again');
      const loginPostsBefore2 = serverRequests(rec, 'POST', '/login').length;
      const authorizeBefore = serverRequests(rec, 'GET', '/authorize').length;
      await hosted('passkey autofill: the virtual authenticator answers the page\'s conditional request, back to the app without a click', async () => {
        await Promise.all([
          page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
          startNavigatingCall(page, 'login'),
        ]);
        assert.equal(serverRequests(rec, 'GET', '/authorize').length, authorizeBefore + 1, 'through the hosted login page (GET /authorize)');
        assertCallback(page);
      });
      await usedThePasskey({
        rec,
        authenticator,
        credential,
        signCountBefore: afterButton.signCount,
        loginPostsBefore: loginPostsBefore2,
        what: 'passkey autofill',
      });
      await hosted('spa-js completes the login (autofill)', () => completesAsAlice(page, firstUser));
    },
    {
      pageDiagnostics: [
        ['page WebAuthn ceremonies', webauthnLog],
        ['page fetch() log', fetchLog],
      ],
    },
  ),
);

// ---------------------------------------------------------------------------
// Native passkeys: app/native.html, plain fetch() and WebAuthn.

function describeSteps(steps) {
  return (steps || [])
    .map((s) =>
      s.kind
        ? `[${s.name}] navigator.credentials.${s.kind}() ${s.error ? `FAILED ${s.error}` : 'ok'}\n    options: ${JSON.stringify(s.options).slice(0, 1_500)}` +
          (s.credential ? `\n    credential: ${JSON.stringify(s.credential).slice(0, 1_500)}` : '')
        : `[${s.name}] ${s.method} ${s.url} -> ${s.error ? `FAILED (${s.error})` : s.status}` +
          (s.body ? `\n    > ${JSON.stringify(s.body).slice(0, 1_500)}` : '') +
          (s.response !== null ? `\n    < ${JSON.stringify(s.response).slice(0, 1_500)}` : ''),
    )
    .join('\n');
}

/** The steps of the last native flow, for diagnostics. */
let lastNativeSteps = null;

async function native(page, what, fn, arg) {
  const r = await withTimeout(page.evaluate(([f, a]) => window.native[f](a), [fn, arg]), 45_000, `native.${fn}()`);
  lastNativeSteps = r?.steps ?? null;
  if (!r?.ok) {
    throw new Error(`${what}: failed at step "${r?.failedStep}": ${r?.message}\n  steps:\n${describeSteps(r?.steps)}`);
  }
  return r;
}

function assertTokens(t, { sub, what }) {
  assert.equal(t.token_type, 'Bearer', `${what}: token_type`);
  assert.equal(typeof t.access_token, 'string', `${what}: access_token`);
  const access = decodeJwt(t.access_token).payload;
  assert.equal(access.iss, server.issuer, `${what}: access token iss`);
  assert.ok(audiences(access).includes(myAccountAudience()), `${what}: access token aud ${json(access.aud)} includes ${myAccountAudience()}`);
  assert.ok(scopes(access).includes('read:me:authentication_methods'), `${what}: access token scope "${access.scope}"`);
  assert.equal(access.azp ?? access.client_id, SPA_CLIENT_ID, `${what}: issued to the spa client`);
  assert.equal(typeof t.id_token, 'string', `${what}: id_token (scope openid)`);
  const id = decodeJwt(t.id_token).payload;
  assert.equal(id.iss, server.issuer, `${what}: ID token iss`);
  assert.ok(audiences(id).includes(SPA_CLIENT_ID), `${what}: ID token aud ${json(id.aud)}`);
  assert.equal(id.sub, access.sub, `${what}: ID token and access token name the same user`);
  assert.equal(typeof t.refresh_token, 'string', `${what}: refresh_token (scope offline_access, client allows refresh_token)`);
  if (sub) assert.equal(access.sub, sub, `${what}: sub`);
  return { access, id };
}

test('native passkey sign-up and login', { timeout: TEST_MS }, () =>
  inBrowser(
    'native passkeys',
    async ({ page, authenticator }) => {
      const email = 'dana.native@example.com';
      await page.goto(`${app.origin}/native.html?${new URLSearchParams({ domain: `localhost:${server.port}`, clientId: SPA_CLIENT_ID })}`);
      await page.waitForFunction(() => typeof window.native === 'object', null, { timeout: WAIT_MS });

      // Sign-up: /passkey/register → create() → webauthn grant.
      const signUp = await native(page, 'sign-up', 'signUp', {
        email,
        name: 'Dana Native',
        scope: NATIVE_SCOPE,
        audience: myAccountAudience(),
      });
      const { register, credential, tokens } = signUp.value;
      assert.deepEqual(signUp.steps.map((s) => s.name), ['register', 'create', 'token'], 'the sign-up steps');
      assert.equal(typeof register.auth_session, 'string', '/passkey/register: auth_session');
      assertCreationOptions(register.authn_params_public_key, { userName: email }, '/passkey/register');
      assertRegistrationJson(credential, 'the sign-up credential (toJSON)');
      await theCredential(authenticator, { credentialId: credential.id, userHandle: register.authn_params_public_key.user.id }, 'after create()');
      const first = assertTokens(tokens, { what: 'sign-up tokens' });
      assert.match(first.access.sub, /^auth0\|/, `a new database user: ${first.access.sub}`);

      // The My Account API with that token: one passkey, no password.
      const methods = await native(page, 'GET /me/v1/authentication-methods', 'authenticationMethods', tokens.access_token);
      const list = methods.value.authentication_methods;
      assert.ok(Array.isArray(list), `authentication_methods is an array: ${json(methods.value)}`);
      assert.deepEqual(list.map((m) => m.type), ['passkey'], `exactly one method, a passkey, and no password: ${json(list)}`);
      assertPasskeyMethod(list[0], { keyId: credential.id }, 'the signed-up passkey');

      // Login: /passkey/challenge → get() (discoverable: no credential list) → webauthn grant.
      const signCountBefore = (await authenticator.credentials())[0].signCount;
      const login = await native(page, 'login', 'logIn', { scope: NATIVE_SCOPE, audience: myAccountAudience() });
      assert.deepEqual(login.steps.map((s) => s.name), ['challenge', 'get', 'token'], 'the login steps');
      const req = login.value.challenge.authn_params_public_key;
      assert.equal(typeof login.value.challenge.auth_session, 'string', '/passkey/challenge: auth_session');
      assert.match(req.challenge ?? '', /^[A-Za-z0-9_-]{22,}$/, '/passkey/challenge: challenge is base64url');
      assert.equal(req.rpId, 'localhost', '/passkey/challenge: rpId');
      assert.equal(typeof req.userVerification, 'string', '/passkey/challenge: userVerification');
      assert.equal((req.allowCredentials ?? []).length, 0, `/passkey/challenge: no credential list (discoverable): ${json(req.allowCredentials)}`);
      const assertion = login.value.credential;
      assert.equal(assertion.id, credential.id, 'the authenticator chose the signed-up passkey');
      assert.equal(assertion.response?.userHandle, register.authn_params_public_key.user.id, 'the assertion carries the user handle');
      const again = assertTokens(login.value.tokens, { sub: first.access.sub, what: 'login tokens' });
      assert.equal(again.id.sub, first.id.sub, 'the same sub as at sign-up');
      const after = await theCredential(authenticator, { credentialId: credential.id }, 'after get()');
      assert.ok(after.signCount > signCountBefore, `the signature counter moved (${signCountBefore} → ${after.signCount})`);

      // The answered challenge is single-use: the same token request again is refused.
      const tokenStep = login.steps.find((s) => s.name === 'token');
      const replay = await page.evaluate(async ({ url, body }) => {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: res.status, text: await res.text() };
      }, { url: tokenStep.url, body: tokenStep.body });
      assert.equal(replay.status, 403, `replaying the webauthn grant → 403 (Auth0's status for invalid_grant): ${replay.text}`);
      assert.equal(JSON.parse(replay.text).error, 'invalid_grant', `replay: error invalid_grant: ${replay.text}`);
    },
    {
      pageDiagnostics: [
        ['native flow steps (last flow)', () => describeSteps(lastNativeSteps) || '(none recorded)'],
        ['page WebAuthn ceremonies', async (page) => json(await page.evaluate(() => window.e2eWebAuthn?.log).catch((e) => `(unavailable: ${e.message})`))],
      ],
    },
  ),
);
