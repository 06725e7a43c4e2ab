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

use super::{Challenge, EnrollError, Outcome, Who, identity_user, new_method_id};
use crate::context::Core;
use crate::services::webauthn::{attested_in, b64url, relying_party, transports_in, user_handle};
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::FactorType;

fn setup(e: impl std::fmt::Display) -> EnrollError {
    EnrollError::Invalid(e.to_string())
}

fn internal(e: impl std::fmt::Display) -> EnrollError {
    EnrollError::Internal(e.to_string())
}

pub(super) async fn start(
    state: &Core,
    who: &Who<'_>,
    kind: FactorType,
) -> Result<(String, Value, Challenge), EnrollError> {
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
    let (options, registration) = if kind == FactorType::WebauthnPlatform {
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
    } else {
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

pub(super) fn finish(
    state: &Core,
    who: &Who<'_>,
    kind: FactorType,
    enrollment: &EnrollmentRow,
    response: &Value,
) -> Result<Outcome, EnrollError> {
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
    let verified = if kind == FactorType::WebauthnPlatform {
        let registration: PasskeyRegistration = serde_json::from_value(stored).map_err(internal)?;
        rp.webauthn
            .finish_passkey_registration(&credential, &registration)
            .map(|p| serde_json::to_value(&p))
    } else {
        let registration: SecurityKeyRegistration =
            serde_json::from_value(stored).map_err(internal)?;
        rp.webauthn
            .finish_securitykey_registration(&credential, &registration)
            .map(|k| serde_json::to_value(&k))
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
