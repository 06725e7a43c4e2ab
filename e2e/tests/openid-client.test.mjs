// openid-client v6 (the reference relying-party library, unmodified) against
// a real latchkey: discovery, authorization code + PKCE (S256) with state
// and nonce, the hosted login page driven with plain HTTP, ID token checks,
// UserInfo, and a refresh-token grant; and DPoP with openid-client's own
// support: a code bound with dpop_jkt, DPoP-bound tokens used at the My
// Account API and UserInfo, a refresh bound to the key.
//
// Run with LATCHKEY_BIN pointing at the server binary (see e2e/README.md).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';

import * as client from 'openid-client';

import { errorText, httpLogin, httpLoginAttempt } from '../lib/http-login.mjs';
import { startLatchkey } from '../lib/server.mjs';
import { ALICE, e2eTenantYaml, SPA_CLIENT_ID } from '../lib/tenant.mjs';
import { decodeJwt, explainFailure, freePort, withTimeout, WAIT_MS } from '../lib/util.mjs';

const TEST_MS = 120_000;
const LOG_TAIL = 30_000;

let server;
let appOrigin;

before(async () => {
  // The redirect target is only ever read from a Location header, never
  // fetched, so nothing needs to listen there.
  appOrigin = `http://localhost:${await freePort()}`;
  server = await startLatchkey({
    tenantYaml: (port) => e2eTenantYaml({ port, appOrigin }),
  });
});

after(async () => {
  await server?.stop();
});

const withServerLog = (name, fn) =>
  explainFailure(name, [['latchkey output (tail)', () => server.log().slice(-LOG_TAIL)]], fn);

const discover = () =>
  withTimeout(
    client.discovery(new URL(server.issuer), SPA_CLIENT_ID, undefined, client.None(), {
      execute: [client.allowInsecureRequests],
    }),
    WAIT_MS,
    'openid-client discovery',
  );

/** Verifies a compact RS256 JWS against the server's JWKS with node:crypto. */
async function verifyWithJwks(jwt, jwksUri) {
  const { header } = decodeJwt(jwt);
  assert.equal(header.alg, 'RS256', 'ID token alg');
  const res = await fetch(jwksUri, { signal: AbortSignal.timeout(WAIT_MS) });
  assert.equal(res.status, 200, `GET ${jwksUri}`);
  const { keys } = await res.json();
  assert.ok(Array.isArray(keys) && keys.length > 0, 'JWKS has keys');
  const candidates = header.kid ? keys.filter((k) => k.kid === header.kid) : keys.filter((k) => k.kty === 'RSA');
  assert.ok(candidates.length > 0, `JWKS has a key for kid ${header.kid}`);
  for (const k of candidates) {
    assert.equal(k.d, undefined, 'JWKS must not publish private key material');
  }
  const [h, p, s] = jwt.split('.');
  const ok = candidates.some((jwk) =>
    crypto.verify(
      'sha256',
      Buffer.from(`${h}.${p}`),
      crypto.createPublicKey({ key: jwk, format: 'jwk' }),
      Buffer.from(s, 'base64url'),
    ),
  );
  assert.ok(ok, 'ID token signature verifies with a key from jwks_uri');
}

test('discovery document describes the tenant', { timeout: TEST_MS }, () =>
  withServerLog('discovery', async () => {
    const config = await discover();
    const md = config.serverMetadata();
    assert.equal(md.issuer, server.issuer);
    assert.equal(md.authorization_endpoint, `${server.issuer}authorize`);
    assert.equal(md.token_endpoint, `${server.issuer}oauth/token`);
    assert.equal(md.userinfo_endpoint, `${server.issuer}userinfo`);
    assert.equal(md.jwks_uri, `${server.issuer}.well-known/jwks.json`);
    assert.ok(md.id_token_signing_alg_values_supported?.includes('RS256'), 'RS256 ID tokens');
    assert.ok(md.code_challenge_methods_supported?.includes('S256'), 'PKCE S256 advertised');
    assert.ok(md.response_types_supported?.includes('code'), 'response_type code');
  }),
);

test('authorization code + PKCE with the hosted login page, userinfo, refresh', { timeout: TEST_MS }, () =>
  withServerLog('openid-client code flow', async () => {
    const config = await discover();
    const redirectUri = `${appOrigin}/cb`;

    const codeVerifier = client.randomPKCECodeVerifier();
    const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
    const state = client.randomState();
    const nonce = client.randomNonce();

    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid profile email offline_access',
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    assert.equal(authorizationUrl.origin, server.origin);
    assert.equal(authorizationUrl.pathname, '/authorize');

    const { callback, form } = await httpLogin(authorizationUrl, {
      serverOrigin: server.origin,
      username: ALICE.email,
      password: ALICE.password,
    });
    assert.ok(
      form.inputs.some((i) => (i.type || '').toLowerCase() === 'hidden' && i.name),
      'the login form carries hidden state (e.g. tx)',
    );
    assert.equal(`${callback.origin}${callback.pathname}`, redirectUri, 'redirected to the redirect_uri');
    assert.equal(callback.searchParams.get('state'), state, 'state is echoed');
    assert.ok(callback.searchParams.get('code'), `code in ${callback}`);

    const tokens = await withTimeout(
      client.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: codeVerifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      }),
      WAIT_MS,
      'authorizationCodeGrant',
    );

    assert.equal(tokens.token_type, 'bearer');
    assert.equal(typeof tokens.access_token, 'string');
    assert.ok(tokens.expiresIn() > 0, 'expires_in is positive');
    const claims = tokens.claims();
    assert.ok(claims, 'an ID token was returned');
    assert.equal(claims.iss, server.issuer);
    if (Array.isArray(claims.aud)) {
      assert.ok(claims.aud.includes(SPA_CLIENT_ID), `aud ${JSON.stringify(claims.aud)} includes ${SPA_CLIENT_ID}`);
    } else {
      assert.equal(claims.aud, SPA_CLIENT_ID);
    }
    assert.equal(typeof claims.sub, 'string');
    assert.ok(claims.sub.length > 0, 'sub is not empty');
    assert.equal(claims.nonce, nonce);
    assert.equal(claims.email, ALICE.email, 'email claim (scope email)');
    await verifyWithJwks(tokens.id_token, config.serverMetadata().jwks_uri);

    const userinfo = await withTimeout(
      client.fetchUserInfo(config, tokens.access_token, claims.sub),
      WAIT_MS,
      'fetchUserInfo',
    );
    assert.equal(userinfo.sub, claims.sub);
    assert.equal(userinfo.email, ALICE.email);

    // offline_access was requested: a refresh token, and it works.
    assert.equal(typeof tokens.refresh_token, 'string', 'a refresh token for offline_access');
    const refreshed = await withTimeout(
      client.refreshTokenGrant(config, tokens.refresh_token),
      WAIT_MS,
      'refreshTokenGrant',
    );
    assert.equal(typeof refreshed.access_token, 'string');
    assert.equal(refreshed.token_type, 'bearer');
    const refreshedClaims = refreshed.claims();
    if (refreshedClaims) {
      assert.equal(refreshedClaims.sub, claims.sub, 'refreshed ID token is for the same user');
      assert.equal(refreshedClaims.iss, server.issuer);
    }
    const userinfo2 = await withTimeout(
      client.fetchUserInfo(config, refreshed.access_token, claims.sub),
      WAIT_MS,
      'fetchUserInfo with the refreshed access token',
    );
    assert.equal(userinfo2.email, ALICE.email);
  }),
);

test('a wrong password re-renders the login page with an error and no redirect', { timeout: TEST_MS }, () =>
  withServerLog('openid-client wrong password', async () => {
    const config = await discover();
    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: `${appOrigin}/cb`,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: client.randomState(),
    });
    const attempt = await httpLoginAttempt(authorizationUrl, {
      serverOrigin: server.origin,
      username: ALICE.email,
      password: 'not-the-password',
    });
    assert.equal(attempt.callback, undefined, `no redirect to the client, got ${attempt.callback}`);
    assert.equal(attempt.page.status, 200, 'the login page is rendered again');
    const text = errorText(attempt.page.html);
    assert.ok(text, `an element with class "error" and text:\n${attempt.page.html.slice(0, 2_000)}`);
    assert.doesNotMatch(text, /not-the-password/, 'the error does not echo the password');
    // The re-rendered page still has a usable login form.
    assert.ok(/name\s*=\s*["']?password/i.test(attempt.page.html), 'the password field is shown again');
  }),
);

test('DPoP: bound tokens from the code and refresh grants, used at /me/v1 and userinfo', { timeout: TEST_MS }, () =>
  withServerLog('openid-client DPoP', async () => {
    const config = await discover();
    assert.deepEqual(config.serverMetadata().dpop_signing_alg_values_supported, ['ES256', 'EdDSA', 'RS256', 'PS256']);
    const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    const jkt = await DPoP.calculateThumbprint();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const myAccount = `${server.issuer}me/`;
    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: `${appOrigin}/cb`,
      scope: 'openid offline_access read:me:authentication_methods',
      audience: myAccount,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      dpop_jkt: jkt,
    });
    const { callback } = await httpLogin(authorizationUrl, {
      serverOrigin: server.origin,
      username: ALICE.email,
      password: ALICE.password,
    });
    const tokens = await withTimeout(
      client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state }, undefined, {
        DPoP,
      }),
      WAIT_MS,
      'authorizationCodeGrant with DPoP',
    );
    assert.equal(tokens.token_type, 'dpop');
    assert.equal(decodeJwt(tokens.access_token).payload.cnf?.jkt, jkt, 'the access token is bound to the key');

    const url = new URL(`${server.issuer}me/v1/authentication-methods`);
    const res = await withTimeout(
      client.fetchProtectedResource(config, tokens.access_token, url, 'GET', undefined, undefined, { DPoP }),
      WAIT_MS,
      'GET /me/v1/authentication-methods with DPoP',
    );
    assert.equal(res.status, 200, await res.clone().text());
    const body = await res.json();
    assert.ok(Array.isArray(body.authentication_methods), 'a list of methods');

    // The same token as a Bearer token is refused with a DPoP challenge.
    const bearer = await fetch(url, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(bearer.status, 401);
    assert.match(bearer.headers.get('www-authenticate') || '', /^DPoP .*error="invalid_token"/);

    const sub = decodeJwt(tokens.access_token).payload.sub;
    const userinfo = await withTimeout(client.fetchUserInfo(config, tokens.access_token, sub, { DPoP }), WAIT_MS, 'userinfo');
    assert.equal(userinfo.sub, sub);

    // The refresh token is bound to the key: another key is refused, the key refreshes.
    const other = client.getDPoPHandle(config, await client.randomDPoPKeyPair('EdDSA'));
    await assert.rejects(
      client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: other }),
      (e) => e.error === 'invalid_dpop_proof',
    );
    const refreshed = await withTimeout(
      client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP }),
      WAIT_MS,
      'refreshTokenGrant with DPoP',
    );
    assert.equal(refreshed.token_type, 'dpop');
    assert.equal(decodeJwt(refreshed.access_token).payload.cnf?.jkt, jkt);
  }),
);
