//! The Token Vault grant end to end: accounts connected through the My
//! Account API to `oidc-provider`, a second latchkey and a GitHub-like
//! server, then exchanged for their upstream access tokens at
//! `/oauth/token` by a confidential app (its refresh token) and a Custom
//! API Client (an access token for its API). The stored token while it lives, one refresh at the provider when
//! it does not (whatever the number of requests, on one node or two sharing
//! PostgreSQL), the rotated refresh token used next; a provider that
//! revoked access, is down or is slow; and what an attacker would try:
//! other users', clients' and tenants' tokens, spent and rotated ones,
//! accounts deleted under way.

use std::time::Duration;

use latchkey::store::{AccountStatus, ConnectedAccountRow};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::connected_accounts::{
    OP_PASSWORD, OP_USER, accounts, callback, complete, complete_body, connect_code, idp_refresh,
    location, start, start_with, stored_tokens, through_idp, token,
};
use crate::idp::{IDP_SECRET, Pair, acme_with, browser, idp_connection};
use crate::support::*;
use crate::upstream::github::{GithubApp, GithubServer, GithubUser};
use crate::upstream::oidc::{OidcClient, OidcConfig, OidcProvider, OidcUser};

const VAULT: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
const FCAT: &str = "http://auth0.com/oauth/token-type/federated-connection-access-token";
const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const MFA_OTP: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
const REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";
const AGENT_SECRET: &str = "agent-secret-value";
const ALICE_ID: &str = "auth0|alice";
const CAROL: &str = "carol-sub";
const DAVE: (&str, &str, &str) = ("dave-sub", "dave@op.test", "Dave-at-the-op-2026");
/// The provider's access token lifetime (oidc-provider's default).
const TTL: i64 = 3600;

/// The acme tenant with `connections`, and two clients allowed the Token
/// Vault: `agent`, a confidential app logging its users in with their
/// password, and `api-client`, the Custom API Client of the tenant's API.
fn vault_tenant(port: u16, connections: &str) -> String {
    let text = acme_with(port, connections);
    let clients = format!(
        "  - {{ client_id: agent, app_type: regular_web, client_secret: \"{AGENT_SECRET}\",\n      \
         grant_types: [password, \"{REALM}\", refresh_token, \"{MFA_OTP}\", \"{VAULT}\"] }}\n  \
         - {{ client_id: api-client, app_type: resource_server, resource_server_identifier: \"{API}\",\n      \
         client_secret: \"{AGENT_SECRET}\", grant_types: [\"{VAULT}\"] }}\n  - {{ client_id: nogrants,"
    );
    assert!(text.contains("  - { client_id: nogrants,"));
    text.replace("  - { client_id: nogrants,", &clients)
}

/// Connections to the provider at `issuer` (client `vault-rp` there): `op`
/// for the apps here, `op-spa` for the SPA alone, `op-off` not active for
/// connected accounts.
fn op_connections(issuer: &str) -> String {
    let connection = |name: &str, active: bool, clients: &str| {
        format!(
            "  - name: {name}\n    strategy: oidc\n    options: {{ issuer: \"{issuer}\", client_id: vault-rp, \
             client_secret_env: IDP_CLIENT_SECRET, scope: [openid, email, offline_access], timeout_seconds: 2 }}\n    \
             connected_accounts: {{ active: {active} }}\n    enabled_clients: [{clients}]\n"
        )
    };
    connection("op", true, "spa, agent, api-client")
        + &connection("op-spa", true, "spa")
        + &connection("op-off", false, "spa, agent")
}

/// `oidc-provider` for `rp` (its clock at `START`, Carol and Dave its
/// users), and the vault tenant applied to `rp` with its connections.
async fn provider_for(rp: &TestServer) -> OidcProvider {
    let callback = format!("http://localhost:{}/login/callback", rp.port);
    let op = OidcProvider::start(OidcConfig {
        clients: vec![OidcClient::confidential("vault-rp", IDP_SECRET, &callback)],
        users: vec![
            OidcUser::new(CAROL, OP_USER, OP_PASSWORD),
            OidcUser::new(DAVE.0, DAVE.1, DAVE.2),
        ],
        now: Some(START),
        ..OidcConfig::default()
    })
    .await;
    let text = vault_tenant(rp.port, &op_connections(op.issuer()));
    latchkey::tenant::apply::apply_text(&rp.state, &text)
        .await
        .unwrap();
    op
}

/// A server, its provider, and Alice's My Account token.
struct Vault {
    rp: TestServer,
    op: OidcProvider,
}

async fn with_provider() -> Vault {
    let rp = TestServer::with_tenants(&[other_tenant]).await;
    let op = provider_for(&rp).await;
    Vault { rp, op }
}

impl Vault {
    /// A My Account token of Alice's for her connected accounts.
    async fn me(&self) -> String {
        token(&self.rp).await
    }

    /// Alice connects the provider's account of `user` at `op`: its ID.
    async fn connect(&self, user: (&str, &str)) -> String {
        let browser = browser();
        let me = self.me().await;
        let c = start(&self.rp, &me, "op").await;
        let back = self
            .op
            .login(&browser, &c.browser_url, user.0, user.1)
            .await;
        let app = location(&callback(&browser, &back).await);
        let r = complete(&self.rp, &me, complete_body(&c, &connect_code(&c, &app))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    async fn connect_carol(&self) -> String {
        self.connect((OP_USER, OP_PASSWORD)).await
    }

    /// Moves both clocks, latchkey's and the provider's.
    async fn advance(&self, seconds: i64) {
        self.rp.clock.advance(seconds);
        self.op.advance_clock(seconds).await;
    }

    async fn refreshes(&self) -> u64 {
        self.op.token_requests("refresh_token").await
    }

    /// Alice's account `id` as stored.
    async fn row(&self, id: &str) -> Option<ConnectedAccountRow> {
        account_row(&self.rp, id).await
    }

    /// The user the provider says an access token of its is for.
    async fn upstream_user(&self, access_token: &str) -> (StatusCode, Value) {
        let res = http()
            .get(self.op.url("/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

async fn account_row(rp: &TestServer, id: &str) -> Option<ConnectedAccountRow> {
    let tenant = acme_id(rp).await;
    rp.state
        .store
        .connected_account(&tenant, ALICE_ID, id)
        .await
        .unwrap()
}

async fn acme_id(rp: &TestServer) -> String {
    let tenant = rp.state.store.tenant_by_name("acme").await.unwrap();
    tenant.unwrap().id
}

#[allow(
    clippy::disallowed_methods,
    reason = "a test client of the upstream, not an outbound request of latchkey"
)]
fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// A refresh token of `agent` for `user` (Alice by default), by password.
async fn agent_login(rp: &TestServer, user: (&str, &str), realm: &str) -> Value {
    let (status, body) = rp
        .token(&[
            ("grant_type", REALM),
            ("realm", realm),
            ("client_id", "agent"),
            ("client_secret", AGENT_SECRET),
            ("username", user.0),
            ("password", user.1),
            ("scope", "openid offline_access"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn alice_refresh_token(rp: &TestServer) -> String {
    let body = agent_login(
        rp,
        (ALICE, ALICE_PASSWORD),
        "Username-Password-Authentication",
    )
    .await;
    body["refresh_token"].as_str().unwrap().to_string()
}

/// The grant's form: `client` (with the shared secret) exchanges `subject`
/// of `subject_type` for its user's account at `connection`.
fn form<'a>(
    client: &'a str,
    subject_type: &'a str,
    subject: &'a str,
    connection: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("grant_type", VAULT),
        ("client_id", client),
        ("client_secret", AGENT_SECRET),
        ("subject_token_type", subject_type),
        ("subject_token", subject),
        ("requested_token_type", FCAT),
        ("connection", connection),
    ]
}

/// `agent` exchanges Alice's refresh token for her account at `op`.
async fn vault(rp: &TestServer, refresh_token: &str) -> (StatusCode, Value) {
    rp.token(&form("agent", REFRESH_TOKEN, refresh_token, "op"))
        .await
}

/// A successful answer, in exactly Auth0's shape: its access token.
fn served(answer: &(StatusCode, Value)) -> String {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::OK, "{body}");
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "issued_token_type",
            "scope",
            "token_type"
        ],
        "{body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["issued_token_type"], FCAT);
    body["access_token"].as_str().unwrap().to_string()
}

/// A refusal with `status` and `error`: its description.
fn refused(answer: &(StatusCode, Value), status: StatusCode, error: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], error, "{}", answer.1);
    answer.1["error_description"].as_str().unwrap().to_string()
}

fn not_connected(answer: &(StatusCode, Value)) {
    let d = refused(
        answer,
        StatusCode::UNAUTHORIZED,
        "federated_connection_refresh_token_not_found",
    );
    assert_eq!(d, "Federated connection Refresh Token not found.");
}

fn flow_failed(answer: &(StatusCode, Value)) {
    refused(
        answer,
        StatusCode::UNAUTHORIZED,
        "federated_connection_refresh_token_flow_failed",
    );
}

/// The tenant log's Token Vault events (`seta`, `feta`), oldest first.
async fn vault_events(rp: &TestServer) -> Vec<(String, Value)> {
    let tenant = acme_id(rp).await;
    let events = rp.state.store.audit_events(&tenant, 100).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.event_type == "seta" || e.event_type == "feta")
        .map(|e| (e.event_type, e.details))
        .collect()
}

#[tokio::test]
async fn the_stored_token_is_served_then_refreshed_once_and_the_rotated_token_used_next() {
    let v = with_provider().await;
    let id = v.connect_carol().await;
    let rt = alice_refresh_token(&v.rp).await;
    v.op.reset_counters().await;
    let (stored_at, first_rt) = stored_tokens(&v.rp, ALICE_ID).await;

    // Alive: the stored token, without a word to the provider.
    let answer = vault(&v.rp, &rt).await;
    let at = served(&answer);
    assert_eq!(at, stored_at);
    assert_eq!(answer.1["expires_in"], TTL);
    let scope = answer.1["scope"].as_str().unwrap();
    assert!(scope.split(' ').any(|s| s == "offline_access"), "{scope}");
    assert_eq!(v.upstream_user(&at).await.1["sub"], CAROL);
    v.advance(3000).await;
    let answer = vault(&v.rp, &rt).await;
    assert_eq!(served(&answer), at);
    assert_eq!(answer.1["expires_in"], TTL - 3000);
    assert_eq!(v.refreshes().await, 0);

    // Less than a minute left: refreshed once, the provider's rotated
    // refresh token stored before the answer.
    v.advance(TTL - 3000 - 40).await;
    let answer = vault(&v.rp, &rt).await;
    let renewed = served(&answer);
    assert_ne!(renewed, at);
    assert_eq!(answer.1["expires_in"], TTL);
    assert_eq!(v.refreshes().await, 1);
    let (now_at, now_rt) = stored_tokens(&v.rp, ALICE_ID).await;
    assert_eq!(now_at, renewed);
    assert_ne!(now_rt, first_rt, "the provider rotates its refresh tokens");
    assert_eq!(v.upstream_user(&renewed).await.1["sub"], CAROL);
    let row = v.row(&id).await.unwrap();
    assert_eq!((row.version, row.refresh_lock_until), (1, None));
    // And served from the store again.
    assert_eq!(served(&vault(&v.rp, &rt).await), renewed);
    assert_eq!(v.refreshes().await, 1);

    // Next time the rotated one is used (the first is spent at the
    // provider, which would refuse it and revoke everything).
    v.advance(TTL).await;
    let third = served(&vault(&v.rp, &rt).await);
    assert_eq!(v.refreshes().await, 2);
    assert_eq!(v.upstream_user(&third).await.1["sub"], CAROL);

    // The latchkey refresh token was never spent: rotation works as ever.
    let (status, body) =
        v.rp.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "agent"),
            ("client_secret", AGENT_SECRET),
            ("refresh_token", &rt),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Logged without a token.
    let events = vault_events(&v.rp).await;
    assert_eq!(events.len(), 5);
    for (kind, details) in &events {
        assert_eq!(kind, "seta");
        assert_eq!(details["connection"], "op");
        assert_eq!(details["identity_user_id"], CAROL);
        let text = details.to_string();
        for secret in [&at, &renewed, &third, &rt] {
            assert!(!text.contains(secret.as_str()));
        }
    }
    assert_eq!(events[2].1["description"], "refreshed at the provider");
    // At rest, sealed.
    let dump = v.rp.database_dump().await;
    let found = |s: &str| dump.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(!found(&third));
    assert!(!found(now_rt.as_deref().unwrap()));
}

/// `n` exchanges at once, each sent by `send(i)`: their answers.
async fn at_once<F, Fut>(n: usize, send: F) -> Vec<(StatusCode, Value)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(send(i))).collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

/// Sends a token request and reads its answer.
async fn sent(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = request.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// The answers all carry one token, and the provider was asked once.
fn one_refresh(refreshes: u64, answers: &[(StatusCode, Value)]) {
    let tokens: Vec<String> = answers.iter().map(served).collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_eq!(refreshes, 1);
}

fn owned_form(refresh_token: &str) -> Vec<(String, String)> {
    form("agent", REFRESH_TOKEN, refresh_token, "op")
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_one_node_refresh_once() {
    let v = with_provider().await;
    v.connect_carol().await;
    let rt = alice_refresh_token(&v.rp).await;
    v.advance(TTL).await;
    v.op.reset_counters().await;
    // The provider takes its time, so that every request arrives while
    // the refresh is under way.
    v.op.slow_token_endpoint(Duration::from_millis(800), 1)
        .await;
    let (client, url, body) = (v.rp.http(), v.rp.url("/oauth/token"), owned_form(&rt));
    let answers = at_once(8, |_| sent(client.post(&url).form(&body))).await;
    one_refresh(v.refreshes().await, &answers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgresql_refresh_once() {
    let (a, b) = TestServer::postgres_pair(&[]).await;
    let op = provider_for(&a).await;
    let v = Vault { rp: a, op };
    v.connect_carol().await;
    let rt = alice_refresh_token(&v.rp).await;
    v.advance(TTL).await;
    v.op.reset_counters().await;
    v.op.slow_token_endpoint(Duration::from_millis(800), 1)
        .await;
    let host = format!("localhost:{}", v.rp.port);
    let body = owned_form(&rt);
    let answers = at_once(8, |i| {
        let request = if i % 2 == 0 {
            v.rp.http().post(v.rp.url("/oauth/token"))
        } else {
            b.as_host(reqwest::Method::POST, &host, "/oauth/token")
        };
        sent(request.form(&body))
    })
    .await;
    one_refresh(v.refreshes().await, &answers);
    // Both nodes now serve what was stored, without the provider.
    let again = sent(
        b.as_host(reqwest::Method::POST, &host, "/oauth/token")
            .form(&body),
    )
    .await;
    assert_eq!(served(&again), served(&answers[0]));
    assert_eq!(v.refreshes().await, 1);
}

#[tokio::test]
async fn a_provider_that_revoked_access_marks_the_account_and_is_not_asked_again() {
    let v = with_provider().await;
    let id = v.connect_carol().await;
    let rt = alice_refresh_token(&v.rp).await;
    assert_eq!(v.op.revoke_grants(CAROL).await, 1);
    v.advance(TTL).await;
    v.op.reset_counters().await;
    flow_failed(&vault(&v.rp, &rt).await);
    assert_eq!(v.refreshes().await, 1);
    let row = v.row(&id).await.unwrap();
    assert_eq!(row.status, AccountStatus::Revoked);
    assert_eq!(row.tokens, Default::default(), "its tokens forgotten");
    // Listed as an account that has expired, when the provider refused.
    let listed = accounts(&v.rp, &v.me().await).await;
    assert_eq!(listed.len(), 1);
    let when = latchkey::clock::rfc3339(v.rp.clock_now());
    assert_eq!(listed[0]["expires_at"], when);
    // Asked again: the same answer, the provider left alone.
    flow_failed(&vault(&v.rp, &rt).await);
    assert_eq!(v.refreshes().await, 1);
    let events = vault_events(&v.rp).await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|(kind, _)| kind == "feta"));
    // Connected again, the account (its ID kept) works again.
    assert_eq!(v.connect_carol().await, id);
    assert!(accounts(&v.rp, &v.me().await).await[0]["expires_at"].is_null());
    let at = served(&vault(&v.rp, &rt).await);
    assert_eq!(v.upstream_user(&at).await.1["sub"], CAROL);
}

#[tokio::test]
async fn a_provider_down_or_slow_gets_a_retryable_answer_and_changes_nothing() {
    let v = with_provider().await;
    let id = v.connect_carol().await;
    let rt = alice_refresh_token(&v.rp).await;
    v.advance(TTL).await;
    v.op.reset_counters().await;
    let before = v.row(&id).await.unwrap();

    v.op.fail_token_endpoint(503, 1).await;
    let res =
        v.rp.http()
            .post(v.rp.url("/oauth/token"))
            .form(&form("agent", REFRESH_TOKEN, &rt, "op"))
            .send()
            .await
            .unwrap();
    assert_eq!(res.headers()["retry-after"], "5");
    let answer = (res.status(), res.json().await.unwrap());
    refused(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    );
    assert_eq!(v.row(&id).await.unwrap(), before);

    // Slower than the connection's two seconds.
    v.op.slow_token_endpoint(Duration::from_secs(3), 1).await;
    refused(
        &vault(&v.rp, &rt).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    );
    assert_eq!(v.row(&id).await.unwrap(), before);

    // The provider back, the next request refreshes.
    let at = served(&vault(&v.rp, &rt).await);
    assert_eq!(v.refreshes().await, 3);
    assert_eq!(v.upstream_user(&at).await.1["sub"], CAROL);
    let after = v.row(&id).await.unwrap();
    assert_eq!(after.version, before.version + 1);
}

#[tokio::test]
async fn refresh_tokens_of_others_spent_or_rotated_identify_nobody() {
    let v = with_provider().await;
    v.connect_carol().await;
    let rp = &v.rp;
    let rt = alice_refresh_token(rp).await;
    let invalid = |answer: &(StatusCode, Value)| {
        let d = refused(answer, StatusCode::UNAUTHORIZED, "invalid_grant");
        assert_eq!(d, "Unknown or invalid refresh token.");
    };
    invalid(&vault(rp, "not-a-refresh-token").await);
    invalid(&vault(rp, &"x".repeat(5000)).await);

    // The SPA's refresh token of the same user, presented by the agent.
    let spa = rp.password_login("openid offline_access", None).await;
    invalid(&vault(rp, spa["refresh_token"].as_str().unwrap()).await);

    // Another tenant's refresh token of a user of the same name.
    let (status, other) = sent(
        rp.http()
            .post(format!("http://127.0.0.1:{}/oauth/token", rp.port))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
                ("scope", "openid offline_access"),
            ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{other}");
    invalid(&vault(rp, other["refresh_token"].as_str().unwrap()).await);

    // Another user's own refresh token reaches their accounts only, and
    // no login_hint reaches Alice's.
    let bob = agent_login(
        rp,
        ("bob@example.com", "B0b-has-a-long-password"),
        "Partners",
    )
    .await;
    let bob_rt = bob["refresh_token"].as_str().unwrap();
    not_connected(&vault(rp, bob_rt).await);
    let mut hinted = form("agent", REFRESH_TOKEN, bob_rt, "op");
    hinted.push(("login_hint", CAROL));
    not_connected(&rp.token(&hinted).await);

    // Revoked.
    let revoked = alice_refresh_token(rp).await;
    let res = rp
        .http()
        .post(rp.url("/oauth/revoke"))
        .form(&[
            ("client_id", "agent"),
            ("client_secret", AGENT_SECRET),
            ("token", revoked.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    invalid(&vault(rp, &revoked).await);

    // Rotated: presenting the old one is reuse, which ends the family.
    let (status, body) = rp
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "agent"),
            ("client_secret", AGENT_SECRET),
            ("refresh_token", &rt),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let successor = body["refresh_token"].as_str().unwrap();
    served(&vault(rp, successor).await);
    invalid(&vault(rp, &rt).await);
    invalid(&vault(rp, successor).await);

    // Expired.
    let late = alice_refresh_token(rp).await;
    served(&vault(rp, &late).await);
    rp.clock.advance(2_592_000);
    invalid(&vault(rp, &late).await);
}

/// A change to the grant's fields: a field set (`Some`) or dropped.
type Change = (&'static str, Option<&'static str>);

#[tokio::test]
async fn the_grant_asks_the_right_client_parameters_and_connection() {
    let v = with_provider().await;
    v.connect_carol().await;
    let rp = &v.rp;
    let rt = alice_refresh_token(rp).await;
    let ask = |changes: &[Change]| {
        let mut fields: Vec<(&str, &str)> = form("agent", REFRESH_TOKEN, &rt, "op");
        for (key, value) in changes {
            fields.retain(|(k, _)| k != key);
            fields.extend(value.map(|value| (*key, value)));
        }
        async move { rp.token(&fields).await }
    };
    let (bad, forbidden) = (StatusCode::BAD_REQUEST, StatusCode::FORBIDDEN);
    let jwt = "urn:ietf:params:oauth:token-type:jwt";
    let cases: &[(&[Change], StatusCode, &str, &str)] = &[
        // Client authentication and the grant type.
        (
            &[("client_secret", Some("wrong-secret-value"))],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "",
        ),
        (
            &[("client_secret", None), ("client_id", Some("spa"))],
            forbidden,
            "unauthorized_client",
            "not allowed for the client",
        ),
        // Parameters.
        (
            &[("subject_token_type", None)],
            bad,
            "invalid_request",
            "Missing required parameter: subject_token_type",
        ),
        (
            &[("subject_token", None)],
            bad,
            "invalid_request",
            "Missing required parameter: subject_token",
        ),
        (
            &[("requested_token_type", None)],
            bad,
            "invalid_request",
            "Missing required parameter: requested_token_type",
        ),
        (
            &[("connection", None)],
            bad,
            "invalid_request",
            "Missing required parameter: connection",
        ),
        (
            &[("subject_token_type", Some(jwt))],
            bad,
            "invalid_request",
            "Unsupported subject_token_type",
        ),
        (
            &[("requested_token_type", Some(ACCESS_TOKEN))],
            bad,
            "invalid_request",
            "Unsupported requested_token_type",
        ),
        // An access token from a client that is not a Custom API Client.
        (
            &[("subject_token_type", Some(ACCESS_TOKEN))],
            forbidden,
            "unauthorized_client",
            "Custom API Client",
        ),
        // Connections: unknown, the database, not active, not the agent's.
        (
            &[("connection", Some("nowhere"))],
            bad,
            "invalid_request",
            "Unknown connection: nowhere",
        ),
        (
            &[("connection", Some("Username-Password-Authentication"))],
            forbidden,
            "unauthorized_client",
            "does not hold connected accounts",
        ),
        (
            &[("connection", Some("op-off"))],
            forbidden,
            "unauthorized_client",
            "does not hold connected accounts",
        ),
        (
            &[("connection", Some("op-spa"))],
            forbidden,
            "unauthorized_client",
            "not enabled for the connection op-spa",
        ),
        // Scopes: at most the account's.
        (
            &[("scope", Some("openid calendar"))],
            bad,
            "invalid_scope",
            "'calendar'",
        ),
    ];
    for (changes, status, error, says) in cases {
        let d = refused(&ask(changes).await, *status, error);
        assert!(d.contains(says), "{changes:?}: {d}");
    }
    served(&ask(&[("scope", Some("openid offline_access"))]).await);
    // JSON bodies, as Auth0's AI SDK sends them.
    let res = rp
        .http()
        .post(rp.url("/oauth/token"))
        .json(&json!({
            "grant_type": VAULT, "client_id": "agent", "client_secret": AGENT_SECRET,
            "subject_token_type": REFRESH_TOKEN, "subject_token": rt,
            "requested_token_type": FCAT, "connection": "op",
        }))
        .send()
        .await
        .unwrap();
    served(&(res.status(), res.json().await.unwrap()));
}

#[tokio::test]
async fn access_tokens_are_exchanged_by_the_custom_api_client_of_their_api() {
    let v = with_provider().await;
    v.connect_carol().await;
    let rp = &v.rp;
    let (stored_at, _) = stored_tokens(rp, ALICE_ID).await;
    let exchange = |client: &'static str, token: String| async move {
        rp.token(&form(client, ACCESS_TOKEN, &token, "op")).await
    };
    let invalid = |answer: &(StatusCode, Value), says: &str| {
        let d = refused(answer, StatusCode::UNAUTHORIZED, "invalid_grant");
        assert!(d.contains(says), "{d}");
    };
    let login = rp.password_login("openid offline_access", Some(API)).await;
    let at = login["access_token"].as_str().unwrap().to_string();
    assert_eq!(served(&exchange("api-client", at.clone()).await), stored_at);
    // Not for its API: the My Account API's, a refresh token.
    invalid(
        &exchange("api-client", v.me().await).await,
        "not issued for this client's API",
    );
    let d = refused(
        &rp.token(&form(
            "api-client",
            REFRESH_TOKEN,
            login["refresh_token"].as_str().unwrap(),
            "op",
        ))
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    assert_eq!(d, "Unknown or invalid refresh token.");
    // No user behind it: a client-credentials token for the API.
    let (status, m2m) = rp
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "backend"),
            ("client_secret", BACKEND_SECRET),
            ("audience", API),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{m2m}");
    invalid(
        &exchange("api-client", m2m["access_token"].as_str().unwrap().into()).await,
        "Invalid access token.",
    );
    invalid(
        &exchange("api-client", "a.b.c".into()).await,
        "Invalid access token.",
    );
    // The agent may not exchange access tokens.
    refused(
        &exchange("agent", at.clone()).await,
        StatusCode::FORBIDDEN,
        "unauthorized_client",
    );
    // Its grant revoked.
    let other = rp.password_login("openid offline_access", Some(API)).await;
    assert_eq!(
        rp.revoke(other["refresh_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    invalid(
        &exchange("api-client", other["access_token"].as_str().unwrap().into()).await,
        "revoked",
    );
    // Expired.
    rp.clock.advance(86_400 + 31);
    invalid(&exchange("api-client", at).await, "expired");
}

#[tokio::test]
async fn several_accounts_at_one_connection_are_told_apart_by_login_hint() {
    let v = with_provider().await;
    let carol = v.connect_carol().await;
    let dave = v.connect((DAVE.1, DAVE.2)).await;
    assert_ne!(carol, dave);
    let rt = alice_refresh_token(&v.rp).await;
    let d = refused(
        &vault(&v.rp, &rt).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(d.contains("login_hint"), "{d}");
    for sub in [CAROL, DAVE.0] {
        let mut f = form("agent", REFRESH_TOKEN, &rt, "op");
        f.push(("login_hint", sub));
        let at = served(&v.rp.token(&f).await);
        assert_eq!(v.upstream_user(&at).await.1["sub"], sub);
    }
    let mut f = form("agent", REFRESH_TOKEN, &rt, "op");
    f.push(("login_hint", "nobody"));
    not_connected(&v.rp.token(&f).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_deleted_before_or_during_the_exchange_is_not_found() {
    let v = with_provider().await;
    let rt = alice_refresh_token(&v.rp).await;
    not_connected(&vault(&v.rp, &rt).await);
    let delete = |id: String| {
        let v = &v;
        async move {
            let (rp, me) = (&v.rp, v.me().await);
            let path = format!("/connected-accounts/accounts/{id}");
            let r = rp.me("DELETE", &path, Some(&me), None).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        }
    };
    let id = v.connect_carol().await;
    delete(id).await;
    not_connected(&vault(&v.rp, &rt).await);

    // Deleted while the provider refreshes it: the refresh stores nothing.
    let id = v.connect_carol().await;
    v.advance(TTL).await;
    v.op.reset_counters().await;
    v.op.slow_token_endpoint(Duration::from_millis(1500), 1)
        .await;
    let pending = tokio::spawn(sent(
        v.rp.http()
            .post(v.rp.url("/oauth/token"))
            .form(&owned_form(&rt)),
    ));
    while v.refreshes().await == 0 {
        tokio::task::yield_now().await;
    }
    delete(id.clone()).await;
    not_connected(&pending.await.unwrap());
    assert!(v.row(&id).await.is_none());
}

#[tokio::test]
async fn rotation_on_and_mfa_always_for_the_app() {
    let v = with_provider().await;
    // The agent asks a second factor at every login; Alice has TOTP.
    let text = vault_tenant(v.rp.port, &op_connections(v.op.issuer())).replace(
        "client_id: agent, app_type: regular_web,",
        "client_id: agent, mfa_policy: always, app_type: regular_web,",
    );
    latchkey::tenant::apply::apply_text(&v.rp.state, &text)
        .await
        .unwrap();
    let me = v.rp.me_token(ME_SCOPES).await;
    let r =
        v.rp.me(
            "POST",
            "/authentication-methods",
            Some(&me),
            Some(json!({"type": "totp"})),
        )
        .await;
    let secret = r.body["manual_input_code"].as_str().unwrap().to_string();
    let verify = format!("{}/verify", r.header("location").unwrap());
    let code = totp_now(&secret, v.rp.clock_now());
    let body = json!({"auth_session": r.body["auth_session"], "otp_code": code});
    let r = v.rp.me("POST", &verify, Some(&me), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    v.rp.clock.advance(30);
    v.connect_carol().await;

    let (status, body) =
        v.rp.token(&[
            ("grant_type", "password"),
            ("client_id", "agent"),
            ("client_secret", AGENT_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", "openid offline_access"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("mfa_required"))
    );
    let code = totp_now(&secret, v.rp.clock_now());
    let (status, body) =
        v.rp.token(&[
            ("grant_type", MFA_OTP),
            ("client_id", "agent"),
            ("client_secret", AGENT_SECRET),
            ("mfa_token", body["mfa_token"].as_str().unwrap()),
            ("otp", &code),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rt = body["refresh_token"].as_str().unwrap().to_string();

    // Exchanged as often as needed, the refresh token unspent...
    served(&vault(&v.rp, &rt).await);
    served(&vault(&v.rp, &rt).await);
    // ...so the app's own refresh still rotates it, once.
    let (status, body) =
        v.rp.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "agent"),
            ("client_secret", AGENT_SECRET),
            ("refresh_token", &rt),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let successor = body["refresh_token"].as_str().unwrap();
    assert_ne!(successor, rt);
    served(&vault(&v.rp, successor).await);
}

/// A server with a GitHub-like provider: an app with expiring tokens (a
/// GitHub App) at connection `github`, and one whose tokens last until
/// revoked (an OAuth app) at `github-classic`; Alice's account at each.
async fn with_github() -> (TestServer, GithubServer, String) {
    let rp = TestServer::with_tenants(&[]).await;
    let callback_url = format!("http://localhost:{}/login/callback", rp.port);
    let gh = GithubServer::start(
        vec![
            GithubApp::new("Iv1.latchkey", IDP_SECRET, &callback_url).expiring(),
            GithubApp::new("Ov23.classic", IDP_SECRET, &callback_url),
        ],
        vec![GithubUser::new(583231, "octocat", "octo@octo.test", false)],
        std::sync::Arc::new(rp.clock.clone()),
    )
    .await;
    gh.sign_in("octocat");
    let connection = |name: &str, client_id: &str| {
        format!(
            "  - name: {name}\n    strategy: github\n    options: {{ client_id: {client_id}, \
             client_secret_env: IDP_CLIENT_SECRET, authorizationURL: \"{}\", tokenURL: \"{}\", userInfoURL: \"{}\" }}\n    \
             connected_accounts: {{ active: true }}\n    enabled_clients: [spa, agent]\n",
            gh.url("/login/oauth/authorize"),
            gh.url("/login/oauth/access_token"),
            gh.url("/user")
        )
    };
    let connections =
        connection("github", "Iv1.latchkey") + &connection("github-classic", "Ov23.classic");
    latchkey::tenant::apply::apply_text(&rp.state, &vault_tenant(rp.port, &connections))
        .await
        .unwrap();
    let me = token(&rp).await;
    for name in ["github", "github-classic"] {
        let browser = browser();
        let c = start_with(&rp, &me, name, json!({"scopes": ["repo"]})).await;
        let back = gh.authorize(&browser, &c.browser_url).await;
        let code = connect_code(&c, &location(&callback(&browser, &back).await));
        let r = complete(&rp, &me, complete_body(&c, &code)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let rt = alice_refresh_token(&rp).await;
    (rp, gh, rt)
}

#[tokio::test]
async fn github_tokens_refresh_with_rotation_and_a_revoked_grant_marks_the_account() {
    let (rp, gh, rt) = with_github().await;
    let github = |rp: &TestServer, rt: &str| {
        let f: Vec<(String, String)> = form("agent", REFRESH_TOKEN, rt, "github")
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sent(rp.http().post(rp.url("/oauth/token")).form(&f))
    };
    let refreshes = || gh.count("access_token:refresh_token");
    let first = github(&rp, &rt).await;
    served(&first);
    assert_eq!(
        first.1["expires_in"],
        crate::upstream::github::ACCESS_TOKEN_TTL
    );
    assert_eq!(refreshes(), 0);
    // GitHub rotates both tokens at every refresh: each one works once.
    let mut latest = String::new();
    for n in 1..=2 {
        rp.clock.advance(crate::upstream::github::ACCESS_TOKEN_TTL);
        latest = served(&github(&rp, &rt).await);
        assert_eq!(refreshes(), n);
    }
    // The user revokes the app at GitHub: its refresh token is refused
    // (GitHub's `bad_refresh_token`), the account marked.
    let res = http()
        .delete(gh.url("/applications/Iv1.latchkey/grant"))
        .basic_auth("Iv1.latchkey", Some(IDP_SECRET))
        .header("user-agent", "latchkey-tests")
        .json(&json!({"access_token": latest}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    rp.clock.advance(crate::upstream::github::ACCESS_TOKEN_TTL);
    flow_failed(&github(&rp, &rt).await);
    assert_eq!(refreshes(), 3);
    flow_failed(&github(&rp, &rt).await);
    assert_eq!(refreshes(), 3);
}

#[tokio::test]
async fn a_token_without_a_lifetime_is_served_as_it_is() {
    let (rp, gh, rt) = with_github().await;
    let ask = form("agent", REFRESH_TOKEN, &rt, "github-classic");
    let classic = || rp.token(&ask);
    let first = classic().await;
    let at = served(&first);
    assert_eq!(first.1["expires_in"], 3600, "asked again within the hour");
    rp.clock.advance(365 * 86_400);
    let rt = alice_refresh_token(&rp).await;
    let ask = form("agent", REFRESH_TOKEN, &rt, "github-classic");
    assert_eq!(served(&rp.token(&ask).await), at);
    assert_eq!(gh.count("access_token:refresh_token"), 0);
}

#[tokio::test]
async fn a_second_latchkey_as_the_provider_rotates_and_detects_reuse() {
    let pair = Pair::start(|_| String::new()).await;
    let (rp, idp) = (&pair.rp, &pair.idp);
    let connection =
        idp_connection(idp.port).replace("enabled_clients: [spa]", "enabled_clients: [spa, agent]");
    latchkey::tenant::apply::apply_text(&rp.state, &vault_tenant(rp.port, &connection))
        .await
        .unwrap();
    let me = token(rp).await;
    let c = start_with(rp, &me, "idp", json!({"scopes": ["offline_access"]})).await;
    let code = connect_code(&c, &through_idp(&browser(), &c).await);
    let r = complete(rp, &me, complete_body(&c, &code)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let rt = alice_refresh_token(rp).await;
    let ask = form("agent", REFRESH_TOKEN, &rt, "idp");
    let userinfo = format!("{}userinfo", pair.idp_issuer());
    let bob = |at: String| {
        let userinfo = userinfo.clone();
        async move {
            let res = http().get(userinfo).bearer_auth(at).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()["sub"].clone()
        }
    };
    let at = served(&rp.token(&ask).await);
    assert_eq!(bob(at.clone()).await, "auth0|bob");
    let (_, first_rt) = stored_tokens(rp, ALICE_ID).await;

    // A day on, both clocks: the upstream's token has run out.
    let advance = || {
        rp.clock.advance(86_400);
        idp.clock.advance(86_400);
    };
    advance();
    let renewed = served(&rp.token(&ask).await);
    assert_ne!(renewed, at);
    assert_eq!(bob(renewed).await, "auth0|bob");
    let (_, now_rt) = stored_tokens(rp, ALICE_ID).await;
    assert_ne!(
        now_rt, first_rt,
        "the upstream rotated it, and it was stored"
    );

    // The first upstream refresh token presented again is reuse there: the
    // upstream revokes the family, so the next refresh is refused and the
    // account marked.
    let (status, _) = idp_refresh(&pair, first_rt.as_deref().unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    advance();
    flow_failed(&rp.token(&ask).await);
    assert_eq!(
        account_row(rp, &id).await.unwrap().status,
        AccountStatus::Revoked
    );
}
