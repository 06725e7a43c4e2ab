//! `latchkey import auth0`: Auth0's bulk user format imported with what
//! each user brings (profile, password hash, MFA factors), each refusal by
//! name, a rerun that changes nothing, another tenant untouched, a
//! malformed file that writes nothing, a thousand users; then the imported
//! users log in with their old password and their old TOTP code.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use latchkey::services::import::{self, Auth0Import, Outcome, Report};
use latchkey::store::{MethodRow, UserRow};
use latchkey::tenant::{FactorType, Tenant};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const CONNECTION: &str = "Username-Password-Authentication";
const MFA_OTP: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
const WEBAUTHN: &str = "urn:okta:params:oauth:grant-type:webauthn";
/// A TOTP secret as Auth0 takes it (unpadded base32, 160 bits).
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// The acme tenant with a connection that has usernames, and the MFA
/// factors an Auth0 export brings.
fn migrating(port: u16) -> String {
    acme(port)
        .replace(
            "\"http://auth0.com/oauth/grant-type/password-realm\"] }",
            &format!("\"http://auth0.com/oauth/grant-type/password-realm\", \"{WEBAUTHN}\"] }}"),
        )
        .replace(
            "  - name: Partners\n",
            "  - name: Partners\n  - { name: With-Usernames, requires_username: true }\n",
        )
        .replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, totp, recovery-code, email, phone, passkey]",
        )
}

/// [`migrating`] where every login needs a second factor, the spa allowed
/// the mfa-otp grant.
fn migrating_with_mfa(port: u16) -> String {
    migrating(port).replace(
        &format!("\"{WEBAUTHN}\"] }}"),
        &format!("\"{WEBAUTHN}\", \"{MFA_OTP}\"] }}"),
    ) + "mfa: { policy: always }\n"
}

async fn server() -> TestServer {
    TestServer::with_tenants(&[migrating, other_tenant]).await
}

async fn tenant(s: &TestServer, name: &str) -> Tenant {
    let row = s.state.store.tenant_by_name(name).await.unwrap().unwrap();
    Tenant::from_row(&row).unwrap()
}

async fn run_on(
    s: &TestServer,
    tenant_name: &str,
    connection: &str,
    users: &Value,
    passwordless_first: bool,
) -> Result<Report, String> {
    let t = tenant(s, tenant_name).await;
    let text = serde_json::to_vec(users).unwrap();
    import::auth0(
        &s.state,
        &Auth0Import {
            tenant: &t,
            connection,
            users: &text,
            authentication_methods: None,
            passwordless_first,
        },
    )
    .await
    .map_err(|e| e.to_string())
}

async fn run(s: &TestServer, users: &Value) -> Report {
    run_on(s, "acme", CONNECTION, users, false).await.unwrap()
}

async fn user(
    s: &TestServer,
    tenant_name: &str,
    user_id: &str,
) -> Option<(UserRow, Vec<MethodRow>)> {
    let t = tenant(s, tenant_name).await;
    s.state
        .store
        .user_with_methods(&t.id, user_id)
        .await
        .unwrap()
}

/// Every user of `ids` in a tenant, with their methods, and how many users
/// the tenant has: what a rerun must leave exactly as it was.
async fn snapshot(
    s: &TestServer,
    tenant_name: &str,
    ids: &[String],
) -> (i64, BTreeMap<String, Option<(UserRow, Vec<MethodRow>)>>) {
    let t = tenant(s, tenant_name).await;
    let mut all = BTreeMap::new();
    for id in ids {
        all.insert(
            id.clone(),
            s.state.store.user_with_methods(&t.id, id).await.unwrap(),
        );
    }
    (s.state.store.count_users(&t.id).await.unwrap(), all)
}

fn user_ids(report: &Report) -> Vec<String> {
    report
        .users
        .iter()
        .filter_map(|u| u.user_id.clone())
        .collect()
}

fn bcrypt(password: &str, cost: u32) -> String {
    bcrypt::hash(password, cost).unwrap()
}

/// A PBKDF2 hash in the PHC form Auth0's `custom_password_hash` takes.
fn pbkdf2(digest: &str, password: &str, salt: &[u8], iterations: u32) -> Value {
    use aws_lc_rs::pbkdf2 as p;
    let (algorithm, len) = match digest {
        "sha256" => (p::PBKDF2_HMAC_SHA256, 32),
        _ => (p::PBKDF2_HMAC_SHA512, 64),
    };
    let mut key = vec![0u8; len];
    p::derive(
        algorithm,
        std::num::NonZeroU32::new(iterations).unwrap(),
        salt,
        password.as_bytes(),
        &mut key,
    );
    json!({
        "algorithm": "pbkdf2",
        "hash": {
            "value": format!(
                "$pbkdf2-{digest}$i={iterations},l={len}${}${}",
                STANDARD_NO_PAD.encode(salt),
                STANDARD_NO_PAD.encode(&key)
            ),
            "encoding": "utf8"
        }
    })
}

async fn password_login(s: &TestServer, email: &str, password: &str) -> (StatusCode, Value) {
    s.token(&[
        (
            "grant_type",
            "http://auth0.com/oauth/grant-type/password-realm",
        ),
        ("client_id", "spa"),
        ("username", email),
        ("password", password),
        ("realm", CONNECTION),
        ("scope", "openid"),
    ])
    .await
}

#[tokio::test]
async fn every_field_of_a_user_is_kept() {
    let s = server().await;
    let hash = bcrypt("Imported-from-auth0", 4);
    let users = json!([{
        "email": "Carol.Danvers@Example.COM ",
        "email_verified": true,
        "user_id": "auth0|5f3a9c2e8b1d4a0012345678",
        "given_name": "Carol",
        "family_name": "Danvers",
        "name": "Carol Danvers",
        "nickname": "carol",
        "picture": "https://example.com/carol.png",
        "blocked": true,
        "app_metadata": {"plan": "pro", "roles": ["admin"]},
        "user_metadata": {"theme": "dark"},
        "password_hash": hash,
        "mfa_factors": [
            {"totp": {"secret": TOTP_SECRET}},
            {"phone": {"value": "+1 (555) 123-4567"}},
            {"email": {"value": "carol.backup@example.com"}}
        ],
        "created_at": "2021-03-04T05:06:07.000Z",
        "logins_count": 12,
        "identities": [{"connection": CONNECTION, "provider": "auth0", "user_id": "5f3a9c2e8b1d4a0012345678", "isSocial": false}]
    }, {
        "email": "dave@example.com",
        "user_id": "5f3a9c2e8b1d4a00deadbeef",
        "password_hash": bcrypt("Dave-from-auth0", 4)
    }]);
    let report = run(&s, &users).await;
    assert_eq!(report.totals.imported, 2, "{report:?}");
    assert_eq!(report.totals.skipped, 0);
    assert_eq!(
        report.totals.authentication_methods,
        BTreeMap::from([("email".into(), 1), ("phone".into(), 1), ("totp".into(), 1)])
    );

    let (carol, methods) = user(&s, "acme", "auth0|5f3a9c2e8b1d4a0012345678")
        .await
        .unwrap();
    assert_eq!(
        carol.email, "Carol.Danvers@Example.COM",
        "normal form, case kept"
    );
    assert_eq!(carol.connection, CONNECTION);
    assert!(carol.email_verified);
    assert!(carol.blocked);
    assert!(!carol.signed_up);
    assert_eq!(
        carol.password_hash.as_deref(),
        Some(hash.as_str()),
        "kept as it is"
    );
    assert_eq!(
        carol.profile,
        json!({"name": "Carol Danvers", "given_name": "Carol", "family_name": "Danvers",
               "nickname": "carol", "picture": "https://example.com/carol.png",
               "app_metadata": {"plan": "pro", "roles": ["admin"]},
               "user_metadata": {"theme": "dark"}})
    );
    let types: Vec<FactorType> = methods.iter().map(|m| m.method_type).collect();
    assert_eq!(methods.len(), 3);
    for t in [FactorType::Totp, FactorType::Phone, FactorType::Email] {
        assert!(types.contains(&t), "{types:?}");
    }
    let phone = methods
        .iter()
        .find(|m| m.method_type == FactorType::Phone)
        .unwrap();
    assert_eq!(phone.data["phone_number"], "+15551234567");
    let email = methods
        .iter()
        .find(|m| m.method_type == FactorType::Email)
        .unwrap();
    assert_eq!(email.data["email"], "carol.backup@example.com");
    // The TOTP secret is sealed under the method's own context.
    let totp = methods
        .iter()
        .find(|m| m.method_type == FactorType::Totp)
        .unwrap();
    let sealed = totp.data["secret"].as_str().unwrap();
    assert!(!sealed.contains(TOTP_SECRET));
    let t = tenant(&s, "acme").await;
    let opened = s
        .state
        .sealer
        .open(&format!("totp:{}:{}", t.id, totp.id), sealed)
        .unwrap();
    assert_eq!(opened, base32_decode(TOTP_SECRET));
    assert!(
        s.state
            .sealer
            .open(&format!("totp:{}:other", t.id), sealed)
            .is_err()
    );

    // A bare user_id gets Auth0's prefix.
    assert!(
        user(&s, "acme", "auth0|5f3a9c2e8b1d4a00deadbeef")
            .await
            .is_some()
    );

    // The report names what came, never a hash or a secret; so does the log.
    let text = serde_json::to_string(&report).unwrap();
    assert!(text.contains("\"password\":\"bcrypt\""), "{text}");
    for secret in [hash.as_str(), TOTP_SECRET, &hash[7..]] {
        assert!(!text.contains(secret), "{text}");
    }
    let events = s.state.store.audit_events(&t.id, 10).await.unwrap();
    let imported: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "user_imported")
        .collect();
    assert_eq!(imported.len(), 2);
    assert_eq!(
        imported[0].user_id.as_deref(),
        Some("auth0|5f3a9c2e8b1d4a0012345678")
    );
    assert_eq!(
        imported[0].details["user_name"],
        "Carol.Danvers@Example.COM"
    );
    assert_eq!(imported[0].details["password"], "bcrypt");
    let run = events
        .iter()
        .find(|e| e.event_type == "users_imported")
        .unwrap();
    assert_eq!(run.details["totals"]["imported"], 2);
    let logged = serde_json::to_string(&events).unwrap();
    assert!(!logged.contains(&hash) && !logged.contains(TOTP_SECRET));
}

#[tokio::test]
async fn usernames_follow_the_connections_rule() {
    let s = server().await;
    let users = json!([
        {"email": "erin@example.com", "username": "erin_99", "password_hash": bcrypt("Erin-from-auth0", 4)},
        {"email": "frank@example.com", "username": "fränk", "password_hash": bcrypt("x", 4)},
        {"email": "gina@example.com", "password_hash": bcrypt("x", 4)},
        {"email": "hank@example.com", "username": "ERIN_99", "password_hash": bcrypt("x", 4)}
    ]);
    let report = run_on(&s, "acme", "With-Usernames", &users, false)
        .await
        .unwrap();
    let reasons: Vec<_> = report.users.iter().map(|u| u.reason.clone()).collect();
    assert_eq!(reasons[0], None);
    assert!(
        reasons[1]
            .as_deref()
            .unwrap()
            .starts_with("username: The username must be"),
        "{reasons:?}"
    );
    assert!(
        reasons[2]
            .as_deref()
            .unwrap()
            .contains("Missing required property: username")
    );
    assert!(
        reasons[3].as_deref().unwrap().contains("has this username"),
        "{reasons:?}"
    );
    let erin = report.users[0].user_id.clone().unwrap();
    assert_eq!(
        user(&s, "acme", &erin).await.unwrap().0.profile["username"],
        "erin_99"
    );
    // A connection without usernames refuses one.
    let report = run(
        &s,
        &json!([{"email": "ivy@example.com", "username": "ivy", "password_hash": bcrypt("x", 4)}]),
    )
    .await;
    assert!(
        report.users[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("does not use usernames")
    );
    // The username logs in too.
    let (status, body) = s
        .token(&[
            (
                "grant_type",
                "http://auth0.com/oauth/grant-type/password-realm",
            ),
            ("client_id", "spa"),
            ("username", "Erin_99"),
            ("password", "Erin-from-auth0"),
            ("realm", "With-Usernames"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn refusals_are_named_and_passwordless_first_keeps_those_users() {
    let s = server().await;
    let ok_hash = bcrypt("x", 4);
    let custom = |algorithm: &str| json!({"algorithm": algorithm, "hash": {"value": "5f4dcc3b5aa765d61d8327deb882cf99", "encoding": "hex"}});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"email": "u1@example.com", "custom_password_hash": custom("md5")}),
            "md5 is not supported",
        ),
        (
            json!({"email": "u2@example.com", "custom_password_hash": custom("sha256")}),
            "sha256 is not supported",
        ),
        (
            json!({"email": "u3@example.com", "custom_password_hash": custom("ldap")}),
            "ldap is not supported",
        ),
        (
            json!({"email": "u4@example.com", "password_hash": "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/"}),
            "md5-crypt ($1$) is not supported",
        ),
        (
            json!({"email": "u5@example.com", "password_hash": "$6$rounds=5000$salt$abc"}),
            "sha512-crypt ($6$) is not supported",
        ),
        (
            json!({"email": "u6@example.com", "password_hash": "5f4dcc3b5aa765d61d8327deb882cf99"}),
            "not in a format latchkey knows",
        ),
        (
            json!({"email": "u7@example.com"}),
            "the user has no password hash",
        ),
        (
            json!({"email": "u8@example.com", "password_hash": ok_hash, "custom_password_hash": custom("md5")}),
            "both password_hash and custom_password_hash",
        ),
        (
            json!({"email": "u9@example.com", "password_hash": ok_hash.replacen("$04$", "$31$", 1)}),
            "bcrypt cost 31 is outside 4 to 14",
        ),
    ];
    let passwordless_ok = cases.len();
    let more: Vec<(Value, &str)> = vec![
        (
            json!({"email": "not an address", "password_hash": ok_hash}),
            "email is not an email address",
        ),
        (
            json!({"email": "zw\u{200b}j@example.com", "password_hash": ok_hash}),
            "email contains a control, invisible or text-direction character",
        ),
        (json!({"password_hash": ok_hash}), "the user has no email"),
        (
            json!({"email": "g@example.com", "user_id": "google-oauth2|1234", "password_hash": ok_hash}),
            "user_id google-oauth2|1234 is a google-oauth2 user's",
        ),
        (
            json!({"email": "sp@example.com", "user_id": "has space", "password_hash": ok_hash}),
            "printable ASCII",
        ),
        (
            json!({"email": "p@example.com", "password_hash": ok_hash, "mfa_factors": [{"phone": {"value": "5551234567"}}]}),
            "mfa_factors[0].phone.value must start with + and the country code",
        ),
        (
            json!({"email": "t@example.com", "password_hash": ok_hash, "mfa_factors": [{"totp": {"secret": "NOT-BASE32!"}}]}),
            "mfa_factors[0].totp.secret is not base32",
        ),
        (
            json!({"email": "t2@example.com", "password_hash": ok_hash, "mfa_factors": [{"email": {"value": "a@b.c"}}, {"totp": {"secret": "JBSWY3DP"}}]}),
            "mfa_factors[1].totp.secret must be 80 to 512 bits",
        ),
        (
            json!({"email": "t3@example.com", "password_hash": ok_hash, "mfa_factors": [{"totp": {"secret": TOTP_SECRET}, "email": {"value": "a@b.c"}}]}),
            "mfa_factors[0] must hold exactly one of totp, phone and email",
        ),
        (
            json!({"email": "e@example.com", "password_hash": ok_hash, "mfa_factors": [{"email": {"value": "nope"}}]}),
            "mfa_factors[0].email.value is not an email address",
        ),
        (
            json!({"email": "m@example.com", "password_hash": ok_hash, "mfa_factors": vec![json!({"email": {"value": "x@example.com"}}); 20]}),
            "21 authentication methods, more than the 20",
        ),
        (
            json!({"email": ALICE, "password_hash": ok_hash}),
            "a user of the connection has this email (auth0|alice)",
        ),
        (
            json!({"email": "new@example.com", "user_id": "auth0|alice", "password_hash": ok_hash}),
            "a user with this user_id exists",
        ),
    ];
    let all: Vec<Value> = cases.iter().chain(&more).map(|(u, _)| u.clone()).collect();
    let report = run(&s, &Value::Array(all.clone())).await;
    assert_eq!(report.totals.imported, 0, "{report:#?}");
    assert_eq!(report.totals.skipped, all.len());
    for ((_, expected), got) in cases.iter().chain(&more).zip(&report.users) {
        assert_eq!(got.outcome, Outcome::Skipped);
        let reason = got.reason.as_deref().unwrap();
        assert!(
            reason.contains(expected),
            "{reason:?} should say {expected:?}"
        );
    }
    assert!(
        report.users[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("passwordless-first")
    );
    let t = tenant(&s, "acme").await;
    assert_eq!(
        s.state.store.count_users(&t.id).await.unwrap(),
        2,
        "alice and bob only"
    );

    // With passwordless-first, the users whose hash alone was refused come
    // without a password; the others are still refused.
    let report = run_on(&s, "acme", CONNECTION, &Value::Array(all), true)
        .await
        .unwrap();
    assert_eq!(report.totals.imported, passwordless_ok, "{report:#?}");
    assert_eq!(report.totals.without_password, passwordless_ok);
    let md5 = &report.users[0];
    assert_eq!(md5.outcome, Outcome::Imported);
    assert_eq!(md5.password, None);
    assert_eq!(
        md5.notes,
        ["md5 is not supported: imported without a password"]
    );
    let (u1, _) = user(&s, "acme", md5.user_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(u1.password_hash, None);
    // Without a password, no password logs in.
    let (status, _) = password_login(&s, "u1@example.com", "password").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for u in &report.users[passwordless_ok..] {
        assert_eq!(u.outcome, Outcome::Skipped, "{u:?}");
    }
}

#[tokio::test]
async fn importing_again_changes_nothing() {
    let s = server().await;
    let users = json!([
        {"email": "jo@example.com", "user_id": "auth0|jo", "email_verified": true,
         "password_hash": bcrypt("Jo-from-auth0", 4),
         "mfa_factors": [{"totp": {"secret": TOTP_SECRET}}, {"phone": {"value": "+15551230000"}}]},
        {"email": "kim@example.com", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "abc"}}},
        {"email": "lee@example.com", "password_hash": bcrypt("Lee-from-auth0", 4)}
    ]);
    let first = run_on(&s, "acme", CONNECTION, &users, true).await.unwrap();
    assert_eq!(first.totals.imported, 3, "{first:#?}");
    let mut ids = user_ids(&first);
    ids.extend(["auth0|alice".into(), "auth0|bob".into()]);
    let before = snapshot(&s, "acme", &ids).await;
    s.clock.advance(3600);
    for passwordless_first in [true, false] {
        let again = run_on(&s, "acme", CONNECTION, &users, passwordless_first)
            .await
            .unwrap();
        assert_eq!(again.totals.imported, 0, "{again:#?}");
        assert_eq!(again.totals.skipped, 3);
        assert_eq!(
            again.users[0].reason.as_deref(),
            Some("a user with this user_id exists")
        );
        // Users without a user_id in the file are found by their email.
        assert_eq!(
            again.users[2].reason.as_deref(),
            Some(format!("a user of the connection has this email ({})", ids[2]).as_str())
        );
        assert_eq!(snapshot(&s, "acme", &ids).await, before);
    }
}

#[tokio::test]
async fn another_tenants_users_are_untouched() {
    let s = server().await;
    let ids: Vec<String> = ["auth0|alice", "auth0|bob", "auth0|mia"]
        .map(String::from)
        .to_vec();
    let other_before = snapshot(&s, "other", &ids).await;
    // acme's bob, by his user_id, into the other tenant: another user there.
    let users = json!([
        {"email": "bob@example.com", "user_id": "auth0|bob", "password_hash": bcrypt("Other-bob", 4)},
        {"email": "mia@example.com", "user_id": "auth0|mia", "password_hash": bcrypt("Mia", 4)}
    ]);
    let acme_before = snapshot(&s, "acme", &ids).await;
    let report = run_on(&s, "other", CONNECTION, &users, false)
        .await
        .unwrap();
    assert_eq!(report.totals.imported, 2, "{report:#?}");
    assert_eq!(
        snapshot(&s, "acme", &ids).await,
        acme_before,
        "acme untouched"
    );
    let (bob, _) = user(&s, "other", "auth0|bob").await.unwrap();
    assert_eq!(bob.connection, CONNECTION);
    // And into acme: the other tenant stays as it is now.
    let other_now = snapshot(&s, "other", &ids).await;
    assert_ne!(other_now, other_before);
    let report = run(&s, &json!([{"email": "mia@example.com", "user_id": "auth0|mia", "password_hash": bcrypt("Mia", 4)}])).await;
    assert_eq!(report.totals.imported, 1);
    assert_eq!(snapshot(&s, "other", &ids).await, other_now);
}

#[tokio::test]
async fn a_malformed_file_is_refused_and_nothing_is_written() {
    let s = server().await;
    let t = tenant(&s, "acme").await;
    let events_before = s.state.store.audit_events(&t.id, 1000).await.unwrap().len();
    let ok = json!({"email": "ok@example.com", "password_hash": bcrypt("x", 4)});
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"[{\"email\": \"a@example.com\",".to_vec(),
            "the users file is not JSON",
        ),
        (b"{\"users\": []}".to_vec(), "must be a JSON array of users"),
        (
            serde_json::to_vec(&json!([ok, {"email": "b@example.com", "email_verified": "yes"}]))
                .unwrap(),
            "users[1].email_verified: invalid type: string \"yes\", expected a boolean",
        ),
        (
            serde_json::to_vec(&json!([ok, {"email": "c@example.com", "pasword_hash": "x"}]))
                .unwrap(),
            "users[1].pasword_hash: unknown field `pasword_hash`",
        ),
        (
            serde_json::to_vec(
                &json!([ok, {"email": "d@example.com", "mfa_factors": [{"totp": {}}]}]),
            )
            .unwrap(),
            "users[1].mfa_factors[0].totp: missing field `secret`",
        ),
        (
            serde_json::to_vec(&json!([ok, "e@example.com"])).unwrap(),
            "users[1]: invalid type: string",
        ),
    ];
    for (text, expected) in cases {
        let e = import::auth0(
            &s.state,
            &Auth0Import {
                tenant: &t,
                connection: CONNECTION,
                users: &text,
                authentication_methods: None,
                passwordless_first: false,
            },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains(expected), "{e:?} should say {expected:?}");
    }
    let e = run_on(&s, "acme", "Nope", &json!([ok]), false)
        .await
        .unwrap_err();
    assert_eq!(e, "tenant acme has no database connection named Nope");
    assert_eq!(s.state.store.count_users(&t.id).await.unwrap(), 2);
    assert_eq!(
        s.state.store.audit_events(&t.id, 1000).await.unwrap().len(),
        events_before,
        "nothing logged either"
    );
}

#[tokio::test]
async fn old_passwords_log_in_and_are_argon2id_after() {
    let s = server().await;
    let salt = b"0123456789abcdef";
    let users = json!([
        {"email": "b10@example.com", "password_hash": bcrypt("Bcrypt-ten-rounds", 10)},
        {"email": "p256@example.com", "custom_password_hash": pbkdf2("sha256", "Pbkdf2-sha256-pass", salt, 10_000)},
        {"email": "p512@example.com", "custom_password_hash": pbkdf2("sha512", "Pbkdf2-sha512-pass", salt, 1_000)},
        {"email": "cb@example.com", "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": bcrypt("Custom-bcrypt", 4)}}}
    ]);
    let report = run(&s, &users).await;
    assert_eq!(report.totals.imported, 4, "{report:#?}");
    let formats: Vec<_> = report
        .users
        .iter()
        .map(|u| u.password.clone().unwrap())
        .collect();
    assert_eq!(
        formats,
        ["bcrypt", "pbkdf2-sha256", "pbkdf2-sha512", "bcrypt"]
    );
    for (u, (email, password)) in report.users.iter().zip([
        ("b10@example.com", "Bcrypt-ten-rounds"),
        ("p256@example.com", "Pbkdf2-sha256-pass"),
        ("p512@example.com", "Pbkdf2-sha512-pass"),
        ("cb@example.com", "Custom-bcrypt"),
    ]) {
        let id = u.user_id.as_deref().unwrap();
        let old = user(&s, "acme", id).await.unwrap().0.password_hash.unwrap();
        // A wrong password changes nothing.
        let (status, _) = password_login(&s, email, "wrong-password").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            user(&s, "acme", id).await.unwrap().0.password_hash.unwrap(),
            old
        );
        let (status, body) = password_login(&s, email, password).await;
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
        let (now, _) = user(&s, "acme", id).await.unwrap();
        let new = now.password_hash.unwrap();
        assert!(new.starts_with("$argon2id$"), "{email}: {new}");
        assert_eq!(
            now.last_password_reset, None,
            "the same password, not a reset"
        );
        assert!(
            s.state
                .store
                .password_history(&s_tenant_id(&s).await, id, 5)
                .await
                .unwrap()
                .is_empty()
        );
        // And the password still logs in, now against Argon2id.
        let (status, _) = password_login(&s, email, password).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            user(&s, "acme", id).await.unwrap().0.password_hash.unwrap(),
            new
        );
    }
}

async fn s_tenant_id(s: &TestServer) -> String {
    tenant(s, "acme").await.id
}

#[tokio::test]
async fn an_old_totp_code_passes_the_second_step() {
    let s = TestServer::with_tenants(&[migrating_with_mfa]).await;
    let users = json!([{
        "email": "nora@example.com", "email_verified": true, "user_id": "auth0|nora",
        "password_hash": bcrypt("Nora-from-auth0", 4),
        "mfa_factors": [{"totp": {"secret": TOTP_SECRET}}]
    }]);
    assert_eq!(run(&s, &users).await.totals.imported, 1);
    let (status, body) = password_login(&s, "nora@example.com", "Nora-from-auth0").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "mfa_required");
    // The TOTP, and the verified address (the tenant has the email factor).
    assert_eq!(
        body["mfa_requirements"],
        json!({"challenge": [{"type": "otp"}, {"type": "oob"}]})
    );
    let mfa_token = body["mfa_token"].as_str().unwrap();
    // The code the user's authenticator app shows, as it did for Auth0.
    let code = totp_now(TOTP_SECRET, s.clock_now());
    let (status, body) = s
        .token(&[
            ("grant_type", MFA_OTP),
            ("client_id", "spa"),
            ("mfa_token", mfa_token),
            ("otp", &code),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["sub"],
        "auth0|nora"
    );
}

/// Users as an Auth0 export brings them: each a bcrypt hash (cost 4), a
/// TOTP secret and a phone. Their emails, passwords and TOTP secrets.
fn generated(n: usize) -> (Value, Vec<(String, String, String)>) {
    let mut users = Vec::new();
    let mut logins = Vec::new();
    for i in 0..n {
        let email = format!("user{i:04}@example.com");
        let password = format!("Old-password-{i:04}");
        let secret = latchkey::crypto::otp::base32(format!("totp-secret-of-{i:05}").as_bytes());
        users.push(json!({
            "email": email, "email_verified": true, "user_id": format!("auth0|gen{i:04}"),
            "name": format!("User {i}"),
            "password_hash": bcrypt(&password, 4),
            "mfa_factors": [{"totp": {"secret": secret}}, {"phone": {"value": format!("+1555{i:07}")}}]
        }));
        logins.push((email, password, secret));
    }
    (Value::Array(users), logins)
}

#[tokio::test]
async fn a_thousand_users_then_they_log_in() {
    let s = TestServer::with_tenants(&[migrating_with_mfa]).await;
    let (users, logins) = generated(1000);
    // Some of them made passkeys on Auth0, each on their own device.
    let with_passkeys = [0, 499, 999];
    let mut devices = Vec::new();
    let mut methods = serde_json::Map::new();
    for i in with_passkeys {
        let device = crate::authenticator::SoftAuthenticator::new();
        let passkey = passkey_made_on_auth0(&s, &device, &logins[i].0, "localhost").await;
        methods.insert(format!("auth0|gen{i:04}"), json!([passkey]));
        devices.push(device);
    }
    let report = run_with_methods(&s, &users, &Value::Object(methods.clone()))
        .await
        .unwrap();
    assert_eq!(report.totals.users, 1000);
    assert_eq!(
        report.totals.imported,
        1000,
        "{:?}",
        report.users.iter().find(|u| u.reason.is_some())
    );
    assert_eq!(
        report.totals.authentication_methods,
        BTreeMap::from([
            ("passkey".into(), 3),
            ("phone".into(), 1000),
            ("totp".into(), 1000)
        ])
    );
    for (i, device) in with_passkeys.iter().zip(&devices) {
        let (status, body) = passkey_login(&s, device).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            claims(body["id_token"].as_str().unwrap())["sub"],
            format!("auth0|gen{i:04}")
        );
    }
    let t = tenant(&s, "acme").await;
    assert_eq!(s.state.store.count_users(&t.id).await.unwrap(), 1002);
    // A few of them, from anywhere in the file, with their old password and
    // their old TOTP code.
    for i in [0, 499, 999] {
        let (email, password, secret) = &logins[i];
        let (status, body) = password_login(&s, email, password).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let code = totp_now(secret, s.clock_now());
        let (status, body) = s
            .token(&[
                ("grant_type", MFA_OTP),
                ("client_id", "spa"),
                ("mfa_token", body["mfa_token"].as_str().unwrap()),
                ("otp", &code),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
    }
    // Again: nothing imported, nothing changed.
    let ids = user_ids(&report);
    let before = snapshot(&s, "acme", &ids).await;
    let again = run_with_methods(&s, &users, &Value::Object(methods))
        .await
        .unwrap();
    assert_eq!((again.totals.imported, again.totals.skipped), (0, 1000));
    assert_eq!(snapshot(&s, "acme", &ids).await, before);
}

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// The command line's arguments for the store of `s`.
fn storage_args(s: &TestServer) -> Vec<String> {
    let mut args = vec![
        "--data-dir".to_string(),
        s.dir.path().display().to_string(),
        "--master-key".into(),
        s.master_key.clone(),
    ];
    if let Some((url, schema)) = &s.postgres {
        args.extend([
            "--database-url".into(),
            url.clone(),
            "--database-schema".into(),
            schema.clone(),
        ]);
    }
    args
}

#[tokio::test]
async fn the_command_imports_and_prints_the_report() {
    let s = server().await;
    let file = s.dir.path().join("users.json");
    let users = json!([
        {"email": "olga@example.com", "user_id": "auth0|olga", "password_hash": bcrypt("Olga-from-auth0", 4),
         "mfa_factors": [{"totp": {"secret": TOTP_SECRET}}]},
        {"email": "pat@example.com", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "x"}}}
    ]);
    std::fs::write(&file, serde_json::to_vec(&users).unwrap()).unwrap();
    let import = |extra: &[&str]| {
        let mut c = std::process::Command::new(BIN);
        c.args([
            "import",
            "auth0",
            "--tenant",
            "acme",
            "--connection",
            CONNECTION,
        ])
        .arg(&file)
        .args(extra)
        .args(storage_args(&s))
        .env_remove("LATCHKEY_MASTER_KEY")
        .env_remove("LATCHKEY_DATABASE_URL");
        c.output().unwrap()
    };
    let methods = s.dir.path().join("methods.json");
    std::fs::write(
        &methods,
        br#"{"auth0|olga": [{"id": "totp|dev_1", "type": "totp"}]}"#,
    )
    .unwrap();
    let out = import(&["--authentication-methods", methods.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tenant"], "acme");
    assert_eq!(report["totals"]["imported"], 1);
    assert_eq!(report["totals"]["skipped"], 1);
    assert_eq!(report["users"][0]["outcome"], "imported");
    assert_eq!(
        report["users"][0]["authentication_methods"],
        json!(["totp"])
    );
    assert_eq!(report["users"][1]["outcome"], "skipped");
    assert_eq!(
        report["users"][0]["notes"],
        json!([
            "totp totp|dev_1 is imported from mfa_factors, not from the authentication methods (they list no secret)"
        ])
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains(TOTP_SECRET) && !stdout.contains("$2b$"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("imported 1 of 2 user(s) into acme/"));
    let (olga, _) = user(&s, "acme", "auth0|olga").await.unwrap();
    assert!(olga.password_hash.unwrap().starts_with("$2b$04$"));

    // --passwordless-first brings the second; the first is there already.
    let out = import(&["--passwordless-first"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["users"][0]["reason"],
        "a user with this user_id exists"
    );
    assert_eq!(report["users"][1]["outcome"], "imported");
    assert_eq!(report["totals"]["without_password"], 1);

    // A file that is not one: a clear error, a failure, nothing written.
    std::fs::write(&file, b"[{\"oops\"").unwrap();
    let out = import(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the users file is not JSON"), "{stderr}");
}

#[tokio::test]
async fn commands_on_a_missing_data_directory_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nothing-here");
    let file = root.path().join("users.json");
    std::fs::write(&file, b"[]").unwrap();
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (dir, expected) in [
        (&missing, "holds no latchkey database"),
        (&empty, "holds no latchkey database"),
    ] {
        for args in [
            vec![
                "import",
                "auth0",
                "--tenant",
                "acme",
                "--connection",
                CONNECTION,
                file.to_str().unwrap(),
            ],
            vec!["logs", "--tenant", "acme"],
        ] {
            let out = std::process::Command::new(BIN)
                .args(&args)
                .arg("--data-dir")
                .arg(dir)
                .env_remove("LATCHKEY_MASTER_KEY")
                .env_remove("LATCHKEY_DATABASE_URL")
                .output()
                .unwrap();
            assert!(!out.status.success());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(expected), "{args:?}: {stderr}");
        }
    }
    assert!(!missing.exists());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

/// A passkey made on Auth0: the test authenticator creates it for the
/// tenant's RP ID (`localhost`, the host both share) with Auth0's user handle
/// (32 bytes, not latchkey's), as Auth0's creation options asked; returned
/// as Auth0's Management API lists it (`key_id`, `public_key` as base64 of
/// the COSE key, `user_handle`, `relying_party_identifier`, …).
async fn passkey_made_on_auth0(
    s: &TestServer,
    authenticator: &crate::authenticator::SoftAuthenticator,
    email: &str,
    rp_id: &str,
) -> Value {
    key_made_on_auth0(s, authenticator, email, rp_id, "passkey").await
}

/// [`passkey_made_on_auth0`], listed as a method of type `kind` (a
/// `webauthn-roaming` security key, a `webauthn-platform` key).
async fn key_made_on_auth0(
    s: &TestServer,
    authenticator: &crate::authenticator::SoftAuthenticator,
    email: &str,
    rp_id: &str,
    kind: &str,
) -> Value {
    use crate::authenticator::{b64url, b64url_decode};
    let handle = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, email.as_bytes())
        .as_ref()
        .to_vec();
    let options = json!({
        "rp": {"id": rp_id, "name": "Acme on Auth0"},
        "user": {"id": b64url(&handle), "name": email, "displayName": email},
        "challenge": b64url(b"a challenge Auth0 made, 32 bytes"),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
        "authenticatorSelection": {"residentKey": "required", "userVerification": "required"},
        "attestation": "none"
    });
    let created = authenticator.register(&s.base, &options).await.unwrap();
    // The attested credential data of the attestation object's authData:
    // rpIdHash (32), flags, signCount (4), AAGUID (16), the ID's length (2),
    // the ID, the COSE key.
    let object = b64url_decode(created["response"]["attestationObject"].as_str().unwrap());
    let at = object.windows(8).position(|w| w == b"authData").unwrap() + 8;
    let (len, start) = match object[at] {
        0x58 => (object[at + 1] as usize, at + 2),
        0x59 => (
            u16::from_be_bytes([object[at + 1], object[at + 2]]) as usize,
            at + 3,
        ),
        other => panic!("authData header {other:#x}"),
    };
    let auth_data = &object[start..start + len];
    let id_len = u16::from_be_bytes([auth_data[53], auth_data[54]]) as usize;
    let credential_id = &auth_data[55..55 + id_len];
    let cose_key = &auth_data[55 + id_len..];
    json!({
        "id": format!("{kind}|dev_{}", &b64url(credential_id)[..8]),
        "type": kind,
        "confirmed": true,
        "key_id": b64url(credential_id),
        "public_key": base64::engine::general_purpose::STANDARD.encode(cose_key),
        "user_handle": b64url(&handle),
        "relying_party_identifier": rp_id,
        "credential_device_type": "multi_device",
        "credential_backed_up": true,
        "transports": ["internal", "hybrid"],
        "aaguid": "00000000-0000-0000-0000-000000000000",
        "user_agent": "Mozilla/5.0 (Macintosh)",
        "identity_user_id": "5f3a",
        "created_at": "2025-01-02T03:04:05.000Z"
    })
}

async fn run_with_methods(
    s: &TestServer,
    users: &Value,
    methods: &Value,
) -> Result<Report, String> {
    let t = tenant(s, "acme").await;
    let users = serde_json::to_vec(users).unwrap();
    let methods = serde_json::to_vec(methods).unwrap();
    import::auth0(
        &s.state,
        &Auth0Import {
            tenant: &t,
            connection: CONNECTION,
            users: &users,
            authentication_methods: Some(&methods),
            passwordless_first: false,
        },
    )
    .await
    .map_err(|e| e.to_string())
}

/// A native passkey login (`/passkey/challenge`, the webauthn grant).
async fn passkey_login(
    s: &TestServer,
    authenticator: &crate::authenticator::SoftAuthenticator,
) -> (StatusCode, Value) {
    let res = s
        .http()
        .post(s.url("/passkey/challenge"))
        .json(&json!({"client_id": "spa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let assertion = authenticator
        .authenticate(&s.base, &body["authn_params_public_key"])
        .await
        .unwrap();
    let res = s
        .http()
        .post(s.url("/oauth/token"))
        .json(&json!({"grant_type": WEBAUTHN, "client_id": "spa", "auth_session": body["auth_session"],
                      "authn_response": assertion, "scope": "openid"}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn a_passkey_made_on_auth0_logs_in_after_the_import() {
    let s = server().await;
    let authenticator = crate::authenticator::SoftAuthenticator::new();
    let passkey = passkey_made_on_auth0(&s, &authenticator, "quinn@example.com", "localhost").await;
    let users = json!([
        {"email": "quinn@example.com", "email_verified": true, "user_id": "auth0|quinn",
         "password_hash": bcrypt("Quinn-from-auth0", 4)},
        {"email": "ruth@example.com", "user_id": "auth0|ruth",
         "custom_password_hash": {"algorithm": "md5", "hash": {"value": "x"}}}
    ]);
    let methods = json!({
        "auth0|quinn": [
            {"id": "password", "type": "password", "created_at": "2025-01-01T00:00:00.000Z"},
            passkey,
            {"id": "totp|dev_T0", "type": "totp", "confirmed": true},
            {"id": "recovery-code|dev_R0", "type": "recovery-code", "confirmed": true}
        ],
        "auth0|nobody": {"authenticators": []}
    });
    let report = run_with_methods(&s, &users, &methods).await.unwrap();
    assert_eq!(report.users[0].outcome, Outcome::Imported, "{report:#?}");
    assert_eq!(report.users[0].authentication_methods, ["passkey"]);
    assert_eq!(
        report.users[0].notes.len(),
        2,
        "{:?}",
        report.users[0].notes
    );
    assert!(report.users[0].notes[0].starts_with("totp totp|dev_T0 is imported from mfa_factors"));
    assert!(
        report.users[0].notes[1].contains("recovery-code recovery-code|dev_R0 is not imported")
    );
    assert_eq!(report.authentication_methods_without_user, ["auth0|nobody"]);
    let text = serde_json::to_string(&report).unwrap();
    assert!(!text.contains(passkey["public_key"].as_str().unwrap()));

    let (_, rows) = user(&s, "acme", "auth0|quinn").await.unwrap();
    let row = &rows[0];
    assert_eq!(row.method_type, FactorType::Passkey);
    assert_eq!(row.credential_id.as_deref(), passkey["key_id"].as_str());
    assert_eq!(row.data["user_handle"], passkey["user_handle"]);
    assert_eq!(row.data["relying_party_id"], "localhost");
    assert_eq!(row.data["backup_eligible"], true);
    assert_eq!(row.created_at, 1_735_787_045, "Auth0's creation time kept");

    // The user logs in with the passkey they made on Auth0, and again (its
    // counter moves on).
    for _ in 0..2 {
        let (status, body) = passkey_login(&s, &authenticator).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            claims(body["id_token"].as_str().unwrap())["sub"],
            "auth0|quinn"
        );
    }
    // And their old password, too.
    let (status, body) = password_login(&s, "quinn@example.com", "Quinn-from-auth0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // My Account lists it as Auth0 did.
    let token = s
        .me_token_for("quinn@example.com", "Quinn-from-auth0", None, ME_SCOPES)
        .await;
    let list = s
        .me("GET", "/authentication-methods", Some(&token), None)
        .await;
    let listed: Vec<&Value> = list.body["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "passkey")
        .collect();
    assert_eq!(listed.len(), 1, "{}", list.body);
    assert_eq!(listed[0]["key_id"], passkey["key_id"]);
    assert_eq!(listed[0]["user_handle"], passkey["user_handle"]);
    assert_eq!(listed[0]["credential_device_type"], "multi_device");

    // Importing again changes nothing.
    let ids = vec!["auth0|quinn".to_string(), "auth0|ruth".to_string()];
    let before = snapshot(&s, "acme", &ids).await;
    let again = run_with_methods(&s, &users, &methods).await.unwrap();
    assert_eq!(again.totals.imported, 0);
    assert_eq!(snapshot(&s, "acme", &ids).await, before);
}

#[tokio::test]
async fn passkeys_are_refused_by_name() {
    let s = server().await;
    let authenticator = crate::authenticator::SoftAuthenticator::new();
    let good = passkey_made_on_auth0(&s, &authenticator, "sam@example.com", "localhost").await;
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut p = good.clone();
        f(&mut p);
        p
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            edit(&|p| p["relying_party_identifier"] = json!("acme.auth0.com")),
            "is for the relying party acme.auth0.com, not this tenant's (localhost)",
        ),
        (
            edit(&|p| {
                p.as_object_mut()
                    .unwrap()
                    .remove("relying_party_identifier");
            }),
            "has no relying_party_identifier",
        ),
        (
            edit(&|p| {
                p.as_object_mut().unwrap().remove("user_handle");
            }),
            "has no user_handle",
        ),
        (
            edit(&|p| p["public_key"] = json!("ogEDAzkBAA")),
            "its key (RS256) is not supported",
        ),
        (
            edit(&|p| p["public_key"] = json!("not base64!")),
            "has no public_key in base64",
        ),
        (edit(&|p| p["key_id"] = json!("")), "has no key_id"),
    ];
    let users: Vec<Value> = (0..cases.len())
        .map(|i| {
            json!({"email": format!("k{i}@example.com"), "user_id": format!("auth0|k{i}"),
                        "password_hash": bcrypt("x", 4)})
        })
        .collect();
    let methods: serde_json::Map<String, Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (format!("k{i}"), json!([p])))
        .collect();
    let report = run_with_methods(&s, &Value::Array(users), &Value::Object(methods))
        .await
        .unwrap();
    assert_eq!(report.totals.imported, 0, "{report:#?}");
    for ((_, expected), got) in cases.iter().zip(&report.users) {
        let reason = got.reason.as_deref().unwrap();
        assert!(
            reason.contains(expected),
            "{reason:?} should say {expected:?}"
        );
        assert!(reason.starts_with("passkey passkey|dev_"), "{reason}");
    }
    let t = tenant(&s, "acme").await;
    assert_eq!(s.state.store.count_users(&t.id).await.unwrap(), 2);
    // The same credential for two users: the second is refused.
    let users = json!([
        {"email": "t1@example.com", "user_id": "auth0|t1", "password_hash": bcrypt("x", 4)},
        {"email": "t2@example.com", "user_id": "auth0|t2", "password_hash": bcrypt("x", 4)}
    ]);
    let report = run_with_methods(&s, &users, &json!({"auth0|t1": [good], "t2": [good]}))
        .await
        .unwrap();
    assert_eq!(report.users[0].outcome, Outcome::Imported);
    assert_eq!(
        report.users[1].reason.as_deref(),
        Some("one of the user's passkeys is registered already")
    );
    assert!(
        user(&s, "acme", "auth0|t2").await.is_none(),
        "nothing of t2 written"
    );
    // A malformed methods file: nothing imported.
    let e = run_with_methods(&s, &json!([]), &json!(["not", "an", "object"]))
        .await
        .unwrap_err();
    assert!(e.contains("must be a JSON object of user IDs"), "{e}");
    let e = run_with_methods(&s, &json!([]), &json!({"auth0|x": [{"id": "p"}]}))
        .await
        .unwrap_err();
    assert!(e.contains("authentication methods of auth0|x"), "{e}");
}

#[tokio::test]
async fn an_imported_counter_refuses_a_cloned_authenticator() {
    let s = server().await;
    let authenticator = crate::authenticator::SoftAuthenticator::new();
    let mut passkey =
        passkey_made_on_auth0(&s, &authenticator, "uma@example.com", "localhost").await;
    // Auth0 saw this passkey at counter 1000: an authenticator that says
    // less is a copy.
    passkey["counter"] = json!(1000);
    let users = json!([{"email": "uma@example.com", "user_id": "auth0|uma", "password_hash": bcrypt("x", 4)}]);
    let report = run_with_methods(&s, &users, &json!({"auth0|uma": [passkey]}))
        .await
        .unwrap();
    assert_eq!(report.totals.imported, 1, "{report:#?}");
    let (status, body) = passkey_login(&s, &authenticator).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "The passkey's signature counter went backwards."
    );
}

/// [`migrating_with_mfa`] with WebAuthn keys among the second factors.
fn with_keys(port: u16) -> String {
    migrating_with_mfa(port).replace(
        "email, phone, passkey]",
        "email, phone, passkey, webauthn-roaming, webauthn-platform]",
    )
}

#[tokio::test]
async fn a_security_key_made_on_auth0_is_the_second_factor_on_the_page() {
    let s = TestServer::with_tenants(&[with_keys]).await;
    let key = crate::authenticator::SoftAuthenticator::new();
    let listed =
        key_made_on_auth0(&s, &key, "vic@example.com", "localhost", "webauthn-roaming").await;
    let users = json!([{"email": "vic@example.com", "user_id": "auth0|vic",
                        "password_hash": bcrypt("Vic-from-auth0", 4)}]);
    let report = run_with_methods(&s, &users, &json!({"auth0|vic": [listed]}))
        .await
        .unwrap();
    assert_eq!(
        report.users[0].authentication_methods,
        ["webauthn-roaming"],
        "{report:#?}"
    );

    // The hosted login: the old password, then the old key.
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let res = login_through_page(&s, &browser, &req, "vic@example.com", "Vic-from-auth0").await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("data-kind=\"webauthn-roaming\""), "{page}");
    let tx = hidden_input(&page, "tx").unwrap();
    let options: Value = browser
        .post(s.url("/login/mfa/key/challenge"))
        .form(&[("tx", tx.as_str()), ("kind", "webauthn-roaming")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let credential = key
        .authenticate(&s.base, &options["options"])
        .await
        .unwrap();
    let res = browser
        .post(s.url("/login/mfa/key"))
        .form(&[
            ("tx", tx.as_str()),
            ("auth_session", options["auth_session"].as_str().unwrap()),
            ("credential", &credential.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let code = query_param(&location, "code").unwrap();
    let (status, body) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], "auth0|vic");
    assert_eq!(id["amr"], json!(["pwd", "mfa", "hwk"]));
}
