// Drives the hosted login page with plain HTTP (fetch, manual redirects, a
// cookie jar), the way a browser without JavaScript would.

import { WAIT_MS } from './util.mjs';

const MAX_HOPS = 10;

/** A minimal cookie jar: name=value per origin, enough for one test. */
export class CookieJar {
  #byOrigin = new Map();

  store(url, response) {
    const origin = new URL(url).origin;
    const jar = this.#byOrigin.get(origin) ?? new Map();
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v] = a.split('=').map((s) => s.trim().toLowerCase());
        return (k === 'max-age' && Number(v) <= 0) || (k === 'expires' && Date.parse(v) < Date.now());
      });
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    this.#byOrigin.set(origin, jar);
  }

  header(url) {
    const jar = this.#byOrigin.get(new URL(url).origin);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  names(url) {
    return [...(this.#byOrigin.get(new URL(url).origin)?.keys() ?? [])];
  }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", nbsp: '\u00a0' };
export function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z0-9]+);/gi, (m, e) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(cp) ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** Attributes of one start tag, names lower-cased, values entity-decoded. */
export function parseAttributes(tag) {
  const attrs = {};
  const body = tag.replace(/^<\s*[a-z0-9-]+/i, '').replace(/\/?>$/, '');
  const re = /([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  let m;
  while ((m = re.exec(body))) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/**
 * The first POST form of an HTML page: its absolute action URL and the
 * fields a browser would submit (every named input, hidden or not, with its
 * value; buttons excluded).
 */
export function parseLoginForm(html, pageUrl) {
  const forms = [...html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)].map((m) => m[0]);
  const form = forms.find((f) => (parseAttributes(f.match(/<form\b[^>]*>/i)[0]).method || '').toLowerCase() === 'post');
  if (!form) throw new Error(`no <form method="post"> on the page at ${pageUrl}:\n${html.slice(0, 2_000)}`);
  const formAttrs = parseAttributes(form.match(/<form\b[^>]*>/i)[0]);
  const action = new URL(formAttrs.action || pageUrl, pageUrl);
  const fields = new URLSearchParams();
  const inputs = [];
  for (const [tag] of form.matchAll(/<input\b[^>]*>/gi)) {
    const a = parseAttributes(tag);
    inputs.push(a);
    const type = (a.type || 'text').toLowerCase();
    if (!a.name || ['submit', 'button', 'image', 'reset', 'file'].includes(type)) continue;
    if ((type === 'checkbox' || type === 'radio') && !('checked' in a)) continue;
    fields.append(a.name, a.value ?? '');
  }
  return { action, fields, inputs, html: form };
}

/** fetch with manual redirects, the jar's cookies, and a timeout. */
export async function fetchWithJar(jar, url, init = {}) {
  const headers = new Headers(init.headers);
  const cookie = jar.header(url);
  if (cookie) headers.set('cookie', cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(WAIT_MS) });
  jar.store(url, res);
  return res;
}

/**
 * Follows redirects from `url` (inclusive) while they stay on `serverOrigin`.
 * Returns either {page: {url, html, status}} for an HTML page on the server,
 * or {redirect: URL} for a redirect that leaves the server (to the client).
 */
export async function follow(jar, url, serverOrigin, init) {
  let current = new URL(url);
  let res = await fetchWithJar(jar, current, init);
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = res.headers.get('location');
      if (!location) throw new Error(`${res.status} from ${current} without a Location header`);
      const next = new URL(location, current);
      if (next.origin !== serverOrigin) return { redirect: next };
      current = next;
      res = await fetchWithJar(jar, current);
      continue;
    }
    const html = await res.text();
    return { page: { url: current, html, status: res.status, contentType: res.headers.get('content-type') || '' } };
  }
  throw new Error(`more than ${MAX_HOPS} redirects from ${url}`);
}

/**
 * One login attempt through the hosted login page with plain HTTP:
 * GET the authorization URL → login form; POST its fields plus username and
 * password to its action. Returns {callback: URL} when the server redirects
 * to the client, or {page} when it answers with a page (e.g. an error).
 */
export async function httpLoginAttempt(authorizationUrl, { serverOrigin, username, password, jar = new CookieJar() }) {
  const first = await follow(jar, authorizationUrl, serverOrigin);
  if (!first.page) throw new Error(`expected the hosted login page, got a redirect to ${first.redirect}`);
  const loginPage = first.page;
  if (loginPage.status !== 200 || !/text\/html/i.test(loginPage.contentType)) {
    throw new Error(
      `GET ${authorizationUrl} → ${loginPage.status} ${loginPage.contentType}, expected 200 text/html:\n${loginPage.html.slice(0, 2_000)}`,
    );
  }
  const form = parseLoginForm(loginPage.html, loginPage.url);
  form.fields.set('username', username);
  form.fields.set('password', password);

  const after = await follow(jar, form.action, serverOrigin, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: serverOrigin },
    body: form.fields.toString(),
  });
  return { callback: after.redirect, page: after.page, loginPage, form, jar };
}

/** Like httpLoginAttempt, but the login must end in a redirect to the client. */
export async function httpLogin(authorizationUrl, opts) {
  const result = await httpLoginAttempt(authorizationUrl, opts);
  if (!result.callback) {
    throw new Error(
      `POST ${result.form.action} did not redirect to the client (status ${result.page.status}):\n${result.page.html.slice(0, 2_000)}`,
    );
  }
  return result;
}

/** Text of the first element whose class list contains `error`, or null. */
export function errorText(html) {
  const m = html.match(/<([a-z][a-z0-9]*)\b[^>]*\bclass\s*=\s*(?:"[^"]*\berror\b[^"]*"|'[^']*\berror\b[^']*'|error\b)[^>]*>([\s\S]*?)<\/\1\s*>/i);
  if (!m) return null;
  return decodeEntities(m[2].replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
}
