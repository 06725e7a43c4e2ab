//! A push device for the integration tests: an RSA key made with aws-lc-rs
//! and the device side of the protocol (`docs/push-notifications.md`) over
//! real HTTP, as the Guardian SDKs speak it: enrolling from the
//! `otpauth://` URI, JWTs of its key, updating and removing its account.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the server answered an enrollment.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The device account ID (`dev_…`).
    pub id: String,
    pub token: String,
    pub user_id: String,
    /// The device API's base URL (`{issuer}appliance-mfa`).
    pub url: String,
    pub totp_secret: String,
}

pub struct Device {
    key: KeyPair,
    pub identifier: String,
    pub name: String,
    /// Encode `n` and `e` as Java's signed big integers do (a leading zero
    /// byte when the top bit is set), as Guardian.Android sends them.
    pub signed_integers: bool,
}

/// The ticket and base URL of an enrollment URI.
pub fn ticket_and_base(barcode_uri: &str) -> (String, String) {
    let url = reqwest::Url::parse(barcode_uri).unwrap();
    let get = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("no {k} in {barcode_uri}"))
    };
    (get("enrollment_tx_id"), get("base_url"))
}

impl Device {
    pub fn new(name: &str) -> Self {
        Self {
            key: KeyPair::generate(KeySize::Rsa2048).unwrap(),
            identifier: format!("device-{name}"),
            name: name.to_string(),
            signed_integers: false,
        }
    }

    /// The public key as the device sends it.
    pub fn public_jwk(&self) -> Value {
        let p = self.key.public_key();
        let mut n = p.modulus().big_endian_without_leading_zero().to_vec();
        let mut e = p.exponent().big_endian_without_leading_zero().to_vec();
        if self.signed_integers {
            for v in [&mut n, &mut e] {
                if v[0] & 0x80 != 0 {
                    v.insert(0, 0);
                }
            }
            // Java's BigInteger.toByteArray of 65537 has no zero byte; a
            // zero before e is still what some encoders send.
            e.insert(0, 0);
        }
        json!({ "kty": "RSA", "alg": "RS256", "use": "sig", "n": b64(&n), "e": b64(&e) })
    }

    /// A compact JWS of `header` and `claims` signed by the device key
    /// (RS256, whatever `header` says).
    #[allow(
        clippy::disallowed_methods,
        reason = "a test device, not the server: it draws from the system generator itself"
    )]
    pub fn jws(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", b64(&sig))
    }

    /// The JWT the SDKs make for the device's own calls: `iss` the device
    /// account, `sub` the user, for `{url}/api/device-accounts`, issued at
    /// `iat` for two hours.
    pub fn account_jwt(&self, e: &Enrollment, iat: i64) -> String {
        self.jws(
            &json!({ "alg": "RS256", "typ": "JWT" }),
            &json!({ "iss": e.id, "sub": e.user_id, "iat": iat, "exp": iat + 7200,
                     "aud": format!("{}/api/device-accounts", e.url) }),
        )
    }

    /// The enrollment body for this device (FCM credentials).
    pub fn enroll_body(&self) -> Value {
        json!({
            "identifier": self.identifier,
            "name": self.name,
            "push_credentials": { "service": "FCM", "token": format!("fcm-token-{}", self.name) },
            "public_key": self.public_jwk(),
        })
    }

    /// `POST {base_url}/api/enroll` with the URI's ticket and `body`.
    pub async fn enroll_with(&self, barcode_uri: &str, body: &Value) -> (StatusCode, Value) {
        let (ticket, base) = ticket_and_base(barcode_uri);
        let res = crate::push_device::client()
            .post(format!("{base}/api/enroll"))
            .header("authorization", format!("Ticket id=\"{ticket}\""))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Enrolls from the URI; panics unless the server took it.
    pub async fn enroll(&self, barcode_uri: &str) -> Enrollment {
        let (status, body) = self.enroll_with(barcode_uri, &self.enroll_body()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Enrollment {
            id: body["id"].as_str().unwrap().into(),
            token: body["token"].as_str().unwrap().into(),
            user_id: body["user_id"].as_str().unwrap().into(),
            url: body["url"].as_str().unwrap().into(),
            totp_secret: body["totp"]["secret"].as_str().unwrap().into(),
        }
    }
}

/// A call to the device's account: `PATCH` with `body`, or `DELETE`.
pub async fn account_call(
    e: &Enrollment,
    method: reqwest::Method,
    bearer: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = crate::push_device::client()
        .request(method, format!("{}/api/device-accounts/{}", e.url, e.id))
        .bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Asserts Guardian's error shape and returns its `errorCode`.
pub fn error_code(status: StatusCode, body: &Value) -> String {
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["error", "errorCode", "message", "statusCode"],
        "{body}"
    );
    assert_eq!(body["statusCode"], status.as_u16(), "{body}");
    body["errorCode"].as_str().unwrap().to_string()
}

/// The device's HTTP client: it reaches the server at the URL it was given.
#[allow(
    clippy::disallowed_methods,
    reason = "a test device calling the server under test, not an outbound request of latchkey"
)]
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}
