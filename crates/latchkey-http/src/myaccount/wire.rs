//! Wire types and parsing of the My Account API. No logic beyond shapes:
//! what the official OpenAPI document says a body may hold, and how domain
//! objects look on the wire.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use utoipa::ToSchema;

use super::error::{ApiError, ValidationError};
use latchkey_core::services::enrollment::{Proof, Start};
use latchkey_core::tenant::FactorType;

/// Largest body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// A JSON body, checked for media type and size; `None` when the request
/// has no body at all.
pub(crate) struct JsonBody(pub Option<Value>);

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
pub(crate) fn parse<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
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

/// Enroll a password (set or change it).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatePasswordAuthenticationMethod {
    /// Name of the database connection (`^[a-zA-Z0-9-]+$`, 1–128).
    connection: Option<String>,
    /// The user's identity (1–255, no spaces).
    identity_user_id: Option<String>,
}

/// Enroll a passkey.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreatePasskeyAuthenticationMethod {
    connection: Option<String>,
    identity_user_id: Option<String>,
    use_exclude_credentials: Option<bool>,
}

/// A factor that needs no parameters (totp, push-notification, recovery-code).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateMfaAuthenticationMethod {}

/// Enroll an email address for one-time codes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEmailAuthenticationMethod {
    email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PhoneAuthenticationMethodEnum {
    Sms,
    Voice,
}

/// Enroll a phone number for SMS or voice codes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatePhoneAuthenticationMethod {
    phone_number: String,
    preferred_authentication_method: Option<PhoneAuthenticationMethodEnum>,
}

/// The body of `POST /authentication-methods`, by `type`. (Deserialized
/// variant by variant by [`parse_create`]; this enum states the schema.)
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(tag = "type")]
pub(crate) enum CreateAuthenticationMethodRequestContent {
    #[serde(rename = "passkey")]
    Passkey(CreatePasskeyAuthenticationMethod),
    #[serde(rename = "password")]
    Password(CreatePasswordAuthenticationMethod),
    #[serde(rename = "totp")]
    Totp(CreateMfaAuthenticationMethod),
    #[serde(rename = "push-notification")]
    PushNotification(CreateMfaAuthenticationMethod),
    #[serde(rename = "recovery-code")]
    RecoveryCode(CreateMfaAuthenticationMethod),
    #[serde(rename = "email")]
    Email(CreateEmailAuthenticationMethod),
    #[serde(rename = "phone")]
    Phone(CreatePhoneAuthenticationMethod),
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
pub(crate) fn parse_create(body: Option<Value>) -> Result<Start, ApiError> {
    let map = require_object(body)?;
    let mut map = map;
    let kind = match map.remove("type") {
        None => return Err(ApiError::validation("/type", "is required")),
        Some(Value::String(t)) => t,
        Some(_) => return Err(ApiError::validation("/type", "must be a string")),
    };
    let value = Value::Object(map);
    let Ok(factor) = FactorType::try_from(kind.clone()) else {
        return Err(ApiError::validation(
            "/type",
            format!(
                "unknown type {:?}: expected one of passkey, password, totp, push-notification, recovery-code, email, phone",
                kind.chars().take(64).collect::<String>()
            ),
        ));
    };
    match factor {
        FactorType::Password => {
            let b: CreatePasswordAuthenticationMethod = parse(value)?;
            check_identity(&b.connection, &b.identity_user_id)?;
            Ok(Start::Password {
                connection: b.connection,
                identity_user_id: b.identity_user_id,
            })
        }
        FactorType::Passkey => {
            let b: CreatePasskeyAuthenticationMethod = parse(value)?;
            check_identity(&b.connection, &b.identity_user_id)?;
            Ok(Start::Passkey {
                connection: b.connection,
                identity_user_id: b.identity_user_id,
                exclude_existing: b.use_exclude_credentials.unwrap_or(false),
            })
        }
        FactorType::Totp => parse::<CreateMfaAuthenticationMethod>(value).map(|_| Start::Totp),
        FactorType::RecoveryCode => {
            parse::<CreateMfaAuthenticationMethod>(value).map(|_| Start::RecoveryCode)
        }
        FactorType::PushNotification => {
            parse::<CreateMfaAuthenticationMethod>(value).map(|_| Start::PushNotification)
        }
        FactorType::Email => {
            let b: CreateEmailAuthenticationMethod = parse(value)?;
            Ok(Start::Email { email: b.email })
        }
        FactorType::Phone => {
            let b: CreatePhoneAuthenticationMethod = parse(value)?;
            Ok(Start::Phone {
                phone_number: b.phone_number,
                preferred: b.preferred_authentication_method.map(|m| {
                    match m {
                        PhoneAuthenticationMethodEnum::Sms => "sms",
                        PhoneAuthenticationMethodEnum::Voice => "voice",
                    }
                    .to_string()
                }),
            })
        }
        FactorType::WebauthnPlatform | FactorType::WebauthnRoaming => Err(ApiError::validation(
            "/type",
            format!("{kind} methods cannot be enrolled: they are read-only"),
        )),
    }
}

/// Confirm a password enrollment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyPasswordAuthenticationMethod {
    auth_session: String,
    /// 1–256 characters, no control characters.
    new_password: String,
}

/// Confirm a TOTP, email or phone enrollment with the one-time code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyOtpAuthenticationMethod {
    auth_session: String,
    otp_code: String,
}

/// Confirm a passkey enrollment with the authenticator's attestation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyPasskeyAuthenticationMethod {
    auth_session: String,
    /// `PublicKeyCredential.toJSON()` of the new credential.
    #[schema(value_type = Object)]
    authn_response: Value,
}

/// Checks an attestation response's shape and sizes (the official
/// document's `AuthenticatorAttestationResponse`).
fn check_attestation(v: &Value) -> Result<(), ApiError> {
    let base = "/authn_response";
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::validation(base, "must be an object"))?;
    let text = |key: &str, max: usize| -> Result<(), ApiError> {
        let pointer = format!("{base}/{key}");
        match obj.get(key) {
            Some(Value::String(s)) => check_len(&pointer, s, 1, max),
            Some(_) => Err(ApiError::validation(&pointer, "must be a string")),
            None => Err(ApiError::validation(&pointer, "is required")),
        }
    };
    text("id", 1364)?;
    text("rawId", 1364)?;
    if obj.get("type").and_then(Value::as_str) != Some("public-key") {
        return Err(ApiError::validation(
            &format!("{base}/type"),
            "must be public-key",
        ));
    }
    if let Some(a) = obj.get("authenticatorAttachment")
        && a != "platform"
        && a != "cross-platform"
    {
        return Err(ApiError::validation(
            &format!("{base}/authenticatorAttachment"),
            "must be platform or cross-platform",
        ));
    }
    let response = obj
        .get("response")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::validation(&format!("{base}/response"), "must be an object"))?;
    for (key, max) in [("attestationObject", 2000), ("clientDataJSON", 1000)] {
        let pointer = format!("{base}/response/{key}");
        match response.get(key) {
            Some(Value::String(s)) => check_len(&pointer, s, 1, max)?,
            _ => {
                return Err(ApiError::validation(
                    &pointer,
                    "is required and must be a string",
                ));
            }
        }
    }
    // The document allows attestationObject, clientDataJSON and transports;
    // browsers' PublicKeyCredential.toJSON() adds these three, which apps
    // pass along as they are, so they are accepted (and not used).
    const TO_JSON_EXTRAS: [&str; 3] = ["authenticatorData", "publicKey", "publicKeyAlgorithm"];
    for key in response.keys() {
        if !["attestationObject", "clientDataJSON", "transports"].contains(&key.as_str())
            && !TO_JSON_EXTRAS.contains(&key.as_str())
        {
            return Err(ApiError::validation(
                &format!("{base}/response/{key}"),
                format!("{key} is not allowed"),
            ));
        }
    }
    if let Some(t) = response.get("transports") {
        let ok = t
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x.as_str().is_some_and(|s| s.len() <= 100)));
        if !ok {
            return Err(ApiError::validation(
                &format!("{base}/response/transports"),
                "must be a list of short strings",
            ));
        }
    }
    Ok(())
}

/// Confirm a recovery-code or push enrollment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifySessionAuthenticationMethod {
    auth_session: String,
}

/// The body of `POST …/{id}/verify`: the schema follows the type in the ID.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub(crate) enum VerifyAuthenticationMethodRequestContent {
    Passkey(VerifyPasskeyAuthenticationMethod),
    Password(VerifyPasswordAuthenticationMethod),
    Otp(VerifyOtpAuthenticationMethod),
    Session(VerifySessionAuthenticationMethod),
}

fn check_session(s: &str) -> Result<(), ApiError> {
    check_len("/auth_session", s, 1, 1024)
}

/// `POST …/{id}/verify`: the schema is chosen by the method's type (the
/// body has no `type`).
pub(crate) fn parse_verify(
    kind: FactorType,
    body: Option<Value>,
) -> Result<(String, Proof), ApiError> {
    let value = Value::Object(require_object(body)?);
    match kind {
        FactorType::Password => {
            let b: VerifyPasswordAuthenticationMethod = parse(value)?;
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
            let b: VerifyOtpAuthenticationMethod = parse(value)?;
            check_session(&b.auth_session)?;
            check_len("/otp_code", &b.otp_code, 1, 64)?;
            Ok((b.auth_session, Proof::Otp { code: b.otp_code }))
        }
        FactorType::RecoveryCode | FactorType::PushNotification => {
            let b: VerifySessionAuthenticationMethod = parse(value)?;
            check_session(&b.auth_session)?;
            Ok((b.auth_session, Proof::Session))
        }
        FactorType::Passkey => {
            let b: VerifyPasskeyAuthenticationMethod = parse(value)?;
            check_session(&b.auth_session)?;
            check_attestation(&b.authn_response)?;
            Ok((
                b.auth_session,
                Proof::Passkey {
                    response: b.authn_response,
                },
            ))
        }
        FactorType::WebauthnPlatform | FactorType::WebauthnRoaming => Err(ApiError::BadRequest(
            format!("{kind} methods cannot be enrolled: they are read-only."),
        )),
    }
}

/// The body of `PATCH …/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateAuthenticationMethodRequestContent {
    /// The friendly name (1–255 characters).
    pub name: Option<String>,
    /// For phone methods: `sms` or `voice`.
    pub preferred_authentication_method: Option<String>,
}

/// `PATCH …/{id}`: no field is required; the body itself may be absent.
pub(crate) fn parse_update(
    body: Option<Value>,
) -> Result<UpdateAuthenticationMethodRequestContent, ApiError> {
    let value = match body {
        None => json!({}),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(ApiError::validation("", "The body must be a JSON object.")),
    };
    let b: UpdateAuthenticationMethodRequestContent = parse(value)?;
    if let Some(n) = &b.name {
        check_len("/name", n, 1, 255)?;
        if n.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "/name",
                "must not contain control characters",
            ));
        }
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
