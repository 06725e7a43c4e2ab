//! The Management API's users: created in a database connection under its
//! password policy, read with their identities, searched, changed (profile,
//! flags, email, password, metadata merged as Auth0 merges it) and deleted
//! with everything they hold.

use serde_json::{Map, Value};

use super::{Caller, ManagementError, record};
use crate::context::Core;
use crate::crypto::hashing::HashingError;
use crate::rng::RngExt;
use crate::services::accounts::{Mailing, mail_link};
use crate::services::email_address;
use crate::services::password_policy::{self, Candidate, Profile};
use crate::store::{IdentityRow, StoreError, TicketKind, UserChange, UserRow, UserWrite};
use crate::tenant::{Connection, Tenant};

/// The profile fields an operator may set, as Auth0 names them.
pub const PROFILE_FIELDS: [&str; 5] = ["given_name", "family_name", "name", "nickname", "picture"];
/// The longest profile value but `picture` (Auth0's limit), characters.
const MAX_FIELD_CHARS: usize = 300;
const MAX_PICTURE_CHARS: usize = 2000;
/// The longest user ID given at creation (after `auth0|`).
const MAX_ID_CHARS: usize = 128;
/// How often a change is tried again when the user changed under it.
const UPDATE_TRIES: usize = 5;

/// A user with their identities, as the API shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub user: UserRow,
    /// The accounts the user logs in with beside their own (upstream and
    /// passwordless users' accounts), oldest first.
    pub identities: Vec<IdentityRow>,
}

/// `POST /users`, its properties of the right JSON types.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub connection: String,
    pub email: Option<String>,
    pub password: Option<String>,
    pub username: Option<String>,
    /// Without its `auth0|` (which it may carry).
    pub user_id: Option<String>,
    pub email_verified: Option<bool>,
    pub verify_email: Option<bool>,
    pub blocked: Option<bool>,
    /// Values of [`PROFILE_FIELDS`].
    pub profile: Map<String, Value>,
    pub user_metadata: Option<Map<String, Value>>,
    pub app_metadata: Option<Map<String, Value>>,
}

/// `PATCH /users/{id}`, its properties of the right JSON types; a `None`
/// inside an `Option` is an explicit `null`.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub blocked: Option<bool>,
    pub email_verified: Option<bool>,
    pub email: Option<String>,
    pub verify_email: Option<bool>,
    pub password: Option<String>,
    pub username: Option<Option<String>>,
    /// [`PROFILE_FIELDS`] to set (`Some`) or remove (`None`).
    pub profile: Vec<(String, Option<String>)>,
    pub user_metadata: Option<Map<String, Value>>,
    pub app_metadata: Option<Map<String, Value>>,
    /// The connection the change is meant for: must be the user's.
    pub connection: Option<String>,
}

impl UserPatch {
    /// Whether it changes nothing but metadata (what
    /// `update:users_app_metadata` allows).
    fn metadata_only(&self) -> bool {
        self.blocked.is_none()
            && self.email_verified.is_none()
            && self.email.is_none()
            && self.verify_email.is_none()
            && self.password.is_none()
            && self.username.is_none()
            && self.profile.is_empty()
            && self.connection.is_none()
    }
}

fn invalid(message: impl Into<String>) -> ManagementError {
    ManagementError::InvalidBody(message.into())
}

fn missing(property: &str) -> ManagementError {
    invalid(format!(
        "Payload validation error: 'Missing required property: {property}'."
    ))
}

fn store_error(e: StoreError) -> ManagementError {
    match e {
        StoreError::Conflict(_) => ManagementError::UserExists,
        e => ManagementError::Store(e),
    }
}

/// `GET /users/{id}`.
pub async fn get(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
) -> Result<UserRecord, ManagementError> {
    let user = state
        .store
        .user_by_id(&caller.tenant.id, id)
        .await?
        .ok_or(ManagementError::UserNotFound)?;
    let identities = state
        .store
        .identities_of(&caller.tenant.id, std::slice::from_ref(&user.user_id))
        .await?;
    Ok(UserRecord { user, identities })
}

/// Users with their identities, in the order given.
pub(super) async fn with_identities(
    state: &Core,
    tenant: &Tenant,
    users: Vec<UserRow>,
) -> Result<Vec<UserRecord>, ManagementError> {
    let ids: Vec<String> = users.iter().map(|u| u.user_id.clone()).collect();
    let mut identities = state.store.identities_of(&tenant.id, &ids).await?;
    Ok(users
        .into_iter()
        .map(|user| {
            let (mine, rest): (Vec<IdentityRow>, Vec<IdentityRow>) = identities
                .drain(..)
                .partition(|i| i.user_id == user.user_id);
            identities = rest;
            UserRecord {
                user,
                identities: mine,
            }
        })
        .collect())
}

/// The most users a search pages through (Auth0's limit).
pub const MAX_RESULTS: i64 = 1000;
/// The most users a page holds.
pub const MAX_PER_PAGE: i64 = 100;
/// The most users `GET /users-by-email` answers.
const MAX_BY_EMAIL: i64 = 100;

/// `GET /users`, its parameters of the right types.
#[derive(Debug, Clone, Default)]
pub struct ListRequest<'a> {
    pub q: Option<&'a str>,
    pub sort: Option<&'a str>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
    pub include_totals: bool,
}

/// A page of users.
#[derive(Debug, Clone, PartialEq)]
pub struct UserList {
    pub users: Vec<UserRecord>,
    /// The index of the first user of the page among all found.
    pub start: i64,
    pub limit: i64,
    /// How many users the search finds in all, when asked for.
    pub total: Option<i64>,
}

fn bad_query(message: impl Into<String>) -> ManagementError {
    ManagementError::InvalidQuery(message.into())
}

/// `GET /users`: a page of the users a query finds.
pub async fn list(
    state: &Core,
    caller: &Caller<'_>,
    req: &ListRequest<'_>,
) -> Result<UserList, ManagementError> {
    let per_page = req.per_page.unwrap_or(50);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(bad_query(format!(
            "Query validation error: 'per_page must be between 1 and {MAX_PER_PAGE}' on property per_page (Number of results per page)."
        )));
    }
    let page = req.page.unwrap_or(0);
    if page < 0 {
        return Err(bad_query(
            "Query validation error: 'page must be 0 or more' on property page (Page index of the results to return. First page is 0).",
        ));
    }
    let start = page.saturating_mul(per_page);
    if start.saturating_add(per_page) > MAX_RESULTS {
        return Err(bad_query(format!(
            "You can only page through the first {MAX_RESULTS} records: narrow the search (q) instead."
        )));
    }
    let filter =
        match req.q.filter(|q| !q.trim().is_empty()) {
            Some(q) => Some(super::query::parse(q).map_err(|e| {
                bad_query(format!("Query validation error: '{}' on property q.", e.0))
            })?),
            None => None,
        };
    let (order, descending) = match req.sort {
        Some(s) => super::query::sort(s).map_err(|e| {
            bad_query(format!(
                "Query validation error: '{}' on property sort.",
                e.0
            ))
        })?,
        None => (crate::store::UserOrder::CreatedAt, false),
    };
    let search = crate::store::UserSearch {
        filter: filter.as_ref(),
        order,
        descending,
        offset: start,
        limit: per_page,
        count: req.include_totals,
    };
    let (users, total) = state.store.search_users(&caller.tenant.id, &search).await?;
    let users = with_identities(state, caller.tenant, users).await?;
    Ok(UserList {
        users,
        start,
        limit: per_page,
        total,
    })
}

/// `GET /users-by-email`: the users whose email is `email`, without regard
/// to case, of every connection.
pub async fn by_email(
    state: &Core,
    caller: &Caller<'_>,
    email: &str,
) -> Result<Vec<UserRecord>, ManagementError> {
    let Ok(email) = email_address::normalize(email) else {
        return Ok(Vec::new());
    };
    let users = state
        .store
        .users_by_email(&caller.tenant.id, &email, MAX_BY_EMAIL)
        .await?;
    with_identities(state, caller.tenant, users).await
}

/// `POST /users`: a user of a database connection. Logged as `sapi` or
/// `fapi`.
pub async fn create(
    state: &Core,
    caller: &Caller<'_>,
    new: NewUser,
) -> Result<UserRecord, ManagementError> {
    let outcome = create_user(state, caller, &new).await;
    let user_id = outcome.as_ref().ok().map(|r| r.user.user_id.as_str());
    record(state, caller, "Create a User", user_id, &outcome).await;
    if let (Ok(r), Some(true)) = (&outcome, new.verify_email) {
        mail_link(
            state,
            caller.tenant,
            &r.user.user_id,
            &r.user.email,
            caller.client_id,
            TicketKind::VerifyEmail,
            Mailing {
                host: caller.host.to_string(),
                languages: caller.languages.to_vec(),
            },
        );
    }
    outcome
}

/// The connection a user is made in: a database connection of the tenant.
fn database_connection<'t>(
    tenant: &'t Tenant,
    name: &str,
) -> Result<&'t Connection, ManagementError> {
    match tenant.config.connections.iter().find(|c| c.name == name) {
        None => Err(ManagementError::BadRequest {
            code: "inexistent_connection",
            message: "The connection does not exist.".into(),
        }),
        Some(c) if !c.strategy.is_database() => Err(ManagementError::BadRequest {
            code: "operation_not_supported",
            message: format!(
                "Users of the {} connection {name:?} are made at their first login, not through the API.",
                c.strategy
            ),
        }),
        Some(c) => Ok(c),
    }
}

async fn create_user(
    state: &Core,
    caller: &Caller<'_>,
    new: &NewUser,
) -> Result<UserRecord, ManagementError> {
    let tenant = caller.tenant;
    let conn = database_connection(tenant, &new.connection)?;
    let email = new.email.as_deref().ok_or_else(|| missing("email"))?;
    let email = email_address::normalize(email).map_err(|e| {
        invalid(format!(
            "Payload validation error: 'The email {e}' on property email (The user's email)."
        ))
    })?;
    let password = new.password.as_deref().ok_or_else(|| missing("password"))?;
    let user_id = match new.user_id.as_deref() {
        None => format!("auth0|{}", state.rng.alnum(24).to_lowercase()),
        Some(id) => {
            let local = id.strip_prefix("auth0|").unwrap_or(id);
            let ok = (1..=MAX_ID_CHARS).contains(&local.len())
                && local
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !ok {
                return Err(invalid(format!(
                    "Payload validation error: 'The user_id must be 1 to {MAX_ID_CHARS} characters of A-Z, a-z, 0-9, _, . and -' on property user_id."
                )));
            }
            format!("auth0|{local}")
        }
    };
    let mut profile = profile_fields(&new.profile)?;
    match crate::services::username::for_signup(conn.requires_username, new.username.as_deref()) {
        Ok(Some(username)) => {
            profile.insert("username".into(), Value::String(username.to_string()));
        }
        Ok(None) => {}
        Err(detail) if new.username.is_some() && !conn.requires_username => {
            return Err(ManagementError::BadRequest {
                code: "operation_not_supported",
                message: format!("Cannot set username: {detail}."),
            });
        }
        Err(_) if new.username.is_none() => return Err(missing("username")),
        Err(detail) => {
            return Err(invalid(format!(
                "Payload validation error: '{detail}' on property username (The user's username)."
            )));
        }
    }
    for (key, metadata) in [
        ("user_metadata", &new.user_metadata),
        ("app_metadata", &new.app_metadata),
    ] {
        if let Some(m) = metadata {
            check_metadata(key, m)?;
            let kept: Map<String, Value> = m
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            profile.insert(key.into(), Value::Object(kept));
        }
    }
    let candidate_values = {
        let mut values: Vec<(String, String)> = vec![("email".into(), email.clone())];
        values.extend(password_policy::profile_values(&profile));
        values
    };
    let candidate = Candidate {
        password,
        profile: Profile {
            values: candidate_values
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        },
        history: &[],
    };
    let password = password_policy::check(&conn.password_policy, &candidate, &|_, _| false)
        .map_err(ManagementError::Password)?;
    let hash = hash(state, password).await?;
    let now = state.clock.now();
    let user = UserRow {
        user_id,
        connection: conn.name.clone(),
        email,
        email_verified: new.email_verified.unwrap_or(false),
        password_hash: Some(hash),
        profile: Value::Object(profile),
        blocked: new.blocked.unwrap_or(false),
        last_password_reset: None,
        created_at: now,
        updated_at: now,
        signed_up: false,
        seeded_password: None,
    };
    state
        .store
        .create_user(&tenant.id, &user)
        .await
        .map_err(store_error)?;
    Ok(UserRecord {
        user,
        identities: Vec::new(),
    })
}

/// A password hashed on the bounded hashing queue.
async fn hash(state: &Core, password: String) -> Result<String, ManagementError> {
    let (cfg, rng) = (state.passwords, state.rng.clone());
    state
        .hashing
        .run(move || cfg.hash(&*rng, &password))
        .await
        .map_err(|e| match e {
            HashingError::Busy => ManagementError::Busy,
            HashingError::Gone => ManagementError::Internal("the hashing threads are gone".into()),
        })?
        .map_err(|e| ManagementError::Internal(format!("hashing: {e}")))
}

/// One profile value, checked: a string of a sensible length without
/// control characters; `picture` an absolute http(s) URL.
fn profile_value(field: &str, s: &str) -> Result<(), ManagementError> {
    let max = if field == "picture" {
        MAX_PICTURE_CHARS
    } else {
        MAX_FIELD_CHARS
    };
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(invalid(format!(
            "Payload validation error: 'String is empty, longer than {max} characters or has control characters' on property {field}."
        )));
    }
    if field == "picture" && !(s.starts_with("https://") || s.starts_with("http://")) {
        return Err(invalid(
            "Payload validation error: 'Object didn't pass validation for format absolute-uri' on property picture.",
        ));
    }
    Ok(())
}

fn profile_fields(given: &Map<String, Value>) -> Result<Map<String, Value>, ManagementError> {
    let mut out = Map::new();
    for (field, value) in given {
        if !PROFILE_FIELDS.contains(&field.as_str()) {
            return Err(invalid(format!(
                "Payload validation error: 'Additional properties not allowed: {field}'."
            )));
        }
        if let Some(s) = value.as_str() {
            profile_value(field, s)?;
            out.insert(field.clone(), value.clone());
        }
    }
    Ok(out)
}

/// Metadata property names as Auth0 takes them: not empty, no `.` and not
/// starting with `$` (its store's rules, kept so data moves both ways).
fn check_metadata(key: &str, m: &Map<String, Value>) -> Result<(), ManagementError> {
    for name in m.keys() {
        if name.is_empty() || name.contains('.') || name.starts_with('$') {
            return Err(invalid(format!(
                "Payload validation error: 'Property names must not be empty, contain \".\" or start with \"$\": {name:?}' on property {key}."
            )));
        }
    }
    Ok(())
}

/// Auth0's merge of metadata: top-level properties of `patch` replace the
/// user's, `null` removes one, and an empty object removes them all.
pub fn merge_metadata(current: Option<&Value>, patch: &Map<String, Value>) -> Value {
    if patch.is_empty() {
        return Value::Object(Map::new());
    }
    let mut merged = current
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in patch {
        if v.is_null() {
            merged.remove(k);
        } else {
            merged.insert(k.clone(), v.clone());
        }
    }
    Value::Object(merged)
}

/// `PATCH /users/{id}`. With only `update:users_app_metadata`, the
/// metadata alone may change. A new password passes the connection's
/// policy and history and ends what the user holds, as a reset does; so
/// does blocking. Logged as `sapi` or `fapi`.
pub async fn update(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
    patch: UserPatch,
) -> Result<UserRecord, ManagementError> {
    if !caller.has("update:users") && !patch.metadata_only() {
        return Err(ManagementError::InsufficientScope(vec!["update:users"]));
    }
    let outcome = update_user(state, caller, id, &patch).await;
    record(state, caller, "Update a User", Some(id), &outcome).await;
    if let (Ok(r), Some(true)) = (&outcome, patch.verify_email) {
        mail_link(
            state,
            caller.tenant,
            &r.user.user_id,
            &r.user.email,
            caller.client_id,
            TicketKind::VerifyEmail,
            Mailing {
                host: caller.host.to_string(),
                languages: caller.languages.to_vec(),
            },
        );
    }
    outcome
}

async fn update_user(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
    patch: &UserPatch,
) -> Result<UserRecord, ManagementError> {
    let tenant = caller.tenant;
    for (key, metadata) in [
        ("user_metadata", &patch.user_metadata),
        ("app_metadata", &patch.app_metadata),
    ] {
        if let Some(m) = metadata {
            check_metadata(key, m)?;
        }
    }
    for (field, value) in &patch.profile {
        if let Some(v) = value {
            profile_value(field, v)?;
        }
    }
    for _ in 0..UPDATE_TRIES {
        let previous = state
            .store
            .user_by_id(&tenant.id, id)
            .await?
            .ok_or(ManagementError::UserNotFound)?;
        let (next, hash) = changed(state, tenant, &previous, patch).await?;
        let ends = hash.is_some() || (next.blocked && !previous.blocked);
        let change = UserChange {
            password_hash: hash.as_deref(),
            end_sessions: ends.then_some(if hash.is_some() {
                "password_changed"
            } else {
                "user_blocked"
            }),
        };
        match state
            .store
            .update_user(&tenant.id, &previous, &next, &change)
            .await
        {
            Ok(UserWrite::Done) => {
                let mut done = get(state, caller, id).await?;
                // What the caller wrote is what it reads, whatever else
                // wrote since.
                done.user.updated_at = next.updated_at;
                return Ok(done);
            }
            Ok(UserWrite::Missing) => return Err(ManagementError::UserNotFound),
            Ok(UserWrite::Changed) => continue,
            Err(StoreError::Conflict(_)) => {
                return Err(ManagementError::BadRequest {
                    code: "user_exists",
                    message: "The specified new email or username already exists".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ManagementError::Store(StoreError::Unavailable(
        "the user kept changing under the update".into(),
    )))
}

/// The user as `patch` leaves `previous`, and the new password's hash.
async fn changed(
    state: &Core,
    tenant: &Tenant,
    previous: &UserRow,
    patch: &UserPatch,
) -> Result<(UserRow, Option<String>), ManagementError> {
    if let Some(c) = &patch.connection
        && c != &previous.connection
    {
        return Err(ManagementError::BadRequest {
            code: "invalid_body",
            message: format!("The user is not a user of the connection {c:?}."),
        });
    }
    let database = tenant.database_connection(&previous.connection);
    let mut next = previous.clone();
    let mut profile = previous.profile.as_object().cloned().unwrap_or_default();
    for (field, value) in &patch.profile {
        match value {
            Some(v) => profile.insert(field.clone(), Value::String(v.clone())),
            None => profile.remove(field),
        };
    }
    for (key, metadata) in [
        ("user_metadata", &patch.user_metadata),
        ("app_metadata", &patch.app_metadata),
    ] {
        if let Some(m) = metadata {
            let merged = merge_metadata(profile.get(key), m);
            profile.insert(key.into(), merged);
        }
    }
    if let Some(username) = &patch.username {
        let conn = database.ok_or_else(|| ManagementError::BadRequest {
            code: "operation_not_supported",
            message: "Only users of a database connection have a username.".into(),
        })?;
        match (username, conn.requires_username) {
            (Some(u), true) if crate::services::username::is_valid(u) => {
                profile.insert("username".into(), Value::String(u.clone()));
            }
            (Some(_), true) => {
                return Err(invalid(format!(
                    "Payload validation error: '{}' on property username (The user's username).",
                    crate::services::username::RULE
                )));
            }
            (None, true) => {
                return Err(ManagementError::BadRequest {
                    code: "invalid_body",
                    message: "The connection requires a username: it cannot be removed.".into(),
                });
            }
            (_, false) => {
                return Err(ManagementError::BadRequest {
                    code: "operation_not_supported",
                    message: "Cannot set username for a connection without requires_username."
                        .into(),
                });
            }
        }
    }
    next.profile = Value::Object(profile);
    if let Some(email) = &patch.email {
        if database.is_none() {
            return Err(ManagementError::BadRequest {
                code: "operation_not_supported",
                message: "The email of a user of an upstream or passwordless connection comes from the connection.".into(),
            });
        }
        let email = email_address::normalize(email).map_err(|e| {
            invalid(format!(
                "Payload validation error: 'The email {e}' on property email (Email address of this user)."
            ))
        })?;
        if email != previous.email {
            next.email = email;
            // A new address is unverified unless the caller says otherwise.
            next.email_verified = false;
        }
    }
    if let Some(v) = patch.email_verified {
        next.email_verified = v;
    }
    if let Some(b) = patch.blocked {
        next.blocked = b;
    }
    let hash = match &patch.password {
        None => None,
        Some(password) => {
            let conn = database.ok_or_else(|| ManagementError::BadRequest {
                code: "operation_not_supported",
                message: "Only users of a database connection have a password.".into(),
            })?;
            let checked = password_policy::check_for_user(
                state,
                &tenant.id,
                &conn.password_policy,
                &next,
                password,
            )
            .await
            .map_err(|e| match e {
                password_policy::UserCheckError::Store(e) => ManagementError::Store(e),
                password_policy::UserCheckError::Internal(e) => ManagementError::Internal(e),
            })?;
            let password = checked.map_err(ManagementError::Password)?;
            Some(hash(state, password).await?)
        }
    };
    next.updated_at = state.clock.now();
    Ok((next, hash))
}

/// `DELETE /users/{id}`: the user and all they hold, at once. Logged as
/// `sapi` or `fapi`.
pub async fn delete(state: &Core, caller: &Caller<'_>, id: &str) -> Result<(), ManagementError> {
    let outcome = match state.store.delete_user(&caller.tenant.id, id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ManagementError::UserNotFound),
        Err(e) => Err(e.into()),
    };
    record(state, caller, "Delete a User", Some(id), &outcome).await;
    outcome
}
