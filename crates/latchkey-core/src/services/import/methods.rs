//! The authentication-methods file: for each user, their methods as Auth0's
//! Management API lists them (`GET /api/v2/users/{id}/authentication-methods`),
//! a JSON object `{ "auth0|…": [method, …] }` (each list as the API answers,
//! or its paged form `{"authenticators": […]}`). From it come the passkeys and
//! WebAuthn keys, which users keep when the tenant keeps its relying party
//! ID: the credential ID (`key_id`), the COSE public key (`public_key`), the
//! user handle the authenticator gives back at login (`user_handle`), the
//! relying party (`relying_party_identifier`), the backup flags
//! (`credential_device_type`, `credential_backed_up`), `transports`,
//! `aaguid`, `name`, `created_at`, and a signature `counter` where the export
//! has one. TOTP secrets, phones and emails come from the users file's
//! `mfa_factors` (the API lists no secrets); the other types are noted and
//! left out.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::context::Core;
use crate::services::enrollment::new_method_id;
use crate::services::webauthn::{b64url, imported_credential};
use crate::store::MethodRow;
use crate::tenant::FactorType;

/// One method of the list.
#[derive(Debug, Deserialize)]
pub(crate) struct Method {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub method_type: String,
    pub confirmed: Option<bool>,
    pub name: Option<String>,
    pub key_id: Option<String>,
    pub public_key: Option<String>,
    pub user_handle: Option<String>,
    pub relying_party_identifier: Option<String>,
    pub credential_device_type: Option<String>,
    pub credential_backed_up: Option<bool>,
    pub transports: Option<Vec<String>>,
    pub aaguid: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Option<String>,
    /// Not in Auth0's listing; taken when an export has it.
    pub counter: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum List {
    Plain(Vec<Method>),
    Paged { authenticators: Vec<Method> },
}

/// The file's methods by user ID, each ID with Auth0's prefix as users get
/// it (a bare ID gets `auth0|`).
pub(crate) type ByUser = HashMap<String, Vec<Method>>;

pub(crate) fn read(text: &[u8]) -> Result<ByUser, String> {
    let all: serde_json::Map<String, Value> = serde_json::from_slice(text).map_err(|e| {
        if e.is_data() {
            "the authentication methods file must be a JSON object of user IDs, each with its \
             methods as GET /api/v2/users/{id}/authentication-methods lists them"
                .to_string()
        } else {
            format!("the authentication methods file is not JSON: {e}")
        }
    })?;
    let mut by_user = HashMap::with_capacity(all.len());
    for (user_id, list) in all {
        let list: List = serde_path_to_error::deserialize(list).map_err(|e| {
            format!(
                "authentication methods of {user_id}: {} ({})",
                e.inner(),
                e.path()
            )
        })?;
        let methods = match list {
            List::Plain(m) | List::Paged { authenticators: m } => m,
        };
        let key = if user_id.contains('|') {
            user_id
        } else {
            format!("auth0|{user_id}")
        };
        by_user.entry(key).or_insert_with(Vec::new).extend(methods);
    }
    Ok(by_user)
}

/// What a user's listed methods become: their passkeys and WebAuthn keys
/// as methods, and notes on what was left out; or why the user cannot be
/// imported (a key refused by name: its relying party is not the tenant's,
/// its key is not ES256, …).
pub(crate) fn convert(
    state: &Core,
    rp_ids: &[String],
    user_id: &str,
    methods: &[Method],
) -> Result<(Vec<MethodRow>, Vec<String>), String> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for m in methods {
        let kind = match m.method_type.as_str() {
            "passkey" => FactorType::Passkey,
            "webauthn-roaming" => FactorType::WebauthnRoaming,
            "webauthn-platform" => FactorType::WebauthnPlatform,
            // The password is the users file's hash.
            "password" => continue,
            "totp" | "phone" | "email" => {
                notes.push(format!(
                    "{} {} is imported from mfa_factors, not from the authentication methods \
                     (they list no secret)",
                    m.method_type,
                    m.id.as_deref().unwrap_or_default()
                ));
                continue;
            }
            other => {
                notes.push(format!(
                    "{other} {} is not imported: the user enrolls it again",
                    m.id.as_deref().unwrap_or_default()
                ));
                continue;
            }
        };
        if m.confirmed == Some(false) {
            notes.push(format!(
                "{} {} is not imported: it was never confirmed",
                m.method_type,
                m.id.as_deref().unwrap_or_default()
            ));
            continue;
        }
        rows.push(key_row(state, rp_ids, user_id, kind, m)?);
    }
    Ok((rows, notes))
}

/// A passkey or WebAuthn key as a method, or why it is refused.
fn key_row(
    state: &Core,
    rp_ids: &[String],
    user_id: &str,
    kind: FactorType,
    m: &Method,
) -> Result<MethodRow, String> {
    let what = format!(
        "{} {}",
        m.method_type,
        m.id.as_deref().unwrap_or("(without id)")
    );
    let rp_id = m
        .relying_party_identifier
        .as_deref()
        .ok_or_else(|| format!("{what} has no relying_party_identifier"))?;
    if !rp_ids.iter().any(|r| r.eq_ignore_ascii_case(rp_id)) {
        return Err(format!(
            "{what} is for the relying party {rp_id}, not this tenant's ({}): keep the RP ID \
             (passkeys.rp_id) the users' passkeys were made for",
            rp_ids.join(", ")
        ));
    }
    let credential_id = m
        .key_id
        .as_deref()
        .and_then(base64_any)
        .filter(|id| (1..=1023).contains(&id.len()))
        .ok_or_else(|| format!("{what} has no key_id that is a credential ID in base64"))?;
    let public_key = m
        .public_key
        .as_deref()
        .and_then(base64_any)
        .ok_or_else(|| format!("{what} has no public_key in base64"))?;
    let handle = match (&m.user_handle, kind) {
        (Some(h), _) => Some(
            base64_any(h)
                .filter(|h| (1..=64).contains(&h.len()))
                .ok_or_else(|| format!("{what}: its user_handle is not 1 to 64 bytes in base64"))?,
        ),
        // A passkey logs in without naming its user: the authenticator
        // answers with the handle, which must be known.
        (None, FactorType::Passkey) => return Err(format!("{what} has no user_handle")),
        (None, _) => None,
    };
    let eligible = m.credential_device_type.as_deref() == Some("multi_device");
    let backed_up = m.credential_backed_up.unwrap_or(false);
    let credential = imported_credential(
        &credential_id,
        &public_key,
        m.counter.unwrap_or(0),
        eligible,
        backed_up,
    )
    .map_err(|e| format!("{what}: {e}"))?;
    let mut data = json!({
        "public_key": b64url(&public_key),
        "aaguid": m.aaguid.clone().unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into()),
        "backup_eligible": eligible,
        "backed_up": backed_up,
        "transports": m.transports.clone().unwrap_or_default(),
        "user_agent": m.user_agent.clone().unwrap_or_default(),
        "relying_party_id": rp_id.to_ascii_lowercase(),
    });
    if let Some(obj) = data.as_object_mut() {
        let field = if kind == FactorType::Passkey {
            "passkey"
        } else {
            "credential"
        };
        obj.insert(field.into(), credential);
        if let Some(h) = &handle {
            obj.insert("user_handle".into(), json!(b64url(h)));
        }
    }
    let now = state.clock.now();
    let created_at = m
        .created_at
        .as_deref()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map_or(now, |t| t.unix_timestamp().min(now));
    Ok(MethodRow {
        id: new_method_id(state, kind),
        user_id: user_id.to_string(),
        method_type: kind,
        name: m.name.clone().filter(|n| !n.is_empty()),
        data,
        created_at,
        last_auth_at: None,
        last_otp_step: None,
        credential_id: Some(b64url(&credential_id)),
    })
}

/// Base64 as exports write it: standard or URL-safe, padded or not.
fn base64_any(text: &str) -> Option<Vec<u8>> {
    let t = text.trim().trim_end_matches('=');
    if t.contains(['+', '/']) {
        STANDARD_NO_PAD.decode(t).ok()
    } else {
        URL_SAFE_NO_PAD.decode(t).ok()
    }
}
