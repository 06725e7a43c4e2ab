// The tenant file the tests boot latchkey with.
//
// The format is latchkey's tenant file (see README.md), whose field names
// follow Auth0's Management API.

/**
 * Serialises plain data (objects, arrays, strings, numbers, booleans, null)
 * as YAML. Strings are always double-quoted with JSON escapes, which YAML
 * reads back unchanged, so no value is ever reinterpreted.
 */
export function toYaml(value, indent = 0) {
  const pad = ' '.repeat(indent);
  const scalar = (v) => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new TypeError(`cannot serialise ${typeof v} as YAML`);
  };
  const key = (k) => (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(k) ? k : JSON.stringify(k));
  const isEmpty = (v) => (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0);
  const isNode = (v) => v !== null && typeof v === 'object';

  if (!isNode(value)) return `${pad}${scalar(value)}\n`;
  if (isEmpty(value)) return `${pad}${Array.isArray(value) ? '[]' : '{}'}\n`;

  let out = '';
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isNode(item) && !isEmpty(item)) {
        // "- " followed by the item's first line, the rest indented under it.
        const body = toYaml(item, indent + 2);
        out += `${pad}- ${body.slice(indent + 2)}`;
      } else {
        out += `${pad}- ${isNode(item) ? (Array.isArray(item) ? '[]' : '{}') : scalar(item)}\n`;
      }
    }
    return out;
  }
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (isNode(v) && !isEmpty(v)) {
      out += `${pad}${key(k)}:\n${toYaml(v, indent + 2)}`;
    } else {
      out += `${pad}${key(k)}: ${isNode(v) ? (Array.isArray(v) ? '[]' : '{}') : scalar(v)}\n`;
    }
  }
  return out;
}

export const ALICE = Object.freeze({
  email: 'alice@example.com',
  password: 'Tr0ub4dor&3-horse',
  name: 'Alice Example',
});

/** A second user, so that tests changing a user's authentication methods do not share one. */
export const BOB = Object.freeze({
  email: 'bob@example.com',
  password: 'c0rrect-Horse-battery',
  name: 'Bob Example',
});

export const SPA_CLIENT_ID = 'spa';

/**
 * A second SPA (same origins and callbacks) whose My Account grant is
 * read-only, so that a token it gets lacks the write scopes even when they are
 * requested (the server drops scopes the grant does not allow).
 */
export const READONLY_SPA_CLIENT_ID = 'spa-readonly';

/** Factor types enabled on the tenant (`factors`). */
export const TENANT_FACTORS = Object.freeze(['password', 'passkey', 'totp', 'recovery-code']);

/** The grant type of Auth0's Passkey API (native passkey sign-up and login at /oauth/token). */
export const WEBAUTHN_GRANT = 'urn:okta:params:oauth:grant-type:webauthn';

/** Scopes the SPA may obtain for the My Account API: everything spa-js's myAccount client uses for factors and authentication methods. */
export const MY_ACCOUNT_SCOPES = Object.freeze([
  'read:me:authentication_methods',
  'create:me:authentication_methods',
  'update:me:authentication_methods',
  'delete:me:authentication_methods',
  'read:me:factors',
]);

/** The read-only SPA's grant: no create/update/delete. */
export const READONLY_MY_ACCOUNT_SCOPES = Object.freeze(['read:me:authentication_methods', 'read:me:factors']);

/**
 * A single-page application served from `appOrigin` (callback `/cb`, logout back to `/`).
 * `extraGrants` are added to its grant types.
 */
function spaClient(clientId, name, appOrigin, extraGrants = []) {
  return {
    client_id: clientId,
    name,
    app_type: 'spa',
    callbacks: [`${appOrigin}/cb`],
    allowed_origins: [appOrigin],
    web_origins: [appOrigin],
    allowed_logout_urls: [`${appOrigin}/`],
    grant_types: ['authorization_code', 'refresh_token', ...extraGrants],
  };
}

/**
 * The tenant used by the browser and openid-client tests, as data.
 * `port` is the server's port (the tenant's domain is `localhost:PORT`);
 * `appOrigin` is the origin of the test SPA (`http://localhost:APPPORT`).
 */
export function e2eTenant({ port, appOrigin }) {
  const domain = `localhost:${port}`;
  const issuer = `http://${domain}/`;
  return {
    tenant: {
      name: 'e2e',
      domains: [domain],
      friendly_name: 'latchkey e2e',
      // WebAuthn runs on the page's origin: the app's pages (native passkeys, My Account enrollment) use
      // the app origin, the hosted login page the server's own (allowed by default). The RP ID
      // (default: the host's name, `localhost`) covers both ports.
      passkeys: { origins: [appOrigin] },
    },
    my_account_api: { active: true, user_policy: 'require_client_grant' },
    factors: [...TENANT_FACTORS],
    connections: [{ name: 'Username-Password-Authentication' }],
    clients: [
      spaClient(SPA_CLIENT_ID, 'E2E single-page app', appOrigin, [WEBAUTHN_GRANT]),
      spaClient(READONLY_SPA_CLIENT_ID, 'E2E single-page app (read-only My Account grant)', appOrigin),
    ],
    client_grants: [
      {
        client_id: SPA_CLIENT_ID,
        audience: `${issuer}me/`,
        subject_type: 'user',
        scope: [...MY_ACCOUNT_SCOPES],
      },
      {
        client_id: READONLY_SPA_CLIENT_ID,
        audience: `${issuer}me/`,
        subject_type: 'user',
        scope: [...READONLY_MY_ACCOUNT_SCOPES],
      },
    ],
    users: [ALICE, BOB].map((u) => ({
      email: u.email,
      password: u.password,
      connection: 'Username-Password-Authentication',
      email_verified: true,
      name: u.name,
    })),
  };
}

/** `e2eTenant` as YAML. */
export const e2eTenantYaml = (opts) => toYaml(e2eTenant(opts));
