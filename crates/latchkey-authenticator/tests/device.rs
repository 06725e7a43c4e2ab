//! The built `latchkey-authenticator` binary, run as a process against an
//! in-test HTTP server playing latchkey's side of docs/push-notifications.md.
//! The server checks every request as latchkey does (the enroll body and its
//! JWK, the device JWT, the `MFA-DPoP` proof, the challenge response, each
//! signature verified with the JWK the device enrolled with) and answers a
//! failed check with a Guardian error, which the binary reports and the test
//! sees; the test then checks what the server recorded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey-authenticator");
const TICKET: &str = "ticket-0123456789abcdefghijklmnopqrstuvwxyz";
const DEVICE_TOKEN: &str = "device-account-token-secret-value";
const SECRET_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";
const USER: &str = "auth0|user-1";
const DAI: &str = "dev_abcdefghijklmnop";

/// The binary reads the real clock, so what the test signs must use it too.
#[allow(clippy::disallowed_methods)]
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[derive(Default)]
struct Recorded {
    enrolls: usize,
    jwk: Option<Value>,
    identifier: Option<String>,
    push_token: Option<String>,
    patches: Vec<Value>,
    consents: Vec<String>,
    jtis: Vec<String>,
    resolutions: Vec<Value>,
    removed: bool,
    /// The transaction: (txlnkid, txtkn, challenge, number_matching).
    transaction: Option<(String, String, String, bool)>,
}

#[derive(Clone)]
struct Fake {
    issuer: String,
    recorded: Arc<Mutex<Recorded>>,
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let error = status.canonical_reason().unwrap_or("");
    (status, axum::Json(json!({"statusCode": status.as_u16(), "error": error, "message": message, "errorCode": code})))
        .into_response()
}

fn bad(message: &str) -> Response {
    refuse(StatusCode::BAD_REQUEST, "invalid_body", message)
}

fn bearer(headers: &HeaderMap, scheme: &str) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix(&format!("{scheme} ")).map(str::to_owned)
}

/// Verifies an RS256 JWS with `jwk`; returns (header, claims) or why not.
fn verify(jwt: &str, jwk: &Value) -> Result<(Value, Value), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err("not a compact JWS".into());
    }
    let n = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().ok_or("no n")?)
        .map_err(|_| "n")?;
    let e = URL_SAFE_NO_PAD
        .decode(jwk["e"].as_str().ok_or("no e")?)
        .map_err(|_| "e")?;
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| "signature encoding")?;
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &signature,
        )
        .map_err(|_| "the signature does not verify with the enrolled key".to_string())?;
    let decode = |p: &str| -> Result<Value, String> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|_| "segment encoding")?)
            .map_err(|_| "segment JSON".to_string())
    };
    let header = decode(parts[0])?;
    if header["alg"] != "RS256" {
        return Err("alg is not RS256".into());
    }
    Ok((header, decode(parts[1])?))
}

fn fresh(claims: &Value, lifetime: i64) -> Result<(), String> {
    let iat = claims["iat"].as_i64().ok_or("no iat")?;
    if (now() - iat).abs() > 60 {
        return Err("iat is not now".into());
    }
    if lifetime > 0 && claims["exp"].as_i64() != Some(iat + lifetime) {
        return Err(format!("exp is not iat + {lifetime}"));
    }
    Ok(())
}

async fn enroll(State(fake): State<Fake>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Ticket id=\"{TICKET}\""))
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "enrollment_transaction_not_found",
            "Enrollment transaction not found",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad("not JSON");
    };
    // Sorted: built in the workspace, serde_json may keep insertion order.
    let mut keys: Vec<&String> = body
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    keys.sort();
    if keys != ["identifier", "name", "public_key", "push_credentials"] {
        return bad(&format!("unexpected members {keys:?}"));
    }
    let jwk = &body["public_key"];
    let mut jwk_keys: Vec<&String> = jwk
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    jwk_keys.sort();
    if jwk_keys != ["alg", "e", "kty", "n", "use"]
        || jwk["kty"] != "RSA"
        || jwk["alg"] != "RS256"
        || jwk["use"] != "sig"
    {
        return bad("public_key is not an RS256 signing JWK");
    }
    let n_len = jwk["n"]
        .as_str()
        .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
        .map_or(0, |n| n.len());
    if n_len != 256 {
        return bad("the key is not RSA-2048");
    }
    let credentials = &body["push_credentials"];
    if !matches!(
        credentials["service"].as_str(),
        Some("FCM" | "GCM" | "APNS")
    ) || credentials["token"].as_str().is_none_or(str::is_empty)
    {
        return bad("push_credentials");
    }
    let mut recorded = fake.recorded.lock().unwrap();
    if recorded.enrolls > 0 {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "enrollment_transaction_not_found",
            "The ticket was used",
        );
    }
    recorded.enrolls += 1;
    recorded.jwk = Some(jwk.clone());
    recorded.identifier = body["identifier"].as_str().map(str::to_owned);
    recorded.push_token = credentials["token"].as_str().map(str::to_owned);
    axum::Json(json!({
        "id": DAI, "url": format!("{}appliance-mfa", fake.issuer), "issuer": "Acme", "user_id": USER,
        "token": DEVICE_TOKEN,
        "totp": {"secret": SECRET_B32, "algorithm": "sha1", "digits": 6, "period": 30}
    }))
    .into_response()
}

async fn update(
    State(fake): State<Fake>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if bearer(&headers, "Bearer").as_deref() != Some(DEVICE_TOKEN) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid token");
    }
    if id != DAI {
        return refuse(
            StatusCode::NOT_FOUND,
            "device_account_not_found",
            "Device account not found",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad("not JSON");
    };
    fake.recorded.lock().unwrap().patches.push(body.clone());
    axum::Json(json!({"id": DAI, "identifier": "x", "name": body["name"], "push_credentials": body["push_credentials"]})).into_response()
}

async fn remove(
    State(fake): State<Fake>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let jwk = fake
        .recorded
        .lock()
        .unwrap()
        .jwk
        .clone()
        .unwrap_or(Value::Null);
    let Some(jwt) = bearer(&headers, "Bearer") else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_bearer_format",
            "no bearer",
        );
    };
    let claims = match verify(&jwt, &jwk) {
        Ok((_, claims)) => claims,
        Err(why) => return refuse(StatusCode::UNAUTHORIZED, "invalid_token", &why),
    };
    let audience = format!("{}appliance-mfa/api/device-accounts", fake.issuer);
    if claims["iss"] != DAI || claims["sub"] != USER || claims["aud"] != audience.as_str() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            &format!("claims {claims}"),
        );
    }
    if let Err(why) = fresh(&claims, 7200) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_token", &why);
    }
    if id != DAI {
        return refuse(
            StatusCode::NOT_FOUND,
            "device_account_not_found",
            "Device account not found",
        );
    }
    fake.recorded.lock().unwrap().removed = true;
    StatusCode::NO_CONTENT.into_response()
}

async fn consent(
    State(fake): State<Fake>,
    UrlPath(txlnkid): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let (jwk, transaction) = {
        let r = fake.recorded.lock().unwrap();
        (r.jwk.clone().unwrap_or(Value::Null), r.transaction.clone())
    };
    let Some((id, txtkn, _, number_matching)) = transaction.filter(|t| t.0 == txlnkid) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "transaction_not_found",
            "Transaction not found",
        );
    };
    if bearer(&headers, "MFA-DPoP").as_deref() != Some(txtkn.as_str()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Authorization is not MFA-DPoP with the transaction token",
        );
    }
    let Some(proof) = headers.get("mfa-dpop").and_then(|v| v.to_str().ok()) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "no MFA-DPoP proof",
        );
    };
    // The proof carries its JWK; it must be the enrolled key, and verify with it.
    let header_jwk = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .map(|h| h["jwk"].clone())
        .unwrap_or(Value::Null);
    if header_jwk["n"] != jwk["n"] || header_jwk["e"] != jwk["e"] {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the proof's JWK is not the device's",
        );
    }
    let (header, claims) = match verify(proof, &header_jwk) {
        Ok(parts) => parts,
        Err(why) => return refuse(StatusCode::UNAUTHORIZED, "invalid_token", &why),
    };
    let ath = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        txtkn.as_bytes(),
    ));
    let htu = format!("{}rich-consents/{txlnkid}", fake.issuer);
    if header["typ"] != "dpop+jwt"
        || claims["htm"] != "GET"
        || claims["htu"] != htu.as_str()
        || claims["ath"] != ath.as_str()
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            &format!("proof {header} {claims}"),
        );
    }
    if let Err(why) = fresh(&claims, 0) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_token", &why);
    }
    let jti = claims["jti"].as_str().unwrap_or("").to_owned();
    let mut r = fake.recorded.lock().unwrap();
    if jti.is_empty() || r.jtis.contains(&jti) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the proof's jti was seen",
        );
    }
    r.jtis.push(jti);
    r.consents.push(id.clone());
    let mut login = json!({"type": "login", "application": {"name": "Acme App"}, "ip": "203.0.113.9",
                           "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "started_at": "2026-12-07T12:00:00.000Z"});
    let mut binding_message = Value::Null;
    if number_matching {
        login["number_matching"] = json!(true);
        binding_message = json!("Enter the number shown on the login page");
    }
    axum::Json(
        json!({"id": id, "requested_details": {"audience": "https://api.acme.test/", "scope": [],
        "binding_message": binding_message, "authorization_details": [login]},
        "created_at": "2026-12-07T12:00:00.000Z", "expires_at": "2026-12-07T12:05:00.000Z"}),
    )
    .into_response()
}

async fn resolve(
    State(fake): State<Fake>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (jwk, identifier, transaction) = {
        let r = fake.recorded.lock().unwrap();
        (
            r.jwk.clone().unwrap_or(Value::Null),
            r.identifier.clone(),
            r.transaction.clone(),
        )
    };
    let Some((_, txtkn, challenge, _)) = transaction else {
        return refuse(
            StatusCode::NOT_FOUND,
            "transaction_not_found",
            "Transaction not found",
        );
    };
    if bearer(&headers, "Bearer").as_deref() != Some(txtkn.as_str()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "not the transaction token",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad("not JSON");
    };
    let Some(jwt) = body["challenge_response"].as_str() else {
        return bad("no challenge_response");
    };
    let claims = match verify(jwt, &jwk) {
        Ok((_, claims)) => claims,
        Err(why) => return refuse(StatusCode::UNAUTHORIZED, "invalid_token", &why),
    };
    let audience = format!("{}appliance-mfa/api/resolve-transaction", fake.issuer);
    if claims["iss"].as_str() != identifier.as_deref()
        || claims["sub"] != challenge.as_str()
        || claims["aud"] != audience.as_str()
        || claims["auth0_guardian_method"] != "push"
        || !claims["auth0_guardian_accepted"].is_boolean()
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            &format!("claims {claims}"),
        );
    }
    if let Err(why) = fresh(&claims, 30) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_token", &why);
    }
    let mut r = fake.recorded.lock().unwrap();
    r.transaction = None; // resolved once
    r.resolutions.push(claims);
    StatusCode::NO_CONTENT.into_response()
}

async fn start_fake() -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/", listener.local_addr().unwrap());
    let fake = Fake {
        issuer,
        recorded: Arc::default(),
    };
    let app = Router::new()
        .route("/appliance-mfa/api/enroll", post(enroll))
        .route(
            "/appliance-mfa/api/device-accounts/{id}",
            patch(update).delete(remove),
        )
        .route("/appliance-mfa/api/resolve-transaction", post(resolve))
        .route("/rich-consents/{id}", get(consent))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    fake
}

fn enrollment_uri(fake: &Fake) -> String {
    let base = format!("{}appliance-mfa", fake.issuer)
        .replace(':', "%3A")
        .replace('/', "%2F");
    format!(
        "otpauth://totp/Acme:ada%40example.com?enrollment_tx_id={TICKET}&base_url={base}&secret={SECRET_B32}&issuer=Acme&algorithm=SHA1&digits=6&period=30"
    )
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(state: &Path, args: &[&str]) -> Run {
    let output = Command::new(BIN)
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .await
        .unwrap();
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn assert_no_secret(text: &str) {
    for secret in [TICKET, DEVICE_TOKEN, SECRET_B32, WEBHOOK_SECRET] {
        assert!(!text.contains(secret), "a secret was printed: {text}");
    }
}

/// A PNG of `text` as a QR code.
fn qr_png(text: &str, path: &Path) {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let width = code.width();
    let colors = code.to_colors();
    let (scale, quiet) = (4, 4);
    let side = (width + 2 * quiet) * scale;
    let picture = image::GrayImage::from_fn(side as u32, side as u32, |x, y| {
        let (mx, my) = (x as usize / scale, y as usize / scale);
        let dark = mx >= quiet
            && my >= quiet
            && mx < width + quiet
            && my < width + quiet
            && colors[(my - quiet) * width + (mx - quiet)] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    picture
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}

fn totp(at: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(SECRET_B32.as_bytes())
        .unwrap();
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret),
        &((at / 30) as u64).to_be_bytes(),
    );
    let mac = tag.as_ref();
    let offset = (mac[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!("{:06}", binary % 1_000_000)
}

struct Listener {
    child: Child,
    stdin: ChildStdin,
    events: Lines<BufReader<ChildStdout>>,
    url: String,
}

impl Listener {
    async fn start(state: &Path, extra: &[&str]) -> Listener {
        let mut child = Command::new(BIN)
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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let events = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut listener = Listener {
            child,
            stdin,
            events,
            url: String::new(),
        };
        let listening = listener.next("listening").await;
        listener.url = format!("http://{}/", listening["addr"].as_str().unwrap());
        listener
    }

    /// The next event, which must be of `kind`.
    async fn next(&mut self, kind: &str) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.events.next_line())
            .await
            .expect("an event within a minute")
            .unwrap()
            .expect("the listener is still running");
        assert_no_secret(&line);
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["event"], kind, "{event}");
        event
    }

    async fn answer(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Posts `body` signed with `secret` at `t`; returns the status.
    #[allow(clippy::disallowed_methods)] // the test plays latchkey's webhook sender
    async fn deliver(&self, body: &Value, secret: &str, t: i64) -> u16 {
        let body = body.to_string();
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let signature = hmac::sign(&key, format!("{t}.{body}").as_bytes());
        let hex: String = signature
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("X-Latchkey-Signature", format!("t={t},v1={hex}"))
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Makes a transaction on the fake server and the webhook body that announces it.
fn transaction(fake: &Fake, push_token: &str, id: &str, number_matching: bool) -> Value {
    let txtkn = format!("txtkn-{id}-secret");
    let challenge = format!("challenge-{id}");
    fake.recorded.lock().unwrap().transaction = Some((
        id.to_owned(),
        txtkn.clone(),
        challenge.clone(),
        number_matching,
    ));
    json!({"type": "push_notification", "timestamp": now(), "issuer": fake.issuer,
           "push_credentials": {"service": "FCM", "token": push_token}, "expires_at": now() + 300,
           "notification": {"txtkn": txtkn, "txlnkid": id, "dai": DAI, "sh": fake.issuer, "c": challenge,
                            "d": "2026-12-07T12:00:00.000Z",
                            "s": {"b": {"n": "Chrome", "v": "131"}, "os": {"n": "Linux"}}}})
}

fn mode(path: &PathBuf) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolls_answers_logins_and_removes_itself() {
    let fake = start_fake().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("config/state.json");
    let png = dir.path().join("qr.png");
    qr_png(&enrollment_uri(&fake), &png);

    // Enroll from the QR code.
    let enrolled = run(
        &state,
        &[
            "enroll",
            "--qr",
            png.to_str().unwrap(),
            "--name",
            "test laptop",
        ],
    )
    .await;
    assert!(enrolled.ok, "{}", enrolled.stderr);
    assert!(enrolled.stdout.contains(DAI), "{}", enrolled.stdout);
    assert_no_secret(&(enrolled.stdout.clone() + &enrolled.stderr));
    assert_eq!(mode(&state), 0o600);
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["enrollment"]["id"], DAI);
    assert_eq!(saved["enrollment"]["user_id"], USER);
    assert_eq!(saved["device"]["name"], "test laptop");
    let push_token = fake.recorded.lock().unwrap().push_token.clone().unwrap();
    assert_eq!(
        saved["device"]["push_credentials"],
        json!({"service": "FCM", "token": push_token})
    );
    assert_eq!(push_token.len(), 64, "a random push token by default");

    // A second enrollment into the same file is refused before the server is asked.
    let again = run(&state, &["enroll", "--uri", &enrollment_uri(&fake)]).await;
    assert!(!again.ok);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(fake.recorded.lock().unwrap().enrolls, 1);

    // The TOTP code.
    let before = now();
    let code = run(&state, &["code"]).await;
    let after = now();
    assert!(code.ok, "{}", code.stderr);
    assert!(
        [totp(before), totp(after)].contains(&code.stdout.trim().to_owned()),
        "{}",
        code.stdout
    );

    // Listening, approving without asking.
    let mut listener = Listener::start(&state, &["--approve"]).await;
    // A wrong secret, an old timestamp: refused, and no transaction is touched.
    let body = transaction(&fake, &push_token, "tx1", false);
    assert_eq!(listener.deliver(&body, "wrong-secret", now()).await, 401);
    listener.next("error").await;
    assert_eq!(
        listener.deliver(&body, WEBHOOK_SECRET, now() - 301).await,
        401
    );
    listener.next("error").await;
    // Another device's push token: ignored.
    let other = transaction(&fake, "another-device", "tx1", false);
    assert_eq!(listener.deliver(&other, WEBHOOK_SECRET, now()).await, 404);
    assert_eq!(listener.next("ignored").await["txlnkid"], "tx1");
    assert!(fake.recorded.lock().unwrap().consents.is_empty());
    // Its own: fetched with a proof, shown, approved.
    let body = transaction(&fake, &push_token, "tx1", false);
    assert_eq!(listener.deliver(&body, WEBHOOK_SECRET, now()).await, 202);
    let shown = listener.next("notification").await;
    assert_eq!(shown["application"], "Acme App");
    assert_eq!(shown["ip"], "203.0.113.9");
    assert_eq!(shown["browser"], "Chrome 131 on Linux");
    assert_eq!(shown["number_matching"], false);
    let resolved = listener.next("resolved").await;
    assert_eq!(resolved["accepted"], true);
    {
        let r = fake.recorded.lock().unwrap();
        assert_eq!(r.consents, ["tx1"]);
        assert_eq!(r.resolutions.len(), 1);
        assert_eq!(r.resolutions[0]["auth0_guardian_accepted"], true);
        assert!(r.resolutions[0].get("latchkey_binding_code").is_none());
    }
    // The same notification again: the server refuses (resolved once), the device says so.
    assert_eq!(listener.deliver(&body, WEBHOOK_SECRET, now()).await, 202);
    let error = listener.next("error").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("transaction_not_found"),
        "{error}"
    );
    listener.stop().await;

    // Interactive: number matching asks for the number; a rejection carries its reason.
    let mut listener = Listener::start(&state, &[]).await;
    let body = transaction(&fake, &push_token, "tx2", true);
    assert_eq!(listener.deliver(&body, WEBHOOK_SECRET, now()).await, 202);
    let shown = listener.next("notification").await;
    assert_eq!(shown["number_matching"], true);
    assert_eq!(
        shown["binding_message"],
        "Enter the number shown on the login page"
    );
    listener.answer("maybe").await;
    listener.answer("y").await;
    listener.answer("forty-two").await;
    listener.answer("42").await;
    assert_eq!(listener.next("resolved").await["accepted"], true);
    let body = transaction(&fake, &push_token, "tx3", true);
    assert_eq!(listener.deliver(&body, WEBHOOK_SECRET, now()).await, 202);
    listener.next("notification").await;
    listener.answer("n not me at all").await;
    let resolved = listener.next("resolved").await;
    assert_eq!(resolved["accepted"], false);
    assert_eq!(resolved["reason"], "not me at all");
    listener.stop().await;
    {
        let r = fake.recorded.lock().unwrap();
        assert_eq!(r.resolutions.len(), 3);
        assert_eq!(r.resolutions[1]["latchkey_binding_code"], "42");
        assert_eq!(r.resolutions[1]["sub"], "challenge-tx2");
        assert_eq!(r.resolutions[2]["auth0_guardian_accepted"], false);
        assert_eq!(r.resolutions[2]["auth0_guardian_reason"], "not me at all");
        assert!(r.resolutions[2].get("latchkey_binding_code").is_none());
        assert_eq!(r.jtis.len(), 3);
    }

    // --reject answers without asking.
    let mut listener = Listener::start(&state, &["--reject", "travelling"]).await;
    let body = transaction(&fake, &push_token, "tx4", false);
    assert_eq!(listener.deliver(&body, WEBHOOK_SECRET, now()).await, 202);
    listener.next("notification").await;
    assert_eq!(listener.next("resolved").await["reason"], "travelling");
    listener.stop().await;

    // Rename and new push credentials, with the device account token.
    let renamed = run(&state, &["rename", "--name", "work laptop"]).await;
    assert!(renamed.ok, "{}", renamed.stderr);
    let updated = run(
        &state,
        &[
            "update",
            "--push-token",
            "new-push-token",
            "--push-service",
            "APNS",
        ],
    )
    .await;
    assert!(updated.ok, "{}", updated.stderr);
    assert_eq!(
        fake.recorded.lock().unwrap().patches,
        [
            json!({"name": "work laptop"}),
            json!({"push_credentials": {"service": "APNS", "token": "new-push-token"}})
        ]
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["device"]["name"], "work laptop");
    assert_eq!(
        saved["device"]["push_credentials"]["token"],
        "new-push-token"
    );
    assert_eq!(mode(&state), 0o600);

    // Remove: a device JWT the server verifies, then the state file is gone.
    let removed = run(&state, &["remove"]).await;
    assert!(removed.ok, "{}", removed.stderr);
    assert!(fake.recorded.lock().unwrap().removed);
    assert!(!state.exists());
    let code = run(&state, &["code"]).await;
    assert!(!code.ok);
    assert!(code.stderr.contains("enroll"), "{}", code.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_refusals_are_shown_on_one_line_and_nothing_is_written() {
    let fake = start_fake().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let uri = enrollment_uri(&fake).replace(TICKET, "spent-or-unknown-ticket");
    let refused = run(&state, &["enroll", "--uri", &uri]).await;
    assert!(!refused.ok);
    assert_eq!(
        refused.stderr.trim(),
        "latchkey-authenticator: enroll: the server answered 401 Unauthorized: Enrollment transaction not found (enrollment_transaction_not_found)"
    );
    assert!(!state.exists());

    let malformed = run(
        &state,
        &[
            "enroll",
            "--uri",
            "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP",
        ],
    )
    .await;
    assert!(!malformed.ok);
    assert_eq!(malformed.stderr.lines().count(), 1, "{}", malformed.stderr);
    assert!(malformed.stderr.contains("enrollment_tx_id"));

    // A listener without its secret does not start.
    let enrolled = run(&state, &["enroll", "--uri", &enrollment_uri(&fake)]).await;
    assert!(enrolled.ok, "{}", enrolled.stderr);
    let output = Command::new(BIN)
        .arg("--state")
        .arg(&state)
        .args([
            "listen",
            "--addr",
            "127.0.0.1:0",
            "--webhook-secret-env",
            "TEST_UNSET_SECRET_VARIABLE",
        ])
        .env_remove("TEST_UNSET_SECRET_VARIABLE")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TEST_UNSET_SECRET_VARIABLE"));
}
