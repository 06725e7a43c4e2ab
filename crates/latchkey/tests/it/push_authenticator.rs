//! Push notifications with latchkey's reference authenticator
//! (`latchkey-authenticator`, built by `cargo build --workspace --bins`) as
//! the device, a separate process speaking HTTP to the real server: it
//! enrolls from the enrollment URI My Account gives, renames itself, and
//! removes its method with a JWT signed by its key; and, listening for the
//! tenant's signed webhook, approves and rejects logins of the MFA API and of
//! the hosted page (with number matching, typing the number the login
//! shows), fetching each login's details with its `MFA-DPoP` proof.
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
pub(crate) fn authenticator_bin() -> PathBuf {
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

/// The machine's clock, which the device process reads.
fn machine_now() -> i64 {
    #[allow(
        clippy::disallowed_methods,
        reason = "the device process reads the machine's clock"
    )]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A server on the machine's clock, with push enabled on acme.
async fn server() -> TestServer {
    let s = TestServer::with_tenants(&[acme_push, other_tenant]).await;
    s.clock.set(machine_now());
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

/// `latchkey-authenticator listen --json` as a process: its events as they
/// come, its stdin for answers.
struct Listening {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    events: tokio::sync::mpsc::UnboundedReceiver<String>,
    addr: String,
}

impl Listening {
    async fn start(state: &Path, extra: &[&str]) -> Listening {
        let mut child = std::process::Command::new(authenticator_bin())
            .arg("--state")
            .arg(state)
            .args([
                "listen",
                "--addr",
                "127.0.0.1:0",
                "--webhook-secret-env",
                "TEST_PUSH_WEBHOOK_SECRET",
                "--json",
            ])
            .args(extra)
            .env("TEST_PUSH_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut listening = Listening {
            child,
            stdin,
            events,
            addr: String::new(),
        };
        let first = listening.next("listening").await;
        listening.addr = first["addr"].as_str().unwrap().to_owned();
        listening
    }

    /// The next event, which must be of `kind`.
    async fn next(&mut self, kind: &str) -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), self.events.recv())
            .await
            .expect("an event within a minute")
            .expect("the authenticator is still running");
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["event"], kind, "{event}");
        event
    }

    fn answer(&mut self, line: &str) {
        use std::io::Write as _;
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Enrolls the reference authenticator into `state` as Alice's push method
/// through My Account; its method ID.
async fn enrolled_device(s: &TestServer, state: &Path) -> String {
    let token = s.me_token(SCOPES).await;
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
    let enrolled = device(state, &["enroll", "--uri", &uri]).await;
    assert!(enrolled.ok, "{}", enrolled.stderr);
    let location = started.header("location").unwrap().to_owned();
    let confirmed = s
        .me(
            "POST",
            &format!("{location}/verify"),
            Some(&token),
            Some(json!({"auth_session": started.body["auth_session"]})),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.body);
    confirmed.body["id"].as_str().unwrap().to_owned()
}

const MFA_OOB: &str = "http://auth0.com/oauth/grant-type/mfa-oob";

/// A password login of Alice's that needs a second factor, and the push
/// challenge sent for it: (mfa_token, the challenge's answer).
async fn push_challenge(s: &TestServer) -> (String, Value) {
    s.clock.set(machine_now());
    let (status, body) = s
        .token(&[
            (
                "grant_type",
                "http://auth0.com/oauth/grant-type/password-realm",
            ),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("realm", "Username-Password-Authentication"),
            ("scope", "openid"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();
    let listed: Value = s
        .http()
        .get(s.url("/mfa/authenticators"))
        .bearer_auth(&mfa_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let push = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["oob_channel"] == "auth0")
        .unwrap_or_else(|| panic!("no push authenticator in {listed}"));
    let res = s
        .http()
        .post(s.url("/mfa/challenge"))
        .form(&[
            ("client_id", "spa"),
            ("mfa_token", mfa_token.as_str()),
            ("challenge_type", "oob"),
            ("authenticator_id", push["id"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    (mfa_token, res.json().await.unwrap())
}

async fn poll(s: &TestServer, mfa_token: &str, challenge: &Value) -> (StatusCode, Value) {
    s.token(&[
        ("grant_type", MFA_OOB),
        ("client_id", "spa"),
        ("mfa_token", mfa_token),
        ("oob_code", challenge["oob_code"].as_str().unwrap()),
    ])
    .await
}

#[tokio::test]
async fn logins_are_approved_and_rejected_on_the_reference_authenticator() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("device.json");
    enrolled_device(&s, &state).await;
    let mut phone = Listening::start(&state, &[]).await;
    let webhook = format!("http://{}/", phone.addr);
    let configure = |number_matching: bool| {
        let file = crate::mfa_api::tenant(s.port, crate::mfa_api::ALWAYS).replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, totp, recovery-code, push-notification]",
        ) + &format!(
            "push_notifications:\n  number_matching: {number_matching}\n  webhook: {{ url: \"{webhook}\", secret_env: SMS_WEBHOOK_SECRET }}\n"
        );
        let state = s.state.clone();
        async move {
            latchkey::tenant::apply::apply_text(&state, &file)
                .await
                .unwrap()
        }
    };
    configure(false).await;

    // Approved on the device: the app's poll gets the tokens.
    let (mfa_token, challenge) = push_challenge(&s).await;
    let (status, body) = poll(&s, &mfa_token, &challenge).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    let shown = phone.next("notification").await;
    assert_eq!(shown["number_matching"], false);
    assert_eq!(shown["application"], "Demo SPA", "{shown}");
    assert_eq!(shown["ip"], "127.0.0.1", "{shown}");
    phone.answer("y");
    assert_eq!(phone.next("resolved").await["accepted"], true);
    s.clock.advance(6);
    let (status, body) = poll(&s, &mfa_token, &challenge).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());

    // Rejected with a reason: Auth0's answer to the app.
    let (mfa_token, challenge) = push_challenge(&s).await;
    phone.next("notification").await;
    phone.answer("n not me");
    let resolved = phone.next("resolved").await;
    assert_eq!(
        (resolved["accepted"].as_bool(), resolved["reason"].as_str()),
        (Some(false), Some("not me"))
    );
    let (status, body) = poll(&s, &mfa_token, &challenge).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "MFA Authorization rejected.");

    // Number matching: the device asks for the number the login shows.
    configure(true).await;
    let (mfa_token, challenge) = push_challenge(&s).await;
    let code = challenge["latchkey_binding_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = phone.next("notification").await;
    assert_eq!(shown["number_matching"], true);
    assert!(!shown.to_string().contains(&format!("\"{code}\"")));
    phone.answer("y");
    phone.answer(&code);
    assert_eq!(phone.next("resolved").await["accepted"], true);
    let (status, body) = poll(&s, &mfa_token, &challenge).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A wrong number: latchkey refuses the approval, the device says so on
    // one line, and the login is rejected (one guess a login).
    let (mfa_token, challenge) = push_challenge(&s).await;
    let code = challenge["latchkey_binding_code"].as_str().unwrap();
    let wrong = if code == "17" { "71" } else { "17" };
    phone.next("notification").await;
    phone.answer("y");
    phone.answer(wrong);
    let error = phone.next("error").await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("invalid_binding_code"), "{error}");
    assert!(!message.contains('\n'));
    let (status, body) = poll(&s, &mfa_token, &challenge).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error_description"], "MFA Authorization rejected.");

    // The device's TOTP code answers the same login's mfa-otp instead.
    let (mfa_token, _) = push_challenge(&s).await;
    phone.next("notification").await;
    let code = device(&state, &["code"]).await;
    assert!(code.ok, "{}", code.stderr);
    let (status, body) = s
        .token(&[
            ("grant_type", "http://auth0.com/oauth/grant-type/mfa-otp"),
            ("client_id", "spa"),
            ("mfa_token", &mfa_token),
            ("otp", code.stdout.trim()),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_hosted_page_login_is_approved_on_the_reference_authenticator() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("device.json");
    let method_id = enrolled_device(&s, &state).await;
    let mut phone = Listening::start(&state, &["--approve"]).await;
    let file = crate::mfa_api::tenant(s.port, crate::mfa_api::ALWAYS).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, totp, recovery-code, push-notification]",
    ) + &format!(
        "push_notifications:\n  webhook: {{ url: \"http://{}/\", secret_env: SMS_WEBHOOK_SECRET }}\n",
        phone.addr
    );
    latchkey::tenant::apply::apply_text(&s.state, &file)
        .await
        .unwrap();
    s.clock.set(machine_now());

    // The password on the page; its second step sends the notification.
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let res = login_through_page(&s, &browser, &req, ALICE, ALICE_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert_eq!(
        hidden_input(&page, "method").as_deref(),
        Some(method_id.as_str()),
        "{page}"
    );
    let tx = hidden_input(&page, "tx").unwrap();
    let shown = phone.next("notification").await;
    assert_eq!(shown["application"], "Demo SPA", "{shown}");
    assert_eq!(phone.next("resolved").await["accepted"], true);

    // Approved: the page's status says so and its button finishes the login.
    let status: Value = browser
        .post(s.url("/login/mfa/push/status"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status, json!({"status": "approved"}));
    let res = browser
        .post(s.url("/login/mfa/push"))
        .form(&[("tx", tx.as_str()), ("method", method_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let code = query_param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    let (status, body) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );
}
