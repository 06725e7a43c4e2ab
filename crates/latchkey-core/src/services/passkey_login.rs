//! Native passkey sign-up and login (Auth0's Passkey API): a challenge from
//! `/passkey/register` or `/passkey/challenge`, answered at `/oauth/token`
//! with the webauthn grant. The ceremony waits as an enrollment (its
//! `auth_session`'s digest, expiring, single use, attempt-limited), so any
//! node can finish what another started.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, WebauthnError,
};

use super::accounts::{Mailing, mail_link};
use super::email_address;
use super::enrollment::{MAX_ATTEMPTS, TTL};
use super::webauthn::{attested_in, b64url, relying_party, transports_in, user_handle};
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::rng::RngExt;
use crate::store::{Completion, EnrollmentRow, MethodRow, StoreError, TicketKind, UserRow};
use crate::tenant::{Client, Connection, FactorType, Tenant};

const SIGNUP: &str = "passkey-signup";
const LOGIN: &str = "passkey-login";

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// Passkeys are not enabled on the tenant (the Passkey APIs answer 404).
    #[error("Passkey APIs are not enabled for this tenant")]
    NotEnabled,
    #[error("{0}")]
    InvalidRequest(String),
    /// The connection takes no sign-ups (`disable_signup`): `access_denied`.
    #[error("Public signup is disabled")]
    SignupDisabled,
    /// The answer does not verify: `invalid_grant`.
    #[error("{0}")]
    InvalidGrant(String),
    /// The passkey is right, but its user's connection requires a verified
    /// email and theirs is not yet (a sign-up was just mailed its link):
    /// `access_denied`, as the password grants answer.
    #[error("Please verify your email before logging in.")]
    EmailNotVerified { email: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Internal(e.to_string())
}

/// The profile keys `/passkey/register` accepts, with their length limits.
const PROFILE_KEYS: [(&str, usize); 8] = [
    ("email", 320),
    ("phone_number", 30),
    ("username", 128),
    ("name", 300),
    ("given_name", 150),
    ("family_name", 150),
    ("nickname", 300),
    ("picture", 2048),
];

fn connection<'t>(tenant: &'t Tenant, realm: Option<&str>) -> Result<&'t Connection, PasskeyError> {
    match realm {
        Some(r) => tenant
            .database_connection(r)
            .ok_or_else(|| PasskeyError::InvalidRequest(format!("Unknown realm: {r}"))),
        None => tenant.default_connection().ok_or_else(|| {
            PasskeyError::InvalidRequest("The tenant has no database connection".into())
        }),
    }
}

/// Sign-ups create users: never in a connection with `disable_signup`.
fn open_for_signup(conn: &Connection) -> Result<(), PasskeyError> {
    if conn.disable_signup {
        Err(PasskeyError::SignupDisabled)
    } else {
        Ok(())
    }
}

fn enabled(tenant: &Tenant) -> Result<(), PasskeyError> {
    if tenant.config.factors.contains(&FactorType::Passkey) {
        Ok(())
    } else {
        Err(PasskeyError::NotEnabled)
    }
}

/// Whether the native Passkey API answers on `host`: everywhere, unless the
/// tenant limits it to custom domains (`passkeys.require_custom_domain`).
/// The hosted login page's passkeys are not limited.
pub fn native_allowed(tenant: &Tenant, host: &str) -> Result<(), PasskeyError> {
    if tenant.config.tenant.passkeys.require_custom_domain
        && host.eq_ignore_ascii_case(tenant.config.canonical_domain())
    {
        return Err(PasskeyError::InvalidRequest(
            "The Passkey API is only available on this tenant's custom domains.".into(),
        ));
    }
    Ok(())
}

fn public_key(v: Value) -> Result<Value, PasskeyError> {
    v.get("publicKey")
        .cloned()
        .ok_or_else(|| internal("options without publicKey"))
}

async fn save(state: &Core, tenant: &Tenant, row: EnrollmentRow) -> Result<String, PasskeyError> {
    let auth_session = state.rng.token(32);
    state
        .store
        .create_enrollment(&tenant.id, &secret_digest(&auth_session), &row)
        .await?;
    Ok(auth_session)
}

/// `POST /passkey/register`: options to create a passkey for a new user.
pub async fn register(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    client: &Client,
    realm: Option<&str>,
    profile: &Value,
    metadata: Option<&Value>,
) -> Result<(String, Value), PasskeyError> {
    enabled(tenant)?;
    let conn = connection(tenant, realm)?;
    open_for_signup(conn)?;
    let Value::Object(profile) = profile else {
        return Err(PasskeyError::InvalidRequest(
            "user_profile must be an object".into(),
        ));
    };
    let mut clean = Map::new();
    for (k, v) in profile {
        let Some((_, max)) = PROFILE_KEYS.iter().find(|(name, _)| name == k) else {
            return Err(PasskeyError::InvalidRequest(format!(
                "user_profile.{k} is not allowed"
            )));
        };
        let Some(text) = v
            .as_str()
            .filter(|t| !t.is_empty() && t.chars().count() <= *max)
        else {
            return Err(PasskeyError::InvalidRequest(format!(
                "user_profile.{k} must be a string of 1 to {max} characters"
            )));
        };
        if k != "email" && text.chars().any(char::is_control) {
            return Err(PasskeyError::InvalidRequest(format!(
                "user_profile.{k} is malformed"
            )));
        }
        clean.insert(k.clone(), json!(text));
    }
    let raw = clean
        .get("email")
        .and_then(Value::as_str)
        .ok_or_else(|| PasskeyError::InvalidRequest("user_profile.email is required".into()))?;
    // Every spelling of one address is one account (`email_address`).
    let email = email_address::normalize(raw)
        .map_err(|e| PasskeyError::InvalidRequest(format!("user_profile.email {e}")))?;
    clean.insert("email".into(), json!(email));
    // A username as every sign-up to the connection takes it, unique in it.
    let username = super::username::for_signup(
        conn.requires_username,
        clean.get("username").and_then(Value::as_str),
    )
    .map_err(|why| PasskeyError::InvalidRequest(format!("user_profile.username: {why}")))?;
    if let Some(name) = username
        && state
            .store
            .user_by_username(&tenant.id, &conn.name, name)
            .await?
            .is_some()
    {
        return Err(PasskeyError::InvalidRequest(
            "The username already exists.".into(),
        ));
    }
    if let Some(m) = metadata {
        let ok = m.as_object().is_some_and(|o| {
            o.len() <= 10
                && o.values()
                    .all(|v| v.as_str().is_some_and(|s| s.len() <= 500))
        });
        if !ok {
            return Err(PasskeyError::InvalidRequest(
                "user_metadata must hold at most 10 string fields".into(),
            ));
        }
    }
    if state
        .store
        .user_by_email(&tenant.id, &conn.name, &email)
        .await?
        .is_some()
    {
        return Err(PasskeyError::InvalidRequest(
            "The user already exists.".into(),
        ));
    }
    let rp =
        relying_party(tenant, host).map_err(|e| PasskeyError::InvalidRequest(e.to_string()))?;
    let user_id = format!("auth0|{}", state.rng.alnum(24).to_lowercase());
    let display = clean
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&email)
        .to_string();
    let (challenge, registration) = rp
        .webauthn
        .start_passkey_registration(user_handle(&tenant.id, &user_id), &email, &display, None)
        .map_err(internal)?;
    let mut options = public_key(serde_json::to_value(&challenge).map_err(internal)?)?;
    if let Some(sel) = options
        .get_mut("authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        sel.insert("residentKey".into(), json!("required"));
        sel.insert("requireResidentKey".into(), json!(true));
    }
    let now = state.clock.now();
    let row = EnrollmentRow {
        user_id,
        client_id: client.client_id.clone(),
        method_type: SIGNUP.into(),
        method_id: String::new(),
        state: json!({
            "registration": serde_json::to_value(&registration).map_err(internal)?,
            "rp_id": rp.rp_id,
            "connection": conn.name,
            "profile": clean,
            "user_metadata": metadata,
        }),
        attempts: 0,
        created_at: now,
        expires_at: now + TTL,
    };
    Ok((save(state, tenant, row).await?, options))
}

/// `POST /passkey/challenge`: options to log in with any passkey of the RP.
pub async fn challenge(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    client: &Client,
    realm: Option<&str>,
) -> Result<(String, Value), PasskeyError> {
    enabled(tenant)?;
    let conn = connection(tenant, realm)?;
    let rp =
        relying_party(tenant, host).map_err(|e| PasskeyError::InvalidRequest(e.to_string()))?;
    let (challenge, authentication) = rp
        .webauthn
        .start_discoverable_authentication()
        .map_err(internal)?;
    let options = public_key(serde_json::to_value(&challenge).map_err(internal)?)?;
    let now = state.clock.now();
    let row = EnrollmentRow {
        user_id: String::new(),
        client_id: client.client_id.clone(),
        method_type: LOGIN.into(),
        method_id: String::new(),
        state: json!({
            "authentication": serde_json::to_value(&authentication).map_err(internal)?,
            "rp_id": rp.rp_id,
            "connection": conn.name,
        }),
        attempts: 0,
        created_at: now,
        expires_at: now + TTL,
    };
    Ok((save(state, tenant, row).await?, options))
}

/// The webauthn grant: verifies the answer to a challenge and returns the
/// user it authenticates (created, for a sign-up).
pub async fn finish(
    state: &Core,
    tenant: &Arc<Tenant>,
    host: &str,
    client: &Client,
    auth_session: &str,
    response: &Value,
    languages: &[String],
) -> Result<UserRow, PasskeyError> {
    enabled(tenant)?;
    let digest = secret_digest(auth_session);
    let now = state.clock.now();
    let unknown = || {
        PasskeyError::InvalidGrant(
            "The auth_session is invalid, has expired or was already used.".into(),
        )
    };
    let Some(pending) = state.store.enrollment(&tenant.id, &digest, now).await? else {
        return Err(unknown());
    };
    if pending.client_id != client.client_id
        || !matches!(pending.method_type.as_str(), SIGNUP | LOGIN)
    {
        return Err(unknown());
    }
    let rp =
        relying_party(tenant, host).map_err(|e| PasskeyError::InvalidRequest(e.to_string()))?;
    if pending.state.get("rp_id").and_then(Value::as_str) != Some(rp.rp_id.as_str()) {
        return Err(unknown());
    }
    let digest_ref = digest.as_str();
    let wrong = |detail: String| async move {
        state
            .store
            .enrollment_failed(&tenant.id, digest_ref, MAX_ATTEMPTS)
            .await?;
        Err::<UserRow, _>(PasskeyError::InvalidGrant(detail))
    };
    if pending.method_type == SIGNUP {
        let registration: PasskeyRegistration = pending
            .state
            .get("registration")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| internal("a sign-up without its registration"))?;
        let Ok(credential) =
            serde_json::from_value::<RegisterPublicKeyCredential>(response.clone())
        else {
            return Err(PasskeyError::InvalidRequest(
                "authn_response is not a WebAuthn attestation response".into(),
            ));
        };
        let passkey = match rp
            .webauthn
            .finish_passkey_registration(&credential, &registration)
        {
            Ok(p) => p,
            Err(e) => return wrong(format!("The passkey could not be verified: {e}.")).await,
        };
        let Some(attested) = attested_in(response) else {
            return wrong("The attestation has no credential data.".into()).await;
        };
        let user_id = pending.user_id.clone();
        let profile = pending
            .state
            .get("profile")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let email = profile
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut stored_profile = profile.as_object().cloned().unwrap_or_default();
        stored_profile.remove("email");
        if let Some(m) = pending.state.get("user_metadata").filter(|m| !m.is_null()) {
            stored_profile.insert("user_metadata".into(), m.clone());
        }
        // The connection may have closed to sign-ups since the challenge.
        let connection = pending
            .state
            .get("connection")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let verify_first = match tenant.database_connection(&connection) {
            Some(conn) => {
                open_for_signup(conn)?;
                conn.require_email_verification
            }
            None => return Err(unknown()),
        };
        let user = UserRow {
            user_id: user_id.clone(),
            connection,
            email,
            email_verified: false,
            password_hash: None,
            profile: Value::Object(stored_profile),
            blocked: false,
            last_password_reset: None,
            created_at: now,
            updated_at: now,
            signed_up: true,
            seeded_password: None,
        };
        let row = passkey_row(
            state, tenant, &user_id, &passkey, &attested, response, &rp.rp_id, now,
        )?;
        return match state
            .store
            .complete_enrollment(
                &tenant.id,
                &digest,
                &Completion::SignUp {
                    user: Box::new(user.clone()),
                    row,
                },
                now,
            )
            .await
        {
            Ok(true) => {
                // As every sign-up of a database connection, the address is
                // mailed its verification link, in the caller's language.
                if !user.email.is_empty() {
                    mail_link(
                        state,
                        tenant,
                        &user.user_id,
                        &user.email,
                        &client.client_id,
                        TicketKind::VerifyEmail,
                        Mailing {
                            host: host.to_string(),
                            languages: languages.to_vec(),
                        },
                    );
                }
                if verify_first {
                    return Err(PasskeyError::EmailNotVerified { email: user.email });
                }
                Ok(user)
            }
            Ok(false) => Err(unknown()),
            Err(StoreError::Conflict(m)) => Err(PasskeyError::InvalidRequest(format!(
                "Cannot sign up: {m}."
            ))),
            Err(e) => Err(e.into()),
        };
    }

    // A login.
    let authentication: DiscoverableAuthentication = pending
        .state
        .get("authentication")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| internal("a login without its challenge"))?;
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(response.clone()) else {
        return Err(PasskeyError::InvalidRequest(
            "authn_response is not a WebAuthn assertion response".into(),
        ));
    };
    let Some((credential_id, handle)) = super::webauthn::asserted_ids(response) else {
        return wrong("The passkey could not be identified: the assertion names no credential or no user handle.".into()).await;
    };
    let Some(method) = state
        .store
        .method_by_credential(&tenant.id, &b64url(&credential_id))
        .await?
        .filter(|m| m.method_type == FactorType::Passkey)
    else {
        return wrong("This passkey is not registered here.".into()).await;
    };
    if super::webauthn::handle_of(&tenant.id, &method) != handle {
        return wrong("The passkey's user handle does not match its owner.".into()).await;
    }
    let mut passkey: Passkey = method
        .data
        .get("passkey")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| internal("a passkey method without its credential"))?;
    let result = match rp.webauthn.finish_discoverable_authentication_v2(
        &credential,
        authentication,
        DiscoverableKey::from(&passkey),
    ) {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            tracing::warn!(
                tenant = %tenant.name,
                method = %method.id,
                "passkey signature counter went backwards: a cloned authenticator; refused"
            );
            return wrong("The passkey's signature counter went backwards.".into()).await;
        }
        Err(e) => return wrong(format!("The passkey could not be verified: {e}.")).await,
    };
    let mut data = method.data.clone();
    if passkey.update_credential(&result) == Some(true)
        && let Some(obj) = data.as_object_mut()
    {
        obj.insert(
            "passkey".into(),
            serde_json::to_value(&passkey).map_err(internal)?,
        );
        obj.insert("backed_up".into(), json!(result.backup_state()));
    }
    // The new counter is kept only over the one this login checked against:
    // of two logins with one passkey at once, the later write would
    // otherwise move it backwards.
    if !state
        .store
        .update_method_data(&tenant.id, &method.id, &method.data, &data, Some(now))
        .await?
    {
        return wrong("The passkey was used by another login at the same moment.".into()).await;
    }
    // The challenge is answered: it is used up, whoever wins a race.
    if !state
        .store
        .complete_enrollment(&tenant.id, &digest, &Completion::Consume, now)
        .await?
    {
        return Err(unknown());
    }
    let user = state
        .store
        .user_by_id(&tenant.id, &method.user_id)
        .await?
        .filter(|u| !u.blocked)
        .ok_or_else(|| {
            PasskeyError::InvalidGrant("The user is blocked or no longer exists.".into())
        })?;
    // A passkey proves who holds it, not that the address is theirs: the
    // connection's rule holds for every way in.
    let verify_first = tenant
        .database_connection(&user.connection)
        .is_some_and(|c| c.require_email_verification);
    if verify_first && !user.email_verified {
        return Err(PasskeyError::EmailNotVerified { email: user.email });
    }
    Ok(user)
}

#[allow(clippy::too_many_arguments)]
fn passkey_row(
    state: &Core,
    tenant: &Tenant,
    user_id: &str,
    passkey: &Passkey,
    attested: &super::webauthn::AttestedCredential,
    response: &Value,
    rp_id: &str,
    now: i64,
) -> Result<MethodRow, PasskeyError> {
    let transports = transports_in(response);
    Ok(MethodRow {
        id: format!("passkey|dev_{}", state.rng.alnum(16)),
        user_id: user_id.to_string(),
        method_type: FactorType::Passkey,
        name: None,
        data: json!({
            "passkey": serde_json::to_value(passkey).map_err(internal)?,
            "public_key": b64url(&attested.public_key),
            "aaguid": attested.aaguid.to_string(),
            "backup_eligible": attested.backup_eligible,
            "backed_up": attested.backed_up,
            "transports": transports,
            "user_agent": "",
            "user_handle": b64url(user_handle(&tenant.id, user_id).as_bytes()),
            "relying_party_id": rp_id,
        }),
        created_at: now,
        last_auth_at: Some(now),
        last_otp_step: None,
        credential_id: Some(b64url(&attested.credential_id)),
    })
}
