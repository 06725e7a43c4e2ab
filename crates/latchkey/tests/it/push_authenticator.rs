//! Push notifications with latchkey's reference authenticator
//! (`latchkey-authenticator`, built by `cargo build --workspace --bins`) as
//! the device, a separate process speaking HTTP to the real server: it
//! enrolls from the enrollment URI My Account gives, renames itself, and
//! removes its method with a JWT signed by its key.
//!
//! The authenticator reads the machine's clock (its JWTs carry it), so these
//! tests set the server's clock to it first.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;
use latchkey::services::factors::push::PushDevice;

const SCOPES: &str = "read:me:authentication_methods create:me:authentication_methods update:me:authentication_methods delete:me:authentication_methods";

/// The authenticator's binary: `LATCHKEY_AUTHENTICATOR_BIN`, else beside
/// this test binary's target directory.
fn authenticator_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LATCHKEY_AUTHENTICATOR_BIN") {
        return PathBuf::from(path);
    }
    // target/debug/deps/it-… → target/debug/latchkey-authenticator
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("latchkey-authenticator");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p latchkey-authenticator` (scripts/test builds it)",
        path.display()
    );
    path
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn device(state: &Path, args: &[&str]) -> Run {
    let mut command = std::process::Command::new(authenticator_bin());
    command.arg("--state").arg(state).args(args);
    // Off the runtime's thread: the server under test answers on it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// acme with push enabled, its webhook at `webhook` (signed with the tests'
/// webhook secret).
fn acme_push_to(port: u16, webhook: &str) -> String {
    acme(port).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, totp, recovery-code, push-notification]",
    ) + &format!(
        "push_notifications:\n  webhook: {{ url: \"{webhook}\", secret_env: SMS_WEBHOOK_SECRET }}\n"
    )
}

fn acme_push(port: u16) -> String {
    // No notification is sent before a test points the webhook at its device.
    acme_push_to(port, "http://127.0.0.1:9/")
}

/// A server on the machine's clock, with push enabled on acme.
async fn server() -> TestServer {
    let s = TestServer::with_tenants(&[acme_push, other_tenant]).await;
    #[allow(
        clippy::disallowed_methods,
        reason = "the device process reads the machine's clock"
    )]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    s.clock.set(now);
    s
}

/// The device latchkey keeps for a push method.
async fn stored_device(s: &TestServer, method_id: &str) -> Option<PushDevice> {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let method = s
        .state
        .store
        .method_by_id(&tenant.id, method_id)
        .await
        .unwrap()?;
    Some(PushDevice::of_method(&method).unwrap())
}

async fn methods(s: &TestServer, token: &str) -> Vec<Value> {
    let r = s
        .me("GET", "/authentication-methods", Some(token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["authentication_methods"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_reference_authenticator_enrolls_renames_and_removes_its_method() {
    let s = server().await;
    let token = s.me_token(SCOPES).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("device.json");

    let started = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "push-notification"})),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let uri = started.body["barcode_uri"].as_str().unwrap().to_owned();
    let verify_url = format!(
        "/authentication-methods/{}/verify",
        percent_encoding::utf8_percent_encode(
            started.body["id"].as_str().unwrap(),
            percent_encoding::NON_ALPHANUMERIC
        )
    );
    let verify_body = json!({"auth_session": started.body["auth_session"]});
    let verify = || s.me("POST", &verify_url, Some(&token), Some(verify_body.clone()));
    // Not yet enrolled by a device.
    assert_eq!(verify().await.status, StatusCode::BAD_REQUEST);

    let enrolled = device(&state, &["enroll", "--uri", &uri, "--name", "test laptop"]).await;
    assert!(enrolled.ok, "{}", enrolled.stderr);
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let dai = saved["enrollment"]["id"].as_str().unwrap().to_owned();
    assert!(enrolled.stdout.contains(&dai), "{}", enrolled.stdout);
    assert_eq!(saved["enrollment"]["user_id"], "auth0|alice");
    assert_eq!(
        saved["enrollment"]["base_url"],
        format!("{}appliance-mfa", s.issuer)
    );

    // The ticket is spent: a second device is refused, in Guardian's words.
    let other = device(&dir.path().join("other.json"), &["enroll", "--uri", &uri]).await;
    assert!(!other.ok);
    assert!(
        other.stderr.contains("enrollment_transaction_not_found"),
        "{}",
        other.stderr
    );
    assert!(!dir.path().join("other.json").exists());

    let confirmed = verify().await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.body);
    let method_id = confirmed.body["id"].as_str().unwrap().to_owned();
    assert_eq!(method_id, format!("push-notification|{dai}"));

    // What latchkey keeps of the device: the name, the key it sent.
    let key = saved["device"]["key"].as_str().unwrap().to_owned();
    let stored = stored_device(&s, &method_id).await.unwrap();
    assert_eq!(stored.device_name, "test laptop");
    assert_eq!(
        stored.identifier,
        saved["device"]["identifier"].as_str().unwrap()
    );
    assert_eq!(stored.push_service.map(|p| p.as_str()), Some("FCM"));
    assert_eq!(stored.public_key["kty"], "RSA");
    assert!(!key.is_empty());
    let listed = methods(&s, &token).await;
    let push = listed
        .iter()
        .find(|m| m["id"] == method_id.as_str())
        .unwrap();
    assert_eq!(push["type"], "push-notification");
    assert_eq!(push["name"], "test laptop", "{push}");

    // Renamed and given new push credentials by the device, with its device
    // account token.
    let renamed = device(&state, &["rename", "--name", "work laptop"]).await;
    assert!(renamed.ok, "{}", renamed.stderr);
    let updated = device(
        &state,
        &[
            "update",
            "--push-token",
            "apns-token-1",
            "--push-service",
            "APNS",
        ],
    )
    .await;
    assert!(updated.ok, "{}", updated.stderr);
    let stored = stored_device(&s, &method_id).await.unwrap();
    assert_eq!(stored.device_name, "work laptop");
    assert_eq!(stored.push_service.map(|p| p.as_str()), Some("APNS"));

    // Removed by the device with a JWT signed by its key: the method is gone.
    let copy = dir.path().join("copy.json");
    std::fs::copy(&state, &copy).unwrap();
    let removed = device(&state, &["remove"]).await;
    assert!(removed.ok, "{}", removed.stderr);
    assert!(!state.exists());
    assert!(
        !methods(&s, &token)
            .await
            .iter()
            .any(|m| m["id"] == method_id.as_str())
    );
    // Its token and key are dead with it.
    let late = device(&copy, &["rename", "--name", "again"]).await;
    assert!(!late.ok);
    assert!(
        late.stderr.contains("the server answered 40"),
        "{}",
        late.stderr
    );
    let late = device(&copy, &["remove"]).await;
    assert!(!late.ok, "{}", late.stdout);
    assert!(copy.exists());
}
