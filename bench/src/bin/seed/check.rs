//! `seed check`: users as latchkey's services see them.

use anyhow::{anyhow, ensure};
use latchkey::app::AppState;
use latchkey::crypto::otp;
use latchkey::services::enrollment;
use latchkey::services::{login, methods as user_methods};
use latchkey::tenant::{FactorType, Tenant};
use serde_json::Value;

use super::bulk::Known;
use super::*;

pub(super) async fn check(target: Target, host: &str, users: &[u64]) -> anyhow::Result<()> {
    let state = latchkey::server::open(target.options()).await?;
    let tenant = tenant_on(&state, host).await?;
    for i in users {
        check_user(&state, &tenant, *i, None).await?;
    }
    eprintln!("seed: checked users {users:?} through latchkey's services");
    Ok(())
}

/// User `i` as a login and the My Account API see it; with `known`, also
/// what it was given.
pub(super) async fn check_user(
    state: &AppState,
    tenant: &Tenant,
    i: u64,
    known: Option<&Known>,
) -> anyhow::Result<()> {
    let (email, user_id) = (email(i), user_id(i));
    let user = login::authenticate(
        state,
        login::PasswordLogin {
            tenant,
            realm: Some(CONNECTION),
            username: &email,
            password: PASSWORD,
            ip: "127.0.0.1",
        },
    )
    .await
    .map_err(|e| anyhow!("user {i}: the password login of {email} failed: {e}"))?;
    ensure!(
        user.user_id == user_id && user.email_verified && !user.blocked,
        "user {i}: {email} is {} (verified {}, blocked {})",
        user.user_id,
        user.email_verified,
        user.blocked
    );

    let listed = user_methods::list(state, &tenant.id, &user_id, None)
        .await
        .map_err(|e| anyhow!("user {i}: listing the methods: {e}"))?;
    let mut kinds: Vec<&str> = listed.iter().map(|m| m.kind.as_str()).collect();
    kinds.sort_unstable();
    ensure!(
        kinds == ["password", "recovery-code", "totp"],
        "user {i}: the methods listed are {kinds:?}"
    );

    let rows = state.store.methods(&tenant.id, &user_id).await?;
    let of_type = |kind: FactorType| {
        rows.iter()
            .find(|r| r.method_type == kind)
            .ok_or_else(|| anyhow!("user {i}: no {kind} method stored"))
    };
    let totp = of_type(FactorType::Totp)?;
    let sealed = totp
        .data
        .get("secret")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("user {i}: the TOTP method has no secret"))?;
    let secret = state
        .sealer
        .open(&enrollment::totp_context(&tenant.id, &totp.id), sealed)
        .map_err(|e| anyhow!("user {i}: the TOTP secret does not open: {e}"))?;
    ensure!(
        secret.len() == 20,
        "user {i}: the TOTP secret is {} bytes",
        secret.len()
    );
    let last = totp
        .last_otp_step
        .ok_or_else(|| anyhow!("user {i}: the TOTP method has no step used"))?;
    // The enrollment's code is spent; the next step's is good.
    ensure!(
        otp::verify(
            &secret,
            &otp::code_at(&secret, last),
            last * otp::PERIOD,
            Some(last)
        )
        .is_none()
            && otp::verify(
                &secret,
                &otp::code_at(&secret, last + 1),
                (last + 1) * otp::PERIOD,
                Some(last)
            ) == Some(last + 1),
        "user {i}: the TOTP secret's codes do not verify as they should"
    );
    let recovery = of_type(FactorType::RecoveryCode)?;
    let digest = recovery
        .data
        .get("code_digest")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("user {i}: the recovery code has no digest"))?;

    if let Some(k) = known {
        ensure!(
            secret == k.secret && totp.id == k.totp_id,
            "user {i}: the TOTP method stored is not the one made"
        );
        ensure!(
            recovery.id == k.recovery_id
                && digest == enrollment::recovery_code_digest(&k.recovery_code),
            "user {i}: the recovery code's digest does not match the code"
        );
    }
    Ok(())
}
