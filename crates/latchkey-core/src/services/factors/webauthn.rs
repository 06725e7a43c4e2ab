//! WebAuthn keys as a second factor: a security key (`webauthn-roaming`) or
//! the device's own authenticator unlocked by biometrics or screen lock
//! (`webauthn-platform`). Enrolled at login only (the My Account API lists,
//! renames and deletes them but cannot create them, MYACCOUNT.md §10 Q4).
//!
//! A security key is registered as webauthn-rs's `SecurityKey` (user
//! verification preferred, cross-platform hint); a platform key as its
//! `Passkey` (user verification required) with the platform attachment
//! asked of the browser. Neither needs to be discoverable: the login has
//! identified the user already and names the user's keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    AuthenticatorAttachment, CredentialID, PasskeyRegistration, RegisterPublicKeyCredential,
    SecurityKeyRegistration,
};

use super::{AnswerKind, Answered, Label, SecondFactor};
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::rng::RngExt;
use crate::services::enrollment::{
    Challenge, EnrollError, Outcome, Who, identity_user, new_method_id,
};
use crate::services::mfa::{Answer, MfaError, Pending, answering, ceremony, lookup, wrong};
use crate::services::webauthn::{attested_in, b64url, relying_party, transports_in, user_handle};
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::FactorType;
use crate::tenant::{Client, Tenant};

/// The two kinds of WebAuthn key, as webauthn-rs holds them: a security key
/// (`SecurityKey`) or the device's own authenticator (`Passkey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Security,
    Platform,
}

impl Key {
    /// `None` for the types that are no WebAuthn key of the second step.
    const fn of(kind: FactorType) -> Option<Self> {
        match kind {
            FactorType::WebauthnRoaming => Some(Self::Security),
            FactorType::WebauthnPlatform => Some(Self::Platform),
            FactorType::Password
            | FactorType::Passkey
            | FactorType::Totp
            | FactorType::RecoveryCode
            | FactorType::Email
            | FactorType::Phone
            | FactorType::PushNotification => None,
        }
    }
}

fn setup(e: impl std::fmt::Display) -> EnrollError {
    EnrollError::Invalid(e.to_string())
}

fn internal(e: impl std::fmt::Display) -> EnrollError {
    EnrollError::Internal(e.to_string())
}

pub(crate) async fn start(
    state: &Core,
    who: &Who<'_>,
    kind: FactorType,
) -> Result<(String, Value, Challenge), EnrollError> {
    let which = Key::of(kind).ok_or_else(|| internal(format!("{kind} is no WebAuthn key")))?;
    let user = identity_user(state, who, None, None).await?;
    let rp = relying_party(who.tenant, who.host).map_err(setup)?;
    // None of the user's credentials may be registered twice.
    let exclude: Vec<CredentialID> = state
        .store
        .methods(&who.tenant.id, &user.user_id)
        .await?
        .iter()
        .filter_map(|m| m.credential_id.as_deref())
        .filter_map(|id| URL_SAFE_NO_PAD.decode(id).ok())
        .collect();
    let display = user
        .profile
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&user.email)
        .to_string();
    let handle = user_handle(&who.tenant.id, &user.user_id);
    let (options, registration) = match which {
        Key::Platform => {
            let (ccr, reg) = rp
                .webauthn
                .start_passkey_registration(handle, &user.email, &display, Some(exclude))
                .map_err(setup)?;
            let mut options = serde_json::to_value(&ccr).map_err(internal)?;
            if let Some(sel) = options
                .pointer_mut("/publicKey/authenticatorSelection")
                .and_then(Value::as_object_mut)
            {
                sel.insert("authenticatorAttachment".into(), json!("platform"));
            }
            (options, serde_json::to_value(&reg).map_err(internal)?)
        }
        Key::Security => {
            let (ccr, reg) = rp
                .webauthn
                .start_securitykey_registration(
                    handle,
                    &user.email,
                    &display,
                    Some(exclude),
                    None,
                    Some(AuthenticatorAttachment::CrossPlatform),
                )
                .map_err(setup)?;
            let mut options = serde_json::to_value(&ccr).map_err(internal)?;
            // credProtect "userVerificationRequired" with user verification
            // only preferred is refused by browsers (Chromium: NotSupportedError,
            // "protection policy is inconsistent"); the key's own default
            // protection is what a second factor needs.
            if let Some(ext) = options
                .pointer_mut("/publicKey/extensions")
                .and_then(Value::as_object_mut)
            {
                ext.remove("credentialProtectionPolicy");
                ext.remove("enforceCredentialProtectionPolicy");
            }
            (options, serde_json::to_value(&reg).map_err(internal)?)
        }
    };
    let options = options
        .get("publicKey")
        .cloned()
        .ok_or_else(|| internal("creation options without publicKey"))?;
    let stored = json!({ "registration": registration, "rp_id": rp.rp_id });
    Ok((
        format!("{}|new", kind.as_str()),
        stored,
        Challenge::Passkey { options },
    ))
}

pub(crate) fn finish(
    state: &Core,
    who: &Who<'_>,
    kind: FactorType,
    enrollment: &EnrollmentRow,
    response: &Value,
) -> Result<Outcome, EnrollError> {
    let which = Key::of(kind).ok_or_else(|| internal(format!("{kind} is no WebAuthn key")))?;
    let stored = enrollment
        .state
        .get("registration")
        .cloned()
        .ok_or_else(|| internal("enrollment without a registration"))?;
    let credential: RegisterPublicKeyCredential = match serde_json::from_value(response.clone()) {
        Ok(c) => c,
        Err(e) => {
            return Ok(Outcome::Refused {
                pointer: "/authn_response",
                detail: format!("is not a WebAuthn attestation response ({e})"),
            });
        }
    };
    let rp = relying_party(who.tenant, who.host).map_err(setup)?;
    if enrollment.state.get("rp_id").and_then(Value::as_str) != Some(rp.rp_id.as_str()) {
        return Ok(Outcome::Wrong(
            "The key enrollment was started for another host.".into(),
        ));
    }
    let verified = match which {
        Key::Platform => {
            let registration: PasskeyRegistration =
                serde_json::from_value(stored).map_err(internal)?;
            rp.webauthn
                .finish_passkey_registration(&credential, &registration)
                .map(|p| serde_json::to_value(&p))
        }
        Key::Security => {
            let registration: SecurityKeyRegistration =
                serde_json::from_value(stored).map_err(internal)?;
            rp.webauthn
                .finish_securitykey_registration(&credential, &registration)
                .map(|k| serde_json::to_value(&k))
        }
    };
    let key = match verified {
        Ok(v) => v.map_err(internal)?,
        Err(e) => {
            return Ok(Outcome::Wrong(format!(
                "The key could not be verified: {e}."
            )));
        }
    };
    let Some(attested) = attested_in(response) else {
        return Ok(Outcome::Wrong(
            "The attestation has no credential data.".into(),
        ));
    };
    let transports = transports_in(response);
    let handle = user_handle(&who.tenant.id, who.user_id);
    let data = json!({
        "credential": key,
        "public_key": b64url(&attested.public_key),
        "aaguid": attested.aaguid.to_string(),
        "backup_eligible": attested.backup_eligible,
        "backed_up": attested.backed_up,
        "transports": transports,
        "user_agent": who.user_agent,
        "user_handle": b64url(handle.as_bytes()),
        "relying_party_id": rp.rp_id,
    });
    Ok(Outcome::Done(Box::new(Completion::AddMethod {
        row: MethodRow {
            id: new_method_id(state, kind),
            user_id: who.user_id.to_string(),
            method_type: kind,
            name: None,
            data,
            created_at: state.clock.now(),
            last_auth_at: None,
            last_otp_step: None,
            credential_id: Some(b64url(&attested.credential_id)),
        },
        replace_type: false,
    })))
}

/// What a security key is at login.
pub(crate) const ROAMING: SecondFactor = SecondFactor {
    answer: AnswerKind::Key,
    // The MFA API does not offer keys: they need the hosted page.
    api: None,
    rank: 1,
    enroll_label: Some("authenticatorNamesWebauthnRoaming"),
    label: roaming_label,
};

/// What the device's own authenticator is at login.
pub(crate) const PLATFORM: SecondFactor = SecondFactor {
    answer: AnswerKind::Key,
    api: None,
    rank: 1,
    enroll_label: Some("authenticatorNamesWebauthnPlatform"),
    label: platform_label,
};

fn roaming_label(m: &MethodRow) -> Label {
    Label::named(m, "authenticatorNamesWebauthnRoaming")
}

fn platform_label(m: &MethodRow) -> Label {
    Label::named(m, "authenticatorNamesWebauthnPlatform")
}

const KEY_KIND: &str = "mfa-key";

/// The `amr` value a WebAuthn key's signature adds (RFC 8176): `hwk` for a
/// key held in hardware, `swk` for a platform credential that may be synced
/// (backup eligible) and so is not bound to one device.
fn key_answer(m: &MethodRow) -> Answered {
    let eligible = m
        .data
        .get("backup_eligible")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Answered::Key {
        synced: Key::of(m.method_type) == Some(Key::Platform) && eligible,
    }
}

fn key_internal(e: impl std::fmt::Display) -> MfaError {
    MfaError::Internal(e.to_string())
}

/// Request options naming the user's keys of `kind` (`webauthn-roaming` or
/// `webauthn-platform`); the ceremony waits, tied to the `mfa_token`, under
/// the returned session.
pub async fn key_challenge(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    client: &Client,
    token: &str,
    kind: FactorType,
) -> Result<(String, Value), MfaError> {
    use webauthn_rs::prelude::{Passkey, SecurityKey};
    let which = Key::of(kind).ok_or(MfaError::NoAuthenticator("webauthn"))?;
    let (row, _) = lookup(state, tenant, token, Some(client)).await?;
    let methods = state.store.methods(&tenant.id, &row.user_id).await?;
    let keys: Vec<&MethodRow> = methods.iter().filter(|m| m.method_type == kind).collect();
    if keys.is_empty() {
        return Err(MfaError::NoAuthenticator("webauthn"));
    }
    let rp = crate::services::webauthn::relying_party(tenant, host).map_err(key_internal)?;
    let credential = |m: &&MethodRow| m.data.get("credential").cloned();
    let (options, ceremony) = match which {
        Key::Platform => {
            let creds: Vec<Passkey> = keys
                .iter()
                .filter_map(credential)
                .filter_map(|v| serde_json::from_value(v).ok())
                .collect();
            let (rcr, auth) = rp
                .webauthn
                .start_passkey_authentication(&creds)
                .map_err(key_internal)?;
            (
                serde_json::to_value(&rcr).map_err(key_internal)?,
                serde_json::to_value(&auth).map_err(key_internal)?,
            )
        }
        Key::Security => {
            let creds: Vec<SecurityKey> = keys
                .iter()
                .filter_map(credential)
                .filter_map(|v| serde_json::from_value(v).ok())
                .collect();
            let (rcr, auth) = rp
                .webauthn
                .start_securitykey_authentication(&creds)
                .map_err(key_internal)?;
            (
                serde_json::to_value(&rcr).map_err(key_internal)?,
                serde_json::to_value(&auth).map_err(key_internal)?,
            )
        }
    };
    let options = options
        .get("publicKey")
        .cloned()
        .ok_or_else(|| key_internal("request options without publicKey"))?;
    let session = state.rng.token(32);
    let now = state.clock.now();
    let pending = EnrollmentRow {
        user_id: row.user_id.clone(),
        client_id: client.client_id.clone(),
        method_type: KEY_KIND.to_string(),
        method_id: kind.as_str().to_string(),
        state: json!({
            "mfa_token": secret_digest(token),
            "authentication": ceremony,
            "rp_id": rp.rp_id,
        }),
        attempts: 0,
        created_at: now,
        expires_at: row.expires_at.min(now + 300),
    };
    state
        .store
        .create_enrollment(&tenant.id, &secret_digest(&session), &pending)
        .await?;
    Ok((session, options))
}

/// Answers a key challenge with the browser's assertion. Returns the user,
/// the pending login and the `amr` value of the key (`hwk` or `swk`). A
/// failed signature counts against the `mfa_token`; the key's signature
/// counter is kept, and one that goes backwards (a cloned key) is refused.
pub async fn verify_key(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    answer: &Answer<'_>,
    session: &str,
    response: &Value,
) -> Result<(String, Pending, Answered), MfaError> {
    use webauthn_rs::prelude::{
        Passkey, PasskeyAuthentication, PublicKeyCredential, SecurityKey, SecurityKeyAuthentication,
    };
    let token = answer.token;
    let (row, pending) = answering(state, tenant, answer).await?;
    let now = state.clock.now();
    let ceremony = ceremony(state, tenant, token, &row.user_id, session, KEY_KIND).await?;
    let kind = FactorType::try_from(ceremony.method_id.clone()).map_err(key_internal)?;
    let which = Key::of(kind).ok_or_else(|| key_internal(format!("{kind} is no WebAuthn key")))?;
    let rp = crate::services::webauthn::relying_party(tenant, host).map_err(key_internal)?;
    if ceremony.state.get("rp_id").and_then(Value::as_str) != Some(rp.rp_id.as_str()) {
        return Err(MfaError::BadToken);
    }
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(response.clone()) else {
        return Err(wrong(state, tenant, answer, &row.user_id, "webauthn").await);
    };
    let stored = ceremony
        .state
        .get("authentication")
        .cloned()
        .unwrap_or(Value::Null);
    let result = match which {
        Key::Platform => {
            let auth: PasskeyAuthentication =
                serde_json::from_value(stored).map_err(key_internal)?;
            rp.webauthn
                .finish_passkey_authentication(&credential, &auth)
        }
        Key::Security => {
            let auth: SecurityKeyAuthentication =
                serde_json::from_value(stored).map_err(key_internal)?;
            rp.webauthn
                .finish_securitykey_authentication(&credential, &auth)
        }
    };
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, tenant = %tenant.name, "WebAuthn key refused at login");
            return Err(wrong(state, tenant, answer, &row.user_id, "webauthn").await);
        }
    };
    let methods = state.store.methods(&tenant.id, &row.user_id).await?;
    let id = crate::services::webauthn::b64url(result.cred_id().as_ref());
    let Some(method) = methods
        .iter()
        .find(|m| m.method_type == kind && m.credential_id.as_deref() == Some(&id))
    else {
        return Err(wrong(state, tenant, answer, &row.user_id, "webauthn").await);
    };
    // The signature counter: webauthn-rs refuses a counter that went
    // backwards (CredentialPossibleCompromise) above; here the new one is
    // kept.
    let mut data = method.data.clone();
    let updated = match which {
        Key::Platform => data
            .get("credential")
            .cloned()
            .and_then(|v| serde_json::from_value::<Passkey>(v).ok())
            .and_then(|mut k| {
                k.update_credential(&result)?;
                serde_json::to_value(&k).ok()
            }),
        Key::Security => data
            .get("credential")
            .cloned()
            .and_then(|v| serde_json::from_value::<SecurityKey>(v).ok())
            .and_then(|mut k| {
                k.update_credential(&result)?;
                serde_json::to_value(&k).ok()
            }),
    };
    if let (Some(k), Some(obj)) = (updated, data.as_object_mut()) {
        obj.insert("credential".into(), k);
    }
    // The new counter is kept only over the one this answer was checked
    // against (two logins with one key at once cannot move it backwards).
    if !state
        .store
        .update_method_data(&tenant.id, &method.id, &method.data, &data, Some(now))
        .await?
    {
        return Err(wrong(state, tenant, answer, &row.user_id, "webauthn").await);
    }
    for digest in [secret_digest(session), secret_digest(token)] {
        if !state
            .store
            .complete_enrollment(&tenant.id, &digest, &Completion::Consume, now)
            .await?
        {
            return Err(MfaError::BadToken);
        }
    }
    Ok((row.user_id, pending, key_answer(method)))
}
