//! Enrolling authentication methods: a stored, expiring enrollment per
//! attempt, the factor's module (`services::factors`) chosen by an explicit
//! `match`, and one place that commits ([`MethodStore::complete_enrollment`]).
//!
//! An enrollment is found by the digest of its `auth_session`, bound to the
//! user, the client and the method ID it was started for, lives
//! [`TTL`] seconds, is consumed by its first successful verification, and
//! dies after [`MAX_ATTEMPTS`] wrong answers. Nothing counts as a login
//! method until it is confirmed.
//!
//! [`MethodStore::complete_enrollment`]: crate::store::MethodStore::complete_enrollment

use serde_json::Value;

use super::factors::{email, passkey, password, phone, push, recovery_code, totp, webauthn};
use super::methods::{self, Method};
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::rng::RngExt;
use crate::store::{Completion, EnrollmentRow, Finish, StoreError};
use crate::tenant::{FactorType, Tenant};

/// How long an enrollment waits for its verification.
pub const TTL: i64 = 300;
/// Wrong verifications an enrollment survives.
pub(crate) const MAX_ATTEMPTS: i64 = 5;
/// The most methods a user may have, the password counted: what one page of
/// `GET /me/v1/authentication-methods` shows (its `maxItems`), so the list
/// always shows them all. Auth0 caps passkeys at 20; here it is every method.
pub(crate) const MAX_METHODS: usize = 20;

/// The refusal of a method past [`MAX_METHODS`].
fn too_many() -> EnrollError {
    EnrollError::TooManyMethods(MAX_METHODS)
}

/// Refuses to start an enrollment that would add a method past
/// [`MAX_METHODS`] (a new password or recovery code that replaces the one
/// the user has adds nothing). The store checks again when it completes.
async fn check_room(state: &Core, who: &Who<'_>, kind: FactorType) -> Result<(), EnrollError> {
    let methods = match methods::list(state, &who.tenant.id, who.user_id, None).await {
        Ok(m) => m,
        // A user not there yet (or no more) has nothing to count.
        Err(methods::MethodError::NotFound) => return Ok(()),
        Err(methods::MethodError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(EnrollError::Internal(e.to_string())),
    };
    let replaces = matches!(kind, FactorType::Password | FactorType::RecoveryCode)
        && methods.iter().any(|m| m.kind == kind);
    if methods.len() >= MAX_METHODS && !replaces {
        return Err(too_many());
    }
    Ok(())
}

/// Who is enrolling.
pub struct Who<'a> {
    pub tenant: &'a Tenant,
    /// The host the request arrived on (the WebAuthn relying party's).
    pub host: &'a str,
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub user_agent: &'a str,
    /// The caller's languages, most preferred first (for messages).
    pub languages: &'a [String],
}

/// What the user asked to enroll.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    Password {
        connection: Option<String>,
        identity_user_id: Option<String>,
    },
    Totp,
    RecoveryCode,
    Passkey {
        connection: Option<String>,
        identity_user_id: Option<String>,
        exclude_existing: bool,
    },
    Email {
        email: String,
    },
    Phone {
        phone_number: String,
        preferred: Option<String>,
    },
    PushNotification,
    /// A WebAuthn key as a second factor (login pages only).
    WebauthnKey {
        platform: bool,
    },
}

impl Start {
    pub fn kind(&self) -> FactorType {
        match self {
            Start::Password { .. } => FactorType::Password,
            Start::Totp => FactorType::Totp,
            Start::RecoveryCode => FactorType::RecoveryCode,
            Start::Passkey { .. } => FactorType::Passkey,
            Start::Email { .. } => FactorType::Email,
            Start::Phone { .. } => FactorType::Phone,
            Start::PushNotification => FactorType::PushNotification,
            Start::WebauthnKey { platform: true } => FactorType::WebauthnPlatform,
            Start::WebauthnKey { platform: false } => FactorType::WebauthnRoaming,
        }
    }
}

/// What the user is shown to complete the enrollment.
#[derive(Debug, Clone, PartialEq)]
pub enum Challenge {
    Password {
        policy: Value,
    },
    Totp {
        barcode_uri: String,
        manual_input_code: String,
    },
    RecoveryCode {
        recovery_code: String,
    },
    /// WebAuthn `PublicKeyCredentialCreationOptions`, as JSON (passkeys
    /// and WebAuthn keys).
    Passkey {
        options: Value,
    },
    /// A code was sent (email, SMS, voice): nothing to show but the session.
    CodeSent,
    /// A push device enrolls with the `otpauth://` URI (its ticket and the
    /// device API's URL in it).
    Push {
        barcode_uri: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub method_id: String,
    pub auth_session: String,
    pub challenge: Challenge,
}

/// The proof a verification carries, by factor type.
#[derive(Debug, Clone, PartialEq)]
pub enum Proof {
    Password {
        new_password: String,
    },
    Otp {
        code: String,
    },
    /// The `PublicKeyCredential.toJSON()` of a registration (passkeys and
    /// WebAuthn keys).
    Passkey {
        response: Value,
    },
    /// Recovery codes and push: the `auth_session` alone.
    Session,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// 400 with a detail.
    #[error("{0}")]
    Invalid(String),
    /// 400: the user has the most methods allowed (this many); the pages
    /// say so in their language.
    #[error(
        "The user already has the most authentication methods allowed ({0}); remove one before adding another."
    )]
    TooManyMethods(usize),
    /// 400: a wrong answer to the verification (`detail` says how), with
    /// the attempts the enrollment has left (none: it must start again).
    #[error("{detail}{}", if *attempts_left == 0 { " Too many wrong attempts: start the enrollment again." } else { "" })]
    Wrong { detail: String, attempts_left: i64 },
    /// 400 pointing at a body field.
    #[error("{pointer}: {detail}")]
    Field {
        pointer: &'static str,
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The code could not be sent (the provider failed or is not there).
    #[error("The code could not be sent: {0}")]
    Delivery(String),
    /// Too many codes sent: retry after this many seconds.
    #[error("too many codes sent")]
    Throttled(i64),
    #[error("{0}")]
    Internal(String),
}

/// A factor's answer to a verification.
pub(crate) enum Outcome {
    Done(Box<Completion>),
    /// A wrong answer: counts against the enrollment's attempts.
    Wrong(String),
    /// A refused answer that is not a guess (a password breaking the
    /// policy): reported on `pointer`, not counted.
    Refused {
        pointer: &'static str,
        detail: String,
    },
}

/// The user enrolling, checked against the `connection` and
/// `identity_user_id` the request names (each optional).
pub(crate) async fn identity_user(
    state: &Core,
    who: &Who<'_>,
    connection: Option<String>,
    identity_user_id: Option<String>,
) -> Result<crate::store::UserRow, EnrollError> {
    let user = state
        .store
        .user_by_id(&who.tenant.id, who.user_id)
        .await?
        .ok_or_else(|| EnrollError::Invalid("The user no longer exists.".into()))?;
    if let Some(c) = &connection
        && *c != user.connection
    {
        return Err(EnrollError::Field {
            pointer: "/connection",
            detail: format!("The user has no identity in the connection {c}."),
        });
    }
    if let Some(id) = &identity_user_id
        && *id != user.user_id
    {
        return Err(EnrollError::Field {
            pointer: "/identity_user_id",
            detail: "No such identity for this user.".into(),
        });
    }
    Ok(user)
}

/// The sealing context of a TOTP method's secret.
pub fn totp_context(tenant_id: &str, method_id: &str) -> String {
    totp::context(tenant_id, method_id)
}

/// The stored form of a recovery code as a user may type it.
pub fn recovery_code_digest(code: &str) -> String {
    recovery_code::code_digest(code)
}

/// A fresh recovery code and its stored form.
pub fn new_recovery_code(state: &Core) -> (String, String) {
    let code = recovery_code::new_code(state);
    let digest = recovery_code::code_digest(&code);
    (code, digest)
}

/// A new method ID of the `<type>|dev_<16 chars>` form.
pub fn new_method_id(state: &Core, kind: FactorType) -> String {
    format!("{}|dev_{}", kind.as_str(), state.rng.alnum(16))
}

pub async fn start(state: &Core, who: &Who<'_>, req: Start) -> Result<Started, EnrollError> {
    let auth_session = state.rng.token(32);
    start_with_session(state, who, req, auth_session).await
}

/// [`start`] under an `auth_session` the caller chose (one it can derive
/// again from a secret it holds, as the MFA API's association does from its
/// `mfa_token`). It must carry at least 256 bits of the secret's entropy.
pub(crate) async fn start_with_session(
    state: &Core,
    who: &Who<'_>,
    req: Start,
    auth_session: String,
) -> Result<Started, EnrollError> {
    let kind = req.kind();
    if !who.tenant.config.factors.contains(&kind) {
        return Err(EnrollError::Invalid(format!(
            "The {kind} factor is not enabled on this tenant."
        )));
    }
    check_room(state, who, kind).await?;
    let mut ticket_digest = None;
    let (method_id, stored, challenge) = match req {
        Start::Password {
            connection,
            identity_user_id,
        } => password::start(state, who, connection, identity_user_id).await?,
        Start::Totp => totp::start(state, who).await?,
        Start::RecoveryCode => recovery_code::start(state, who),
        Start::Passkey {
            connection,
            identity_user_id,
            exclude_existing,
        } => passkey::start(state, who, connection, identity_user_id, exclude_existing).await?,
        Start::Email { email } => {
            let (id, stored) = email::start(state, who, &email, &auth_session).await?;
            (id, stored, Challenge::CodeSent)
        }
        Start::Phone {
            phone_number,
            preferred,
        } => {
            let (id, stored) = phone::start(
                state,
                who,
                &phone_number,
                preferred.as_deref(),
                &auth_session,
            )
            .await?;
            (id, stored, Challenge::CodeSent)
        }
        Start::WebauthnKey { .. } => webauthn::start(state, who, kind).await?,
        Start::PushNotification => {
            let (id, stored, challenge, ticket) = push::start(state, who).await?;
            ticket_digest = Some(ticket);
            (id, stored, challenge)
        }
    };
    let now = state.clock.now();
    let row = EnrollmentRow {
        user_id: who.user_id.to_string(),
        client_id: who.client_id.to_string(),
        method_type: kind.as_str().to_string(),
        method_id: method_id.clone(),
        state: stored,
        attempts: 0,
        created_at: now,
        expires_at: now + TTL,
    };
    state
        .store
        .create_ticketed_enrollment(
            &who.tenant.id,
            &secret_digest(&auth_session),
            ticket_digest.as_deref(),
            &row,
        )
        .await?;
    Ok(Started {
        method_id,
        auth_session,
        challenge,
    })
}

const NO_SESSION: &str = "The auth_session is invalid, has expired or was already used.";

/// What a live enrollment of `who`'s for `method_id` showed when it started,
/// shown again (a page re-rendered after a wrong first code). Only an
/// authenticator app's enrollment shows anything; `None` for the others, and
/// for an enrollment that is gone or not `who`'s.
pub async fn shown_again(
    state: &Core,
    who: &Who<'_>,
    method_id: &str,
    auth_session: &str,
) -> Result<Option<Challenge>, EnrollError> {
    let digest = secret_digest(auth_session);
    let Some(enrollment) = state
        .store
        .enrollment(&who.tenant.id, &digest, state.clock.now())
        .await?
    else {
        return Ok(None);
    };
    if enrollment.user_id != who.user_id
        || enrollment.client_id != who.client_id
        || enrollment.method_id != method_id
        || enrollment.method_type != FactorType::Totp.as_str()
    {
        return Ok(None);
    }
    totp::shown_again(state, who, &enrollment).await.map(Some)
}

pub async fn verify(
    state: &Core,
    who: &Who<'_>,
    method_id: &str,
    auth_session: &str,
    proof: Proof,
) -> Result<Method, EnrollError> {
    let digest = secret_digest(auth_session);
    let now = state.clock.now();
    let Some(enrollment) = state.store.enrollment(&who.tenant.id, &digest, now).await? else {
        return Err(EnrollError::Invalid(NO_SESSION.into()));
    };
    // Bound to its user, client and method: anything else is as good as unknown.
    if enrollment.user_id != who.user_id
        || enrollment.client_id != who.client_id
        || enrollment.method_id != method_id
    {
        return Err(EnrollError::Invalid(NO_SESSION.into()));
    }
    let kind = FactorType::try_from(enrollment.method_type.clone())
        .map_err(|e| EnrollError::Internal(format!("stored enrollment: {e}")))?;
    let misfit =
        || EnrollError::Invalid("The verification does not fit this method's type.".into());
    // A code may be guessed: its attempt is taken before it is judged, so
    // answers racing at one enrollment cannot share a count.
    let taken = if matches!(proof, Proof::Otp { .. })
        && matches!(
            kind,
            FactorType::Totp | FactorType::Email | FactorType::Phone
        ) {
        let Some(taken) = state
            .store
            .take_enrollment_attempt(&who.tenant.id, &digest, MAX_ATTEMPTS, now)
            .await?
        else {
            return Err(EnrollError::Invalid(NO_SESSION.into()));
        };
        Some(taken)
    } else {
        None
    };
    let outcome = match kind {
        FactorType::Password => {
            let Proof::Password { new_password } = proof else {
                return Err(misfit());
            };
            password::finish(state, who, &new_password).await?
        }
        FactorType::Totp => {
            let Proof::Otp { code } = proof else {
                return Err(misfit());
            };
            totp::finish(state, who, &enrollment, &code)?
        }
        FactorType::Email => {
            let Proof::Otp { code } = proof else {
                return Err(misfit());
            };
            email::finish(state, who, &enrollment, auth_session, &code)?
        }
        FactorType::Phone => {
            let Proof::Otp { code } = proof else {
                return Err(misfit());
            };
            phone::finish(state, who, &enrollment, auth_session, &code)?
        }
        FactorType::RecoveryCode => {
            let Proof::Session = proof else {
                return Err(misfit());
            };
            recovery_code::finish(state, who, &enrollment)?
        }
        FactorType::Passkey => {
            let Proof::Passkey { response } = proof else {
                return Err(misfit());
            };
            passkey::finish(state, who, &enrollment, &response)?
        }
        k @ (FactorType::WebauthnRoaming | FactorType::WebauthnPlatform) => {
            let Proof::Passkey { response } = proof else {
                return Err(misfit());
            };
            webauthn::finish(state, who, k, &enrollment, &response)?
        }
        FactorType::PushNotification => {
            let Proof::Session = proof else {
                return Err(misfit());
            };
            push::finish(state, who, &enrollment)?
        }
    };
    match outcome {
        Outcome::Done(completion) => {
            let completion = *completion;
            match state
                .store
                .finish_enrollment(
                    &who.tenant.id,
                    &digest,
                    &completion,
                    state.clock.now(),
                    Some(MAX_METHODS as i64),
                )
                .await
            {
                Ok(Finish::Done) => {}
                Ok(Finish::Gone) => return Err(EnrollError::Invalid(NO_SESSION.into())),
                Ok(Finish::Full) => return Err(too_many()),
                Err(StoreError::Conflict(_)) => {
                    return Err(EnrollError::Invalid(
                        "This passkey is already registered.".into(),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            let id = match &completion {
                Completion::AddMethod { row, .. } | Completion::SignUp { row, .. } => {
                    row.id.clone()
                }
                Completion::SetPassword { user_id, .. } => methods::password_method_id(user_id),
                Completion::Consume => {
                    return Err(EnrollError::Internal(
                        "an enrollment that adds nothing".into(),
                    ));
                }
            };
            methods::get(state, &who.tenant.id, who.user_id, &id)
                .await
                .map_err(|e| EnrollError::Internal(format!("reading the new method: {e}")))
        }
        Outcome::Wrong(detail) => {
            let left = match &taken {
                Some(taken) => {
                    state
                        .store
                        .wrong_answer_taken(&who.tenant.id, &digest, taken, MAX_ATTEMPTS, now)
                        .await?
                }
                None => {
                    state
                        .store
                        .enrollment_failed(&who.tenant.id, &digest, MAX_ATTEMPTS)
                        .await?
                }
            };
            Err(EnrollError::Wrong {
                detail,
                attempts_left: left,
            })
        }
        Outcome::Refused { pointer, detail } => Err(EnrollError::Field { pointer, detail }),
    }
}
