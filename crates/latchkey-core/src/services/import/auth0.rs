//! Auth0's bulk user import format, read strictly: one user of the users
//! file as Auth0's schema describes it (`email`, `email_verified`,
//! `user_id`, `username`, the profile fields, `blocked`, the metadata,
//! `password_hash` or `custom_password_hash`, `mfa_factors`), plus the
//! fields Auth0's export job writes beside them, which are let through and
//! left out. A field of the wrong type or a name the schema does not know
//! makes the file malformed; what a well-formed user holds is judged by
//! [`super::plan`].

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

/// One user of the users file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct User {
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    #[serde(default)]
    pub blocked: bool,
    pub app_metadata: Option<Map<String, Value>>,
    pub user_metadata: Option<Map<String, Value>>,
    pub password_hash: Option<String>,
    pub custom_password_hash: Option<CustomPasswordHash>,
    pub mfa_factors: Option<Vec<MfaFactor>>,
    // Written by Auth0's export job, meaningless here.
    #[serde(default, rename = "created_at")]
    _created_at: Option<IgnoredAny>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<IgnoredAny>,
    #[serde(default, rename = "last_login")]
    _last_login: Option<IgnoredAny>,
    #[serde(default, rename = "last_ip")]
    _last_ip: Option<IgnoredAny>,
    #[serde(default, rename = "logins_count")]
    _logins_count: Option<IgnoredAny>,
    #[serde(default, rename = "identities")]
    _identities: Option<IgnoredAny>,
    #[serde(default, rename = "multifactor")]
    _multifactor: Option<IgnoredAny>,
}

/// `custom_password_hash`: the algorithm and its hash. Its other members
/// (`password.encoding`, `keylen`, scrypt's costs) matter only to the
/// algorithms latchkey refuses.
#[derive(Debug, Deserialize)]
pub(crate) struct CustomPasswordHash {
    pub algorithm: String,
    pub hash: CustomHash,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CustomHash {
    pub value: String,
    pub encoding: Option<String>,
    pub digest: Option<String>,
}

/// One entry of `mfa_factors`: exactly one of its members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MfaFactor {
    pub totp: Option<TotpFactor>,
    pub phone: Option<ValueFactor>,
    pub email: Option<ValueFactor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TotpFactor {
    pub secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValueFactor {
    pub value: String,
}

/// The users of a users file, each read on its own so that an error names
/// its place (`users[3].mfa_factors[0].totp: missing field `secret``).
pub(crate) fn read_users(text: &[u8]) -> Result<Vec<User>, String> {
    let all: Vec<Value> = serde_json::from_slice(text).map_err(|e| {
        if e.is_data() {
            "the users file must be a JSON array of users".to_string()
        } else {
            format!("the users file is not JSON: {e}")
        }
    })?;
    all.into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                let at = if path == "." {
                    format!("users[{i}]")
                } else {
                    format!("users[{i}].{path}")
                };
                format!("{at}: {}", e.into_inner())
            })
        })
        .collect()
}
