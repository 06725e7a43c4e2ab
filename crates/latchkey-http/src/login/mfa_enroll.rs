//! Enrollment of a first second factor at login, for a user who has none
//! while one is required: `POST /login/mfa/enroll` (the chosen factor),
//! `POST /login/mfa/enroll/verify` (its first code, or the new key's
//! attestation; then the login finishes) and
//! `POST /login/mfa/enroll/key/challenge` (a new key's creation options).
//! Only a user without any second factor may enroll here, so a stolen
//! password cannot add the thief's own.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::mfa::{context, done, key_context, key_kind, step};
use super::{LoginForm, Script, json_no_store, json_refused, tx_form};
use crate::app::{AppState, SharedState};
use crate::http::ClientIp;
use crate::pages;
use crate::pages::second_step::{self, Step};
use latchkey_core::services::enrollment::{
    self, Challenge, EnrollError, Proof, Start, Started, Who,
};
use latchkey_core::services::factors::{self, AnswerKind};
use latchkey_core::services::login_flow;
use latchkey_core::tenant::{FactorType, Tenant};

#[derive(Debug, Deserialize)]
pub(super) struct EnrollForm {
    tx: String,
    factor: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone_number: String,
    #[serde(default)]
    channel: String,
}

/// Why an enrollment step was refused, in the page's language.
fn enroll_error(tenant: &Tenant, e: &EnrollError) -> String {
    let texts = pages::language::texts(Some(tenant));
    let key = match e {
        EnrollError::Throttled(_) => "mfa.mfa-enroll.too-many-codes",
        EnrollError::Delivery(_) => "mfa.mfa-enroll.code-not-sent",
        EnrollError::Wrong {
            attempts_left: 0, ..
        } => "mfa.mfa-enroll.too-many-failures",
        EnrollError::Wrong { .. } => "mfa.mfa-enroll.invalid-code",
        EnrollError::Field {
            pointer: "/email", ..
        } => "mfa-email.mfa-email-enrollment.invalid-email",
        EnrollError::Field {
            pointer: "/phone_number",
            ..
        } => "mfa-phone.mfa-phone-enrollment.invalid-phone",
        // What the page cannot have caused (a key's malformed answer, a
        // tenant without the provider): said as the service says it.
        EnrollError::Field { detail, .. } | EnrollError::Invalid(detail) => {
            return detail.clone();
        }
        EnrollError::TooManyMethods(max) => {
            return texts.get(
                "common.error.too-many-methods",
                &[("max", &max.to_string())],
            );
        }
        EnrollError::Store(_) | EnrollError::Internal(_) => "common.error.internal",
    };
    texts.get(key, &[])
}

/// `POST /login/mfa/enroll`: set up the chosen factor (a user without any).
pub(super) async fn enroll(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<EnrollForm>,
) -> Response {
    let ctx = match context(&state, &tenant, &headers, req).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx, &ip);
    let factor = match enrolling(&step, &form.factor).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let start = match start_of(factor, &form) {
        Ok(start) => start,
        Err(ask) => return step.enroll_page(factor, ask, None),
    };
    let who = step.who(&ctx.req.client_id, &ctx.user_agent);
    match enrollment::start(&state, &who, start).await {
        Ok(started) => step.enroll_page(factor, started_fields(&started, &form), None),
        Err(EnrollError::Store(e)) => pages::store_error(&state, &tenant, e),
        Err(e) => step.enroll_page(
            factor,
            json!({ "ask": true }),
            Some(&enroll_error(step.tenant, &e)),
        ),
    }
}

/// How the chosen factor's enrollment starts, or (as the page's extra
/// fields) what the page must ask for first.
fn start_of(factor: FactorType, form: &EnrollForm) -> Result<Start, Value> {
    match factor {
        FactorType::Totp => Ok(Start::Totp),
        FactorType::Email if form.email.trim().is_empty() => Err(json!({ "ask": true })),
        FactorType::Email => Ok(Start::Email {
            email: form.email.trim().to_string(),
        }),
        FactorType::Phone if form.phone_number.trim().is_empty() => Err(json!({ "ask": true })),
        FactorType::Phone => Ok(Start::Phone {
            phone_number: form.phone_number.trim().to_string(),
            preferred: Some(
                if form.channel == "voice" {
                    "voice"
                } else {
                    "sms"
                }
                .to_string(),
            ),
        }),
        // The page's script asks for the creation options.
        FactorType::WebauthnRoaming | FactorType::WebauthnPlatform => Err(json!({ "key": true })),
        // Never among `enrollable` (not enrolled at the login).
        FactorType::RecoveryCode
        | FactorType::Password
        | FactorType::Passkey
        | FactorType::PushNotification => Err(json!({ "key": true })),
    }
}

/// The factor chosen for enrollment, if this user may enroll it here.
async fn enrolling(step: &Step<'_>, chosen: &str) -> Result<FactorType, Response> {
    step.may_enroll().await?;
    match step
        .enrollable()
        .into_iter()
        .find(|(f, _)| f.as_str() == chosen)
    {
        Some((factor, _)) => Ok(factor),
        None => Err(step.enroll_choice(None).await),
    }
}

/// The page's fields for a started enrollment: what the first code is
/// verified against, and for an authenticator app its QR code.
fn started_fields(started: &Started, form: &EnrollForm) -> Value {
    let mut extra = json!({
        "method_id": started.method_id,
        "auth_session": started.auth_session,
        "email": form.email.trim(),
        "phone_number": form.phone_number.trim(),
    });
    if let Challenge::Totp {
        barcode_uri,
        manual_input_code,
    } = &started.challenge
    {
        extra["manual_input_code"] = json!(manual_input_code);
        extra["qr_svg"] = json!(qr_svg(barcode_uri));
    }
    extra
}

/// The `otpauth://` URI as an SVG QR code.
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .build(),
        Err(_) => String::new(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct EnrollVerifyForm {
    tx: String,
    factor: String,
    method_id: String,
    auth_session: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    credential: String,
}

fn is_key(factor: FactorType) -> bool {
    factors::answer_kind(factor) == Some(AnswerKind::Key)
}

/// The new factor's first code, or the new key's attestation.
fn proof(factor: FactorType, form: &EnrollVerifyForm) -> Proof {
    if is_key(factor) {
        Proof::Passkey {
            response: serde_json::from_str(&form.credential).unwrap_or(Value::Null),
        }
    } else {
        Proof::Otp {
            code: form.code.trim().to_string(),
        }
    }
}

/// The enrollment page again, with why the proof was refused; an
/// authenticator app's QR code and key stay on it while the enrollment
/// lives, so a wrong first code does not lose them.
async fn not_verified(
    state: &AppState,
    step: &Step<'_>,
    who: &Who<'_>,
    factor: FactorType,
    form: &EnrollVerifyForm,
    e: &EnrollError,
) -> Response {
    let mut extra = if is_key(factor) {
        json!({ "key": true })
    } else {
        json!({
            "method_id": form.method_id,
            "auth_session": form.auth_session,
        })
    };
    if factor == FactorType::Totp
        && let Ok(Some(Challenge::Totp {
            barcode_uri,
            manual_input_code,
        })) = enrollment::shown_again(state, who, &form.method_id, &form.auth_session).await
    {
        extra["manual_input_code"] = json!(manual_input_code);
        extra["qr_svg"] = json!(qr_svg(&barcode_uri));
    }
    step.enroll_page(factor, extra, Some(&enroll_error(step.tenant, e)))
}

/// `POST /login/mfa/enroll/verify`: the first code from the new factor (or
/// the new key's attestation), then the login finishes.
pub(super) async fn enroll_verify(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<EnrollVerifyForm>,
) -> Response {
    let ctx = match context(&state, &tenant, &headers, req).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx, &ip);
    let factor = match enrolling(&step, &form.factor).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    if form.auth_session.len() > 128 || form.credential.len() > 16 * 1024 {
        return step.enroll_choice(None).await;
    }
    let who = step.who(&ctx.req.client_id, &ctx.user_agent);
    let proof = proof(factor, &form);
    let method =
        match enrollment::verify(&state, &who, &form.method_id, &form.auth_session, proof).await {
            Ok(m) => m,
            Err(EnrollError::Store(e)) => return pages::store_error(&state, &tenant, e),
            Err(e) => return not_verified(&state, &step, &who, factor, &form, &e).await,
        };
    let answer = ctx.answer(step.client, &ip);
    match login_flow::enrolled(&state, &answer, &who, factor, &method).await {
        Ok(a) => {
            done(
                &state,
                &tenant,
                &host,
                &headers,
                &ip,
                &form.tx,
                &ctx,
                &a.amr,
                a.recovery_code,
            )
            .await
        }
        Err(e) => second_step::failure(&state, &tenant, e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct EnrollKeyForm {
    tx: String,
    #[serde(deserialize_with = "key_kind")]
    factor: FactorType,
}

tx_form!(EnrollForm, EnrollVerifyForm, EnrollKeyForm);

/// `POST /login/mfa/enroll/key/challenge`: creation options for a new
/// WebAuthn key (JSON, for the page's script).
pub(super) async fn enroll_key_challenge(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<EnrollKeyForm, Script>,
) -> Response {
    let kind = form.factor;
    let (ctx, client) = match key_context(&state, &tenant, &headers, req).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let step = Step {
        state: &state,
        tenant: &tenant,
        host: &host,
        tx: &form.tx,
        client,
        token: &ctx.token,
        user_id: &ctx.user_id,
        languages: &ctx.languages,
        ip: &ip,
        user_agent: &ctx.user_agent,
    };
    if step.may_enroll().await.is_err() {
        return json_refused("invalid_request");
    }
    let who = step.who(&ctx.req.client_id, &ctx.user_agent);
    let start = Start::WebauthnKey {
        platform: kind == FactorType::WebauthnPlatform,
    };
    match enrollment::start(&state, &who, start).await {
        Ok(started) => match started.challenge {
            Challenge::Passkey { options } => json_no_store(json!({
                "auth_session": started.auth_session,
                "method_id": started.method_id,
                "options": options,
            })),
            _ => json_refused("invalid_request"),
        },
        Err(e) => {
            tracing::info!(error = %e, "key creation challenge refused");
            json_refused("invalid_request")
        }
    }
}
