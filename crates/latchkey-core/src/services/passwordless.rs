//! Passwordless login (Auth0's `email` and `sms` connections): [`start`]
//! sends a six-digit one-time code to an address or a phone number, or a
//! magic link (that code in a link that completes an authorization request),
//! [`check_code`] (`POST /passwordless/verify`) tells whether an answer is
//! right without spending the code, and [`verify`] (the `passwordless/otp`
//! grant, the hosted page's code form) trades it for the user found by that address or number, or made at their
//! first login unless the connection disables sign-up.
//!
//! A code is stored in `enrollments` under a MAC of the tenant, connection
//! and address (keyed by the master key, so the address is not in the row);
//! the code itself only as a MAC of those and the code, compared in constant
//! time. A new code replaces the last one; a code lives [`CODE_TTL`]
//! seconds ([`LINK_TTL`] in a link), is spent by its first use, and dies
//! after [`MAX_ATTEMPTS`] wrong answers. A link's code is bound to the
//! authorization request of its link: it answers only there. Sends are limited per address and per IP, the same for
//! addresses with and without a user: `start` answers alike for both, and
//! hands the message to the provider after answering, so neither the answer
//! nor its timing tells whether someone has an account.

use std::sync::Arc;

use serde_json::{Value, json};

use super::audit::{self, Entry, codes};
use super::authorize::{self, Invalid};
use super::delivery::{CodeChannel, CodeMessage, LinkMessage, LinkPurpose, Purpose};
use super::factors::codes::new_code;
use super::language;
use super::login::{self, Origin};
use super::{email_address, phone};
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, sha256_b64url};
use crate::rng::RngExt;
use crate::store::{AuditEvent, EnrollmentRow, IdentityRow, StoreError, UserRow};
use crate::tenant::{Client, Connection, ConnectionStrategy, Tenant, issuer_for_host};

/// How long a code may be used, seconds.
pub const CODE_TTL: i64 = 180;
/// How long a magic link may be used, seconds (Auth0's default OTP expiry:
/// the time to switch to a mailbox and back).
pub const LINK_TTL: i64 = 300;
/// Wrong answers a code survives: the third kills it.
pub const MAX_ATTEMPTS: i64 = 3;
/// Codes one address or number may be sent per window, and the window
/// (shared with the codes of the email and phone factors).
const PER_DESTINATION: (u32, i64) = (3, 300);
/// Codes one IP may ask for per window, and the window.
const PER_IP: (u32, i64) = (20, 3600);
/// The enrollment kind of a passwordless code.
const KIND: &str = "passwordless";

/// What `/passwordless/start` sends (`send`).
#[derive(Debug, Clone, Copy)]
pub enum Send<'a> {
    Code,
    /// Auth0's magic link, by email: `{issuer}passwordless/verify_redirect`
    /// with the authorization request it completes and the code.
    Link(&'a LinkTo<'a>),
}

/// Where a magic link leads.
#[derive(Debug, Clone, Copy)]
pub struct LinkTo<'a> {
    /// The host the link is opened on (the request's).
    pub host: &'a str,
    /// The authorization request it completes (Auth0's `authParams`, with
    /// the caller's `client_id`), validated as `/authorize` validates one.
    pub params: authorize::Params<'a>,
}

#[derive(Debug)]
pub enum PasswordlessError {
    /// No passwordless connection has this name.
    UnknownConnection,
    /// The connection is not enabled for the client.
    Disabled,
    /// Not an email address (why).
    BadEmail(String),
    /// Not a phone number (why).
    BadPhoneNumber(String),
    /// `send: link` for a connection that sends no links (SMS).
    LinkUnsupported,
    /// The authorization request of a link is not one `/authorize` would
    /// take: the error and its description, as `/authorize` words them.
    BadAuthParams(&'static str, String),
    /// Too many codes or answers: retry after that many seconds.
    Throttled(i64),
    /// The code is wrong, expired, spent, dead, or another client's; or its
    /// address has no user and the connection takes no sign-ups. What the
    /// caller is told ([`wrong_answer`]).
    WrongCode(&'static str),
    /// The user is blocked.
    Blocked,
    Store(StoreError),
    Internal(String),
}

impl From<StoreError> for PasswordlessError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// A start of a passwordless login.
pub struct StartRequest<'a> {
    /// The tenant as the tenant cache shares it (the send task keeps it
    /// without a copy).
    pub tenant: &'a Arc<Tenant>,
    pub from: Origin<'a>,
    pub connection: &'a str,
    /// The address or number as given.
    pub to: &'a str,
    pub send: Send<'a>,
    /// The caller's languages, most preferred first.
    pub languages: &'a [String],
}

/// What `start` answers (the same whether or not the address has a user).
#[derive(Debug, Clone)]
pub struct Started {
    /// Auth0's `_id`: this request's.
    pub id: String,
    pub strategy: ConnectionStrategy,
    /// The address or number in its normal form.
    pub to: String,
}

/// The connection `name` for `client`, if it may use it.
pub fn connection_for<'t>(
    tenant: &'t Tenant,
    client: &Client,
    name: &str,
) -> Result<&'t Connection, PasswordlessError> {
    let connection = tenant
        .passwordless_connection(name)
        .ok_or(PasswordlessError::UnknownConnection)?;
    if !connection.passwordless_for(&client.client_id) {
        return Err(PasswordlessError::Disabled);
    }
    Ok(connection)
}

/// The address or number in its normal form, and the key it is compared by.
fn normal(strategy: ConnectionStrategy, raw: &str) -> Result<(String, String), PasswordlessError> {
    if strategy == ConnectionStrategy::Sms {
        let number = phone::normalise(raw).map_err(PasswordlessError::BadPhoneNumber)?;
        return Ok((number.clone(), number));
    }
    let address =
        email_address::normalize(raw).map_err(|e| PasswordlessError::BadEmail(e.to_string()))?;
    let key = email_address::key(&address);
    Ok((address, key))
}

/// The digest a code of `to` (its key) is stored under.
fn slot(core: &Core, tenant: &Tenant, connection: &str, to: &str) -> String {
    let data = format!("{}\0{connection}\0{to}", tenant.id);
    core.sealer.mac("passwordless-slot", data.as_bytes())
}

/// The MAC a code is kept as.
fn code_mac(core: &Core, slot: &str, code: &str) -> String {
    core.sealer
        .mac("passwordless-code", format!("{slot}\0{code}").as_bytes())
}

/// Counts one send to `to` from `ip`; refuses past the limits.
fn throttle(core: &Core, tenant: &Tenant, to: &str, ip: &str) -> Result<(), PasswordlessError> {
    let now = core.clock.now();
    for (key, (limit, window)) in [
        (
            format!(
                "otp:to:{}:{}",
                tenant.id,
                sha256_b64url(to.to_lowercase().as_bytes())
            ),
            PER_DESTINATION,
        ),
        (format!("passwordless:ip:{}:{ip}", tenant.id), PER_IP),
    ] {
        let d = core.limiter.hit(&key, limit, window);
        if !d.allowed {
            return Err(PasswordlessError::Throttled(d.retry_after(now)));
        }
    }
    Ok(())
}

/// The user of the connection with this address or number.
async fn user_of(
    core: &Core,
    tenant: &Tenant,
    connection: &Connection,
    key: &str,
) -> Result<Option<UserRow>, StoreError> {
    Ok(core
        .store
        .identity(&tenant.id, &connection.name, key)
        .await?
        .map(|(_, user)| user))
}

/// `POST /passwordless/start` (and the hosted page's "email me a code"): a
/// new code for the address, replacing the last, sent when the address has
/// a user who is not blocked or the connection takes sign-ups.
pub async fn start(core: &Core, req: &StartRequest<'_>) -> Result<Started, PasswordlessError> {
    let tenant = req.tenant;
    let connection = connection_for(tenant, req.from.client, req.connection)?;
    let strategy = connection.strategy;
    let link = match &req.send {
        Send::Code => None,
        Send::Link(_) if strategy == ConnectionStrategy::Sms => {
            return Err(PasswordlessError::LinkUnsupported);
        }
        Send::Link(to) => Some(link_request(req, to)?),
    };
    let (to, key) = normal(strategy, req.to)?;
    throttle(core, tenant, &key, req.from.ip)?;
    let user = user_of(core, tenant, connection, &key).await?;
    let send = match &user {
        Some(u) => !u.blocked,
        None => !connection.disable_signup,
    };
    let code = new_code(core);
    let slot = slot(core, tenant, &connection.name, &key);
    let now = core.clock.now();
    let mut state = json!({ "code": code_mac(core, &slot, &code) });
    if let Some((_, query)) = &link {
        state["link"] = json!(sha256_b64url(query.as_bytes()));
    }
    let row = EnrollmentRow {
        user_id: String::new(),
        client_id: req.from.client.client_id.clone(),
        method_type: KIND.to_string(),
        method_id: connection.name.clone(),
        state,
        attempts: 0,
        created_at: now,
        expires_at: now + if link.is_some() { LINK_TTL } else { CODE_TTL },
    };
    store_code(core, tenant, &slot, &row).await?;
    let id = core.rng.alnum(24);
    if send {
        let (event, channel) = match strategy {
            ConnectionStrategy::Sms => (codes::CODE_SENT, CodeChannel::Sms),
            _ => (codes::CODE_LINK_SENT, CodeChannel::Email),
        };
        let actor = login::actor(
            tenant,
            &req.from,
            user.as_ref().map_or("", |u| u.user_id.as_str()),
        );
        let entry = Entry {
            user_id: user.as_ref().map(|u| u.user_id.as_str()),
            user_name: Some(&to),
            client_name: Some(&req.from.client.name),
            connection: Some(&connection.name),
            error: None,
        };
        // Logged with the delivery, after the answer: a request that sends
        // takes no longer to answer than one that does not.
        let event = audit::login_event(core, &actor, event, entry);
        let message = match link {
            None => Message::Code(channel, code),
            Some((host, query)) => {
                let mut url = url::form_urlencoded::Serializer::new(format!(
                    "{}passwordless/verify_redirect?{query}&",
                    issuer_for_host(host)
                ));
                url.append_pair("connection", &connection.name)
                    .append_pair("email", &to)
                    .append_pair("verification_code", &code);
                Message::Link(url.finish())
            }
        };
        deliver(core, tenant, req.languages, &to, message, event);
    }
    Ok(Started { id, strategy, to })
}

/// A link's authorization request validated as `/authorize` validates it,
/// and the host and query of the link that completes it.
fn link_request<'a>(
    req: &StartRequest<'a>,
    to: &LinkTo<'a>,
) -> Result<(&'a str, String), PasswordlessError> {
    let params = authorize::Params {
        // The link names its passwordless connection on its own.
        connection: None,
        pushed: false,
        ..to.params
    };
    if params.client_id != Some(req.from.client.client_id.as_str()) {
        return Err(PasswordlessError::BadAuthParams(
            "invalid_request",
            "authParams name another client".into(),
        ));
    }
    match authorize::validate(req.tenant, to.host, &params) {
        Ok(_) => Ok((to.host, link_query(&params))),
        Err(Invalid::Page(why)) => Err(PasswordlessError::BadAuthParams(
            "invalid_request",
            why.to_string(),
        )),
        Err(Invalid::Client {
            error, description, ..
        }) => Err(PasswordlessError::BadAuthParams(error, description)),
    }
}

/// The query of an authorization request in a link, its parameters in one
/// order: what a link's code is bound to (as a digest), and what
/// `verify_redirect` finds again in the link it is opened with.
pub fn link_query(p: &authorize::Params<'_>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("client_id", p.client_id),
        ("response_type", p.response_type),
        ("redirect_uri", p.redirect_uri),
        ("scope", p.scope),
        ("state", p.state),
        ("nonce", p.nonce),
        ("audience", p.audience),
        ("code_challenge", p.code_challenge),
        ("code_challenge_method", p.code_challenge_method),
        ("response_mode", p.response_mode),
        ("prompt", p.prompt),
        ("max_age", p.max_age),
        ("login_hint", p.login_hint),
        ("acr_values", p.acr_values),
        ("dpop_jkt", p.dpop_jkt),
        ("ui_locales", p.ui_locales),
    ] {
        if let Some(v) = value {
            query.append_pair(name, v);
        }
    }
    query.finish()
}

/// Stores `row` as the one code of its slot: the last one goes.
async fn store_code(
    core: &Core,
    tenant: &Tenant,
    slot: &str,
    row: &EnrollmentRow,
) -> Result<(), StoreError> {
    // Two starts racing: the second's discard or insert finds the first's
    // row; once more, and the last code stands.
    for _ in 0..2 {
        core.store.discard_enrollment(&tenant.id, slot).await?;
        match core.store.create_enrollment(&tenant.id, slot, row).await {
            Err(StoreError::Conflict(_)) => continue,
            done => return done,
        }
    }
    Ok(())
}

/// What goes to the user.
enum Message {
    Code(CodeChannel, String),
    /// The whole URL of a magic link.
    Link(String),
}

/// Records `event` (the code sent) and hands the message to the tenant's
/// provider, once the request is answered. A failure is logged (without the
/// code); the user asks for another.
fn deliver(
    core: &Core,
    tenant: &Arc<Tenant>,
    languages: &[String],
    to: &str,
    message: Message,
    event: AuditEvent,
) {
    let delivery = core.outside.delivery.clone();
    let store = core.store.clone();
    let tenant = Arc::clone(tenant);
    let languages = languages.to_vec();
    let to = to.to_string();
    tokio::spawn(async move {
        audit::keep(store.as_ref(), &tenant.id, &event).await;
        let sent = match message {
            Message::Code(channel, code) => {
                delivery
                    .send_code(&CodeMessage {
                        tenant: &tenant,
                        languages: &languages,
                        channel,
                        to: &to,
                        code: &code,
                        purpose: Purpose::Login,
                    })
                    .await
            }
            Message::Link(link) => {
                delivery
                    .send_link(&LinkMessage {
                        tenant: &tenant,
                        language: language::negotiate(&tenant, &languages),
                        to: &to,
                        link: &link,
                        purpose: LinkPurpose::PasswordlessLogin,
                        valid_minutes: LINK_TTL / 60,
                    })
                    .await
            }
        };
        if let Err(e) = sent {
            tracing::warn!(tenant = %tenant.name, error = %e, "a passwordless code was not sent");
        }
    });
}

/// An answer to a passwordless code.
pub struct VerifyRequest<'a> {
    pub tenant: &'a Tenant,
    pub from: Origin<'a>,
    pub connection: &'a str,
    /// The address or number the code was sent to.
    pub to: &'a str,
    pub code: &'a str,
    /// The authorization request the answer came with
    /// (`/passwordless/verify_redirect`'s): a link's code answers only with
    /// the request of its link.
    pub link: Option<&'a authorize::Params<'a>>,
}

/// The `passwordless/otp` grant's and the hosted page's check of a code:
/// the user it signs in (made now at their first login). A refusal is
/// logged (`f`); the success is the caller's to log, once the login is
/// complete.
pub async fn verify(core: &Core, req: &VerifyRequest<'_>) -> Result<UserRow, PasswordlessError> {
    judged(core, req, Use::Spend)
        .await?
        .ok_or_else(|| PasswordlessError::Internal("a spent code found no user".into()))
}

/// `POST /passwordless/verify`: whether the code is right, without
/// spending it (nor making the user of a first login). A wrong answer
/// counts against the code and is logged (`f`), as at [`verify`].
pub async fn check_code(core: &Core, req: &VerifyRequest<'_>) -> Result<(), PasswordlessError> {
    judged(core, req, Use::Check).await.map(|_| ())
}

/// What a right answer does to its code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Spends it: the user signs in (made now at a first login).
    Spend,
    /// Leaves it: no user is made (`None` for an address without one).
    Check,
}

/// An answer judged, throttled and its refusal logged.
async fn judged(
    core: &Core,
    req: &VerifyRequest<'_>,
    how: Use,
) -> Result<Option<UserRow>, PasswordlessError> {
    let tenant = req.tenant;
    let connection = connection_for(tenant, req.from.client, req.connection)?;
    let attempt =
        login::attempt(core, tenant, req.from.ip).map_err(PasswordlessError::Throttled)?;
    let outcome = check(core, req, connection, how).await;
    match &outcome {
        Ok(_) => attempt.passed(),
        Err(PasswordlessError::Store(_) | PasswordlessError::Internal(_)) => attempt.not_made(),
        Err(e) => {
            attempt.failed();
            let error = match e {
                PasswordlessError::Blocked => "user is blocked",
                _ => wrong_answer(connection.strategy),
            };
            let actor = login::actor(tenant, &req.from, "");
            let entry = Entry {
                user_name: Some(req.to),
                client_name: Some(&req.from.client.name),
                connection: Some(&connection.name),
                error: Some(error.to_string()),
                ..Entry::default()
            };
            audit::record_login(core, &actor, codes::FAILED_LOGIN, entry).await;
        }
    }
    outcome
}

/// What a wrong answer is told (Auth0's words).
pub fn wrong_answer(strategy: ConnectionStrategy) -> &'static str {
    match strategy {
        ConnectionStrategy::Sms => "Wrong phone number or verification code.",
        _ => "Wrong email or verification code.",
    }
}

async fn check(
    core: &Core,
    req: &VerifyRequest<'_>,
    connection: &Connection,
    how: Use,
) -> Result<Option<UserRow>, PasswordlessError> {
    let tenant = req.tenant;
    let wrong = || PasswordlessError::WrongCode(wrong_answer(connection.strategy));
    // A malformed address has no code: the same answer as a wrong one.
    let Ok((to, key)) = normal(connection.strategy, req.to) else {
        return Err(wrong());
    };
    let code = req.code.trim();
    if code.is_empty() || code.len() > 16 {
        return Err(wrong());
    }
    let slot = slot(core, tenant, &connection.name, &key);
    let now = core.clock.now();
    // The attempt is taken before the answer is judged: answers racing at
    // one code each take their own, so no more than MAX_ATTEMPTS are judged.
    let Some(row) = core
        .store
        .take_enrollment_attempt(&tenant.id, &slot, MAX_ATTEMPTS, now)
        .await?
        .filter(|r| r.method_type == KIND && r.method_id == connection.name)
    else {
        return Err(wrong());
    };
    let stored = row.state.get("code").and_then(Value::as_str).unwrap_or("");
    let right = constant_time_eq(stored.as_bytes(), code_mac(core, &slot, code).as_bytes());
    // A link's code, opened with another request (or typed at the grant),
    // is as good as a wrong one.
    let bound = match row.state.get("link").and_then(Value::as_str) {
        None => true,
        Some(digest) => req.link.is_some_and(|p| {
            constant_time_eq(
                digest.as_bytes(),
                sha256_b64url(link_query(p).as_bytes()).as_bytes(),
            )
        }),
    };
    if !right || !bound || row.client_id != req.from.client.client_id {
        // Dead with its last attempt: gone now rather than at its expiry.
        core.store
            .wrong_answer_taken(&tenant.id, &slot, &row, MAX_ATTEMPTS, now)
            .await?;
        return Err(wrong());
    }
    match how {
        // Spent only if it still is the code judged (not a newer one sent
        // since) and no racing answer spent it first.
        Use::Spend => {
            if !core
                .store
                .remove_enrollment_if(&tenant.id, &slot, &row.state, now)
                .await?
            {
                return Err(wrong());
            }
        }
        // A right check leaves the code as it was.
        Use::Check => {
            core.store
                .return_enrollment_attempt(&tenant.id, &slot, &row.state)
                .await?;
        }
    }
    let user = match user_of(core, tenant, connection, &key).await? {
        Some(u) => u,
        None if connection.disable_signup => {
            return Err(wrong());
        }
        None if how == Use::Check => return Ok(None),
        None => sign_up(core, req, connection, &to, &key).await?,
    };
    if user.blocked {
        return Err(PasswordlessError::Blocked);
    }
    Ok(Some(user))
}

/// A user made at their first passwordless login: `email|…` or `sms|…`,
/// with the address (verified by the code) or the number, and the identity
/// that finds them by it. Two first logins racing make one user.
async fn sign_up(
    core: &Core,
    req: &VerifyRequest<'_>,
    connection: &Connection,
    to: &str,
    key: &str,
) -> Result<UserRow, PasswordlessError> {
    let tenant = req.tenant;
    let now = core.clock.now();
    let strategy = connection.strategy;
    let id: String = core
        .rng
        .bytes::<12>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (email, profile) = match strategy {
        ConnectionStrategy::Sms => (
            String::new(),
            json!({ "phone_number": to, "phone_verified": true }),
        ),
        _ => (to.to_string(), json!({})),
    };
    let user = UserRow {
        user_id: format!("{}|{id}", strategy.as_str()),
        connection: connection.name.clone(),
        email_verified: !email.is_empty(),
        email,
        password_hash: None,
        profile,
        blocked: false,
        last_password_reset: None,
        created_at: now,
        updated_at: now,
        signed_up: true,
        seeded_password: None,
    };
    let identity = IdentityRow {
        user_id: user.user_id.clone(),
        connection: connection.name.clone(),
        provider: strategy.as_str().to_string(),
        provider_user_id: key.to_string(),
        is_social: false,
        profile_data: json!({}),
        created_at: now,
        updated_at: now,
    };
    match core
        .store
        .create_upstream_user(&tenant.id, &user, &identity)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return user_of(core, tenant, connection, key)
                .await?
                .ok_or_else(|| PasswordlessError::Internal("a user made at once vanished".into()));
        }
        Err(e) => return Err(e.into()),
    }
    let actor = login::actor(tenant, &req.from, &user.user_id);
    let entry = Entry {
        user_id: Some(&user.user_id),
        user_name: Some(to),
        client_name: Some(&req.from.client.name),
        connection: Some(&connection.name),
        error: None,
    };
    audit::record_login(core, &actor, codes::SUCCESS_SIGNUP, entry).await;
    Ok(user)
}
