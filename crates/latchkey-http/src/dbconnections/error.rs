//! The dialect of `/dbconnections/*`, as Auth0 answers there:
//! `{name, code, description, statusCode}`, and for a password the policy
//! refuses, `PasswordStrengthError` (or `PasswordDictionaryError`,
//! `PasswordNoUserInfoError`) with the policy's rules in `description` and
//! as text in `policy`. Every case is matched; an unexpected failure is a
//! bare 500 whose cause is logged.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use latchkey_core::services::accounts::reset::RequestError;
use latchkey_core::services::accounts::signup::SignUpError;
use latchkey_core::services::password_policy::Violation;
use latchkey_core::store::StoreError;
use latchkey_core::tenant::{AllowOrBlock, CharacterType, CharacterTypeRule, PasswordPolicy};

#[derive(Debug)]
pub(crate) enum DbError {
    /// 400 `BadRequestError` with its code.
    Bad {
        code: String,
        description: String,
    },
    /// 400: the password fails the policy.
    Password {
        violations: Vec<Violation>,
        policy: Box<PasswordPolicy>,
    },
    /// 429, with `retry-after`.
    TooMany(i64),
    /// 503, with `retry-after`.
    Unavailable,
    Internal(String),
}

impl DbError {
    pub(crate) fn bad(code: &str, description: &str) -> Self {
        Self::Bad {
            code: code.to_string(),
            description: description.to_string(),
        }
    }

    /// A member missing or malformed: `bad.{member}`.
    pub(crate) fn field(member: &str, description: &str) -> Self {
        Self::bad(&format!("bad.{member}"), description)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            Self::Unavailable
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl From<SignUpError> for DbError {
    fn from(e: SignUpError) -> Self {
        match e {
            SignUpError::UnknownClient => Self::field("client_id", "Unknown client"),
            SignUpError::UnknownConnection => {
                Self::field("connection", "The connection does not exist")
            }
            SignUpError::NotDatabase => {
                Self::field("connection", "The connection is not a database connection")
            }
            SignUpError::Disabled => {
                Self::bad("operation_not_supported", "public signup is disabled")
            }
            SignUpError::Field { field, detail } => Self::field(field, &detail),
            SignUpError::Password { violations, policy } => Self::Password { violations, policy },
            SignUpError::Invalid => Self::bad("invalid_signup", "Invalid sign up"),
            SignUpError::UsernameTaken => {
                Self::bad("username_exists", "The username already exists.")
            }
            SignUpError::Throttled(s) => Self::TooMany(s),
            SignUpError::Busy => Self::Unavailable,
            SignUpError::Store(s) => s.into(),
            SignUpError::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<RequestError> for DbError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::UnknownClient => Self::field("client_id", "Unknown client"),
            RequestError::UnknownConnection => {
                Self::field("connection", "The connection does not exist")
            }
            RequestError::BadEmail(d) => Self::field("email", &d),
            RequestError::Throttled(s) => Self::TooMany(s),
            RequestError::Store(s) => s.into(),
        }
    }
}

impl IntoResponse for DbError {
    fn into_response(self) -> Response {
        match self {
            DbError::Bad { code, description } => answer(
                StatusCode::BAD_REQUEST,
                json!({ "name": "BadRequestError", "code": code, "description": description,
                        "statusCode": 400 }),
            ),
            DbError::Password { violations, policy } => answer(
                StatusCode::BAD_REQUEST,
                password_error(&violations, &policy),
            ),
            DbError::TooMany(seconds) => {
                let mut res = answer(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({ "name": "TooManyRequestsError", "code": "too_many_requests",
                            "description": "Too many requests. Please try again later.",
                            "statusCode": 429 }),
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                res
            }
            DbError::Unavailable => {
                let mut res = answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "name": "ServiceUnavailableError", "code": "temporarily_unavailable",
                            "description": "The service is temporarily unavailable. Please try again in a moment.",
                            "statusCode": 503 }),
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                res
            }
            DbError::Internal(cause) => {
                tracing::error!(%cause, "dbconnections request failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    let mut res = (status, Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A rule of the policy with whether the password meets it, in the shape
/// of Auth0's `description.rules`.
fn rule(message: &str, code: &str, format: Value, verified: bool) -> Value {
    json!({ "message": message, "format": format, "code": code, "verified": verified })
}

/// The body Auth0 answers for a password its policy refuses. A dictionary
/// word alone is `PasswordDictionaryError`, personal data alone
/// `PasswordNoUserInfoError`; anything else `PasswordStrengthError`, with
/// the complexity rules and whether each was met.
fn password_error(violations: &[Violation], policy: &PasswordPolicy) -> Value {
    let only = |f: fn(&Violation) -> bool| violations.iter().all(f);
    if only(|v| matches!(v, Violation::InDictionary)) {
        return json!({ "name": "PasswordDictionaryError", "message": "Password is too common",
                       "code": "invalid_password", "description": "Password is too common",
                       "statusCode": 400 });
    }
    if only(|v| matches!(v, Violation::ContainsProfileData { .. })) {
        return json!({ "name": "PasswordNoUserInfoError",
                       "message": "Password contains user information",
                       "code": "invalid_password",
                       "description": "Password contains user information", "statusCode": 400 });
    }
    if only(|v| matches!(v, Violation::InHistory { .. })) {
        return json!({ "name": "PasswordHistoryError",
                       "message": "Password has previously been used",
                       "code": "invalid_password",
                       "description": "Password has previously been used", "statusCode": 400 });
    }
    let has = |f: fn(&Violation) -> bool| violations.iter().any(f);
    let mut rules = vec![rule(
        "At least %d characters in length",
        "lengthAtLeast",
        json!([policy.min_length]),
        !has(|v| matches!(v, Violation::TooShort { .. })),
    )];
    let mut text = vec![format!(
        "* At least {} characters in length",
        policy.min_length
    )];
    if !policy.character_types.is_empty() {
        let met = !has(|v| matches!(v, Violation::CharacterTypes { .. }));
        let items: Vec<Value> = policy
            .character_types
            .iter()
            .map(|t| {
                let (message, code) = type_rule(*t);
                json!({ "message": message, "code": code, "verified": met })
            })
            .collect();
        let n = policy.character_types.len();
        let (message, format, line) = match policy.character_type_rule {
            CharacterTypeRule::ThreeOfFour => (
                "Contain at least %d of the following %d types of characters:",
                json!([n.min(3), n]),
                format!(
                    "* Contain at least {} of the following {n} types of characters:",
                    n.min(3)
                ),
            ),
            CharacterTypeRule::All => ("Should contain:", json!([]), "* Should contain:".into()),
        };
        let mut r = rule(message, "containsAtLeast", format, met);
        if let Some(o) = r.as_object_mut() {
            o.insert("items".into(), Value::Array(items));
        }
        rules.push(r);
        text.push(line);
        for t in &policy.character_types {
            text.push(format!("  * {}", type_rule(*t).0));
        }
    }
    if policy.identical_characters == AllowOrBlock::Block {
        rules.push(rule(
            "No more than %d identical characters in a row (e.g., \"%s\" not allowed)",
            "identicalChars",
            json!([2, "aaa"]),
            !has(|v| matches!(v, Violation::IdenticalCharacters)),
        ));
        text.push(
            "* No more than 2 identical characters in a row (e.g., \"aaa\" not allowed)".into(),
        );
    }
    if policy.sequential_characters == AllowOrBlock::Block {
        rules.push(rule(
            "No more than %d sequential characters in a row (e.g., \"%s\" not allowed)",
            "sequentialChars",
            json!([2, "abc"]),
            !has(|v| matches!(v, Violation::SequentialCharacters)),
        ));
        text.push(
            "* No more than 2 sequential characters in a row (e.g., \"abc\" not allowed)".into(),
        );
    }
    let others: Vec<String> = violations
        .iter()
        .filter(|v| {
            matches!(
                v,
                Violation::TooLong { .. }
                    | Violation::ControlCharacters
                    | Violation::InDictionary
                    | Violation::ContainsProfileData { .. }
                    | Violation::InHistory { .. }
            )
        })
        .map(Violation::detail)
        .collect();
    for detail in &others {
        rules.push(rule(detail, "other", json!([]), false));
    }
    json!({
        "name": "PasswordStrengthError",
        "message": "Password is too weak",
        "code": "invalid_password",
        "description": { "rules": rules, "verified": false },
        "policy": text.join("\n"),
        "statusCode": 400,
    })
}

fn type_rule(t: CharacterType) -> (&'static str, &'static str) {
    match t {
        CharacterType::Lowercase => ("lower case letters (a-z)", "lowerCase"),
        CharacterType::Uppercase => ("upper case letters (A-Z)", "upperCase"),
        CharacterType::Number => ("numbers (i.e. 0-9)", "numbers"),
        CharacterType::Special => ("special characters (e.g. !@#$%^&*)", "specialCharacters"),
    }
}
