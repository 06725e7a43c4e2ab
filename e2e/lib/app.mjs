// A tiny static HTTP server for the test SPA: e2e/app/index.html on every
// page path (/, /cb, …), e2e/app/native.html (native passkeys, no SDK) at
// /native.html, e2e/app/webauthn.js (the pages' WebAuthn helpers) and the
// auth0-spa-js UMD bundle from node_modules.
// The app's origin is http://localhost:APPPORT.

import fs from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from './util.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const INDEX = path.join(here, '..', 'app', 'index.html');
const NATIVE = path.join(here, '..', 'app', 'native.html');
const WEBAUTHN_JS = path.join(here, '..', 'app', 'webauthn.js');
// Resolved through Node's module resolution so a hoisted or nested install both work.
const SPA_JS_DIR = path.dirname(require.resolve('@auth0/auth0-spa-js/package.json'));
const SPA_JS_BUNDLE = path.join(SPA_JS_DIR, 'dist', 'auth0-spa-js.production.js');

const files = {
  '/native.html': { file: NATIVE, type: 'text/html; charset=utf-8' },
  '/webauthn.js': { file: WEBAUTHN_JS, type: 'text/javascript; charset=utf-8' },
  '/auth0-spa-js.production.js': { file: SPA_JS_BUNDLE, type: 'text/javascript; charset=utf-8' },
  '/auth0-spa-js.production.js.map': { file: `${SPA_JS_BUNDLE}.map`, type: 'application/json' },
};

/**
 * @returns {Promise<{port:number, origin:string, requests:string[], stop:() => Promise<void>}>}
 */
export async function startApp() {
  // Fail early and clearly when dependencies are missing.
  await fs.access(SPA_JS_BUNDLE).catch(() => {
    throw new Error(`auth0-spa-js bundle not found at ${SPA_JS_BUNDLE}; run scripts/e2e-deps.sh`);
  });

  const port = await freePort();
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, `http://localhost:${port}`);
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    try {
      let entry = files[url.pathname];
      if (!entry) {
        if (url.pathname === '/favicon.ico') {
          res.writeHead(204).end();
          return;
        }
        // Every other path is a page of the SPA (/, /cb, ...).
        entry = { file: INDEX, type: 'text/html; charset=utf-8' };
      }
      const body = await fs.readFile(entry.file);
      res.writeHead(200, {
        'content-type': entry.type,
        'content-length': body.length,
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    }
  });
  server.keepAliveTimeout = 1_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    // Listen on loopback; the browser reaches it as http://localhost:PORT.
    server.listen(port, '127.0.0.1', resolve);
  });

  const stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });

  return { port, origin: `http://localhost:${port}`, requests, stop };
}
