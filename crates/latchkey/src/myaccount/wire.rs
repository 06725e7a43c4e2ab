//! Wire types and parsing of the My Account API. No logic beyond shapes:
//! what the official OpenAPI document says a body may hold, and how domain
//! objects look on the wire.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ValidationError};
use crate::clock::rfc3339;
use crate::services::enrollment::{Challenge, Proof, Start, Started};
use crate::services::methods::{Method, has_name, is_primary};
use crate::tenant::FactorType;

/// Largest body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body, checked for media type and size; `None` when the request
/// has no body at all.
pub struct JsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_ascii_lowercase());
        let bytes = to_bytes(Body::new(req.into_body()), MAX_BODY)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        let is_json = |ct: &str| {
            let essence = ct.split(';').next().unwrap_or("").trim();
            essence == "application/json" || essence.ends_with("+json")
        };
        match content_type.as_deref() {
            Some(ct) if is_json(ct) => {}
            None if bytes.is_empty() => return Ok(Self(None)),
            _ => return Err(ApiError::UnsupportedMediaType),
        }
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::Validation(vec![ValidationError {
                detail: format!("The body is not valid JSON ({e})."),
                field: None,
                pointer: Some(String::new()),
                source: Some("body".into()),
            }])
        })?;
        Ok(Self(Some(value)))
    }
}

/// Deserializes `value` into `T`, turning serde's complaint into a
/// validation error with a JSON Pointer.
pub fn parse<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut pointer = String::new();
        for seg in e.path().iter() {
            use serde_path_to_error::Segment::*;
            match seg {
                Seq { index } => pointer.push_str(&format!("/{index}")),
                Map { key } => pointer.push_str(&format!("/{key}")),
                Enum { variant } => pointer.push_str(&format!("/{variant}")),
                Unknown => {}
            }
        }
        let message = e.inner().to_string();
        if let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
        {
            if !pointer.ends_with(&format!("/{field}")) {
                pointer.push('/');
                pointer.push_str(field);
            }
            return ApiError::validation(&pointer, format!("{field} is not allowed"));
        }
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            if !pointer.ends_with(&format!("/{field}")) {
                pointer.push('/');
                pointer.push_str(field);
            }
            return ApiError::validation(&pointer, "is required");
        }
        ApiError::validation(&pointer, message)
    })
}

fn require_object(body: Option<Value>) -> Result<Map<String, Value>, ApiError> {
    match body {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(ApiError::validation("", "The body must be a JSON object.")),
        None => Err(ApiError::validation("", "A JSON body is required.")),
    }
}

fn check_len(pointer: &str, s: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(ApiError::validation(
            pointer,
            format!("must be between {min} and {max} characters long"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityBody {
    #[serde(rename = "type")]
    _type: String,
    connection: Option<String>,
    identity_user_id: Option<String>,
}

#[derive(Deserialize)]
struct PasskeyBody {
    #[serde(rename = "type")]
    _type: String,
    connection: Option<String>,
    identity_user_id: Option<String>,
    use_exclude_credentials: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeOnly {
    #[serde(rename = "type")]
    _type: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailBody {
    #[serde(rename = "type")]
    _type: String,
    email: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum PhoneMethod {
    Sms,
    Voice,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    #[serde(rename = "type")]
    _type: String,
    phone_number: String,
    preferred_authentication_method: Option<PhoneMethod>,
}

fn check_identity(connection: &Option<String>, identity: &Option<String>) -> Result<(), ApiError> {
    if let Some(c) = connection {
        check_len("/connection", c, 1, 128)?;
        if !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ApiError::validation(
                "/connection",
                "must match ^[a-zA-Z0-9-]+$",
            ));
        }
    }
    if let Some(id) = identity {
        check_len("/identity_user_id", id, 1, 255)?;
        if id.chars().any(char::is_whitespace) {
            return Err(ApiError::validation(
                "/identity_user_id",
                "must match ^\\S+$",
            ));
        }
    }
    Ok(())
}

/// `POST /authentication-methods`: the body is a `oneOf` on `type`.
pub fn parse_create(body: Option<Value>) -> Result<Start, ApiError> {
    let map = require_object(body)?;
    let kind = match map.get("type") {
        None => return Err(ApiError::validation("/type", "is required")),
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(ApiError::validation("/type", "must be a string")),
    };
    let value = Value::Object(map);
    match kind.as_str() {
        "password" => {
            let b: IdentityBody = parse(value)?;
            check_identity(&b.connection, &b.identity_user_id)?;
            Ok(Start::Password {
                connection: b.connection,
                identity_user_id: b.identity_user_id,
            })
        }
        "passkey" => {
            let b: PasskeyBody = parse(value)?;
            check_identity(&b.connection, &b.identity_user_id)?;
            let _ = b.use_exclude_credentials;
            Ok(Start::Passkey)
        }
        "totp" => parse::<TypeOnly>(value).map(|_| Start::Totp),
        "recovery-code" => parse::<TypeOnly>(value).map(|_| Start::RecoveryCode),
        "push-notification" => parse::<TypeOnly>(value).map(|_| Start::PushNotification),
        "email" => {
            let b: EmailBody = parse(value)?;
            Ok(Start::Email { email: b.email })
        }
        "phone" => {
            let b: PhoneBody = parse(value)?;
            Ok(Start::Phone {
                phone_number: b.phone_number,
                preferred: b.preferred_authentication_method.map(|m| {
                    match m {
                        PhoneMethod::Sms => "sms",
                        PhoneMethod::Voice => "voice",
                    }
                    .to_string()
                }),
            })
        }
        "webauthn-platform" | "webauthn-roaming" => Err(ApiError::validation(
            "/type",
            format!("{kind} methods cannot be enrolled: they are read-only"),
        )),
        other => Err(ApiError::validation(
            "/type",
            format!(
                "unknown type {:?}: expected one of passkey, password, totp, push-notification, recovery-code, email, phone",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyPassword {
    auth_session: String,
    new_password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyOtp {
    auth_session: String,
    otp_code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifySession {
    auth_session: String,
}

fn check_session(s: &str) -> Result<(), ApiError> {
    check_len("/auth_session", s, 1, 1024)
}

/// `POST …/{id}/verify`: the schema is chosen by the method's type (the
/// body has no `type`).
pub fn parse_verify(kind: FactorType, body: Option<Value>) -> Result<(String, Proof), ApiError> {
    let value = Value::Object(require_object(body)?);
    match kind {
        FactorType::Password => {
            let b: VerifyPassword = parse(value)?;
            check_session(&b.auth_session)?;
            check_len("/new_password", &b.new_password, 1, 256)?;
            if b.new_password.chars().any(|c| {
                let u = u32::from(c);
                u <= 0x1f || (0x7f..=0x9f).contains(&u)
            }) {
                return Err(ApiError::validation(
                    "/new_password",
                    "must not contain control characters",
                ));
            }
            Ok((
                b.auth_session,
                Proof::Password {
                    new_password: b.new_password,
                },
            ))
        }
        FactorType::Totp | FactorType::Email | FactorType::Phone => {
            let b: VerifyOtp = parse(value)?;
            check_session(&b.auth_session)?;
            check_len("/otp_code", &b.otp_code, 1, 64)?;
            Ok((b.auth_session, Proof::Otp { code: b.otp_code }))
        }
        FactorType::RecoveryCode | FactorType::PushNotification => {
            let b: VerifySession = parse(value)?;
            check_session(&b.auth_session)?;
            Ok((b.auth_session, Proof::Session))
        }
        FactorType::Passkey | FactorType::WebauthnPlatform | FactorType::WebauthnRoaming => {
            Err(ApiError::BadRequest(format!(
                "Verifying {kind} methods is not available on this server yet."
            )))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    pub name: Option<String>,
    pub preferred_authentication_method: Option<String>,
}

/// `PATCH …/{id}`: no field is required; the body itself may be absent.
pub fn parse_update(body: Option<Value>) -> Result<UpdateBody, ApiError> {
    let value = match body {
        None => json!({}),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(ApiError::validation("", "The body must be a JSON object.")),
    };
    let b: UpdateBody = parse(value)?;
    if let Some(n) = &b.name {
        check_len("/name", n, 1, 255)?;
    }
    if let Some(p) = &b.preferred_authentication_method
        && p != "sms"
        && p != "voice"
    {
        return Err(ApiError::validation(
            "/preferred_authentication_method",
            "must be one of sms, voice",
        ));
    }
    Ok(b)
}

/// An `AuthenticationMethod` as the API shows it.
pub fn method_json(m: &Method) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(m.id));
    o.insert("type".into(), json!(m.kind.as_str()));
    o.insert("created_at".into(), json!(rfc3339(m.created_at)));
    let usage = if is_primary(m.kind) {
        "primary"
    } else {
        "secondary"
    };
    o.insert("usage".into(), json!([usage]));
    match m.kind {
        FactorType::Password => {
            o.insert("identity_user_id".into(), json!(m.identity_user_id));
            if let Some(t) = m.last_password_reset {
                o.insert("last_password_reset".into(), json!(rfc3339(t)));
            }
        }
        FactorType::Passkey => {}
        _ => {
            o.insert("confirmed".into(), json!(true));
            if let Some(t) = m.last_auth_at {
                o.insert("last_auth_at".into(), json!(rfc3339(t)));
            }
            if has_name(m.kind)
                && let Some(n) = &m.name
            {
                o.insert("name".into(), json!(n));
            }
        }
    }
    Value::Object(o)
}

/// The 202 body of `POST /authentication-methods`.
pub fn started_json(s: &Started) -> Value {
    match &s.challenge {
        Challenge::Password { policy } => json!({
            "id": s.method_id, "auth_session": s.auth_session, "policy": policy,
        }),
        Challenge::Totp {
            barcode_uri,
            manual_input_code,
        } => json!({
            "id": s.method_id, "auth_session": s.auth_session,
            "barcode_uri": barcode_uri, "manual_input_code": manual_input_code,
        }),
        Challenge::RecoveryCode { recovery_code } => json!({
            "id": s.method_id, "auth_session": s.auth_session, "recovery_code": recovery_code,
        }),
    }
}

/// A `Factor`.
pub fn factor_json(kind: FactorType) -> Value {
    let usage = if is_primary(kind) {
        "primary"
    } else {
        "secondary"
    };
    json!({ "type": kind.as_str(), "usage": [usage] })
}
