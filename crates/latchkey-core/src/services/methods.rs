//! A user's authentication methods: the confirmed ones in the store, plus
//! the password, which is the user's own.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::Timestamp;
use crate::context::Core;
use crate::store::{LoginMethods, MethodRow, Removal, StoreError, UserRow};
use crate::tenant::FactorType;

#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    pub id: String,
    pub kind: FactorType,
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub last_auth_at: Option<Timestamp>,
    /// For the password: the identity it belongs to and its last change.
    pub identity_user_id: Option<String>,
    pub last_password_reset: Option<Timestamp>,
    /// For a passkey: what describes its credential.
    pub passkey: Option<PasskeyDetails>,
    /// For email and phone methods: the address or E.164 number.
    pub contact: Option<String>,
    /// For phone methods: `sms` or `voice`.
    pub preferred_phone_method: Option<String>,
}

/// A passkey's credential, as the My Account API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyDetails {
    pub key_id: String,
    pub public_key: String,
    pub aaguid: Option<String>,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub transports: Vec<String>,
    pub user_agent: Option<String>,
    pub user_handle: String,
    pub relying_party_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `password|` + base64url of the user ID (MYACCOUNT.md §10 Q10).
pub(crate) fn password_method_id(user_id: &str) -> String {
    format!("password|{}", URL_SAFE_NO_PAD.encode(user_id))
}

/// Types whose methods carry a user-chosen `name`.
pub fn has_name(kind: FactorType) -> bool {
    match kind {
        FactorType::Passkey
        | FactorType::Totp
        | FactorType::PushNotification
        | FactorType::Phone
        | FactorType::Email
        | FactorType::WebauthnPlatform
        | FactorType::WebauthnRoaming => true,
        FactorType::Password | FactorType::RecoveryCode => false,
    }
}

pub fn kind_of(id: &str) -> Option<FactorType> {
    let (prefix, rest) = id.split_once('|')?;
    if rest.is_empty() {
        return None;
    }
    FactorType::try_from(prefix.to_string()).ok()
}

fn from_row(row: &MethodRow) -> Option<Method> {
    let kind = row.method_type;
    let text = |k: &str| row.data.get(k).and_then(|v| v.as_str()).map(String::from);
    let flag = |k: &str| row.data.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    let details = || {
        Some(PasskeyDetails {
            key_id: row.credential_id.clone()?,
            public_key: text("public_key")?,
            aaguid: text("aaguid"),
            backup_eligible: flag("backup_eligible"),
            backed_up: flag("backed_up"),
            transports: row
                .data
                .get("transports")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            user_agent: text("user_agent").filter(|u| !u.is_empty()),
            user_handle: text("user_handle")?,
            relying_party_id: text("relying_party_id"),
        })
    };
    // A passkey is nothing without its credential; a WebAuthn key imported
    // without one is still listed (its key fields are optional).
    let passkey = match kind {
        FactorType::Passkey => Some(details()?),
        FactorType::WebauthnRoaming | FactorType::WebauthnPlatform => details(),
        FactorType::Password
        | FactorType::Totp
        | FactorType::RecoveryCode
        | FactorType::Email
        | FactorType::Phone
        | FactorType::PushNotification => None,
    };
    Some(Method {
        id: row.id.clone(),
        kind,
        name: row.name.clone(),
        created_at: row.created_at,
        last_auth_at: row.last_auth_at,
        identity_user_id: (kind == FactorType::Passkey).then(|| row.user_id.clone()),
        last_password_reset: None,
        passkey,
        contact: match kind {
            FactorType::Email => text("email"),
            FactorType::Phone => text("phone_number"),
            FactorType::Password
            | FactorType::Totp
            | FactorType::RecoveryCode
            | FactorType::PushNotification
            | FactorType::Passkey
            | FactorType::WebauthnRoaming
            | FactorType::WebauthnPlatform => None,
        },
        preferred_phone_method: (kind == FactorType::Phone)
            .then(|| text("preferred_authentication_method"))
            .flatten(),
    })
}

fn password_method(user: &UserRow) -> Option<Method> {
    user.password_hash.as_ref()?;
    Some(Method {
        id: password_method_id(&user.user_id),
        kind: FactorType::Password,
        name: None,
        created_at: user.created_at,
        last_auth_at: None,
        identity_user_id: Some(user.user_id.clone()),
        last_password_reset: user.last_password_reset,
        passkey: None,
        contact: None,
        preferred_phone_method: None,
    })
}

async fn user(state: &Core, tenant_id: &str, user_id: &str) -> Result<UserRow, MethodError> {
    state
        .store
        .user_by_id(tenant_id, user_id)
        .await?
        .ok_or(MethodError::NotFound)
}

pub async fn list(
    state: &Core,
    tenant_id: &str,
    user_id: &str,
    filter: Option<FactorType>,
) -> Result<Vec<Method>, MethodError> {
    let (user, rows) = state
        .store
        .user_with_methods(tenant_id, user_id)
        .await?
        .ok_or(MethodError::NotFound)?;
    Ok(list_of(&user, &rows, filter))
}

/// The methods of a user already read with their method rows, of the type
/// `filter` names if any.
pub fn list_of(user: &UserRow, rows: &[MethodRow], filter: Option<FactorType>) -> Vec<Method> {
    let mut out: Vec<Method> = password_method(user).into_iter().collect();
    for row in rows {
        out.extend(from_row(row));
    }
    if let Some(kind) = filter {
        out.retain(|m| m.kind == kind);
    }
    out
}

/// The method `id` of a user already read with their method rows.
pub fn get_of(user: &UserRow, rows: &[MethodRow], id: &str) -> Result<Method, MethodError> {
    if kind_of(id) == Some(FactorType::Password) {
        return password_method(user)
            .filter(|m| m.id == id)
            .ok_or(MethodError::NotFound);
    }
    rows.iter()
        .find(|r| r.id == id)
        .and_then(from_row)
        .ok_or(MethodError::NotFound)
}

pub async fn get(
    state: &Core,
    tenant_id: &str,
    user_id: &str,
    id: &str,
) -> Result<Method, MethodError> {
    if kind_of(id) == Some(FactorType::Password) {
        let user = user(state, tenant_id, user_id).await?;
        return password_method(&user)
            .filter(|m| m.id == id)
            .ok_or(MethodError::NotFound);
    }
    state
        .store
        .method(tenant_id, user_id, id)
        .await?
        .as_ref()
        .and_then(from_row)
        .ok_or(MethodError::NotFound)
}

/// Renames a method, or sets a phone's preferred delivery.
pub async fn update(
    state: &Core,
    tenant_id: &str,
    user_id: &str,
    id: &str,
    name: Option<&str>,
    preferred_phone_method: Option<&str>,
) -> Result<Method, MethodError> {
    let method = get(state, tenant_id, user_id, id).await?;
    if preferred_phone_method.is_some() && method.kind != FactorType::Phone {
        return Err(MethodError::Invalid(
            "preferred_authentication_method applies to phone methods only.".into(),
        ));
    }
    if let Some(preferred) = preferred_phone_method {
        // Read, change, write if unchanged meanwhile; a few tries.
        let mut updated = false;
        for _ in 0..3 {
            let row = state
                .store
                .method(tenant_id, user_id, id)
                .await?
                .ok_or(MethodError::NotFound)?;
            let mut data = row.data.clone();
            if let Some(obj) = data.as_object_mut() {
                obj.insert("preferred_authentication_method".into(), preferred.into());
            }
            if state
                .store
                .update_method_data(tenant_id, id, &row.data, &data, None)
                .await?
            {
                updated = true;
                break;
            }
        }
        if !updated {
            return Err(MethodError::NotFound);
        }
    }
    if let Some(name) = name {
        if !has_name(method.kind) {
            return Err(MethodError::Invalid(format!(
                "A {} method has no name to change.",
                method.kind
            )));
        }
        if !state
            .store
            .rename_method(tenant_id, user_id, id, Some(name))
            .await?
        {
            return Err(MethodError::NotFound);
        }
    }
    get(state, tenant_id, user_id, id).await
}

/// The ways to log in on their own: the password and passkeys.
const PRIMARY: [FactorType; 2] = [FactorType::Password, FactorType::Passkey];

/// Primary factors log a user in on their own; the rest are second factors.
pub fn is_primary(kind: FactorType) -> bool {
    PRIMARY.contains(&kind)
}

/// Deletes a method, unless it is the user's last way to log in. The rule
/// is this module's ([`is_primary`]); the store applies it in the same
/// atomic step as the delete, so two deletions racing for the last two ways
/// to log in cannot both go through.
pub async fn delete(
    state: &Core,
    tenant_id: &str,
    user_id: &str,
    id: &str,
) -> Result<Method, MethodError> {
    let method = get(state, tenant_id, user_id, id).await?;
    let types: Vec<&str> = PRIMARY
        .iter()
        .filter(|k| **k != FactorType::Password)
        .map(|k| k.as_str())
        .collect();
    let keep = is_primary(method.kind).then_some(LoginMethods {
        types: &types,
        password: PRIMARY.contains(&FactorType::Password),
    });
    let removal = if method.kind == FactorType::Password {
        state
            .store
            .clear_password(tenant_id, user_id, state.clock.now(), keep)
            .await?
    } else {
        state
            .store
            .delete_method(tenant_id, user_id, id, keep)
            .await?
    };
    match removal {
        Removal::Removed => Ok(method),
        Removal::Missing => Err(MethodError::NotFound),
        Removal::LastLogin => Err(MethodError::Conflict(
            "This is the user's only way to log in; add another before removing it.".into(),
        )),
    }
}
