// Browser-side steps shared by the SPA tests: driving the test app through
// page.evaluate and the hosted login page through the DOM.

import { withTimeout, WAIT_MS } from './util.mjs';

/** Longer than the app's own spa-js timeouts (20 s), shorter than a test's budget. */
const CALL_MS = 45_000;

/**
 * Calls `window.e2e[name](...args)` in the page and returns its raw result
 * ({ok, value} or {ok:false, error, error_description, message}).
 */
export async function tryApp(page, name, ...args) {
  return withTimeout(
    page.evaluate(([n, a]) => window.e2e[n](...a), [name, args]),
    CALL_MS,
    `app call e2e.${name}()`,
  );
}

/** Like tryApp, but throws a descriptive error unless the call succeeded. */
export async function callApp(page, name, ...args) {
  const r = await tryApp(page, name, ...args);
  if (!r || !r.ok) {
    throw new Error(`e2e.${name}() failed: ${r?.error}: ${r?.message}${r?.error_description && r.error_description !== r.message ? ` (${r.error_description})` : ''}`);
  }
  return r.value;
}

/**
 * Starts a call that navigates the page away (login, logout, connecting an account) without waiting
 * for its promise, which dies with the page.
 */
export async function startNavigatingCall(page, name, ...args) {
  try {
    await page.evaluate(([n, a]) => {
      window.e2e[n](...a);
    }, [name, args]);
  } catch (err) {
    // The navigation may already have torn down the execution context.
    if (!/Execution context was destroyed|navigat/i.test(err.message)) throw err;
  }
}

/**
 * Opens the test app at `/` with the given configuration and creates the
 * spa-js client. `scope` (optional) replaces the app's default scopes.
 */
export async function openApp(page, { app, server, clientId, audience, refresh, cache, scope, dpop }) {
  const q = new URLSearchParams({
    domain: `localhost:${server.port}`,
    clientId,
    audience,
    refresh: refresh ? '1' : '0',
    cache: cache || 'memory',
  });
  // Optional: the scopes for login and the client (the app has a default).
  if (scope) q.set('scope', scope);
  if (dpop) q.set('dpop', '1');
  await page.goto(`${app.origin}/?${q}`);
  await callApp(page, 'init');
}

/**
 * From the app page: loginWithRedirect, wait for the server's hosted login
 * page, and return once the login form is shown.
 */
export async function goToHostedLogin(page, { server }) {
  await startNavigatingCall(page, 'login');
  await page.waitForURL((u) => u.origin === server.origin, { timeout: WAIT_MS });
  await page.locator('input[name="username"]').waitFor({ state: 'visible', timeout: WAIT_MS });
}

/** Fills and submits the hosted login form. */
export async function submitCredentials(page, { username, password }) {
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
}

/**
 * Full redirect login: app → hosted login page → credentials → back on the
 * app's /cb, where the client is re-created and handleRedirectCallback runs.
 */
export async function loginWithRedirect(page, { app, server, user }) {
  await goToHostedLogin(page, { server });
  await Promise.all([
    page.waitForURL((u) => u.origin === app.origin && u.pathname === '/cb', { timeout: WAIT_MS }),
    submitCredentials(page, { username: user.email, password: user.password }),
  ]);
  const cb = new URL(page.url());
  if (cb.searchParams.has('error')) {
    throw new Error(`authorization error at /cb: ${cb.searchParams.get('error')}: ${cb.searchParams.get('error_description')}`);
  }
  await callApp(page, 'init');
  return callApp(page, 'handleCallback');
}
