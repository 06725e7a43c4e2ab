//! Passkeys: the WebAuthn registration ceremony, run by webauthn-rs for the
//! tenant's relying party on the request's host. The ceremony state waits in
//! the enrollment; the verified credential becomes a primary method, its
//! credential ID unique in the tenant.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_rs::prelude::{CredentialID, PasskeyRegistration, RegisterPublicKeyCredential};

use super::SecondFactor;
use crate::context::Core;
use crate::services::enrollment::{
    Challenge, EnrollError, Outcome, Who, identity_user, new_method_id,
};
use crate::services::webauthn::{attested_in, b64url, relying_party, transports_in, user_handle};
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::FactorType;

fn setup(e: impl std::fmt::Display) -> EnrollError {
    EnrollError::Invalid(e.to_string())
}

pub(crate) async fn start(
    state: &Core,
    who: &Who<'_>,
    connection: Option<String>,
    identity_user_id: Option<String>,
    exclude_existing: bool,
) -> Result<(String, Value, Challenge), EnrollError> {
    let user = identity_user(state, who, connection, identity_user_id).await?;
    let rp = relying_party(who.tenant, who.host).map_err(setup)?;
    let exclude = if exclude_existing {
        let existing = state.store.methods(&who.tenant.id, &user.user_id).await?;
        Some(
            existing
                .iter()
                .filter(|m| m.method_type == FactorType::Passkey)
                .filter_map(|m| m.credential_id.as_deref())
                .filter_map(|id| URL_SAFE_NO_PAD.decode(id).ok())
                .collect::<Vec<CredentialID>>(),
        )
    } else {
        None
    };
    let display = user
        .profile
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&user.email)
        .to_string();
    let handle = user_handle(&who.tenant.id, &user.user_id);
    let (challenge, registration) = rp
        .webauthn
        .start_passkey_registration(handle, &user.email, &display, exclude)
        .map_err(setup)?;
    let mut options = serde_json::to_value(&challenge)
        .map_err(|e| EnrollError::Internal(e.to_string()))?
        .get("publicKey")
        .cloned()
        .ok_or_else(|| EnrollError::Internal("creation options without publicKey".into()))?;
    // A passkey is discoverable: native login (/passkey/challenge) offers no
    // credential list.
    if let Some(sel) = options
        .get_mut("authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        sel.insert("residentKey".into(), json!("required"));
        sel.insert("requireResidentKey".into(), json!(true));
    }
    let stored = json!({
        "registration": serde_json::to_value(&registration).map_err(|e| EnrollError::Internal(e.to_string()))?,
        "rp_id": rp.rp_id,
    });
    Ok((
        "passkey|new".to_string(),
        stored,
        Challenge::Passkey { options },
    ))
}

pub(crate) fn finish(
    state: &Core,
    who: &Who<'_>,
    enrollment: &EnrollmentRow,
    response: &Value,
) -> Result<Outcome, EnrollError> {
    let registration: PasskeyRegistration = enrollment
        .state
        .get("registration")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| EnrollError::Internal("enrollment without a registration".into()))?;
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
            "The passkey enrollment was started for another host.".into(),
        ));
    }
    let passkey = match rp
        .webauthn
        .finish_passkey_registration(&credential, &registration)
    {
        Ok(p) => p,
        Err(e) => {
            return Ok(Outcome::Wrong(format!(
                "The passkey could not be verified: {e}."
            )));
        }
    };
    let Some(attested) = attested_in(response) else {
        return Ok(Outcome::Wrong(
            "The attestation has no credential data.".into(),
        ));
    };
    let transports = transports_in(response);
    let credential_id = b64url(&attested.credential_id);
    let handle = user_handle(&who.tenant.id, who.user_id);
    let data = json!({
        "passkey": serde_json::to_value(&passkey).map_err(|e| EnrollError::Internal(e.to_string()))?,
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
            id: new_method_id(state, FactorType::Passkey),
            user_id: who.user_id.to_string(),
            method_type: FactorType::Passkey,
            name: None,
            data,
            created_at: state.clock.now(),
            last_auth_at: None,
            last_otp_step: None,
            credential_id: Some(credential_id),
        },
        replace_type: false,
    })))
}

/// Not a second factor: a first factor: a passkey login needs no second step.
pub(crate) const SECOND_FACTOR: Option<SecondFactor> = None;
