// An upstream OpenID provider for the connected-accounts test: the program the
// integration tests use, crates/latchkey/tests/upstream/oidc/server.mjs
// (`oidc-provider`, pinned in its own package-lock.json, installed by
// scripts/e2e-deps.sh), run as a child process on 127.0.0.1 with the clients
// and users the test gives. It shows a real login form (`#login`, fields
// `username` and `password`). It prints one readiness line,
// {"port":PORT,"issuer":"http://127.0.0.1:PORT/"}, and exits when its standard
// input closes, so it never outlives this process; stop() also kills it.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startLatchkey } from './server.mjs';
import { e2eTenant, SPA_CLIENT_ID, toYaml } from './tenant.mjs';
import { freePort, WAIT_MS } from './util.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const OIDC_PROVIDER_DIR = path.join(here, '..', '..', 'crates', 'latchkey', 'tests', 'upstream', 'oidc');

const LOG_LIMIT = 1024 * 1024;

/**
 * Starts the provider with `config` (see server.mjs: `port`, `clients`, `users`, …)
 * and waits for its readiness line.
 *
 * @returns {Promise<{port:number, issuer:string, log:() => string, stop:() => Promise<void>}>}
 */
export async function startOidcProvider(config) {
  await fs.access(path.join(OIDC_PROVIDER_DIR, 'node_modules', 'oidc-provider', 'package.json')).catch(() => {
    throw new Error(`oidc-provider is not installed in ${OIDC_PROVIDER_DIR}; run scripts/e2e-deps.sh`);
  });
  // The configuration (client secrets among it) in the environment, not on the command line.
  const child = spawn(process.execPath, ['server.mjs'], {
    cwd: OIDC_PROVIDER_DIR,
    env: { ...process.env, OIDC_PROVIDER_CONFIG: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  let output = '';
  const keep = (chunk) => {
    output += chunk.toString('utf8');
    if (output.length > LOG_LIMIT) output = output.slice(-LOG_LIMIT);
  };
  child.stderr.on('data', keep);

  let exit = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      process.off('exit', killOnExit);
      resolve(exit);
    });
  });
  const log = () => output;

  const stop = async () => {
    if (!exit) {
      child.stdin.end();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };

  const ready = await new Promise((resolve, reject) => {
    let line = '';
    const timer = setTimeout(() => done(new Error(`no readiness line within ${WAIT_MS} ms`)), WAIT_MS);
    function done(err, value) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (err) reject(err);
      else resolve(value);
    }
    function onData(chunk) {
      line += chunk.toString('utf8');
      const nl = line.indexOf('\n');
      if (nl < 0) return;
      try {
        done(null, JSON.parse(line.slice(0, nl)));
      } catch (e) {
        done(new Error(`not a readiness line: ${line.slice(0, nl)} (${e.message})`));
      }
    }
    const onExit = (code, signal) => done(new Error(`the provider exited (code ${code}, signal ${signal})`));
    const onError = (err) => done(err);
    child.stdout.on('data', onData);
    child.on('exit', onExit);
    child.on('error', onError);
  }).catch(async (err) => {
    await stop();
    throw new Error(`the OpenID provider did not start: ${err.message}\n----- its output -----\n${log()}`);
  });
  // Keep draining stdout so the child never blocks on a full pipe.
  child.stdout.on('data', keep);

  if (typeof ready.issuer !== 'string' || typeof ready.port !== 'number') {
    await stop();
    throw new Error(`unexpected readiness line: ${JSON.stringify(ready)}`);
  }
  return { port: ready.port, issuer: ready.issuer, log, stop };
}

/**
 * latchkey with one `oidc` connection to a provider started beside it: the provider's
 * port is chosen first, since latchkey's tenant names the provider's issuer and the
 * provider's client names latchkey's `/login/callback` (known once latchkey has its port).
 * `connection` adds to the connection (name, display_name, connected_accounts,
 * options.scope…); `adjustTenant` changes the rest of the tenant; `users` are the
 * provider's accounts. The connection's client secret is fresh and reaches latchkey
 * only through its environment.
 *
 * @returns {Promise<{server: object, provider: object}>}
 */
export async function startWithUpstream({ app, connection, users, adjustTenant = () => {} }) {
  const providerPort = await freePort();
  const issuer = `http://127.0.0.1:${providerPort}/`;
  const clientId = 'latchkey-e2e';
  const secret = randomBytes(24).toString('base64url');
  const secretEnv = 'LATCHKEY_E2E_IDP_CLIENT_SECRET';
  const server = await startLatchkey({
    tenantYaml: (port) => {
      const tenant = e2eTenant({ port, appOrigin: app.origin });
      adjustTenant(tenant);
      tenant.connections.push({
        strategy: 'oidc',
        enabled_clients: [SPA_CLIENT_ID],
        ...connection,
        options: { issuer, client_id: clientId, client_secret_env: secretEnv, ...connection.options },
      });
      return toYaml(tenant);
    },
    env: { [secretEnv]: secret },
    // The provider runs on loopback, which the outbound guard refuses otherwise.
    args: ['--outbound-allow-loopback'],
  });
  let provider;
  try {
    provider = await startOidcProvider({
      port: providerPort,
      clients: [
        {
          client_id: clientId,
          client_secret: secret,
          redirect_uris: [`${server.origin}/login/callback`],
          token_endpoint_auth_method: 'client_secret_basic',
          id_token_signed_response_alg: 'RS256',
        },
      ],
      users,
    });
  } catch (err) {
    await server.stop();
    throw err;
  }
  if (provider.issuer !== issuer) {
    await provider.stop();
    await server.stop();
    throw new Error(`the provider listens at ${provider.issuer}, the tenant says ${issuer}`);
  }
  return { server, provider };
}
