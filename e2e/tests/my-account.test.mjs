// The My Account API (/me/v1) through the official Auth0 SPA SDK's own My
// Account client (`client.myAccount` of @auth0/auth0-spa-js, unmodified) in
// Debian's Chromium against a real latchkey: log in on the hosted page, list
// the tenant's factors, enroll TOTP (challenge → code computed here from the
// returned secret → verify), list, rename, get and delete the method; a wrong
// code (400), a scope the token lacks (403), per-call scopes obtained through
// silent authentication, and the CORS preflights and 401s without a browser.
//
// How spa-js 2.28.3 talks to /me/v1 (node_modules/@auth0/auth0-spa-js/src/myaccount/MyAccountApiClient.ts,
// src/fetcher.ts, src/Auth0Client.ts):
// - base `${domainUrl}/me/v1/…` where domainUrl is the `domain` option, kept as is when it has an http(s)
//   scheme (src/utils.ts getDomain), so `http://localhost:PORT` works; audience `${domainUrl}/me/`;
// - each call gets its token from getTokenSilently({authorizationParams: {audience, scope: <the call's
//   scope>}, detailedResponse: true}) with the default cacheMode 'on', the call's scope added to the
//   client's scopes; `Authorization: <token_type> <access_token>` (Bearer unless useDpop: true);
//   `Content-Type: application/json` on POST/PATCH only; no Auth0-Client header;
// - enrollmentChallenge reads the `Location` response header (it must be CORS-exposed), takes
//   decodeURIComponent(last path segment) as the id, and enrollmentVerify POSTs to `${location}/verify`
//   with the options minus `type` and `location`;
// - every response body is parsed as JSON, success or not (only a successful DELETE's body is not read);
//   a non-2xx body becomes a MyAccountApiError {type, status, title, detail, validation_errors}, a body that
//   is not JSON a MyAccountApiError with type "invalid_json" (even on a 2xx).
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md);
// LATCHKEY_E2E_TRACE=1 prints every test's My Account request log.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startApp } from '../lib/app.mjs';
import { launchBrowser, newRecordingContext, recordPreflights } from '../lib/browser.mjs';
import { callApp, loginWithRedirect, openApp, tryApp } from '../lib/flows.mjs';
import { startLatchkey } from '../lib/server.mjs';
import {
  ALICE,
  BOB,
  e2eTenantYaml,
  MY_ACCOUNT_SCOPES,
  READONLY_MY_ACCOUNT_SCOPES,
  READONLY_SPA_CLIENT_ID,
  SPA_CLIENT_ID,
  TENANT_FACTORS,
} from '../lib/tenant.mjs';
import { base32Decode, msLeftInStep, selfTest as totpSelfTest, totp } from '../lib/totp.mjs';
import { audiences, decodeJwt, explainFailure, scopes, sleep, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 180_000;
const LOG_TAIL = 30_000;
const TRACE = process.env.LATCHKEY_E2E_TRACE === '1';

/** Login scopes that cover every My Account call below, so spa-js finds them in its cache. */
const FULL_SCOPE = ['openid', 'profile', 'email', 'offline_access', ...MY_ACCOUNT_SCOPES].join(' ');

let app;
let server;
let browser;

before(async () => {
  totpSelfTest();
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
const isMyAccountUrl = (url) => {
  try {
    const u = new URL(url);
    return u.origin === server.origin && u.pathname.startsWith('/me/');
  } catch {
    return false;
  }
};
const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------
// The page's fetch log (recorded by app/index.html) and its description.

function describeAuthorization(value) {
  const [scheme, token] = String(value).split(' ');
  let claims = '';
  try {
    const { payload } = decodeJwt(token);
    claims = ` (aud=${JSON.stringify(payload.aud)} scope="${payload.scope ?? ''}")`;
  } catch {
    claims = ' (not a JWT)';
  }
  return `${scheme} ${String(token).slice(0, 16)}…${claims}`;
}

function describeFetch(e) {
  const lines = [`#${e.seq} ${e.method} ${e.url} -> ${e.error ? `FAILED (${e.error})` : (e.status ?? '…')}`];
  for (const [k, v] of Object.entries(e.headers || {})) {
    lines.push(`    > ${k}: ${k === 'authorization' ? describeAuthorization(v) : v}`);
  }
  if (e.body != null) lines.push(`    > body: ${String(e.body).replace(/(password=)[^&]*/g, '$1[redacted]').slice(0, 600)}`);
  for (const [k, v] of Object.entries(e.responseHeaders || {})) lines.push(`    < ${k}: ${v}`);
  if (e.responseBody != null) lines.push(`    < body: ${String(e.responseBody).slice(0, 1_000)}`);
  return lines.join('\n');
}

async function pageFetchLog(page) {
  const r = await tryApp(page, 'fetchLog').catch((err) => ({ ok: false, message: err.message }));
  return r.ok ? r.value : [];
}

/** A fresh browser context and page; diagnostics printed if `fn` throws (and with LATCHKEY_E2E_TRACE=1). */
async function inBrowser(name, fn) {
  const rec = await newRecordingContext(browser);
  const page = await rec.context.newPage();
  const pre = await recordPreflights(rec.context, page);
  const describeMyAccountTraffic = async () =>
    [
      '--- page fetch() log (as spa-js built the requests; response headers as JavaScript sees them) ---',
      (await pageFetchLog(page)).map(describeFetch).join('\n') || '(empty)',
      '--- CORS preflights ---',
      pre.describe() || '(none)',
    ].join('\n');
  try {
    return await explainFailure(
      name,
      [
        ['page URL', () => page.url()],
        ['page text', async () => (await page.locator('body').innerText({ timeout: 2_000 })).slice(0, 3_000)],
        ['My Account traffic', describeMyAccountTraffic],
        ['browser requests', () => rec.describeRequests()],
        ['browser console', () => rec.describeConsole()],
        ['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)],
      ],
      () => fn({ page, rec, preflights: pre }),
    );
  } finally {
    if (TRACE) {
      process.stderr.write(`\n===== ${name}: My Account traffic =====\n${await describeMyAccountTraffic()}\n`);
    }
    await rec.context.close();
  }
}

/**
 * Calls `window.e2e[fn](...args)` and returns {result, requests}: the raw
 * {ok, value | error…} result and the page's fetch() entries to /me/ made
 * during the call.
 */
async function myAccountCall(page, fn, ...args) {
  const before = (await pageFetchLog(page)).length;
  const result = await tryApp(page, fn, ...args);
  const requests = (await pageFetchLog(page)).slice(before).filter((e) => isMyAccountUrl(e.url));
  return { result, requests };
}

function failureText(fn, { result, requests }, preflights) {
  const r = result || {};
  let text = `e2e.${fn}() failed: ${r.name || r.error}: ${r.message}`;
  if (r.status !== undefined) {
    text += ` [MyAccountApiError status=${r.status} type=${JSON.stringify(r.type)} title=${JSON.stringify(r.title)} detail=${JSON.stringify(r.detail)}]`;
  }
  if (r.name === 'TypeError') {
    const urls = new Set(requests.map((e) => e.url));
    const related = preflights.preflights.filter((p) => urls.has(p.url));
    text +=
      '\n  The browser could not complete the request (a refused CORS preflight or a network error).' +
      (related.length
        ? `\n  Its preflight: ${related.map((p) => `OPTIONS ${p.url} -> ${p.status ?? '…'}${p.failure ? ` (${p.failure})` : ''}`).join('; ')}`
        : '') +
      (related.some((p) => p.status === 404) ? '\n  (404: the server has no /me/v1 route for this request.)' : '');
  }
  if (requests.length) text += `\n  Requests:\n${requests.map(describeFetch).join('\n')}`;
  return text;
}

/** Like myAccountCall, but the call must succeed; returns {value, requests}. */
async function myAccountOk(page, preflights, fn, ...args) {
  const call = await myAccountCall(page, fn, ...args);
  if (!call.result?.ok) throw new Error(failureText(fn, call, preflights));
  return { value: call.result.value, requests: call.requests };
}

/** Like myAccountCall, but the call must fail with a MyAccountApiError of `status`. */
async function myAccountFails(page, preflights, status, fn, ...args) {
  const call = await myAccountCall(page, fn, ...args);
  const r = call.result;
  assert.ok(r && r.ok === false, `e2e.${fn}() should fail with ${status}, but it succeeded: ${JSON.stringify(r?.value)}`);
  if (r.name === 'TypeError') throw new Error(failureText(fn, call, preflights));
  assert.equal(r.isMyAccountApiError, true, `expected a MyAccountApiError, got ${failureText(fn, call, preflights)}`);
  assert.equal(r.status, status, `MyAccountApiError.status: ${failureText(fn, call, preflights)}`);
  for (const k of ['type', 'title', 'detail']) {
    assert.equal(typeof r[k], 'string', `ErrorResponse.${k} is a string (${failureText(fn, call, preflights)})`);
  }
  assert.notEqual(r.type, 'invalid_json', `the ${status} body must be JSON (${failureText(fn, call, preflights)})`);
  const last = call.requests.at(-1);
  assert.ok(last, `e2e.${fn}() made a request to /me/`);
  assert.equal(last.status, status, `HTTP status of ${last.method} ${last.url}`);
  assert.match(last.responseHeaders?.['content-type'] ?? '', /^application\/json\b/, 'error Content-Type');
  const body = JSON.parse(last.responseBody);
  assert.equal(body.status, status, 'ErrorResponse.status equals the HTTP status');
  return { error: r, requests: call.requests };
}

/** The one request of a call, checked for method and URL; returns it. */
function theRequest(requests, method, url, what) {
  assert.equal(requests.length, 1, `${what}: exactly one request to /me/ (got ${requests.map((e) => `${e.method} ${e.url}`).join(', ') || 'none'})`);
  const [req] = requests;
  assert.equal(req.method, method, `${what}: method`);
  if (url instanceof RegExp) assert.match(req.url, url, `${what}: URL`);
  else assert.equal(req.url, url, `${what}: URL`);
  return req;
}

/** Checks the Authorization header spa-js sent: Bearer, a My Account token of this issuer with `scope`. */
function assertBearer(req, scope, what) {
  const auth = req.headers.authorization;
  assert.ok(auth, `${what}: Authorization header sent`);
  const [scheme, token] = auth.split(' ');
  assert.equal(scheme, 'Bearer', `${what}: Bearer scheme (spa-js uses DPoP only with useDpop: true)`);
  const { payload } = decodeJwt(token);
  assert.ok(audiences(payload).includes(myAccountAudience()), `${what}: token aud ${JSON.stringify(payload.aud)} contains ${myAccountAudience()}`);
  assert.equal(payload.iss, server.issuer, `${what}: token iss`);
  if (scope) assert.ok(scopes(payload).includes(scope), `${what}: token scope "${payload.scope}" includes ${scope}`);
  return payload;
}

function assertRateLimitHeaders(req, what) {
  for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) {
    const v = req.responseHeaders?.[h];
    assert.ok(v !== undefined, `${what}: ${h} readable by the page (sent and listed in Access-Control-Expose-Headers)`);
    assert.match(v, /^\d+$/, `${what}: ${h} is an integer`);
  }
}

/** The current TOTP code, avoiding the last seconds of a 30-second step. */
async function freshTotp(secret) {
  if (msLeftInStep() < 5_000) await sleep(msLeftInStep() + 250);
  return totp(secret);
}

function assertTotpMethod(m, what) {
  assert.ok(m && typeof m === 'object', `${what}: a method object`);
  assert.equal(m.type, 'totp', `${what}: type`);
  assert.match(m.id, /^totp\|\S+$/, `${what}: id is "totp|…"`);
  assert.equal(m.confirmed, true, `${what}: confirmed`);
  assert.deepEqual(m.usage, ['secondary'], `${what}: usage`);
  assert.ok(typeof m.created_at === 'string' && !Number.isNaN(Date.parse(m.created_at)), `${what}: created_at is a date-time (${m.created_at})`);
}

async function loggedIn(page, { clientId = SPA_CLIENT_ID, user = ALICE, refresh = true, scope = FULL_SCOPE } = {}) {
  await openApp(page, {
    app,
    server,
    clientId,
    audience: myAccountAudience(),
    refresh,
    cache: 'memory', // with refresh tokens: spa-js keeps them in its Web Worker
    scope,
  });
  await loginWithRedirect(page, { app, server, user });
  const info = await callApp(page, 'myAccountInfo');
  assert.equal(info.isMyAccountApiClient, true, 'client.myAccount is spa-js\'s MyAccountApiClient');
  assert.equal(info.apiBase, myAccountAudience(), 'spa-js keeps the http:// domain: API base = audience = http://localhost:PORT/me/');
}

// ---------------------------------------------------------------------------

test('the My Account API answers CORS preflights for the app and 401 without a token (no browser)', { timeout: TEST_MS }, () =>
  explainFailure('CORS and 401', [['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)]], async () => {
    const id = encodeURIComponent('totp|dev_AAAAAAAAAAAAAAAA');
    // Exactly the (method, headers) pairs Chromium preflights for spa-js's calls.
    const cases = [
      ['GET', '/factors', 'authorization'],
      ['GET', '/authentication-methods', 'authorization'],
      ['GET', '/authentication-methods?type=totp', 'authorization'],
      ['POST', '/authentication-methods', 'authorization,content-type'],
      ['POST', `/authentication-methods/${id}/verify`, 'authorization,content-type'],
      ['GET', `/authentication-methods/${id}`, 'authorization'],
      ['PATCH', `/authentication-methods/${id}`, 'authorization,content-type'],
      ['DELETE', `/authentication-methods/${id}`, 'authorization'],
    ];
    const problems = [];
    for (const [method, path, headers] of cases) {
      const url = `${apiBase()}${path}`;
      const res = await fetch(url, {
        method: 'OPTIONS',
        headers: { origin: app.origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
        signal: AbortSignal.timeout(WAIT_MS),
      });
      await res.arrayBuffer();
      const h = (n) => res.headers.get(n) ?? '';
      const list = (n) => h(n).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
      const issues = [];
      if (res.status < 200 || res.status > 299) issues.push(`status ${res.status}`);
      if (h('access-control-allow-origin') !== app.origin && h('access-control-allow-origin') !== '*') {
        issues.push(`access-control-allow-origin "${h('access-control-allow-origin')}"`);
      }
      const methods = list('access-control-allow-methods');
      if (!methods.includes(method.toLowerCase()) && !methods.includes('*')) issues.push(`access-control-allow-methods "${h('access-control-allow-methods')}"`);
      const allowed = list('access-control-allow-headers');
      for (const want of headers.split(',')) {
        if (!allowed.includes(want) && !allowed.includes('*')) issues.push(`access-control-allow-headers "${h('access-control-allow-headers')}" lacks ${want}`);
      }
      if (issues.length) problems.push(`OPTIONS ${url} (for ${method} with ${headers}): ${issues.join(', ')}`);
    }
    assert.ok(problems.length === 0, `preflights from ${app.origin} must be allowed:\n${problems.join("\n")}`);

    const evil = await fetch(`${apiBase()}/factors`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      signal: AbortSignal.timeout(WAIT_MS),
    });
    await evil.arrayBuffer();
    assert.ok(
      !['http://evil.example', '*'].includes(evil.headers.get('access-control-allow-origin')),
      'a preflight from an origin no client allows is not granted',
    );

    for (const [what, authorization] of [
      ['no token', undefined],
      ['a token that is not a JWT', 'Bearer not-a-jwt'],
    ]) {
      const res = await fetch(`${apiBase()}/factors`, {
        headers: { origin: app.origin, ...(authorization && { authorization }) },
        signal: AbortSignal.timeout(WAIT_MS),
      });
      const text = await res.text();
      assert.equal(res.status, 401, `GET /me/v1/factors with ${what} → 401 (got ${res.status}: ${text.slice(0, 300)})`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/, `401 with ${what}: Content-Type`);
      const body = JSON.parse(text);
      assert.equal(body.status, 401, `401 with ${what}: ErrorResponse.status`);
      for (const k of ['type', 'title', 'detail']) assert.equal(typeof body[k], 'string', `401 with ${what}: ErrorResponse.${k}`);
      assert.equal(res.headers.get('access-control-allow-origin'), app.origin, `401 with ${what}: readable by the app (Access-Control-Allow-Origin)`);
    }
  }),
);

test('client.myAccount: factors, TOTP enrollment, list, rename, get, delete', { timeout: TEST_MS }, () =>
  inBrowser('TOTP lifecycle', async ({ page, preflights }) => {
    await loggedIn(page, { user: ALICE });
    const base = apiBase();
    const ok = (fn, ...args) => myAccountOk(page, preflights, fn, ...args);

    // Factors enabled on the tenant.
    const factors = await ok('myAccountGetFactors');
    const factorsReq = theRequest(factors.requests, 'GET', `${base}/factors`, 'getFactors');
    assert.equal(factorsReq.status, 200, 'GET /factors → 200');
    const token = assertBearer(factorsReq, 'read:me:factors', 'getFactors');
    for (const s of MY_ACCOUNT_SCOPES) {
      assert.ok(scopes(token).includes(s), `the login token carries ${s} (granted to the SPA): scope "${token.scope}"`);
    }
    assert.equal(factorsReq.headers['auth0-client'], undefined, 'spa-js sends no Auth0-Client header to /me/v1');
    assert.equal(factorsReq.headers['content-type'], undefined, 'no Content-Type on a GET');
    assert.equal(factorsReq.headers.dpop, undefined, 'no DPoP proof without useDpop');
    assertRateLimitHeaders(factorsReq, 'GET /factors');
    assert.ok(Array.isArray(factors.value), `getFactors() resolves to body.factors, an array: ${JSON.stringify(factors.value)}`);
    assert.deepEqual(
      factors.value.map((f) => f.type).sort(),
      [...TENANT_FACTORS].sort(),
      `factors = the tenant's factors: ${JSON.stringify(factors.value)}`,
    );
    assert.deepEqual(factors.value.find((f) => f.type === 'totp').usage, ['secondary'], 'totp usage');

    // Nothing enrolled yet.
    const initial = await ok('myAccountGetAuthenticationMethods');
    theRequest(initial.requests, 'GET', `${base}/authentication-methods`, 'getAuthenticationMethods');
    assert.ok(Array.isArray(initial.value), 'getAuthenticationMethods() resolves to body.authentication_methods, an array');
    assert.equal(initial.value.filter((m) => m.type === 'totp').length, 0, `no TOTP method yet: ${JSON.stringify(initial.value)}`);

    // Enrollment: challenge.
    const challenge = await ok('myAccountEnrollmentChallenge', { type: 'totp' });
    const challengeReq = theRequest(challenge.requests, 'POST', `${base}/authentication-methods`, 'enrollmentChallenge');
    assertBearer(challengeReq, 'create:me:authentication_methods', 'enrollmentChallenge');
    assert.equal(challengeReq.headers['content-type'], 'application/json', 'enrollmentChallenge: Content-Type');
    assert.deepEqual(JSON.parse(challengeReq.body), { type: 'totp' }, 'enrollmentChallenge: body');
    assert.equal(challengeReq.status, 202, 'POST /authentication-methods → 202');
    assertRateLimitHeaders(challengeReq, 'POST /authentication-methods');
    const ch = challenge.value;
    assert.ok(
      challengeReq.responseHeaders.location,
      'the Location header is readable by the page (Access-Control-Expose-Headers must list Location); spa-js derives id and the verify URL from it',
    );
    assert.equal(ch.location, challengeReq.responseHeaders.location, 'spa-js returns the Location header as `location`');
    assert.match(
      ch.location,
      new RegExp(`^${escapeRegExp(base)}/authentication-methods/totp%7C[^/?#]+$`),
      'Location is absolute, under /me/v1/authentication-methods/, with the id percent-encoded (| → %7C)',
    );
    assert.match(ch.id, /^totp\|[^/]+$/, `spa-js's id = decodeURIComponent(last segment of Location): ${ch.id}`);
    const raw = JSON.parse(challengeReq.responseBody);
    assert.equal(raw.id, ch.id, 'the body id equals the id in Location');
    assert.equal(typeof raw.auth_session, 'string', 'auth_session');
    assert.ok(raw.auth_session.length > 0, 'auth_session is not empty');
    assert.equal(typeof raw.manual_input_code, 'string', 'manual_input_code (the base32 secret)');
    const secret = base32Decode(raw.manual_input_code);
    assert.ok(secret.length >= 10, `the TOTP secret has at least 80 bits (${secret.length * 8})`);
    const otpauth = new URL(raw.barcode_uri);
    assert.equal(otpauth.protocol, 'otpauth:', `barcode_uri is an otpauth URI: ${raw.barcode_uri}`);
    assert.equal(otpauth.host, 'totp', 'barcode_uri is otpauth://totp/…');
    assert.equal(
      (otpauth.searchParams.get('secret') || '').replace(/=+$/, '').toUpperCase(),
      raw.manual_input_code.replace(/=+$/, '').toUpperCase(),
      'barcode_uri secret = manual_input_code',
    );
    for (const [k, v] of [['algorithm', 'SHA1'], ['digits', '6'], ['period', '30']]) {
      const got = otpauth.searchParams.get(k);
      if (got !== null) assert.equal(got.toUpperCase(), v, `barcode_uri ${k}`);
    }

    // Enrollment: verify with the current code.
    const code = await freshTotp(secret);
    const verify = await ok('myAccountEnrollmentVerify', {
      type: 'totp',
      location: ch.location,
      auth_session: ch.auth_session,
      otp_code: code,
    });
    const verifyReq = theRequest(verify.requests, 'POST', `${ch.location}/verify`, 'enrollmentVerify');
    assertBearer(verifyReq, 'create:me:authentication_methods', 'enrollmentVerify');
    assert.deepEqual(
      JSON.parse(verifyReq.body),
      { auth_session: ch.auth_session, otp_code: code },
      'enrollmentVerify sends the options minus type and location',
    );
    assert.equal(verifyReq.status, 201, 'POST …/verify → 201');
    const method = verify.value;
    assertTotpMethod(method, 'verify response');
    const verifiedLocation = verifyReq.responseHeaders.location;
    assert.ok(verifiedLocation, 'the verify response\'s Location is readable by the page');
    assert.ok(verifiedLocation.startsWith(`${base}/authentication-methods/`), `verify Location is absolute: ${verifiedLocation}`);
    assert.equal(decodeURIComponent(verifiedLocation.split('/').pop()), method.id, 'verify Location names the method');
    const id = method.id;
    const idUrl = `${base}/authentication-methods/${encodeURIComponent(id)}`;
    assert.ok(idUrl.includes('%7C'), 'the id is percent-encoded in URLs');

    // Listed, confirmed.
    const listed = await ok('myAccountGetAuthenticationMethods');
    theRequest(listed.requests, 'GET', `${base}/authentication-methods`, 'getAuthenticationMethods');
    const mine = listed.value.filter((m) => m.id === id);
    assert.equal(mine.length, 1, `the new method is listed once: ${JSON.stringify(listed.value)}`);
    assertTotpMethod(mine[0], 'listed method');
    assert.equal(listed.value.filter((m) => m.type === 'totp').length, 1, 'one TOTP method');

    // Filtered list (?type=totp).
    const filtered = await ok('myAccountGetAuthenticationMethods', 'totp');
    theRequest(filtered.requests, 'GET', `${base}/authentication-methods?type=totp`, 'getAuthenticationMethods("totp")');
    assert.deepEqual(filtered.value.map((m) => m.id), [id], `?type=totp lists just the TOTP method: ${JSON.stringify(filtered.value)}`);

    // Rename.
    const name = 'E2E authenticator (Chromium)';
    const renamed = await ok('myAccountUpdateAuthenticationMethod', id, { name });
    const patchReq = theRequest(renamed.requests, 'PATCH', idUrl, 'updateAuthenticationMethod');
    assertBearer(patchReq, 'update:me:authentication_methods', 'updateAuthenticationMethod');
    assert.equal(patchReq.headers['content-type'], 'application/json', 'PATCH Content-Type');
    assert.deepEqual(JSON.parse(patchReq.body), { name }, 'PATCH body');
    assert.equal(patchReq.status, 200, 'PATCH → 200');
    assertTotpMethod(renamed.value, 'PATCH response');
    assert.equal(renamed.value.id, id, 'PATCH response id');
    assert.equal(renamed.value.name, name, 'PATCH response name');

    // Get.
    const got = await ok('myAccountGetAuthenticationMethod', id);
    const getReq = theRequest(got.requests, 'GET', idUrl, 'getAuthenticationMethod');
    assertBearer(getReq, 'read:me:authentication_methods', 'getAuthenticationMethod');
    assert.equal(getReq.status, 200, 'GET /authentication-methods/{id} → 200');
    assertTotpMethod(got.value, 'GET response');
    assert.equal(got.value.id, id, 'GET response id');
    assert.equal(got.value.name, name, 'the new name is stored');

    // Delete.
    const deleted = await ok('myAccountDeleteAuthenticationMethod', id);
    const deleteReq = theRequest(deleted.requests, 'DELETE', idUrl, 'deleteAuthenticationMethod');
    assertBearer(deleteReq, 'delete:me:authentication_methods', 'deleteAuthenticationMethod');
    assert.equal(deleteReq.headers['content-type'], undefined, 'no Content-Type on DELETE');
    assert.equal(deleteReq.status, 204, 'DELETE → 204');
    assert.equal(deleteReq.responseBody, '', 'a 204 has no body');
    assert.equal(deleted.value, null, 'deleteAuthenticationMethod() resolves to undefined');

    // Gone.
    const after = await ok('myAccountGetAuthenticationMethods');
    assert.equal(after.value.filter((m) => m.id === id).length, 0, `the deleted method is no longer listed: ${JSON.stringify(after.value)}`);
    assert.equal(after.value.filter((m) => m.type === 'totp').length, 0, 'no TOTP method left');
    await myAccountFails(page, preflights, 404, 'myAccountGetAuthenticationMethod', id);
  }),
);

test('client.myAccount: verify with a wrong TOTP code fails with a 400 ErrorResponse', { timeout: TEST_MS }, () =>
  inBrowser('wrong TOTP code', async ({ page, preflights }) => {
    await loggedIn(page, { user: BOB });
    const { value: ch } = await myAccountOk(page, preflights, 'myAccountEnrollmentChallenge', { type: 'totp' });
    assert.ok(ch.location, 'enrollmentChallenge returned a location (Location exposed)');
    const secret = base32Decode(ch.manual_input_code);
    await freshTotp(secret);
    // A six-digit code that is none of the codes of the surrounding steps.
    const near = new Set([-2, -1, 0, 1, 2].map((offset) => totp(secret, { offset })));
    let n = (Number(totp(secret)) + 500_000) % 1_000_000;
    while (near.has(String(n).padStart(6, '0'))) n = (n + 1) % 1_000_000;
    const wrong = String(n).padStart(6, '0');

    const { error, requests } = await myAccountFails(page, preflights, 400, 'myAccountEnrollmentVerify', {
      type: 'totp',
      location: ch.location,
      auth_session: ch.auth_session,
      otp_code: wrong,
    });
    theRequest(requests, 'POST', `${ch.location}/verify`, 'enrollmentVerify (wrong code)');
    assert.equal(error.error, 'MyAccountApiError', 'spa-js surfaces a MyAccountApiError');
    assert.equal(error.message, error.detail, 'its message is the ErrorResponse detail');

    const { value: methods } = await myAccountOk(page, preflights, 'myAccountGetAuthenticationMethods');
    assert.equal(
      methods.filter((m) => m.type === 'totp' && m.confirmed === true).length,
      0,
      `a wrong code confirms nothing: ${JSON.stringify(methods)}`,
    );
  }),
);

test('client.myAccount: a call whose scope the token lacks fails with 403', { timeout: TEST_MS }, () =>
  inBrowser('missing scope', async ({ page, preflights }) => {
    // The read-only SPA asks for every My Account scope; its grant caps the token to the read scopes.
    await loggedIn(page, { clientId: READONLY_SPA_CLIENT_ID, user: ALICE });
    const factors = await myAccountOk(page, preflights, 'myAccountGetFactors');
    const token = assertBearer(factors.requests[0], 'read:me:factors', 'getFactors (read-only client)');
    assert.deepEqual(
      scopes(token).filter((s) => s.includes(':me:')).sort(),
      [...READONLY_MY_ACCOUNT_SCOPES].sort(),
      `the token carries only the granted My Account scopes: "${token.scope}"`,
    );

    // spa-js cached the token under the scopes it asked for, so it sends it as is.
    const denied = await myAccountFails(page, preflights, 403, 'myAccountEnrollmentChallenge', { type: 'totp' });
    theRequest(denied.requests, 'POST', `${apiBase()}/authentication-methods`, 'enrollmentChallenge (no create scope)');
    const sent = assertBearer(denied.requests[0], null, 'enrollmentChallenge (no create scope)');
    assert.ok(!scopes(sent).includes('create:me:authentication_methods'), 'the token really lacks create:me:authentication_methods');

    // The scope is checked before the method is looked up.
    const id = 'totp|dev_AAAAAAAAAAAAAAAA';
    const del = await myAccountFails(page, preflights, 403, 'myAccountDeleteAuthenticationMethod', id);
    theRequest(del.requests, 'DELETE', `${apiBase()}/authentication-methods/${encodeURIComponent(id)}`, 'deleteAuthenticationMethod (no delete scope)');
  }),
);

test('client.myAccount: a scope not obtained at login is fetched per call by silent authentication', { timeout: TEST_MS }, () =>
  inBrowser('per-call scope', async ({ page, rec, preflights }) => {
    // The app's default scopes include read:me:authentication_methods but not read:me:factors.
    await loggedIn(page, { user: ALICE, refresh: false, scope: null });
    const silentAuthorizes = () =>
      rec.requests.filter((r) => {
        const u = new URL(r.url);
        return r.method === 'GET' && u.origin === server.origin && u.pathname === '/authorize' && u.searchParams.get('prompt') === 'none';
      });
    const before = silentAuthorizes().length;

    const factors = await myAccountOk(page, preflights, 'myAccountGetFactors');
    const silent = silentAuthorizes().slice(before);
    assert.equal(silent.length, 1, 'getFactors() needed a new token: one /authorize?prompt=none');
    const q = new URL(silent[0].url).searchParams;
    assert.equal(q.get('audience'), myAccountAudience(), 'silent authentication for the My Account audience');
    assert.equal(q.get('response_mode'), 'web_message');
    assert.ok(q.get('scope').split(' ').includes('read:me:factors'), `the call's scope is requested: "${q.get('scope')}"`);
    assert.equal(factors.requests.at(-1).status, 200, 'GET /factors with the new token → 200');
    assertBearer(factors.requests.at(-1), 'read:me:factors', 'getFactors (per-call token)');

    // read:me:authentication_methods came with the login token: no new silent authentication.
    const methods = await myAccountOk(page, preflights, 'myAccountGetAuthenticationMethods');
    assert.equal(silentAuthorizes().length, before + 1, 'getAuthenticationMethods() used the cached login token');
    assertBearer(methods.requests.at(-1), 'read:me:authentication_methods', 'getAuthenticationMethods');
  }),
);
