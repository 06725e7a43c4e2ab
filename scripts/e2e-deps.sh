#!/usr/bin/env bash
# Installs what the end-to-end tests in e2e/ need:
#   - Debian's Chromium at /usr/bin/chromium (driven by playwright-core; no
#     tool is ever allowed to download a browser of its own);
#   - the npm dependencies of e2e/, installed exactly from package-lock.json
#     (install scripts are not run: none of the dependencies needs one);
#   - those of the upstream OpenID provider program the connected-accounts
#     test starts (crates/latchkey/tests/upstream/oidc/, its own lock file).
# Fails loudly when anything cannot be had; it never skips.
set -euo pipefail

die() {
  echo "e2e-deps: ERROR: $*" >&2
  exit 1
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
e2e_dir="${repo_root}/e2e"
chromium_bin="/usr/bin/chromium"

# --- Chromium ---------------------------------------------------------------
if [[ -x "${chromium_bin}" ]]; then
  echo "e2e-deps: chromium present: $("${chromium_bin}" --version 2>/dev/null || echo "${chromium_bin}")"
else
  command -v apt-get >/dev/null 2>&1 \
    || die "${chromium_bin} is missing and apt-get is not available; install Debian's chromium package by hand"
  sudo_cmd=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 \
      || die "${chromium_bin} is missing; installing it needs root (run as root or install sudo)"
    sudo_cmd=(sudo)
  fi
  echo "e2e-deps: installing chromium with apt-get (this takes a few minutes)"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update \
    || die "apt-get update failed"
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends chromium \
    || die "apt-get install chromium failed"
  [[ -x "${chromium_bin}" ]] \
    || die "chromium was installed but ${chromium_bin} does not exist"
  echo "e2e-deps: chromium installed: $("${chromium_bin}" --version 2>/dev/null || echo "${chromium_bin}")"
fi

# --- npm dependencies -------------------------------------------------------
command -v node >/dev/null 2>&1 || die "node is not installed (Node.js 20 or newer is required)"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[[ "${node_major}" -ge 20 ]] || die "Node.js 20 or newer is required (found $(node --version))"

[[ -f "${e2e_dir}/package.json" ]] || die "${e2e_dir}/package.json is missing"

cd "${e2e_dir}"
lock="package-lock.json"
if [[ -f "${lock}" ]]; then
  # Reinstall when node_modules is missing or older than the lock file.
  # npm writes node_modules/.package-lock.json on every install.
  stamp="node_modules/.package-lock.json"
  if [[ ! -d node_modules || ! -f "${stamp}" || "${lock}" -nt "${stamp}" ]]; then
    echo "e2e-deps: npm ci in e2e/"
    npm ci --ignore-scripts --no-audit --no-fund || die "npm ci failed in e2e/"
    touch "${stamp}"
  else
    echo "e2e-deps: e2e/node_modules is up to date"
  fi
else
  if [[ ! -d node_modules ]]; then
    echo "e2e-deps: no ${lock}; npm install in e2e/"
    npm install --ignore-scripts --no-audit --no-fund || die "npm install failed in e2e/"
  else
    echo "e2e-deps: e2e/node_modules present (no ${lock})"
  fi
fi

# --- the upstream OpenID provider (oidc-provider) ----------------------------
oidc_dir="${repo_root}/crates/latchkey/tests/upstream/oidc"
[[ -f "${oidc_dir}/package-lock.json" ]] || die "${oidc_dir}/package-lock.json is missing"
oidc_stamp="${oidc_dir}/node_modules/.package-lock.json"
if [[ ! -f "${oidc_stamp}" || "${oidc_dir}/package-lock.json" -nt "${oidc_stamp}" ]]; then
  echo "e2e-deps: npm ci in crates/latchkey/tests/upstream/oidc/"
  (cd "${oidc_dir}" && npm ci --ignore-scripts --no-audit --no-fund) \
    || die "npm ci failed in crates/latchkey/tests/upstream/oidc/"
  touch "${oidc_stamp}"
else
  echo "e2e-deps: crates/latchkey/tests/upstream/oidc/node_modules is up to date"
fi
[[ -f "${oidc_dir}/node_modules/oidc-provider/package.json" ]] \
  || die "oidc-provider is missing from crates/latchkey/tests/upstream/oidc/node_modules"

# --- sanity -----------------------------------------------------------------
for dep in @auth0/auth0-spa-js playwright-core openid-client; do
  [[ -f "node_modules/${dep}/package.json" ]] || die "npm dependency ${dep} is missing from e2e/node_modules"
done
[[ -f node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js ]] \
  || die "the auth0-spa-js UMD bundle is missing from node_modules"

echo "e2e-deps: ok"
