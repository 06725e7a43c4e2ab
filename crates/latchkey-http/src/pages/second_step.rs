//! A login's second step, presented: after the first factor (a password,
//! or the browser's session when a request steps up), a challenge with one
//! of the user's second factors — choosing an email or phone factor sends
//! its code, a push method its notification (the waiting panel) — or, for a
//! user with none while one is required, the choice of one to enroll. `/authorize` starts it for a step-up and the login
//! pages for a login; the pages' handlers (`login/mfa.rs`) take the answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::language;
use super::{expired, frame_guard, internal, store_error};
use crate::app::AppState;
use crate::http::cookies;
use latchkey_core::services::authorize::AuthorizeRequest;
use latchkey_core::services::enrollment::Who;
use latchkey_core::services::factors::{self, AnswerKind};
use latchkey_core::services::login_flow;
use latchkey_core::services::mfa::{self, MfaError, Need, Requester};
use latchkey_core::services::push_step::{self, NotSent, SendMode, Status};
use latchkey_core::store::{MethodRow, UserRow};
use latchkey_core::tenant::{Client, FactorType, Tenant};

/// What the first factor established.
pub(crate) struct FirstFactor<'a> {
    pub user: &'a UserRow,
    pub amr: &'a [String],
    pub auth_time: i64,
}

/// The browser a step is answered from: what a push device shows of the
/// login.
pub(crate) struct Browser<'a> {
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// The second step for a user who passed the first: a challenge with one of
/// their factors, or the enrollment of one. The response sets the
/// `mfa_token` cookie.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    tx: &str,
    req: &AuthorizeRequest,
    first: &FirstFactor<'_>,
    need: Need,
    languages: &[String],
    browser: &Browser<'_>,
) -> Response {
    let Some(client) = tenant.client(&req.client_id) else {
        return expired(state, tenant);
    };
    let user_id = &first.user.user_id;
    let token = match login_flow::begin_second_step(
        state,
        tenant,
        client,
        req,
        user_id,
        first.amr,
        first.auth_time,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return failure(state, tenant, e),
    };
    let step = Step {
        state,
        tenant,
        host,
        tx,
        client,
        token: &token,
        user_id: &first.user.user_id,
        languages,
        ip: browser.ip,
        user_agent: browser.user_agent,
    };
    let mut res = match need {
        Need::Enroll => step.enroll_choice(None).await,
        _ => step.challenge(None, None).await,
    };
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(host, cookies::MFA, &token, mfa::MFA_TOKEN_TTL),
    );
    res
}

pub(crate) fn failure(state: &AppState, tenant: &Tenant, e: MfaError) -> Response {
    match e {
        MfaError::Store(e) => store_error(state, tenant, e),
        MfaError::BadToken | MfaError::Wrong { .. } => {
            let message =
                language::texts(Some(tenant)).get("common.error.transaction-not-found", &[]);
            let html = state.templates.render_error(Some(tenant), &message);
            (StatusCode::BAD_REQUEST, Html(html)).into_response()
        }
        other => internal(state, tenant, format!("{other:?}")),
    }
}

/// One browser's second step in progress.
pub(crate) struct Step<'a> {
    pub state: &'a AppState,
    pub tenant: &'a Tenant,
    pub host: &'a str,
    pub tx: &'a str,
    pub client: &'a Client,
    pub token: &'a str,
    pub user_id: &'a str,
    pub languages: &'a [String],
    pub ip: &'a str,
    pub user_agent: &'a str,
}

pub(crate) fn page(state: &AppState, tenant: &Tenant, view: Value) -> Response {
    let html = state.templates.render_mfa(tenant, &view);
    let mut res = (
        StatusCode::OK,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Html(html),
    )
        .into_response();
    frame_guard(&mut res);
    res
}

/// How the page names one of the user's methods, in its language.
pub(crate) fn method_label(tenant: &Tenant, m: &MethodRow) -> String {
    let label = factors::label(m);
    label.name.unwrap_or_else(|| {
        language::texts(Some(tenant)).get(
            &format!("mfa.mfa-login-options.{}", label.key),
            &[("destination", &label.destination)],
        )
    })
}

impl Step<'_> {
    /// The page's words.
    fn texts(&self) -> latchkey_core::services::language::Texts<'_> {
        language::texts(Some(self.tenant))
    }

    pub(crate) fn who<'w>(&'w self, req_client: &'w str, ua: &'w str) -> Who<'w> {
        Who {
            tenant: self.tenant,
            host: self.host,
            user_id: self.user_id,
            client_id: req_client,
            user_agent: ua,
            languages: self.languages,
        }
    }

    /// The user's second factors, in the order they are offered.
    pub(crate) async fn factors(&self) -> Result<Vec<MethodRow>, Response> {
        login_flow::second_factors(self.state, self.tenant, self.user_id)
            .await
            .map_err(|e| store_error(self.state, self.tenant, e))
    }

    /// The challenge page for the chosen factor (else the first). Choosing
    /// an email or phone factor sends its code.
    pub(crate) async fn challenge(&self, chosen: Option<&str>, error: Option<&str>) -> Response {
        let factors = match self.factors().await {
            Ok(f) => f,
            Err(res) => return res,
        };
        let Some(current) = chosen
            .and_then(|id| factors.iter().find(|m| m.id == id))
            .or_else(|| factors.first())
        else {
            return self.enroll_choice(None).await;
        };
        if factors::answer_kind(current.method_type) == Some(AnswerKind::Push) {
            return self
                .push_challenge(&factors, current, SendMode::UnlessWaiting, error)
                .await;
        }
        let mut error = error.map(str::to_string);
        let mut oob_code = None;
        if factors::answer_kind(current.method_type) == Some(AnswerKind::Oob) {
            match mfa::challenge(
                self.state,
                self.tenant,
                self.client,
                self.token,
                &["oob"],
                Some(&current.id),
                self.languages,
                // Codes only: push methods have their own panel.
                &Requester {
                    host: self.host,
                    ip: self.ip,
                    user_agent: self.user_agent,
                },
            )
            .await
            {
                Ok(mfa::Challenge::Oob { oob_code: c, .. }) => oob_code = Some(c),
                Ok(mfa::Challenge::Otp | mfa::Challenge::Push { .. }) => {}
                Err(MfaError::Throttled(_)) => {
                    error = Some(self.texts().get("mfa.mfa-challenge.too-many-codes", &[]));
                }
                Err(MfaError::Delivery(e)) => {
                    tracing::warn!(error = %e, tenant = %self.tenant.name, "login code not sent");
                    error = Some(self.texts().get("mfa.mfa-challenge.code-not-sent", &[]));
                }
                Err(e) => return failure(self.state, self.tenant, e),
            }
        }
        self.challenge_page(&factors, current, oob_code.as_deref(), error.as_deref())
    }

    /// The push option for `method`: a notification sent as `send` says
    /// (within the step's limits), then the waiting panel for the step's
    /// newest notification, or what became of it.
    pub(crate) async fn push_challenge(
        &self,
        factors: &[MethodRow],
        method: &MethodRow,
        send: SendMode,
        error: Option<&str>,
    ) -> Response {
        self.push_panel(factors, method, send, error, false).await
    }

    /// [`Self::push_challenge`], with `code_open` when the app's code was
    /// asked for (its form shown open).
    pub(crate) async fn push_panel(
        &self,
        factors: &[MethodRow],
        method: &MethodRow,
        send: SendMode,
        error: Option<&str>,
        code_open: bool,
    ) -> Response {
        let device = method_label(self.tenant, method);
        let texts = self.texts();
        let from = Requester {
            host: self.host,
            ip: self.ip,
            user_agent: self.user_agent,
        };
        let mut error = error.map(str::to_string);
        let mut failed = false;
        match push_step::send(
            self.state,
            self.tenant,
            self.client,
            self.token,
            method,
            send,
            self.languages,
            &from,
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(NotSent::TooSoon(seconds))) => {
                error = Some(texts.count(
                    "mfa-push.mfa-push-challenge-push.too-soon",
                    "seconds",
                    seconds,
                    &[],
                ));
            }
            Ok(Err(NotSent::Exhausted)) => {
                error = Some(texts.get("mfa-push.mfa-push-challenge-push.exhausted", &[]));
            }
            Ok(Err(NotSent::Throttled(seconds))) => {
                let minutes = (seconds + 59) / 60;
                error = Some(texts.count(
                    "mfa-push.mfa-push-challenge-push.throttled",
                    "minutes",
                    minutes,
                    &[],
                ));
            }
            Ok(Err(NotSent::Failed(why))) => {
                tracing::warn!(error = %why, tenant = %self.tenant.name, "login notification not sent");
                failed = true;
                error = Some(texts.get(
                    "mfa-push.mfa-push-challenge-push.not-sent",
                    &[("device", &device)],
                ));
            }
            Err(e) => return failure(self.state, self.tenant, e),
        }
        let status = match push_step::status(self.state, self.tenant, self.token).await {
            Ok(s) => s,
            Err(e) => return store_error(self.state, self.tenant, e),
        };
        let (state, binding_code) = match status {
            _ if failed => ("failed", None),
            // Another device's notification is not this method's.
            Status::Waiting {
                method_id,
                binding_code,
                ..
            } if method_id == method.id => ("pending", binding_code),
            Status::Waiting { .. } | Status::None => ("none", None),
            other => (other.as_str(), None),
        };
        let push = json!({
            "state": state,
            "device": device,
            "application": self.client.name,
            "binding_code": binding_code,
            "code_open": code_open,
        });
        self.challenge_view(factors, method, None, Some(push), error.as_deref())
    }

    pub(crate) fn challenge_page(
        &self,
        factors: &[MethodRow],
        current: &MethodRow,
        oob_code: Option<&str>,
        error: Option<&str>,
    ) -> Response {
        self.challenge_view(factors, current, oob_code, None, error)
    }

    fn challenge_view(
        &self,
        factors: &[MethodRow],
        current: &MethodRow,
        oob_code: Option<&str>,
        push: Option<Value>,
        error: Option<&str>,
    ) -> Response {
        let methods: Vec<Value> = factors
            .iter()
            .map(|m| json!({ "id": m.id, "label": method_label(self.tenant, m), "selected": m.id == current.id }))
            .collect();
        page(
            self.state,
            self.tenant,
            json!({
                "step": "challenge",
                "tx": self.tx,
                "error": error,
                "methods": methods,
                "current": {
                    "id": current.id,
                    "kind": factors::answer_kind(current.method_type).map(AnswerKind::as_str),
                    "type": current.method_type.as_str(),
                    "label": method_label(self.tenant, current),
                    "oob_code": oob_code,
                    "push": push,
                },
            }),
        )
    }

    /// What may be enrolled here, each with its name in the page's
    /// language.
    pub(crate) fn enrollable(&self) -> Vec<(FactorType, String)> {
        let enabled = &self.tenant.config.factors;
        let texts = self.texts();
        let mut out: Vec<(FactorType, String)> = FactorType::ALL
            .iter()
            .filter(|f| enabled.contains(f))
            .filter_map(|f| {
                let key = factors::enroll_label(*f)?;
                Some((
                    *f,
                    texts.get(&format!("mfa.mfa-begin-enroll-options.{key}"), &[]),
                ))
            })
            .collect();
        out.sort_by_key(|(f, _)| factors::rank(*f));
        out
    }

    pub(crate) async fn enroll_choice(&self, error: Option<&str>) -> Response {
        let factors: Vec<Value> = self
            .enrollable()
            .iter()
            .map(|(f, l)| json!({ "factor": f.as_str(), "label": l }))
            .collect();
        let none = factors.is_empty().then(|| {
            self.texts()
                .get("mfa.mfa-begin-enroll-options.none-available", &[])
        });
        page(
            self.state,
            self.tenant,
            json!({
                "step": "enroll-choose",
                "tx": self.tx,
                "error": error.map(str::to_string).or(none),
                "factors": factors,
            }),
        )
    }

    pub(crate) fn enroll_page(
        &self,
        factor: FactorType,
        extra: Value,
        error: Option<&str>,
    ) -> Response {
        let label = self
            .enrollable()
            .into_iter()
            .find(|(f, _)| *f == factor)
            .map(|(_, l)| l)
            .unwrap_or_default();
        let mut view = json!({
            "step": "enroll",
            "tx": self.tx,
            "error": error,
            "enroll": { "factor": factor.as_str(), "label": label },
        });
        if let (Some(dst), Some(src)) = (view["enroll"].as_object_mut(), extra.as_object()) {
            dst.extend(src.clone());
        }
        page(self.state, self.tenant, view)
    }

    /// Enrollment at login is for users without any second factor.
    pub(crate) async fn may_enroll(&self) -> Result<(), Response> {
        let factors = self.factors().await?;
        if factors.is_empty() {
            Ok(())
        } else {
            let message = self.texts().get("mfa.mfa-challenge.already-enrolled", &[]);
            Err(self.challenge(None, Some(&message)).await)
        }
    }
}
