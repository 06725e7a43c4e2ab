// Debian's Chromium driven through playwright-core. No tool ever downloads a
// browser here: if /usr/bin/chromium is missing, run scripts/e2e-deps.sh.

import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';

import { chromium } from 'playwright-core';

import { WAIT_MS } from './util.mjs';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = Object.freeze([
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

export async function launchBrowser() {
  try {
    await fs.access(CHROMIUM, fsc.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/e2e-deps.sh does it)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
    timeout: WAIT_MS,
  });
}

/** Hides password values in logged form bodies. */
const redact = (body) => body.replace(/(^|&)(password=)[^&]*/g, '$1$2[redacted]');

/**
 * A fresh browser context (its own cookies and storage) that records, for
 * diagnostics and assertions, every request made by its pages, frames and
 * workers, and every console message and page error. `options` are
 * Playwright's context options (e.g. `{javaScriptEnabled: false}`).
 */
export async function newRecordingContext(browser, options = {}) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);

  /** @type {{method:string, url:string, postData:string|null, headers:object, status?:number, failure?:string, isNavigation:boolean}[]} */
  const requests = [];
  const byRequest = new Map();
  const consoleLines = [];

  context.on('request', (req) => {
    const entry = {
      method: req.method(),
      url: req.url(),
      postData: req.postData(),
      headers: req.headers(),
      isNavigation: req.isNavigationRequest(),
      resourceType: req.resourceType(),
    };
    requests.push(entry);
    byRequest.set(req, entry);
  });
  context.on('response', (res) => {
    const entry = byRequest.get(res.request());
    if (entry) entry.status = res.status();
  });
  context.on('requestfailed', (req) => {
    const entry = byRequest.get(req);
    if (entry) entry.failure = req.failure()?.errorText || 'failed';
  });
  const watchPage = (page) => {
    page.on('console', (msg) => consoleLines.push(`[${msg.type()}] ${msg.text()}`));
    page.on('pageerror', (err) => consoleLines.push(`[pageerror] ${err.stack || err.message}`));
    page.on('worker', (worker) => consoleLines.push(`[worker started] ${worker.url().slice(0, 80)}`));
  };
  context.on('page', watchPage);

  const describeRequests = () =>
    requests
      .map((r) => {
        const body = r.postData ? `\n      body: ${redact(r.postData).slice(0, 500)}` : '';
        const outcome = r.failure ? `FAILED ${r.failure}` : r.status ?? '…';
        return `${r.method} ${r.url} -> ${outcome}${body}`;
      })
      .join('\n');

  return {
    context,
    requests,
    consoleLines,
    describeRequests,
    describeConsole: () => consoleLines.join('\n'),
  };
}

/**
 * Records the CORS preflights (OPTIONS) a page's requests cause, through the
 * Chrome DevTools Protocol: Playwright's request events do not include them.
 * Returns a live array of {method, url, requestHeaders, status, responseHeaders, failure}
 * and `describe()`.
 */
export async function recordPreflights(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  /** @type {{requestId:string, method:string, url:string, requestHeaders:object, status?:number, responseHeaders?:object, failure?:string}[]} */
  const preflights = [];
  const byId = new Map();
  const header = (headers, name) =>
    Object.entries(headers || {}).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.request.method !== 'OPTIONS' || !header(e.request.headers, 'access-control-request-method')) return;
    const entry = { requestId: e.requestId, method: e.request.method, url: e.request.url, requestHeaders: e.request.headers };
    preflights.push(entry);
    byId.set(e.requestId, entry);
  });
  cdp.on('Network.responseReceived', (e) => {
    const entry = byId.get(e.requestId);
    if (!entry) return;
    entry.status = e.response.status;
    entry.responseHeaders = e.response.headers;
  });
  cdp.on('Network.loadingFailed', (e) => {
    const entry = byId.get(e.requestId);
    if (!entry) return;
    entry.failure = [e.errorText, e.corsErrorStatus?.corsError].filter(Boolean).join(' ');
  });
  const describe = () =>
    preflights
      .map((p) => {
        const asked = `${header(p.requestHeaders, 'access-control-request-method')} [${header(p.requestHeaders, 'access-control-request-headers') || ''}] from ${header(p.requestHeaders, 'origin')}`;
        const got = p.responseHeaders
          ? ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers']
              .map((h) => `${h}: ${header(p.responseHeaders, h) ?? '(none)'}`)
              .join('; ')
          : '';
        return `OPTIONS ${p.url} (${asked}) -> ${p.status ?? '…'}${p.failure ? ` FAILED ${p.failure}` : ''}${got ? `\n      ${got}` : ''}`;
      })
      .join('\n');
  return { preflights, describe };
}
