//! The device's calls to latchkey's Guardian device API, over HTTP: enroll,
//! update and remove its device account, fetch a transaction's details and
//! resolve it. Errors carry the server's `{statusCode, error, message,
//! errorCode}` as one line, never a token.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;

/// An answer larger than this is refused.
const MAX_ANSWER: usize = 1024 * 1024;
/// At most this much of an answer that is not Guardian's error shape is shown.
const MAX_SHOWN: usize = 200;

/// What `POST /api/enroll` answers.
#[derive(Debug, Clone, Deserialize)]
pub struct Enrolled {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    pub user_id: String,
    pub token: String,
    #[serde(default)]
    pub totp: Option<Value>,
}

pub struct Client {
    http: reqwest::Client,
}

impl Client {
    // The device talks to its own server only, through the URLs its enrollment
    // names; latchkey's outbound port (with its SSRF guard) is the server's.
    #[allow(clippy::disallowed_methods)]
    pub fn new() -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .user_agent(concat!(
                "latchkey-authenticator/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::new(format!("cannot start the HTTP client: {e}")))?;
        Ok(Client { http })
    }

    pub async fn enroll(
        &self,
        base_url: &str,
        ticket: &str,
        body: &Value,
    ) -> Result<Enrolled, Error> {
        let url = format!("{base_url}/api/enroll");
        let request = self
            .http
            .post(&url)
            .header("Authorization", format!("Ticket id=\"{ticket}\""))
            .json(body);
        let answer = send(request, "enroll", &[StatusCode::OK, StatusCode::CREATED]).await?;
        serde_json::from_value(answer).map_err(|e| {
            Error::new(format!(
                "enroll: the server's answer is not an enrollment: {e}"
            ))
        })
    }

    /// `PATCH device-accounts/{id}` with the device account token.
    pub async fn update(&self, url: &str, token: &str, body: &Value) -> Result<Value, Error> {
        let request = self
            .http
            .request(Method::PATCH, url)
            .bearer_auth(token)
            .json(body);
        send(request, "update", &[StatusCode::OK]).await
    }

    /// `DELETE device-accounts/{id}` with the device JWT.
    pub async fn remove(&self, url: &str, device_jwt: &str) -> Result<(), Error> {
        let request = self.http.delete(url).bearer_auth(device_jwt);
        send(request, "remove", &[StatusCode::NO_CONTENT, StatusCode::OK]).await?;
        Ok(())
    }

    /// `GET rich-consents/{txlnkid}` with `MFA-DPoP` authorization and proof.
    pub async fn consent(
        &self,
        url: &str,
        transaction_token: &str,
        proof: &str,
    ) -> Result<Value, Error> {
        let request = self
            .http
            .get(url)
            .header("Authorization", format!("MFA-DPoP {transaction_token}"))
            .header("MFA-DPoP", proof);
        send(request, "fetching the login's details", &[StatusCode::OK]).await
    }

    /// `POST resolve-transaction` with the transaction token and the signed answer.
    pub async fn resolve(
        &self,
        url: &str,
        transaction_token: &str,
        challenge_response: &str,
    ) -> Result<(), Error> {
        let request = self
            .http
            .post(url)
            .bearer_auth(transaction_token)
            .json(&serde_json::json!({"challenge_response": challenge_response}));
        send(
            request,
            "resolve",
            &[StatusCode::NO_CONTENT, StatusCode::OK],
        )
        .await?;
        Ok(())
    }
}

/// Sends, and returns the JSON answer (`null` when empty) of an expected
/// status; anything else is an error naming the server's answer.
async fn send(
    request: RequestBuilder,
    what: &str,
    expected: &[StatusCode],
) -> Result<Value, Error> {
    let mut response = request.send().await.map_err(|e| {
        Error::new(format!(
            "{what}: the server could not be reached: {}",
            without_url(&e)
        ))
    })?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        Error::new(format!(
            "{what}: the answer could not be read: {}",
            without_url(&e)
        ))
    })? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(Error::new(format!(
                "{what}: the server's answer is larger than 1 MiB"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if !expected.contains(&status) {
        return Err(Error::new(format!("{what}: {}", refusal(status, &body))));
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&body)
        .map_err(|_| Error::new(format!("{what}: the server's answer is not JSON")))
}

/// `the server answered 401 Unauthorized: message (errorCode)`.
pub fn refusal(status: StatusCode, body: &[u8]) -> String {
    let shown = match serde_json::from_slice::<Value>(body) {
        Ok(json) if json.get("message").is_some() || json.get("errorCode").is_some() => {
            let message = json["message"].as_str().unwrap_or("");
            match json["errorCode"].as_str() {
                Some(code) => format!("{message} ({code})"),
                None => message.to_owned(),
            }
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.chars().count() > MAX_SHOWN {
                format!("{}…", text.chars().take(MAX_SHOWN).collect::<String>())
            } else {
                text.to_owned()
            }
        }
    };
    let status_text = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    if shown.is_empty() {
        format!("the server answered {}", status_text.trim_end())
    } else {
        format!("the server answered {}: {shown}", status_text.trim_end())
    }
}

/// A reqwest error's text without its URL (which may carry a path the user
/// need not see twice) and without any header.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_shows_the_guardian_error() {
        let body = br#"{"statusCode":401,"error":"Unauthorized","message":"Invalid token","errorCode":"invalid_token"}"#;
        assert_eq!(
            refusal(StatusCode::UNAUTHORIZED, body),
            "the server answered 401 Unauthorized: Invalid token (invalid_token)"
        );
        assert_eq!(
            refusal(StatusCode::BAD_GATEWAY, b""),
            "the server answered 502 Bad Gateway"
        );
        let long = "x".repeat(500);
        assert_eq!(
            refusal(StatusCode::NOT_FOUND, long.as_bytes())
                .chars()
                .count(),
            "the server answered 404 Not Found: ".len() + 201
        );
    }
}
