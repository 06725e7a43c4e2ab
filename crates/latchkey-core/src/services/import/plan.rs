//! One user of an import judged on their own: what they become here (a
//! [`Planned`] user with their methods), or why they are skipped, in words
//! that name the field and the rule. The rules are sign-up's (the email's
//! normal form, the connection's username rule, phone numbers in E.164),
//! a password hash latchkey can verify (`crypto::password::imported`), and
//! secrets sealed at rest as enrolled ones are.

use serde_json::{Map, Value, json};

use super::auth0::{CustomPasswordHash, MfaFactor, User};
use super::methods;
use crate::context::Core;
use crate::crypto::{otp, password};
use crate::rng::RngExt;
use crate::services::enrollment::{MAX_METHODS, new_method_id};
use crate::services::factors::totp;
use crate::services::{email_address, phone, username};
use crate::store::{MethodRow, StoreError, UserRow};
use crate::tenant::{Connection, FactorType, Tenant};

/// What every user of one import is held to.
pub(crate) struct Rules<'a> {
    pub tenant: &'a Tenant,
    pub connection: &'a Connection,
    pub passwordless_first: bool,
    /// The relying party IDs the tenant's passkeys can be for.
    pub rp_ids: Vec<String>,
}

/// A user ready to be written, with what the report says of them.
#[derive(Debug)]
pub(crate) struct Planned {
    pub user: UserRow,
    pub methods: Vec<MethodRow>,
    /// The password's format; none when imported without one.
    pub password: Option<String>,
    pub notes: Vec<String>,
}

impl Planned {
    pub(crate) fn method_types(&self) -> Vec<String> {
        self.methods
            .iter()
            .map(|m| m.method_type.as_str().to_string())
            .collect()
    }
}

/// The user IDs Auth0 gives users of database connections.
const PREFIX: &str = "auth0|";
/// The longest user ID taken, with its prefix.
const MAX_USER_ID: usize = 255;
/// TOTP secrets shorter than this many bytes (80 bits) are refused.
const MIN_TOTP_SECRET: usize = 10;
const MAX_TOTP_SECRET: usize = 64;

/// Judges `user`, with their methods of the authentication-methods file
/// (taken out of `listed`): the user to write, or why not (the outer
/// error: the store failed, and the import stops).
pub(crate) async fn plan(
    state: &Core,
    rules: &Rules<'_>,
    user: &User,
    listed: &mut methods::ByUser,
) -> Result<Result<Planned, String>, StoreError> {
    let tenant = rules.tenant;
    let connection = &rules.connection.name;
    let user_id = match user_id(state, user.user_id.as_deref()) {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };
    let keys = listed.remove(&user_id).unwrap_or_default();
    let Some(raw_email) = user.email.as_deref() else {
        return Ok(Err("the user has no email".into()));
    };
    let email = match email_address::normalize(raw_email) {
        Ok(e) => e,
        Err(e) => return Ok(Err(format!("email {e}"))),
    };
    // Who exists already is looked at first, so that a file imported again
    // says so of each user; the store looks again in the transaction that
    // writes.
    if state
        .store
        .user_by_id(&tenant.id, &user_id)
        .await?
        .is_some()
    {
        return Ok(Err("a user with this user_id exists".into()));
    }
    if let Some(other) = state
        .store
        .user_by_email(&tenant.id, connection, &email)
        .await?
    {
        return Ok(Err(format!(
            "a user of the connection has this email ({})",
            other.user_id
        )));
    }
    Ok(judge(state, rules, user, user_id, email, &keys))
}

/// What a user new to the tenant becomes.
fn judge(
    state: &Core,
    rules: &Rules<'_>,
    user: &User,
    user_id: String,
    email: String,
    keys: &[methods::Method],
) -> Result<Planned, String> {
    let tenant = rules.tenant;
    let connection = &rules.connection.name;
    let username =
        username::for_signup(rules.connection.requires_username, user.username.as_deref())
            .map_err(|e| format!("username: {e}"))?;
    let mut notes = Vec::new();
    let (password_hash, password) = match password_of(user) {
        Ok((hash, format)) => (Some(hash), Some(format)),
        Err(reason) if rules.passwordless_first => {
            notes.push(format!("{reason}: imported without a password"));
            (None, None)
        }
        Err(reason) => {
            return Err(format!(
                "{reason} (passwordless-first imports such users without a password)"
            ));
        }
    };
    let mut methods = factors(
        state,
        tenant,
        &user_id,
        user.mfa_factors.as_deref().unwrap_or_default(),
    )?;
    let (key_rows, key_notes) = methods::convert(state, &rules.rp_ids, &user_id, keys)?;
    methods.extend(key_rows);
    notes.extend(key_notes);
    let count = methods.len() + usize::from(password_hash.is_some());
    if count > MAX_METHODS {
        return Err(format!(
            "the user has {count} authentication methods, more than the {MAX_METHODS} a user may have"
        ));
    }
    let now = state.clock.now();
    Ok(Planned {
        user: UserRow {
            user_id,
            connection: connection.clone(),
            email,
            email_verified: user.email_verified,
            password_hash,
            profile: profile(user, username),
            blocked: user.blocked,
            last_password_reset: None,
            created_at: now,
            updated_at: now,
            signed_up: false,
            seeded_password: None,
        },
        methods,
        password,
        notes,
    })
}

/// The user's ID here: Auth0's, with the prefix Auth0 gives database users
/// (`auth0|…`, as its exports write it; an import file's bare ID gets it),
/// or a new one.
fn user_id(state: &Core, given: Option<&str>) -> Result<String, String> {
    let Some(given) = given else {
        return Ok(format!("{PREFIX}{}", state.rng.alnum(24).to_lowercase()));
    };
    let id = match given.split_once('|') {
        None => format!("{PREFIX}{given}"),
        Some(("auth0", _)) => given.to_string(),
        Some((provider, _)) => {
            return Err(format!(
                "user_id {given} is a {provider} user's, not a database connection's (auth0|…)"
            ));
        }
    };
    let rest = &id[PREFIX.len()..];
    if rest.is_empty()
        || id.len() > MAX_USER_ID
        || !rest.chars().all(|c| c.is_ascii_graphic() && c != '|')
    {
        return Err(format!(
            "user_id {given:?} must be 1 to {} printable ASCII characters without spaces or |",
            MAX_USER_ID - PREFIX.len()
        ));
    }
    Ok(id)
}

/// The user's password hash as it is kept, and its format's name; or why
/// it cannot be kept.
fn password_of(user: &User) -> Result<(String, String), String> {
    let hash = match (&user.password_hash, &user.custom_password_hash) {
        (Some(_), Some(_)) => {
            return Err("the user has both password_hash and custom_password_hash".into());
        }
        (None, None) => return Err("the user has no password hash".into()),
        (Some(h), None) => h.clone(),
        (None, Some(custom)) => custom_hash(custom)?,
    };
    let format = password::imported(&hash)?;
    Ok((hash, format.name()))
}

/// The hash of `custom_password_hash`, for the algorithms latchkey verifies:
/// `bcrypt` (the hash itself), `argon2` and `pbkdf2` (PHC strings, as Auth0
/// takes them). Any other algorithm is refused by its name.
fn custom_hash(custom: &CustomPasswordHash) -> Result<String, String> {
    let algorithm = custom.algorithm.as_str();
    let family = match algorithm {
        "bcrypt" => "$2",
        "argon2" => "$argon2",
        "pbkdf2" => "$pbkdf2-",
        other => return Err(format!("{other} is not supported")),
    };
    if custom.hash.encoding.as_deref().is_some_and(|e| e != "utf8") {
        return Err(format!(
            "custom_password_hash: {algorithm} takes its hash as a utf8 string, not {}",
            custom.hash.encoding.as_deref().unwrap_or_default()
        ));
    }
    let value = &custom.hash.value;
    if !value.starts_with(family) {
        return Err(format!(
            "custom_password_hash: the hash is not a {algorithm} hash"
        ));
    }
    if let Some(digest) = &custom.hash.digest
        && algorithm == "pbkdf2"
        && !value.starts_with(&format!("$pbkdf2-{digest}$"))
    {
        return Err(format!(
            "custom_password_hash: the digest {digest} is not the hash's"
        ));
    }
    Ok(value.clone())
}

/// The user's `mfa_factors` as methods, TOTP secrets sealed.
fn factors(
    state: &Core,
    tenant: &Tenant,
    user_id: &str,
    given: &[MfaFactor],
) -> Result<Vec<MethodRow>, String> {
    let now = state.clock.now();
    let mut methods = Vec::with_capacity(given.len());
    for (i, f) in given.iter().enumerate() {
        let at = format!("mfa_factors[{i}]");
        let (method_type, data) = match (&f.totp, &f.phone, &f.email) {
            (Some(t), None, None) => {
                let secret = otp::base32_decode(&t.secret)
                    .ok_or_else(|| format!("{at}.totp.secret is not base32"))?;
                if !(MIN_TOTP_SECRET..=MAX_TOTP_SECRET).contains(&secret.len()) {
                    return Err(format!(
                        "{at}.totp.secret must be {} to {} bits",
                        MIN_TOTP_SECRET * 8,
                        MAX_TOTP_SECRET * 8
                    ));
                }
                let id = new_method_id(state, FactorType::Totp);
                let sealed =
                    state
                        .sealer
                        .seal(&*state.rng, &totp::context(&tenant.id, &id), &secret);
                methods.push(row(
                    id,
                    user_id,
                    FactorType::Totp,
                    json!({ "secret": sealed }),
                    now,
                ));
                continue;
            }
            (None, Some(p), None) => {
                let number =
                    phone::normalise(&p.value).map_err(|e| format!("{at}.phone.value {e}"))?;
                (
                    FactorType::Phone,
                    json!({ "phone_number": number, "preferred_authentication_method": "sms" }),
                )
            }
            (None, None, Some(e)) => {
                let email = email_address::normalize(&e.value)
                    .map_err(|e| format!("{at}.email.value {e}"))?;
                (FactorType::Email, json!({ "email": email }))
            }
            _ => {
                return Err(format!(
                    "{at} must hold exactly one of totp, phone and email"
                ));
            }
        };
        methods.push(row(
            new_method_id(state, method_type),
            user_id,
            method_type,
            data,
            now,
        ));
    }
    Ok(methods)
}

fn row(id: String, user_id: &str, method_type: FactorType, data: Value, now: i64) -> MethodRow {
    MethodRow {
        id,
        user_id: user_id.to_string(),
        method_type,
        name: None,
        data,
        created_at: now,
        last_auth_at: None,
        last_otp_step: None,
        credential_id: None,
    }
}

/// The profile kept: the names, the picture, the username, the metadata.
fn profile(user: &User, username: Option<&str>) -> Value {
    let mut p = Map::new();
    for (k, v) in [
        ("name", &user.name),
        ("given_name", &user.given_name),
        ("family_name", &user.family_name),
        ("nickname", &user.nickname),
        ("picture", &user.picture),
    ] {
        if let Some(v) = v {
            p.insert(k.into(), json!(v));
        }
    }
    if let Some(u) = username {
        p.insert("username".into(), json!(u));
    }
    if let Some(m) = &user.user_metadata {
        p.insert("user_metadata".into(), Value::Object(m.clone()));
    }
    if let Some(m) = &user.app_metadata {
        p.insert("app_metadata".into(), Value::Object(m.clone()));
    }
    Value::Object(p)
}
