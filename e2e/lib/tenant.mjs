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

export const SPA_CLIENT_ID = 'spa';

/** Scopes the SPA may obtain for the My Account API. */
export const MY_ACCOUNT_SCOPES = Object.freeze(['read:me:authentication_methods', 'read:me:factors']);

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
    },
    connections: [{ name: 'Username-Password-Authentication' }],
    clients: [
      {
        client_id: SPA_CLIENT_ID,
        name: 'E2E single-page app',
        app_type: 'spa',
        callbacks: [`${appOrigin}/cb`],
        allowed_origins: [appOrigin],
        web_origins: [appOrigin],
        allowed_logout_urls: [`${appOrigin}/`],
        grant_types: ['authorization_code', 'refresh_token'],
      },
    ],
    client_grants: [
      {
        client_id: SPA_CLIENT_ID,
        audience: `${issuer}me/`,
        subject_type: 'user',
        scope: [...MY_ACCOUNT_SCOPES],
      },
    ],
    users: [
      {
        email: ALICE.email,
        password: ALICE.password,
        connection: 'Username-Password-Authentication',
        email_verified: true,
        name: ALICE.name,
      },
    ],
  };
}

/** `e2eTenant` as YAML. */
export const e2eTenantYaml = (opts) => toYaml(e2eTenant(opts));
