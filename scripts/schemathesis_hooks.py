"""Schemathesis hooks for the My Account API contract tests (scripts/schemathesis.sh).

Loaded by schemathesis through SCHEMATHESIS_HOOKS. What it needs comes from the
environment, which scripts/schemathesis.sh sets:

  LATCHKEY_ST_ORIGIN     http://localhost:PORT (the tenant's canonical origin)
  LATCHKEY_ST_CLIENT_ID  a client allowed the `password` grant, with a client
                         grant to the My Account API holding LATCHKEY_ST_SCOPE
  LATCHKEY_ST_USERNAME, LATCHKEY_ST_PASSWORD
  LATCHKEY_ST_SCOPE      the space-separated My Account scopes to ask for
  LATCHKEY_ST_SUMMARY    where to write the per-operation summary (JSON)
  LATCHKEY_ST_CONNECTION an upstream connection active for connected accounts,
                         with the client among its enabled_clients
  LATCHKEY_ST_REDIRECT_URI  one of the client's callbacks (connect's redirect_uri)
  LATCHKEY_ST_IDP_USERNAME, LATCHKEY_ST_IDP_PASSWORD  the user's account at that
                         connection's provider (a real one, on loopback)
  LATCHKEY_ST_AUTHENTICATOR  the `latchkey-authenticator` binary, the device that
                         enrolls in push-notification enrollments
  LATCHKEY_ST_DEVICES    a directory for the devices' state files
  LATCHKEY_ST_PUSH_SUMMARY  where to write how many push devices enrolled and how
                         many push methods verify confirmed (JSON)

It provides:

- `MyAccountToken`, the auth provider: `POST {origin}/oauth/token` with the
  password grant, audience {origin}/me/ and every scope; the token is replaced
  every REFRESH_INTERVAL_SECONDS (tokens live 600 s, a run may last longer) and
  right after the run changes the user's password (a verified `password`
  enrollment; `after_call`). Schemathesis's own caching and its re-login on 401
  are not used: a valid token the server wrongly rejects must be reported, not
  retried away.
- links between operations the official document lacks (EXTRA_LINKS, added to the
  loaded document in memory by `before_load_schema`), for the stateful phase;
- a device for each push-notification enrollment the run starts (`after_call`):
  after a 202 of `POST /authentication-methods {"type": "push-notification"}`,
  `latchkey-authenticator enroll --uri <barcode_uri>` enrolls a real device with
  the ticket, so that the stateful phase's verify of that enrollment reaches 201;
- one deliberate deviation, also applied in memory (DECLARED_404): latchkey answers
  404 for an ID the user does not have on PATCH and DELETE of a method and DELETE
  of a connected account, as GET does (MYACCOUNT.md section 10 Q14;
  docs/my-account-api.md). The document declares 404 for GET only;
- three checks, enabled by name in the configuration the script generates:
  - `valid_token_not_rejected`: a request carrying a token this file fetched,
    unexpired, must not get 401;
  - `reaches_success`: each operation of MUST_SUCCEED answered 2xx at least once,
    so that a server answering 401/403/400 to everything (statuses every
    operation declares, hence "conforming") cannot pass; enrollment of each
    type of MUST_ENROLL_TYPES (codes sent by email, SMS or voice; a push
    notification's device) started; and a push-notification method confirmed
    (verify's 201) once its device enrolled;
  - `status_summary`: writes the statuses each operation answered to
    LATCHKEY_ST_SUMMARY, for the script's summary (never fails).

Run directly (`python schemathesis_hooks.py`), it fetches one token and checks its
scopes and lifetime, then connects one account the way an app and a browser do
(connect, the provider's login form, back through latchkey's /login/callback to
the redirect_uri with a connect_code, complete), so that the run lists a real
connected account and can delete it: the script's preflight.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
import time

import requests

# Access tokens of the My Account API live 600 s (tenant default `token_lifetime`).
# A new one every 240 s: none is used when older than 240 s plus one request's
# duration, far from its expiry even on a slow machine.
REFRESH_INTERVAL_SECONDS = 240
# A token must outlive its use by at least this much, or the preflight fails.
MIN_TOKEN_LIFETIME_SECONDS = REFRESH_INTERVAL_SECONDS + 120

# Operations that must answer 2xx at least once in a run. Each is reachable with
# generated data and no prior state (the user exists and has a password; the
# tenant enables totp and recovery-code), or through the links below (connect
# with the listed connection and the client's callback; delete of the account the
# preflight connected, from the list). The others need state the generator
# cannot produce (a `connect_code` only a provider's redirect carries), so they
# are held to conformance only.
MUST_SUCCEED = (
    "GET /factors",
    "GET /authentication-methods",
    "POST /authentication-methods",
    "GET /connected-accounts/accounts",
    "GET /connected-accounts/connections",
    "POST /connected-accounts/connect",
    "DELETE /connected-accounts/accounts/{id}",
)

# Factor types whose enrollment must have started (202) at least once: the ones
# that send a code through a provider (the script's message sinks), so that the
# delivery path is exercised, not only its error answers, and push notifications
# (the device's ticket and URI). The document's own request examples
# (`user@example.com`, `+15551234567`, `{"type": "push-notification"}`) reach them.
MUST_ENROLL_TYPES = ("email", "phone", "push-notification")

# Push-notification methods whose device enrolled (their IDs), and those confirmed.
_push: dict[str, set[str]] = {"enrolled": set(), "confirmed": set(), "failed": set()}
_push_lock = threading.Lock()


def _json(response) -> dict:
    """A response's JSON object, or {} (a schema check reports a bad body)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def enroll_device(barcode_uri: str) -> None:
    """`latchkey-authenticator enroll --uri <barcode_uri>`, with a state file of its own."""
    import subprocess
    import tempfile

    binary = _env("LATCHKEY_ST_AUTHENTICATOR")
    state_dir = tempfile.mkdtemp(prefix="device-", dir=_env("LATCHKEY_ST_DEVICES"))
    done = subprocess.run(
        [binary, "--state", os.path.join(state_dir, "state.json"), "enroll", "--uri", barcode_uri,
         "--name", "schemathesis device"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"latchkey-authenticator enroll failed ({done.returncode}): {done.stderr.strip()}")


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set (scripts/schemathesis.sh sets it)")
    return value


class TokenError(RuntimeError):
    pass


# The user's current password: LATCHKEY_ST_PASSWORD until a verified password
# enrollment changes it (see `after_call`).
_state: dict[str, str] = {}


def fetch_token() -> tuple[str, float]:
    """POST /oauth/token (password grant) and return (access_token, expires_at monotonic)."""
    origin = _env("LATCHKEY_ST_ORIGIN").rstrip("/")
    scope = _env("LATCHKEY_ST_SCOPE")
    form = {
        "grant_type": "password",
        "client_id": _env("LATCHKEY_ST_CLIENT_ID"),
        "username": _env("LATCHKEY_ST_USERNAME"),
        "password": _state.get("password") or _env("LATCHKEY_ST_PASSWORD"),
        "audience": f"{origin}/me/",
        "scope": scope,
    }
    started = time.monotonic()
    try:
        response = requests.post(f"{origin}/oauth/token", data=form, timeout=30)
    except requests.RequestException as exc:
        raise TokenError(f"POST {origin}/oauth/token failed: {exc}") from exc
    if response.status_code != 200:
        raise TokenError(f"POST {origin}/oauth/token answered {response.status_code}: {response.text[:2000]}")
    try:
        body = response.json()
        token = body["access_token"]
        expires_in = int(body["expires_in"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError(f"unexpected token response: {response.text[:2000]}") from exc
    granted = set(str(body.get("scope", "")).split())
    missing = set(scope.split()) - granted
    if missing:
        # Every My Account operation declares 403; a token short of scopes would
        # turn the run into a test of 403 responses and still "conform".
        raise TokenError(f"the token lacks scopes {sorted(missing)} (granted: {sorted(granted)})")
    if expires_in < MIN_TOKEN_LIFETIME_SECONDS:
        raise TokenError(
            f"the token lives {expires_in} s; these hooks refresh every {REFRESH_INTERVAL_SECONDS} s and need "
            f"at least {MIN_TOKEN_LIFETIME_SECONDS} s (lower REFRESH_INTERVAL_SECONDS)"
        )
    return token, started + expires_in


# Tokens this file fetched and still considers valid, with their expiry (monotonic).
_issued: dict[str, float] = {}
_issued_lock = threading.Lock()


def _fresh_token_in(case) -> bool:
    headers = case.headers or {}
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not isinstance(value, str) or not value.startswith("Bearer "):
        return False
    with _issued_lock:
        expires_at = _issued.get(value[len("Bearer ") :])
    # 60 s of margin: a token this close to its expiry may be refused by a skewed clock.
    return expires_at is not None and time.monotonic() < expires_at - 60


# Operations where latchkey answers 404 for an unknown ID though the document
# declares no 404 (see the module docstring).
DECLARED_404 = (
    ("/authentication-methods/{authentication_method_id}", "patch"),
    ("/authentication-methods/{authentication_method_id}", "delete"),
    ("/connected-accounts/accounts/{id}", "delete"),
)

# OpenAPI links added to the loaded document (in memory; the file is untouched).
# The official document declares none, and the links schemathesis infers on its own
# point at a field that does not exist (`authentication_methods/*/authentication_method_id`).
# Without these, the stateful phase never reaches an existing authentication method:
# GET/PATCH/DELETE by ID would only see made-up IDs, and the 200 bodies of GET/PATCH
# and the 201 of verify would never be checked against the schema. Schemathesis never
# starts a scenario with POST /authentication-methods (its body names an
# `identity_user_id` nothing produces), hence the links from the list to enrollments.
# Links describe how operations chain; they add no requirement of their own.
_METHOD_ID_FROM_LOCATION = "$response.header.Location#regex:/authentication-methods/([^/?#]+)$"
_BY_ID = ("getAuthenticationMethod", "updateAuthenticationMethod", "deleteAuthenticationMethod")


def _links_by_id(suffix: str, expression: str) -> dict:
    return {
        f"{op}{suffix}": {"operationId": op, "parameters": {"path.authentication_method_id": expression}}
        for op in _BY_ID
    }


EXTRA_LINKS = {
    ("/authentication-methods", "get", "200"): {
        # The first listed method (the user's password, usually).
        **_links_by_id("FromList", "$response.body#/authentication_methods/0/id"),
        # An enrollment that verification can complete without a second factor (a
        # recovery code), and one with a generated body (any type).
        "enrollRecoveryCode": {
            "operationId": "createAuthenticationMethod",
            "requestBody": {"type": "recovery-code"},
            "x-schemathesis": {"merge_body": False},
        },
        "enrollGenerated": {"operationId": "createAuthenticationMethod"},
    },
    ("/authentication-methods", "post", "202"): {
        # The verification of the method being enrolled: its ID from the Location,
        # used as is (as the document says), the create's `auth_session` and nothing
        # else. That confirms a recovery code (201); other types get a 400 (no OTP, no
        # new password...). The only link from a create, so that scenarios take it:
        # pending methods are reached from the list.
        "confirmAuthenticationMethodFromCreate": {
            "operationId": "confirmAuthenticationMethod",
            "parameters": {"path.authentication_method_id": _METHOD_ID_FROM_LOCATION},
            "requestBody": {"auth_session": "$response.body#/auth_session"},
            "x-schemathesis": {"merge_body": False},
        },
    },
    # The confirmed method, by the Location of the verification.
    ("/authentication-methods/{authentication_method_id}/verify", "post", "201"): _links_by_id(
        "FromVerify", _METHOD_ID_FROM_LOCATION
    ),
    # Connect with a connection the user may use and one of the app's callbacks
    # (generated names and URIs are never either), the rest of the body generated.
    ("/connected-accounts/connections", "get", "200"): {
        "connectListedConnection": {
            "operationId": "createConnectedAccountRequest",
            "requestBody": {
                "connection": "$response.body#/connections/0/name",
                "redirect_uri": os.environ.get("LATCHKEY_ST_REDIRECT_URI", ""),
            },
        },
    },
    # Complete with the started request's auth_session (the connect_code is
    # generated, so this answers 400: an unknown code).
    ("/connected-accounts/connect", "post", "201"): {
        "completeStarted": {
            "operationId": "completeConnectedAccountRequest",
            "requestBody": {
                "auth_session": "$response.body#/auth_session",
                "redirect_uri": os.environ.get("LATCHKEY_ST_REDIRECT_URI", ""),
            },
        },
    },
    # The first listed account (the one the preflight connected), to delete.
    ("/connected-accounts/accounts", "get", "200"): {
        "deleteListedAccount": {
            "operationId": "deleteConnectedAccount",
            "parameters": {"path.id": "$response.body#/accounts/0/id"},
        },
    },
}


if __name__ != "__main__":
    import schemathesis

    @schemathesis.hook
    def before_load_schema(context, raw_schema):
        for path, method in DECLARED_404:
            responses = raw_schema["paths"][path][method]["responses"]
            responses.setdefault("404", {"$ref": "#/components/responses/NotFound"})
        for (path, method, status), links in EXTRA_LINKS.items():
            responses = raw_schema["paths"][path][method]["responses"]
            response = responses[status]
            if "$ref" in response:
                # Links on the shared component would reach every operation using it:
                # this operation gets its own copy of the response instead.
                prefix = "#/components/responses/"
                ref = response["$ref"]
                if not ref.startswith(prefix) or len(response) != 1:
                    raise RuntimeError(f"{method.upper()} {path} {status}: cannot inline {ref}: update EXTRA_LINKS")
                response = copy.deepcopy(raw_schema["components"]["responses"][ref[len(prefix):]])
                responses[status] = response
            response["links"] = {**response.get("links", {}), **links}

    @schemathesis.hook
    def after_call(context, case, response):
        operation = case.operation.definition.raw.get("operationId")
        # A push-notification enrollment: its device enrolls, as the user's phone would.
        if (
            operation == "createAuthenticationMethod"
            and response.status_code == 202
            and isinstance(case.body, dict)
            and case.body.get("type") == "push-notification"
        ):
            body = _json(response)
            try:
                enroll_device(body["barcode_uri"])
            except (RuntimeError, KeyError, OSError) as exc:
                with _push_lock:
                    _push["failed"].add(f"{body.get('id')}: {exc}")
            else:
                with _push_lock:
                    _push["enrolled"].add(str(body.get("id")))
        if (
            operation == "confirmAuthenticationMethod"
            and response.status_code == 201
            and _json(response).get("type") == "push-notification"
        ):
            with _push_lock:
                _push["confirmed"].add(str(_json(response).get("id")))
        # A verified password enrollment changes the user's password: later tokens
        # need the new one, and the server may revoke the ones it issued before.
        if (
            case.operation.definition.raw.get("operationId") == "confirmAuthenticationMethod"
            and response.status_code == 201
            and isinstance(case.body, dict)
            and isinstance(case.body.get("new_password"), str)
        ):
            with _issued_lock:
                _state["password"] = case.body["new_password"]
                _issued.clear()

    # refresh_interval=None: no caching by schemathesis (and no re-login on 401); `get`
    # runs for every request and keeps the token itself.
    @schemathesis.auth(refresh_interval=None)
    class MyAccountToken:
        """Bearer token for the My Account API."""

        def __init__(self):
            self.token: str | None = None
            self.refresh_at = 0.0
            self.lock = threading.Lock()

        def get(self, case, ctx):
            with self.lock:
                with _issued_lock:
                    revoked = self.token is not None and self.token not in _issued
                if self.token is None or revoked or time.monotonic() >= self.refresh_at:
                    token, expires_at = fetch_token()
                    with _issued_lock:
                        _issued[token] = expires_at
                    self.token = token
                    self.refresh_at = time.monotonic() + REFRESH_INTERVAL_SECONDS
                return self.token

        def set(self, case, data, ctx):
            case.headers = dict(case.headers or {})
            case.headers["Authorization"] = f"Bearer {data}"

    @schemathesis.check
    def valid_token_not_rejected(ctx, response, case):
        """A fresh token with every My Account scope must never get 401."""
        if response.status_code == 401 and _fresh_token_in(case):
            raise AssertionError(
                "401 for a request carrying a valid, unexpired access token with all My Account scopes\n"
                f"Response: {response.text[:500]}"
            )
        return None

    @schemathesis.check
    class reaches_success:  # noqa: N801 - the class name is the check's name
        """Each operation of MUST_SUCCEED answered 2xx at least once."""

        def __init__(self):
            self.reached: set[str] = set()
            self.tested: set[str] = set()
            self.enrolled: set[str] = set()
            self.lock = threading.Lock()

        def after_response(self, ctx, response, case):
            with self.lock:
                self.tested.add(case.operation.label)
                if 200 <= response.status_code < 300:
                    self.reached.add(case.operation.label)
                    if (
                        case.operation.label == "POST /authentication-methods"
                        and response.status_code == 202
                        and isinstance(case.body, dict)
                    ):
                        self.enrolled.add(str(case.body.get("type")))
            return None

        def after_run(self, ctx):
            missing = [label for label in MUST_SUCCEED if label in self.tested and label not in self.reached]
            if missing:
                raise AssertionError(
                    "never answered 2xx to a request with a valid token: "
                    + ", ".join(missing)
                    + "\n(every response was an error: the run tested nothing but error paths)"
                )
            if "POST /authentication-methods" in self.tested:
                never = [t for t in MUST_ENROLL_TYPES if t not in self.enrolled]
                if never:
                    raise AssertionError(
                        "POST /authentication-methods never answered 202 for type " + ", ".join(never)
                        + " (their codes could not be sent?)"
                    )
            with _push_lock:
                failed, enrolled, confirmed = (set(_push[k]) for k in ("failed", "enrolled", "confirmed"))
            if failed:
                raise AssertionError("a push device could not enroll: " + "; ".join(sorted(failed)))
            if enrolled and "POST /authentication-methods/{authentication_method_id}/verify" in self.tested \
                    and not confirmed:
                raise AssertionError(
                    f"{len(enrolled)} push device(s) enrolled, but verify never confirmed a push-notification method"
                )

    @schemathesis.check
    class status_summary:  # noqa: N801
        """Statuses each operation answered (for the script's summary); never fails."""

        def __init__(self):
            self.statuses: dict[str, set[int]] = {}
            self.lock = threading.Lock()

        def after_response(self, ctx, response, case):
            with self.lock:
                self.statuses.setdefault(case.operation.label, set()).add(response.status_code)
            return None

        def after_run(self, ctx):
            path = os.environ.get("LATCHKEY_ST_SUMMARY")
            if path:
                with open(path, "w", encoding="utf-8") as fd:
                    json.dump({k: sorted(v) for k, v in sorted(self.statuses.items())}, fd, indent=1)
            path = os.environ.get("LATCHKEY_ST_PUSH_SUMMARY")
            if path:
                with _push_lock:
                    counts = {k: len(v) for k, v in _push.items()}
                with open(path, "w", encoding="utf-8") as fd:
                    json.dump(counts, fd)


class ConnectError(RuntimeError):
    pass


def connect_account(token: str) -> dict:
    """Connects the user's account at LATCHKEY_ST_CONNECTION's provider, as an app and
    a browser would, and returns the account `complete` answered."""
    import base64
    import hashlib
    import html.parser
    import secrets
    from urllib.parse import parse_qs, urljoin, urlsplit

    origin = _env("LATCHKEY_ST_ORIGIN").rstrip("/")
    redirect_uri = _env("LATCHKEY_ST_REDIRECT_URI")
    api = f"{origin}/me/v1/connected-accounts"
    auth = {"Authorization": f"Bearer {token}"}
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    started = requests.post(
        f"{api}/connect",
        headers=auth,
        timeout=30,
        json={
            "connection": _env("LATCHKEY_ST_CONNECTION"),
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    if started.status_code != 201:
        raise ConnectError(f"POST {api}/connect answered {started.status_code}: {started.text[:2000]}")
    body = started.json()

    class LoginForm(html.parser.HTMLParser):
        action = None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "form" and attrs.get("id") == "login":
                self.action = attrs.get("action")

    # The browser: latchkey's connect URI, the provider, its login form, back to
    # latchkey's /login/callback, which sends it to the app's redirect_uri.
    browser = requests.Session()
    url = f"{body['connect_uri']}?ticket={body['connect_params']['ticket']}"
    response = browser.get(url, allow_redirects=False, timeout=30)
    for _ in range(20):
        if response.is_redirect:
            url = urljoin(url, response.headers["Location"])
            if url.startswith(redirect_uri):
                break
            response = browser.get(url, allow_redirects=False, timeout=30)
            continue
        form = LoginForm()
        form.feed(response.text)
        if response.status_code != 200 or not form.action:
            raise ConnectError(f"GET {url} answered {response.status_code} without a login form: {response.text[:2000]}")
        url = urljoin(url, form.action)
        response = browser.post(
            url,
            data={"username": _env("LATCHKEY_ST_IDP_USERNAME"), "password": _env("LATCHKEY_ST_IDP_PASSWORD")},
            allow_redirects=False,
            timeout=30,
        )
    else:
        raise ConnectError(f"the browser never reached {redirect_uri} (last: {url})")
    query = parse_qs(urlsplit(url).query)
    if query.get("state") != [state] or not query.get("connect_code"):
        raise ConnectError(f"the app was sent to {url}: no connect_code with its state")
    completed = requests.post(
        f"{api}/complete",
        headers=auth,
        timeout=30,
        json={
            "auth_session": body["auth_session"],
            "connect_code": query["connect_code"][0],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )
    if completed.status_code != 201:
        raise ConnectError(f"POST {api}/complete answered {completed.status_code}: {completed.text[:2000]}")
    return completed.json()


if __name__ == "__main__":
    # Preflight: one token, its scopes checked; one connected account.
    try:
        _token, _expires = fetch_token()
    except (TokenError, RuntimeError) as exc:
        print(f"schemathesis: cannot get a My Account access token: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"schemathesis: got a My Account access token ({int(_expires - time.monotonic())} s left)")
    try:
        _account = connect_account(_token)
    except (ConnectError, RuntimeError, requests.RequestException) as exc:
        print(f"schemathesis: cannot connect an account: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"schemathesis: connected account {_account.get('id')} at {_account.get('connection')}")
