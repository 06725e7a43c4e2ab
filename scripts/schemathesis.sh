#!/usr/bin/env bash
# Contract tests of the My Account API (/me/v1): schemathesis, driven by Auth0's
# official OpenAPI document (../shared/spec/myaccount-api-oas.json, beside the
# clone), against the real server binary.
#
#   LATCHKEY_BIN=target/debug/latchkey bash scripts/schemathesis.sh
#
# What it does:
#   1. installs the pinned schemathesis (scripts/schemathesis-requirements.txt)
#      into .venv-schemathesis/ at the repository root, recreating it whenever
#      that file changes;
#   2. starts an SMTP sink and an SMS webhook receiver (scripts/schemathesis_sinks.py),
#      an upstream OpenID provider (crates/latchkey/tests/upstream/oidc/server.mjs,
#      oidc-provider, its npm packages installed from their lock file when missing),
#      and boots `$LATCHKEY_BIN serve` on a free port with a fresh data directory and
#      a tenant file of its own (a SPA client allowed the password grant, with a
#      client grant to the My Account API holding all ten scopes; one user; the
#      email and phone factors delivering to those sinks; push notifications
#      enabled with a signed webhook (the run starts no login, so nothing is ever
#      pushed: each push enrollment's device is latchkey-authenticator, run by the
#      hooks, from beside LATCHKEY_BIN); an `oidc` connection to that provider,
#      active for connected accounts);
#   3. checks that the password grant yields a token with all ten scopes, and
#      connects the user's account at the provider (connect, its login form,
#      /login/callback, complete), so that the run lists and deletes a real one;
#   4. runs schemathesis against http://localhost:PORT/me/v1: every phase
#      (examples, coverage, fuzzing, stateful), positive and negative data, a
#      fixed seed, a bounded number of cases; tokens are fetched and refreshed by
#      scripts/schemathesis_hooks.py (they live 600 s);
#   5. prints a summary (statuses seen per operation) and exits non-zero on any
#      failure. It never skips: what it cannot install or start is an error.
#
# Environment (all optional except LATCHKEY_BIN):
#   LATCHKEY_ST_SEED          the seed (default below); a failure reproduces with it
#   LATCHKEY_ST_MAX_EXAMPLES  cases per operation and phase (default below)
#   LATCHKEY_ST_TIMEOUT       seconds before the schemathesis run is killed (default 900)
#   LATCHKEY_ST_KEEP=1        keep the temporary directory (server log, tenant file, config)
set -euo pipefail

die() {
  echo "schemathesis: ERROR: $*" >&2
  exit 1
}
say() { echo "schemathesis: $*"; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec_dir="$(cd "${repo_root}/.." && pwd)/shared/spec"
spec="${spec_dir}/myaccount-api-oas.json"
requirements="${repo_root}/scripts/schemathesis-requirements.txt"
hooks="${repo_root}/scripts/schemathesis_hooks.py"
venv="${repo_root}/.venv-schemathesis"

seed="${LATCHKEY_ST_SEED:-20261122}"
max_examples="${LATCHKEY_ST_MAX_EXAMPLES:-200}"
run_timeout="${LATCHKEY_ST_TIMEOUT:-900}"
[[ "${seed}" =~ ^[0-9]+$ ]] || die "LATCHKEY_ST_SEED must be a non-negative integer (got '${seed}')"
[[ "${max_examples}" =~ ^[1-9][0-9]*$ ]] || die "LATCHKEY_ST_MAX_EXAMPLES must be a positive integer (got '${max_examples}')"
[[ "${run_timeout}" =~ ^[1-9][0-9]*$ ]] || die "LATCHKEY_ST_TIMEOUT must be a positive integer (got '${run_timeout}')"

# --- inputs -------------------------------------------------------------------
[[ -n "${LATCHKEY_BIN:-}" ]] \
  || die "LATCHKEY_BIN is not set: point it at the server binary, e.g. LATCHKEY_BIN=target/debug/latchkey"
bin="${LATCHKEY_BIN}"
[[ "${bin}" == /* ]] || bin="${PWD}/${bin}"
[[ -f "${bin}" && -x "${bin}" ]] || die "LATCHKEY_BIN=${LATCHKEY_BIN} is not an executable file (resolved to ${bin})"
# The push authenticator enrolls the devices of push-notification enrollments;
# cargo builds it beside the server.
authenticator="${LATCHKEY_AUTHENTICATOR_BIN:-$(dirname "${bin}")/latchkey-authenticator}"
[[ -f "${authenticator}" && -x "${authenticator}" ]] \
  || die "the push authenticator is missing (${authenticator}): cargo build -p latchkey-authenticator, or set LATCHKEY_AUTHENTICATOR_BIN"
[[ -f "${spec}" ]] \
  || die "the My Account API document is missing: expected ${spec} (../shared/spec/ beside the repository)"
[[ -f "${requirements}" ]] || die "${requirements} is missing"
[[ -f "${hooks}" ]] || die "${hooks} is missing"
command -v timeout >/dev/null 2>&1 || die "timeout (GNU coreutils) is not installed"
command -v node >/dev/null 2>&1 || die "node is not installed (the upstream OpenID provider needs Node.js 20.19 or newer)"

# --- the upstream OpenID provider's packages, from its lock file ------------------
oidc_dir="${repo_root}/crates/latchkey/tests/upstream/oidc"
[[ -f "${oidc_dir}/package-lock.json" ]] || die "${oidc_dir}/package-lock.json is missing"
if [[ ! -f "${oidc_dir}/node_modules/.package-lock.json" \
  || "${oidc_dir}/package-lock.json" -nt "${oidc_dir}/node_modules/.package-lock.json" ]]; then
  say "npm ci in ${oidc_dir}"
  (cd "${oidc_dir}" && npm ci --ignore-scripts --no-audit --no-fund) || die "npm ci failed in ${oidc_dir}"
  touch "${oidc_dir}/node_modules/.package-lock.json"
fi

# --- schemathesis, pinned, in a project-local virtualenv ----------------------
command -v python3 >/dev/null 2>&1 || die "python3 is not installed (Python 3.11 or newer is required)"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "schemathesis needs Python 3.11 or newer (python3 is $(python3 --version 2>&1))"
stamp="${venv}/.requirements.installed"
if [[ ! -x "${venv}/bin/python" || ! -f "${stamp}" ]] || ! cmp -s "${requirements}" "${stamp}"; then
  say "installing $(grep -m1 '^schemathesis==' "${requirements}") into ${venv}"
  rm -rf "${venv}"
  python3 -m venv "${venv}" \
    || die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
  "${venv}/bin/python" -m pip install --disable-pip-version-check --no-input --quiet -r "${requirements}" \
    || die "pip could not install ${requirements} into ${venv}"
  cp "${requirements}" "${stamp}"
fi
pinned="$(sed -n 's/^schemathesis==//p' "${requirements}")"
installed="$("${venv}/bin/python" -c 'from importlib.metadata import version; print(version("schemathesis"))' 2>/dev/null)" \
  || die "schemathesis is not importable in ${venv}; delete that directory and run again"
[[ "${installed}" == "${pinned}" ]] \
  || die "${venv} has schemathesis ${installed}, ${requirements} pins ${pinned}; delete ${venv} and run again"
py="${venv}/bin/python"

# --- the document: the planned operations are exactly the ones excluded below --
# GET /consents, GET /consents/{consent_id} and GET /organizations are marked
# `x-release-lifecycle: planned` (not released by Auth0; latchkey does not serve
# them), so they are excluded. Nothing else is. If a new Auth0 document changes
# which operations are planned, this stops, rather than silently testing less.
excluded_ids=(getConsents getConsent getOrganizations)
"${py}" - "${spec}" "${excluded_ids[@]}" <<'PY' || die "update excluded_ids in scripts/schemathesis.sh"
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
planned = {
    op["operationId"]
    for item in doc["paths"].values()
    for method, op in item.items()
    if isinstance(op, dict) and op.get("x-release-lifecycle") == "planned"
}
excluded = set(sys.argv[2:])
if planned != excluded:
    print(f"schemathesis: the document's planned operations are {sorted(planned)}, "
          f"the script excludes {sorted(excluded)}", file=sys.stderr)
    sys.exit(1)
PY

# --- the server ---------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-schemathesis.XXXXXX")"
server_pid=""
server_log="${tmp}/server.log"

stop_server() {
  if [[ -n "${server_pid}" ]] && kill -0 "${server_pid}" 2>/dev/null; then
    kill -TERM "${server_pid}" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "${server_pid}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${server_pid}" 2>/dev/null || true
    wait "${server_pid}" 2>/dev/null || true
  fi
  server_pid=""
}
print_server_log() {
  if [[ -s "${server_log}" ]]; then
    echo "----- server log (last 300 lines of ${server_log}) -----" >&2
    tail -n 300 "${server_log}" >&2
    echo "----- end of server log -----" >&2
  fi
}
sinks_pid=""
idp_pid=""
cleanup() {
  local rc=$?
  stop_server
  if [[ -n "${idp_pid}" ]]; then
    kill -TERM "${idp_pid}" 2>/dev/null || true
    wait "${idp_pid}" 2>/dev/null || true
  fi
  if [[ -n "${sinks_pid}" ]]; then
    kill -TERM "${sinks_pid}" 2>/dev/null || true
    wait "${sinks_pid}" 2>/dev/null || true
  fi
  if [[ "${rc}" -ne 0 ]]; then
    print_server_log
  fi
  if [[ "${LATCHKEY_ST_KEEP:-}" == "1" ]]; then
    echo "schemathesis: kept ${tmp}" >&2
  else
    rm -rf "${tmp}"
  fi
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="$("${py}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
origin="http://localhost:${port}"
client_id="schemathesis-spa"
username="alice@example.com"
password="$("${py}" -c 'import secrets; print("St-" + secrets.token_urlsafe(18))')"
scopes=(
  create:me:authentication_methods read:me:authentication_methods
  update:me:authentication_methods delete:me:authentication_methods
  read:me:factors
  create:me:connected_accounts read:me:connected_accounts delete:me:connected_accounts
  read:me:consents read:me:organizations
)
scope_list="$(printf '%s, ' "${scopes[@]}")"

# --- message sinks: the email and phone factors send real messages ------------
sms_secret="$("${py}" -c 'import secrets; print(secrets.token_urlsafe(24))')"
"${py}" "${repo_root}/scripts/schemathesis_sinks.py" "${tmp}/sinks.ports" "${sms_secret}" "${tmp}/sinks.json" \
  >"${tmp}/sinks.log" 2>&1 &
sinks_pid=$!
for _ in $(seq 1 100); do
  [[ -s "${tmp}/sinks.ports" ]] && break
  kill -0 "${sinks_pid}" 2>/dev/null || { cat "${tmp}/sinks.log" >&2; die "the message sinks did not start"; }
  sleep 0.1
done
[[ -s "${tmp}/sinks.ports" ]] || die "the message sinks did not start within 10 s"
read -r smtp_port webhook_port <"${tmp}/sinks.ports"
say "SMTP sink on 127.0.0.1:${smtp_port}, SMS webhook receiver on 127.0.0.1:${webhook_port}"

# --- the upstream OpenID provider: connected accounts link an account there ---
# Its client's redirect URI is latchkey's /login/callback; the app's callback
# (connect's redirect_uri) is never visited, only read from latchkey's redirect.
idp_client_secret="$("${py}" -c 'import secrets; print(secrets.token_urlsafe(24))')"
idp_password="$("${py}" -c 'import secrets; print("Idp-" + secrets.token_urlsafe(18))')"
idp_username="carol@idp.example"
app_callback="https://app.example.com/callback"
idp_config="$("${py}" - "${origin}" "${idp_client_secret}" "${idp_username}" "${idp_password}" <<'PY'
import json, sys
origin, secret, username, password = sys.argv[1:]
print(json.dumps({
    "port": 0,
    "clients": [{"client_id": "latchkey", "client_secret": secret,
                 "redirect_uris": [f"{origin}/login/callback"],
                 "token_endpoint_auth_method": "client_secret_basic",
                 "id_token_signed_response_alg": "RS256"}],
    "users": [{"sub": "carol-upstream", "email": username, "email_verified": True,
               "name": "Carol Upstream", "password": password}],
}))
PY
)"
# Its configuration (a client secret among it) in the environment, not on the
# command line. It exits when its standard input closes: a FIFO this script
# holds open (fd 7), so it goes when the script does, whatever happens.
mkfifo "${tmp}/idp.stdin"
exec 7<>"${tmp}/idp.stdin"
(cd "${oidc_dir}" && OIDC_PROVIDER_CONFIG="${idp_config}" exec node server.mjs \
  <"${tmp}/idp.stdin" >"${tmp}/idp.out" 2>"${tmp}/idp.log") &
idp_pid=$!
for _ in $(seq 1 600); do
  [[ -n "$(head -n1 "${tmp}/idp.out" 2>/dev/null)" ]] && break
  kill -0 "${idp_pid}" 2>/dev/null || break
  sleep 0.1
done
idp_line="$(head -n1 "${tmp}/idp.out" 2>/dev/null || true)"
idp_issuer="$("${py}" -c 'import json, sys; print(json.loads(sys.argv[1])["issuer"])' "${idp_line}" 2>/dev/null)" \
  || { cat "${tmp}/idp.log" >&2; die "the OpenID provider did not start within 60 s (readiness line: '${idp_line}')"; }
say "OpenID provider at ${idp_issuer}"

mkdir "${tmp}/data"
# Format: docs/tenant-file.md. No rate limits: 429 is declared (it would
# conform), but it would stop requests from reaching the code under test.
cat >"${tmp}/tenant.yaml" <<EOF
tenant: { name: schemathesis, domains: ["localhost:${port}"] }
my_account_api:
  active: true
  user_policy: require_client_grant
  rate_limits: { tenant_per_second: 0, user_per_minute: 0, anonymous_per_ip_per_second: 0 }
factors: [password, totp, recovery-code, email, phone, push-notification]
push_notifications:
  webhook: { url: "http://127.0.0.1:${webhook_port}/push", secret_env: LATCHKEY_ST_SMS_SECRET }
email_provider:
  smtp: { host: 127.0.0.1, port: ${smtp_port}, security: none, from: "Contract tests <no-reply@localhost>" }
sms_provider:
  webhook: { url: "http://127.0.0.1:${webhook_port}/sms", secret_env: LATCHKEY_ST_SMS_SECRET }
connections:
  - name: Username-Password-Authentication
  - name: upstream-idp
    strategy: oidc
    options: { issuer: "${idp_issuer}", client_id: latchkey, client_secret_env: LATCHKEY_ST_IDP_SECRET,
               scope: openid profile email offline_access }
    connected_accounts: { active: true }
    enabled_clients: [${client_id}]
clients:
  - { client_id: ${client_id}, name: Contract tests, app_type: spa, grant_types: [password],
      callbacks: ["${app_callback}"] }
client_grants:
  - client_id: ${client_id}
    audience: "${origin}/me/"
    subject_type: user
    scope: [${scope_list%, }]
users:
  - { email: ${username}, password: "${password}", connection: Username-Password-Authentication,
      email_verified: true, user_id: "auth0|alice", name: Alice Example }
EOF

say "starting ${bin} on 127.0.0.1:${port}"
env -u LATCHKEY_MASTER_KEY -u LATCHKEY_MASTER_KEY_FILE RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
  LATCHKEY_ST_SMS_SECRET="${sms_secret}" LATCHKEY_ST_IDP_SECRET="${idp_client_secret}" \
  "${bin}" serve --listen "127.0.0.1:${port}" --data-dir "${tmp}/data" --tenant-file "${tmp}/tenant.yaml" \
  --outbound-allow-loopback \
  >"${server_log}" 2>&1 &
server_pid=$!

"${py}" - "${port}" "${server_pid}" <<'PY' || die "the server did not become ready (GET /healthz → 200) within 30 s"
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
problem = "no answer yet"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        print("schemathesis: the server exited during start-up", file=sys.stderr)
        sys.exit(1)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
            problem = f"GET /healthz answered {response.status}"
    except Exception as exc:  # connection refused while binding, HTTP errors
        problem = f"GET /healthz: {exc}"
    time.sleep(0.1)
print(f"schemathesis: {problem}", file=sys.stderr)
sys.exit(1)
PY
say "server ready"

# --- token preflight (the hooks fetch the tokens the run uses) ----------------
export LATCHKEY_ST_ORIGIN="${origin}"
export LATCHKEY_ST_CLIENT_ID="${client_id}"
export LATCHKEY_ST_USERNAME="${username}"
export LATCHKEY_ST_PASSWORD="${password}"
export LATCHKEY_ST_SCOPE="${scopes[*]}"
export LATCHKEY_ST_SUMMARY="${tmp}/summary.json"
export LATCHKEY_ST_CONNECTION="upstream-idp"
export LATCHKEY_ST_REDIRECT_URI="${app_callback}"
export LATCHKEY_ST_IDP_USERNAME="${idp_username}"
export LATCHKEY_ST_IDP_PASSWORD="${idp_password}"
export LATCHKEY_ST_AUTHENTICATOR="${authenticator}"
mkdir "${tmp}/devices"
export LATCHKEY_ST_DEVICES="${tmp}/devices"
export LATCHKEY_ST_PUSH_SUMMARY="${tmp}/push.json"
"${py}" "${hooks}" || die "no usable My Account access token or connected account (see above)"

# --- schemathesis -------------------------------------------------------------
# Settings only the configuration file can express. Generated here, and named
# explicitly, so that no schemathesis.toml elsewhere applies.
cat >"${tmp}/schemathesis.toml" <<'EOF'
# No state carried between runs: no example database (.hypothesis/), no cache
# (.schemathesis/) replaying earlier runs' requests. Same seed, same run.
[cache]
enabled = false

[generation]
database = "none"

[checks]
enabled = false
# Built-in checks that apply to this API.
not_a_server_error.enabled = true            # no 5xx, ever
status_code_conformance.enabled = true       # only statuses the operation declares
content_type_conformance.enabled = true      # the media type declared for that status
response_headers_conformance.enabled = true  # required headers present and of the declared type
response_schema_conformance.enabled = true   # bodies valid against the schema (formats included)
negative_data_rejection.enabled = true       # schema-violating requests get 4xx
missing_required_header.enabled = true       # no Authorization header: 401
ignored_auth.enabled = true                  # 2xx only with a valid token (probes: none, invalid: 401/403)
unsupported_method.enabled = true            # undeclared methods: 405 with Allow
allow_header_conformance.enabled = true      # Allow lists exactly the declared methods
use_after_free.enabled = true                # a deleted method reads as 404
# Left out, on purpose:
# - positive_data_acceptance: schema-valid requests legitimately fail with 400
#   (an unknown auth_session, a factor type not enabled or not yet supported, a
#   connection with no upstream provider), and 400 is not among its statuses;
# - ensure_resource_availability: a create's Location may name a placeholder
#   (`passkey|new`, `password|new`) that GET answers 404 by design;
# - object_level_authorization: needs a second user's identity;
# - max_response_time: timing makes a poor gate.
# Checks of scripts/schemathesis_hooks.py.
valid_token_not_rejected.enabled = true
reaches_success.enabled = true
status_summary.enabled = true

# Stateful scenarios chain operations through links (see EXTRA_LINKS in the
# hooks); they use valid data so that chains go on. Invalid data is the coverage
# and fuzzing phases' business (both run positive and negative). Link values are
# used at fixed rates, not at rates learned from this server's error messages.
[phases.stateful]
link-calibration = false

[phases.stateful.generation]
mode = "positive"
EOF

# One worker and a fixed seed: the same requests in the same order on every run,
# but for the values the server makes up (IDs, auth_session) that later requests
# reuse (from Location headers and bodies, and through the links).
st_args=(
  --config-file "${tmp}/schemathesis.toml"
  run "${spec}"
  # Our server, not the document's servers[0] (https://{host}/me/v1): --url
  # replaces it, base path included.
  --url "${origin}/me/v1"
  # The `planned` operations (see above): GET /consents, GET /consents/{consent_id}, GET /organizations.
  --exclude-operation-id getConsents
  --exclude-operation-id getConsent
  --exclude-operation-id getOrganizations
  --phases examples,coverage,fuzzing,stateful
  --mode all
  --seed "${seed}"
  --max-examples "${max_examples}"
  --workers 1
  --request-timeout 10
)
say "running: schemathesis ${st_args[*]}"
started=${SECONDS}
# Run from the temporary directory, with Hypothesis's storage there too: it caches
# Unicode tables and the constants it mines from local code (the hooks file) in
# `.hypothesis/` of the working directory otherwise, whatever the database setting.
set +e
(
  cd "${tmp}"
  SCHEMATHESIS_HOOKS="${hooks}" HYPOTHESIS_STORAGE_DIRECTORY="${tmp}/hypothesis" \
    timeout --kill-after=30 "${run_timeout}" "${venv}/bin/schemathesis" "${st_args[@]}"
)
status=$?
set -e
elapsed=$((SECONDS - started))

# --- summary ------------------------------------------------------------------
echo
echo "==> schemathesis summary (seed ${seed}, ${max_examples} examples per operation and phase, ${elapsed} s)"
echo "    excluded (planned): GET /consents, GET /consents/{consent_id}, GET /organizations"
if [[ -f "${LATCHKEY_ST_SUMMARY}" ]]; then
  echo "    statuses answered per operation:"
  "${py}" - "${LATCHKEY_ST_SUMMARY}" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1], encoding="utf-8"))
width = max((len(label) for label in summary), default=0)
for label, statuses in summary.items():
    print(f"      {label:<{width}}  {' '.join(map(str, statuses))}")
PY
else
  echo "    (no per-operation summary: the run ended before its last step)"
fi
# Codes really went out, and the webhook's signatures held.
if ! "${py}" - "${tmp}/sinks.json" <<'PY'; then
import json, sys
c = json.load(open(sys.argv[1], encoding="utf-8"))
print(f"    messages delivered: {c['emails']} emails (SMTP), {c['webhooks']} SMS/voice (signed webhook)")
problems = []
if c["emails"] == 0:
    problems.append("no email reached the SMTP sink")
if c["webhooks"] == 0:
    problems.append("no SMS or voice message reached the webhook receiver")
if c["bad_signatures"]:
    problems.append(f"{c['bad_signatures']} webhook requests had a bad signature")
problems += c["errors"]
for p in problems:
    print(f"    delivery problem: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  [[ "${status}" -ne 0 ]] || status=1
fi
# Push enrollments reached a real device, and verify confirmed one.
if ! "${py}" - "${LATCHKEY_ST_PUSH_SUMMARY}" <<'PY'; then
import json, sys
try:
    c = json.load(open(sys.argv[1], encoding="utf-8"))
except OSError:
    print("    push devices: no count (the run ended before its last step)", file=sys.stderr)
    sys.exit(1)
print(f"    push devices enrolled: {c['enrolled']}, push methods confirmed by verify: {c['confirmed']}")
if c["failed"] or not c["enrolled"] or not c["confirmed"]:
    print("    push problem: every push enrollment's device must enroll, and verify confirm one", file=sys.stderr)
    sys.exit(1)
PY
  [[ "${status}" -ne 0 ]] || status=1
fi
case "${status}" in
  0) echo "==> schemathesis: PASSED" ;;
  124 | 137) echo "==> schemathesis: FAILED: the run took longer than ${run_timeout} s and was stopped" ;;
  *) echo "==> schemathesis: FAILED (schemathesis exit status ${status}; reproduce with LATCHKEY_ST_SEED=${seed})" ;;
esac
exit "${status}"
