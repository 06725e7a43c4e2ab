// The reference of bench/run's token scenarios (2, refresh_token with
// rotation; 3, client_credentials): oidc-provider set up for the tokens
// latchkey issues, RS256 JWT access tokens and rotating refresh tokens.
//
//     node server.mjs PORT N OUTFILE
//
// Serves on 127.0.0.1:PORT (issuer http://localhost:PORT), writes N starting
// refresh tokens of the `spa` client to OUTFILE as a JSON array, then prints
// `ready` on stdout.

import * as crypto from 'node:crypto';
import { writeFileSync } from 'node:fs';

process.env.NODE_ENV = 'production';

// oidc-provider announces on the console what a deployment would change
// (the in-memory adapter, the runtime's version); the harness knows, and its
// output stays the table's.
for (const level of ['info', 'warn']) {
  const print = console[level];
  console[level] = (first, ...rest) => {
    if (typeof first === 'string' && first.startsWith('oidc-provider ')) return;
    print(first, ...rest);
  };
}

const { default: Provider, errors } = await import('oidc-provider');

const [port, count, outfile] = process.argv.slice(2);
if (!port || !count || !outfile) {
  process.stderr.write('usage: node server.mjs PORT N OUTFILE\n');
  process.exit(2);
}
const issuer = `http://localhost:${port}`;

const RESOURCE = 'https://api.bench.test/';
const SCOPE = 'read:things';

// One RSA-2048 key, made at start, as latchkey's: with no other key in the
// set (no ES256 or EdDSA), every signature is RS256.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' };

const DAY = 24 * 60 * 60;

const provider = new Provider(issuer, {
  // No adapter: oidc-provider's own in-memory store. latchkey keeps its
  // tokens in an embedded SQLite; an in-process store is the closest that
  // oidc-provider ships (and its fastest). It is an LRU of about a thousand
  // entries: the live grants and tokens of bench/run's default 64
  // connections (two chains each) stay well within it.
  jwks: { keys: [jwk] },
  clients: [
    {
      client_id: 'backend',
      client_secret: 'bench-backend-secret',
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'spa',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['https://app.bench.test/callback'],
    },
  ],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, resource) {
        if (resource !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: SCOPE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: DAY,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Every refresh spends its token and hands back the next one.
  rotateRefreshToken: () => true,
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  ttl: {
    AccessToken: DAY,
    ClientCredentials: DAY,
    IdToken: 60 * 60,
    RefreshToken: 30 * DAY,
    Grant: 30 * DAY,
    Session: 30 * DAY,
    Interaction: 60 * 60,
  },
});

// One process, as the in-memory store can't be shared between processes.
const server = provider.listen(Number(port), '127.0.0.1');
await new Promise((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
});

// oidc-provider has no password grant: each starting refresh token is made
// through its own models, as an authorization code exchange would make it
// (a grant of the resource's scope to a user, then the token), and is
// checked by one real refresh whose rotated token is the one handed out.
const spa = await provider.Client.find('spa');
const tokens = [];
for (let i = 0; i < Number(count); i++) {
  const accountId = `user${i}`;
  const grant = new provider.Grant({ accountId, clientId: 'spa' });
  grant.addOIDCScope('offline_access');
  grant.addResourceScope(RESOURCE, SCOPE);
  const grantId = await grant.save();
  const minted = await new provider.RefreshToken({
    accountId,
    client: spa,
    grantId,
    gty: 'authorization_code',
    resource: RESOURCE,
    rotations: 0,
    scope: `offline_access ${SCOPE}`,
  }).save();

  const res = await fetch(`http://127.0.0.1:${port}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'spa', refresh_token: minted }),
  });
  const body = await res.json();
  const header = JSON.parse(Buffer.from(String(body.access_token).split('.')[0], 'base64url').toString() || '{}');
  if (res.status !== 200 || !body.refresh_token || body.refresh_token === minted
      || header.alg !== 'RS256' || body.scope !== SCOPE) {
    process.stderr.write(`oidc-provider: a starting refresh token did not refresh as expected: ${res.status} ${JSON.stringify(body)}\n`);
    process.exit(1);
  }
  tokens.push(body.refresh_token);
}

writeFileSync(outfile, JSON.stringify(tokens));
process.stdout.write('ready\n');
