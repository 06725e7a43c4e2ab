//! The one-shot commands: `enroll`, `code`, `rename`, `update` and `remove`.

use std::path::Path;

use serde_json::json;

use crate::api::Client;
use crate::error::Error;
use crate::key::DeviceKey;
use crate::state::{self, Device, Enrollment, PushCredentials, State};
use crate::sys;
use crate::totp::TotpParams;
use crate::uri;

/// The doc's limits on what a device sends.
const MAX_NAME: usize = 256;
const MAX_PUSH_TOKEN: usize = 4096;

fn check_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME
        || name.chars().any(char::is_control)
    {
        return Err(Error::new("the name must be 1 to 256 printable characters"));
    }
    Ok(())
}

fn check_push_token(token: &str) -> Result<(), Error> {
    if token.is_empty() || token.len() > MAX_PUSH_TOKEN || token.chars().any(char::is_control) {
        return Err(Error::new(
            "the push token must be 1 to 4,096 printable characters",
        ));
    }
    Ok(())
}

pub async fn enroll(
    path: &Path,
    text: &str,
    name: String,
    service: &str,
    push_token: Option<String>,
    force: bool,
) -> Result<(), Error> {
    let enrollment_uri = uri::parse(text)?;
    check_name(&name)?;
    let push_token = match push_token {
        Some(token) => token,
        None => sys::hex(&sys::random::<32>()?),
    };
    check_push_token(&push_token)?;
    // Refuse before the ticket is spent, not after.
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return Err(Error::new(format!(
            "{} already holds an enrollment: give --force to replace it, or another --state",
            path.display()
        )));
    }

    let key = DeviceKey::generate()?;
    let identifier = format!("latchkey-authenticator-{}", sys::hex(&sys::random::<16>()?));
    let body = json!({
        "identifier": identifier,
        "name": name,
        "push_credentials": {"service": service, "token": push_token},
        "public_key": key.jwk(),
    });
    let enrolled = Client::new()?
        .enroll(&enrollment_uri.base_url, &enrollment_uri.ticket, &body)
        .await?;

    let totp = match &enrolled.totp {
        Some(answer) => serde_json::from_value::<TotpParams>(answer.clone()).map_err(|e| {
            Error::new(format!(
                "enroll: the server's TOTP parameters are not usable: {e}"
            ))
        })?,
        None => enrollment_uri.totp.clone(),
    };
    let base_url = match enrolled.url.as_deref().map(|u| u.trim_end_matches('/')) {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => url.to_owned(),
        _ => enrollment_uri.base_url.clone(),
    };
    let state = State {
        version: state::VERSION,
        device: Device {
            identifier,
            name,
            push_credentials: PushCredentials {
                service: service.to_owned(),
                token: push_token,
            },
            key: state::encode_key(&key),
        },
        enrollment: Enrollment {
            id: enrolled.id,
            user_id: enrolled.user_id,
            token: enrolled.token,
            base_url,
            issuer: enrolled
                .issuer
                .filter(|i| !i.is_empty())
                .unwrap_or(enrollment_uri.label),
            account: enrollment_uri.account,
            totp,
        },
    };
    state::create(path, &state, force)?;
    println!(
        "Enrolled device account {} for {} at {} (state in {}).",
        state.enrollment.id,
        state.enrollment.account,
        state.issuer_url(),
        path.display()
    );
    Ok(())
}

pub fn code(path: &Path) -> Result<(), Error> {
    let state = state::load(path)?;
    let now = sys::now();
    println!("{}", state.enrollment.totp.code_at(now));
    eprintln!(
        "(valid for {} more seconds)",
        state.enrollment.totp.remaining(now)
    );
    Ok(())
}

fn device_account_url(state: &State) -> String {
    state.api_url(&format!("device-accounts/{}", state.enrollment.id))
}

pub async fn rename(path: &Path, name: String) -> Result<(), Error> {
    check_name(&name)?;
    let mut state = state::load(path)?;
    Client::new()?
        .update(
            &device_account_url(&state),
            &state.enrollment.token,
            &json!({"name": name}),
        )
        .await?;
    state.device.name = name;
    state::replace(path, &state)?;
    println!("Renamed the device account to {}.", state.device.name);
    Ok(())
}

pub async fn update(path: &Path, token: String, service: Option<&str>) -> Result<(), Error> {
    check_push_token(&token)?;
    let mut state = state::load(path)?;
    let credentials = PushCredentials {
        service: service.map_or_else(
            || state.device.push_credentials.service.clone(),
            str::to_owned,
        ),
        token,
    };
    Client::new()?
        .update(
            &device_account_url(&state),
            &state.enrollment.token,
            &json!({"push_credentials": {"service": credentials.service, "token": credentials.token}}),
        )
        .await?;
    state.device.push_credentials = credentials;
    state::replace(path, &state)?;
    println!(
        "Updated the push credentials ({}).",
        state.device.push_credentials.service
    );
    Ok(())
}

pub async fn remove(path: &Path) -> Result<(), Error> {
    let state = state::load(path)?;
    let key = state.key()?;
    let jwt = key.device_jwt(
        &state.api_url("device-accounts"),
        &state.enrollment.id,
        &state.enrollment.user_id,
        sys::now(),
    )?;
    Client::new()?
        .remove(&device_account_url(&state), &jwt)
        .await?;
    state::remove(path)?;
    println!(
        "Removed device account {} and deleted {}.",
        state.enrollment.id,
        path.display()
    );
    Ok(())
}
