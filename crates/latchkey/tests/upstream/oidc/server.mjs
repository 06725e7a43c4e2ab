// A generic OpenID provider for latchkey's integration tests: `oidc-provider`
// (the certified reference implementation) on loopback, with a real login
// form, and a small surface under `/__test/` through which a test counts what
// the provider was asked and makes it misbehave.
//
// Configuration: a JSON document, as the first argument or in the environment
// variable OIDC_PROVIDER_CONFIG:
//
//   {
//     "port": 0,                       // 0: any free port
//     "now": 1800000000,               // optional: the clock, frozen at these epoch
//                                      // seconds until POST /__test/clock moves it
//     "clients": [{ "client_id": "…", "client_secret": "…", "redirect_uris": ["…"],
//                   "token_endpoint_auth_method": "client_secret_basic",
//                   "id_token_signed_response_alg": "RS256" }],   // any client metadata
//     "users": [{ "sub": "…", "email": "…", "email_verified": true, "name": "…",
//                 "password": "…" }],
//     "access_token_ttl": 3600, "id_token_ttl": 3600, "refresh_token_ttl": 1209600,
//     "authorization_code_ttl": 60,
//     "conform_id_token_claims": false // true: profile and email claims only at userinfo
//   }
//
// When it listens it prints one line on stdout, the readiness line:
//   {"port":PORT,"issuer":"http://127.0.0.1:PORT/"}
// It exits when its standard input closes, so it never outlives the test
// process that started it.
//
// The test surface (JSON in and out):
//   GET  /__test/counters                     requests per endpoint, token requests per grant type
//   POST /__test/counters/reset
//   POST /__test/users/{sub}/revoke-grants    every grant of the user and all it issued: {"revoked": n}
//   POST /__test/token-endpoint               {"count": n, "fail_status": 503} or {"count": n, "delay_ms": 2000}:
//                                             the next n token requests fail, or wait first
//   POST /__test/id-token                     {"count": n, "tamper": MODE}: the next n ID tokens
//                                             issued are spoiled (modes below)
//   GET|POST /__test/clock                    {"now": secs} sets it, {"advance": secs} moves it
//
// Tamper modes: nonce, audience, issuer, expired (all re-signed with the real
// key), signature (a byte of the signature changed), foreign_key (signed by a
// key not in the JWKS, under a published kid), alg_none (unsigned),
// alg_confusion (HS256 keyed with the RSA public key).

import { createHash, createHmac, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import Provider from 'oidc-provider';

const BODY_LIMIT = 64 * 1024;

const config = JSON.parse(process.argv[2] ?? process.env.OIDC_PROVIDER_CONFIG ?? '{}');

// --- the clock ----------------------------------------------------------------
// Everything in this process reads time through Date.now, so setting it sets
// the provider's time: token lifetimes, expiry checks, `iat` and `exp`.
const realNow = Date.now.bind(Date);
let frozenMs = typeof config.now === 'number' ? config.now * 1000 : undefined;
Date.now = () => frozenMs ?? realNow();
const nowSeconds = () => Math.floor(Date.now() / 1000);

// --- users --------------------------------------------------------------------
const users = new Map();
for (const user of config.users ?? []) {
  if (typeof user.sub !== 'string' || typeof user.password !== 'string') {
    throw new Error('every user needs a string sub and password');
  }
  users.set(user.sub, user);
}

function digest(value) {
  return createHash('sha256').update(String(value)).digest();
}

/** The user whose email (any case) or sub is `username`, when `password` is theirs. */
function authenticate(username, password) {
  const wanted = String(username ?? '').trim().toLowerCase();
  const user = [...users.values()].find(
    (u) => u.sub === wanted || (typeof u.email === 'string' && u.email.toLowerCase() === wanted),
  );
  // Compare a digest even for an unknown user, so both take the same time.
  const expected = digest(user ? user.password : randomBytes(16).toString('hex'));
  const ok = timingSafeEqual(expected, digest(password ?? ''));
  return ok && user ? user : undefined;
}

// --- signing keys: one of each type, so clients can ask for any algorithm ----
function keyPair(type, options, kid) {
  const { privateKey, publicKey } = generateKeyPairSync(type, options);
  return { privateKey, publicKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid } };
}
const keys = {
  rsa: keyPair('rsa', { modulusLength: 2048 }, 'rsa-1'),
  ec: keyPair('ec', { namedCurve: 'P-256' }, 'ec-1'),
  ed: keyPair('ed25519', {}, 'ed-1'),
};
function keyFor(alg) {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return keys.rsa;
  if (alg.startsWith('ES')) return keys.ec;
  return keys.ed;
}
const foreignKeys = {
  rsa: keyPair('rsa', { modulusLength: 2048 }, 'rsa-1'),
  ec: keyPair('ec', { namedCurve: 'P-256' }, 'ec-1'),
  ed: keyPair('ed25519', {}, 'ed-1'),
};

// --- storage: in memory, enumerable so a user's grants can be found -----------
const stored = new Map(); // `${model}:${id}` -> { payload, expiresAt }

class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    stored.set(this.key(id), { payload, expiresAt });
  }

  async find(id) {
    const entry = stored.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      stored.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    for (const [key, entry] of stored) {
      if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid) {
        return this.find(key.slice(this.model.length + 1));
      }
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [key, entry] of stored) {
      if (key.startsWith(`${this.model}:`) && entry.payload.userCode === userCode) {
        return this.find(key.slice(this.model.length + 1));
      }
    }
    return undefined;
  }

  async consume(id) {
    const entry = stored.get(this.key(id));
    if (entry) entry.payload.consumed = nowSeconds();
  }

  async destroy(id) {
    stored.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of stored) {
      if (key.startsWith(`${this.model}:`) && entry.payload.grantId === grantId) {
        stored.delete(key);
      }
    }
  }
}

/** Deletes every grant of `sub` and everything issued under them. */
function revokeGrantsOf(sub) {
  const grantIds = [];
  for (const [key, entry] of stored) {
    if (key.startsWith('Grant:') && entry.payload.accountId === sub) {
      grantIds.push(key.slice('Grant:'.length));
    }
  }
  for (const [key, entry] of stored) {
    if (grantIds.includes(entry.payload.grantId) || grantIds.some((id) => key === `Grant:${id}`)) {
      stored.delete(key);
    }
  }
  return grantIds.length;
}

// --- counters and faults --------------------------------------------------------
const ENDPOINTS = {
  '/.well-known/openid-configuration': 'discovery',
  '/jwks': 'jwks',
  '/auth': 'authorization',
  '/token': 'token',
  '/me': 'userinfo',
  '/token/revocation': 'revocation',
  '/token/introspection': 'introspection',
};
let counters;
function resetCounters() {
  counters = { requests: {}, token: {} };
}
resetCounters();
let tokenFault = { count: 0 };
let idTokenTamper = { count: 0 };

// --- the provider -----------------------------------------------------------------
const httpServer = createServer();
await new Promise((resolve, reject) => {
  httpServer.once('error', reject);
  httpServer.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const { port } = httpServer.address();
const issuer = `http://127.0.0.1:${port}/`;

const ttl = (name, fallback) => (typeof config[name] === 'number' ? config[name] : fallback);

const provider = new Provider(issuer, {
  adapter: MemoryAdapter,
  clients: (config.clients ?? []).map((client) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    ...client,
  })),
  jwks: { keys: [keys.rsa.jwk, keys.ec.jwk, keys.ed.jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  conformIdTokenClaims: config.conform_id_token_claims === true,
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'],
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: ttl('access_token_ttl', 3600),
    IdToken: ttl('id_token_ttl', 3600),
    RefreshToken: ttl('refresh_token_ttl', 14 * 24 * 3600),
    AuthorizationCode: ttl('authorization_code_ttl', 60),
    Grant: 365 * 24 * 3600,
    Session: 14 * 24 * 3600,
    Interaction: 3600,
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  async findAccount(_ctx, sub) {
    const user = users.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        const claims = { sub };
        for (const name of ['email', 'email_verified', 'name']) {
          if (user[name] !== undefined && user[name] !== null) claims[name] = user[name];
        }
        return claims;
      },
    };
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Error</h1><pre>${escape(JSON.stringify(out, null, 2))}</pre>`);
  },
});
provider.proxy = false;

// --- HTML ---------------------------------------------------------------------------
function escape(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function page(title, body) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body>${body}</body></html>
`;
}

function loginPage(interaction, { username, error } = {}) {
  const uid = escape(interaction.uid);
  const alert = error ? `<p class="error" role="alert">${escape(error)}</p>` : '';
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p>to continue to ${escape(interaction.params.client_id)}</p>
${alert}
<form id="login" method="post" action="/interaction/${uid}/login">
  <label>Email or username <input name="username" autocomplete="username" value="${escape(username ?? interaction.params.login_hint)}"></label>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${uid}/abort">
  <button type="submit">Cancel</button>
</form>`,
  );
}

// --- request bodies ---------------------------------------------------------------
async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > BODY_LIMIT) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(ctx) {
  const text = await readBody(ctx.req);
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw Object.assign(new Error('the body is not JSON'), { status: 400 });
  }
}

// --- the interactions: a login form, consent given for the user -----------------------
async function interaction(ctx) {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login|\/abort)?$/);
  if (!match) return notFound(ctx);
  const [, uid, action] = match;
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Sign-in expired</h1><p>${escape(err.message)}</p>`);
    return undefined;
  }
  if (details.uid !== uid) return notFound(ctx);

  if (ctx.method === 'GET' && !action) {
    if (details.prompt.name === 'login') {
      ctx.type = 'html';
      ctx.body = loginPage(details);
      return undefined;
    }
    // Consent: the clients of these tests are first-party; what they asked
    // for is granted without a screen.
    const grantId = await grantEverything(details);
    return finish(ctx, { consent: { grantId } });
  }
  if (ctx.method !== 'POST' || !action) return notFound(ctx);

  if (action === '/abort') {
    return finish(ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' });
  }
  if (details.prompt.name !== 'login') return notFound(ctx);
  const form = new URLSearchParams(await readBody(ctx.req));
  const user = authenticate(form.get('username'), form.get('password'));
  if (!user) {
    ctx.status = 401;
    ctx.type = 'html';
    ctx.body = loginPage(details, {
      username: form.get('username'),
      error: 'Wrong email or password.',
    });
    return undefined;
  }
  return finish(ctx, { login: { accountId: user.sub } });
}

async function grantEverything(details) {
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details ?? {};
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

async function finish(ctx, result) {
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: true,
  });
  ctx.status = 303;
  ctx.redirect(returnTo);
  return undefined;
}

function notFound(ctx) {
  ctx.status = 404;
  ctx.type = 'text';
  ctx.body = 'Not Found';
  return undefined;
}

// --- the test surface -------------------------------------------------------------
async function testSurface(ctx) {
  const path = ctx.path.slice('/__test'.length);
  const body = ctx.method === 'POST' ? await readJson(ctx) : {};
  let answer;
  if (ctx.method === 'GET' && path === '/counters') {
    answer = counters;
  } else if (ctx.method === 'POST' && path === '/counters/reset') {
    resetCounters();
    answer = counters;
  } else if (ctx.method === 'POST' && /^\/users\/[^/]+\/revoke-grants$/.test(path)) {
    const sub = decodeURIComponent(path.split('/')[2]);
    answer = { revoked: revokeGrantsOf(sub) };
  } else if (ctx.method === 'POST' && path === '/token-endpoint') {
    tokenFault = {
      count: Number(body.count ?? 1),
      failStatus: body.fail_status,
      delayMs: body.delay_ms,
    };
    answer = body;
  } else if (ctx.method === 'POST' && path === '/id-token') {
    if (!TAMPER[body.tamper]) {
      throw Object.assign(new Error(`unknown tamper mode ${body.tamper}`), { status: 400 });
    }
    idTokenTamper = { count: Number(body.count ?? 1), mode: body.tamper };
    answer = body;
  } else if (path === '/clock' && (ctx.method === 'GET' || ctx.method === 'POST')) {
    if (typeof body.now === 'number') frozenMs = body.now * 1000;
    if (typeof body.advance === 'number') frozenMs = Date.now() + body.advance * 1000;
    answer = { now: nowSeconds() };
  } else {
    return notFound(ctx);
  }
  ctx.type = 'json';
  ctx.body = answer;
  return undefined;
}

// --- spoiled ID tokens --------------------------------------------------------------
const b64 = (value) => Buffer.from(value).toString('base64url');

async function resign(header, payload, key) {
  return new SignJWT(payload).setProtectedHeader(header).sign(key.privateKey);
}

const TAMPER = {
  nonce: (h, p) => resign(h, { ...p, nonce: 'not-the-nonce-sent' }, keyFor(h.alg)),
  audience: (h, p) => resign(h, { ...p, aud: 'another-client' }, keyFor(h.alg)),
  issuer: (h, p) => resign(h, { ...p, iss: 'http://127.0.0.1:9/' }, keyFor(h.alg)),
  expired: (h, p) => resign(h, { ...p, iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 }, keyFor(h.alg)),
  signature: (_h, _p, jwt) => {
    const [head, body, sig] = jwt.split('.');
    const bytes = Buffer.from(sig, 'base64url');
    bytes[0] ^= 0x01;
    return `${head}.${body}.${bytes.toString('base64url')}`;
  },
  foreign_key: (h, p) => {
    const real = keyFor(h.alg);
    const foreign = Object.values(foreignKeys).find((k) => k.jwk.kid === real.jwk.kid);
    return resign(h, p, foreign);
  },
  alg_none: (h, p) => `${b64(JSON.stringify({ ...h, alg: 'none' }))}.${b64(JSON.stringify(p))}.`,
  alg_confusion: (h, p) => {
    const header = { ...h, alg: 'HS256', kid: keys.rsa.jwk.kid };
    const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(p))}`;
    const secret = keys.rsa.publicKey.export({ type: 'spki', format: 'pem' });
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  },
};

async function spoil(idToken) {
  const { mode } = idTokenTamper;
  idTokenTamper.count -= 1;
  return TAMPER[mode](decodeProtectedHeader(idToken), decodeJwt(idToken), idToken);
}

// --- the wrapper around every request ---------------------------------------------
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

provider.use(async (ctx, next) => {
  try {
    if (ctx.path.startsWith('/__test/')) return await testSurface(ctx);
    if (ctx.path.startsWith('/interaction/')) return await interaction(ctx);
  } catch (err) {
    ctx.status = err.status ?? 500;
    ctx.type = 'json';
    ctx.body = { error: err.message };
    return undefined;
  }

  const endpoint = ENDPOINTS[ctx.path];
  if (endpoint) counters.requests[endpoint] = (counters.requests[endpoint] ?? 0) + 1;

  // Offline access without `prompt=consent`, as most providers grant it
  // (oidc-provider alone would drop the scope): consent is asked, and given
  // by the interaction above without a screen.
  if (endpoint === 'authorization' && ctx.method === 'GET') {
    const scope = (ctx.query.scope ?? '').split(' ');
    const prompt = (ctx.query.prompt ?? '').split(' ').filter(Boolean);
    if (scope.includes('offline_access') && !prompt.includes('consent') && !prompt.includes('none')) {
      const query = new URLSearchParams(ctx.querystring);
      query.set('prompt', [...prompt, 'consent'].join(' '));
      ctx.querystring = query.toString();
    }
  }

  if (endpoint === 'token' && ctx.method === 'POST') {
    // The body is read here to count by grant type; oidc-provider takes it from req.body.
    const raw = await readBody(ctx.req);
    ctx.req.body = raw;
    const grantType = new URLSearchParams(raw).get('grant_type') ?? '';
    counters.token[grantType] = (counters.token[grantType] ?? 0) + 1;
    if (tokenFault.count > 0) {
      tokenFault.count -= 1;
      if (tokenFault.delayMs) await sleep(tokenFault.delayMs);
      if (tokenFault.failStatus) {
        ctx.status = tokenFault.failStatus;
        ctx.type = 'text';
        ctx.body = 'upstream unavailable';
        return undefined;
      }
    }
  }

  await next();

  if (endpoint === 'token' && idTokenTamper.count > 0 && typeof ctx.body?.id_token === 'string') {
    ctx.body = { ...ctx.body, id_token: await spoil(ctx.body.id_token) };
  }
  if (frozenMs !== undefined) {
    // Cookie lifetimes come from this process's clock, which a test may have
    // set behind the client's: make them last for the client's session.
    const cookies = ctx.response.get('set-cookie');
    if (Array.isArray(cookies) && cookies.length) {
      ctx.set('set-cookie', cookies.map((cookie) => (cookie.includes('expires=Thu, 01 Jan 1970')
        ? cookie
        : cookie.replace(/; expires=[^;]*/gi, '').replace(/; max-age=[^;]*/gi, ''))));
    }
  }
  return undefined;
});

httpServer.on('request', provider.callback());

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();

process.stdout.write(`${JSON.stringify({ port, issuer })}\n`);
