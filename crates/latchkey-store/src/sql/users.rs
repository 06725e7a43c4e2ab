//! The statements of `UserAdminStore` (the Management API's users): a
//! search composed from its filter, the identities of a page of users, and
//! the transaction bodies of a change and a deletion, which both backends
//! run.

use super::rows::user_row;
use super::tenants::{USER_COLUMNS, email_taken, username_key};
use super::{Conn, Dialect, Statement, methods, sessions, to_json};
use crate::{
    Completion, StoreResult, UserChange, UserField, UserFilter, UserMatch, UserOrder, UserRow,
    UserSearch, UserWrite,
};
use latchkey_core::clock::Timestamp;

/// A value a composed statement binds, owned while the text is built.
enum Param {
    Text(String),
    Int(i64),
    Flag(bool),
}

/// A `WHERE` clause under construction: its text and its values, numbered
/// from the first placeholder given.
struct Clause {
    text: String,
    params: Vec<Param>,
    first: usize,
}

impl Clause {
    /// The placeholder of a new value.
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.first + self.params.len() - 1)
    }
}

/// The SQL of a profile field as text, per backend (keys are the store's
/// own constants).
fn profile_text<DB: Dialect>(key: &'static str) -> String {
    DB::json_text("profile", key)
}

/// The column or expression a field is compared on, and whether it is
/// compared without regard to case.
fn column<DB: Dialect>(field: UserField) -> (String, bool) {
    match field {
        UserField::UserId => ("user_id".into(), false),
        UserField::Email | UserField::EmailDomain => ("email_key".into(), true),
        UserField::Connection => ("connection".into(), false),
        UserField::EmailVerified => ("email_verified".into(), false),
        UserField::Blocked => ("blocked".into(), false),
        UserField::Username => ("username_lower".into(), true),
        UserField::Name => (format!("lower({})", profile_text::<DB>("name")), true),
        UserField::GivenName => (format!("lower({})", profile_text::<DB>("given_name")), true),
        UserField::FamilyName => (
            format!("lower({})", profile_text::<DB>("family_name")),
            true,
        ),
        UserField::Nickname => (format!("lower({})", profile_text::<DB>("nickname")), true),
    }
}

/// Writes the condition of `filter` into `c`.
fn condition<DB: Dialect>(c: &mut Clause, filter: &UserFilter) {
    match filter {
        UserFilter::All(parts) | UserFilter::Any(parts) if parts.is_empty() => {
            let all = matches!(filter, UserFilter::All(_));
            c.text.push_str(if all { "(1 = 1)" } else { "(1 = 0)" });
        }
        UserFilter::All(parts) | UserFilter::Any(parts) => {
            let joint = if matches!(filter, UserFilter::All(_)) {
                " AND "
            } else {
                " OR "
            };
            c.text.push('(');
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    c.text.push_str(joint);
                }
                condition::<DB>(c, part);
            }
            c.text.push(')');
        }
        UserFilter::Not(inner) => {
            c.text.push_str("(NOT ");
            condition::<DB>(c, inner);
            c.text.push(')');
        }
        UserFilter::Field(field, m) => field_condition::<DB>(c, *field, m),
    }
}

fn field_condition<DB: Dialect>(c: &mut Clause, field: UserField, m: &UserMatch) {
    let (col, folded) = column::<DB>(field);
    let fold = |v: &str| {
        if folded {
            v.to_lowercase()
        } else {
            v.to_string()
        }
    };
    let text = match (field, m) {
        (UserField::Connection, UserMatch::Present) => "(1 = 1)".to_string(),
        (UserField::Connection, UserMatch::Is(v) | UserMatch::Prefix(v)) => {
            let n = c.bind(Param::Text(v.clone()));
            let len = matches!(m, UserMatch::Prefix(_))
                .then(|| int(c.bind(Param::Int(v.chars().count() as i64))));
            let same = |col: &str| match &len {
                Some(len) => format!("substr({col}, 1, {len}) = {n}"),
                None => format!("{col} = {n}"),
            };
            format!(
                "({} OR EXISTS (SELECT 1 FROM user_identities i WHERE i.tenant_id = users.tenant_id \
                   AND i.user_id = users.user_id AND {}))",
                same("users.connection"),
                same("i.connection")
            )
        }
        (UserField::EmailDomain, UserMatch::Is(v)) => {
            let suffix = format!("@{}", v.to_lowercase());
            let len = int(c.bind(Param::Int(suffix.chars().count() as i64)));
            let n = c.bind(Param::Text(suffix));
            format!("(length({col}) >= {len} AND substr({col}, length({col}) - {len} + 1) = {n})")
        }
        (UserField::EmailDomain, _) => "(1 = 0)".to_string(),
        (_, UserMatch::Is(v)) => {
            let n = c.bind(Param::Text(fold(v)));
            format!("({col} = {n})")
        }
        (_, UserMatch::Prefix(v)) => {
            let len = int(c.bind(Param::Int(v.chars().count() as i64)));
            let n = c.bind(Param::Text(fold(v)));
            format!("(substr({col}, 1, {len}) = {n})")
        }
        (_, UserMatch::Flag(b)) => {
            let n = c.bind(Param::Flag(*b));
            format!("({col} = {n})")
        }
        (UserField::Email, UserMatch::Present) => format!("({col} <> '')"),
        (_, UserMatch::Present) => format!("({col} IS NOT NULL)"),
    };
    // A field the user lacks compares as false, never NULL: `NOT field:x`
    // finds the users without the field too, as Lucene's does.
    c.text.push_str(&format!("COALESCE({text}, FALSE)"));
}

/// A bound integer as SQL's `INTEGER` (PostgreSQL's `substr` takes no
/// `bigint`).
fn int(placeholder: String) -> String {
    format!("CAST({placeholder} AS INTEGER)")
}

fn bound(mut st: Statement<'_>, params: Vec<Param>) -> Statement<'_> {
    for p in params {
        st = match p {
            Param::Text(t) => st.owned(t),
            Param::Int(i) => st.int(i),
            Param::Flag(f) => st.flag(f),
        };
    }
    st
}

/// The filter's condition as a clause whose values start at `$2` (`$1` is
/// the tenant).
fn filter_clause<DB: Dialect>(filter: Option<&UserFilter>) -> Clause {
    let mut c = Clause {
        text: String::new(),
        params: Vec::new(),
        first: 2,
    };
    match filter {
        Some(f) => condition::<DB>(&mut c, f),
        None => c.text.push_str("(1 = 1)"),
    }
    c
}

/// The page of a search.
pub(crate) fn search<'a, DB: Dialect>(tenant_id: &'a str, s: &UserSearch<'_>) -> Statement<'a> {
    let mut c = filter_clause::<DB>(s.filter);
    let order = match s.order {
        UserOrder::CreatedAt => "created_at".to_string(),
        UserOrder::UpdatedAt => "updated_at".to_string(),
        UserOrder::Email => format!("email_key{}", DB::BYTE_ORDER),
        UserOrder::UserId => format!("user_id{}", DB::BYTE_ORDER),
        UserOrder::Name => format!("lower({}){}", profile_text::<DB>("name"), DB::BYTE_ORDER),
    };
    let direction = if s.descending { "DESC" } else { "ASC" };
    let limit = c.bind(Param::Int(s.limit));
    let offset = c.bind(Param::Int(s.offset));
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND {where_} \
         ORDER BY {order} {direction}, user_id{bytes} {direction} LIMIT {limit} OFFSET {offset}",
        where_ = c.text,
        bytes = DB::BYTE_ORDER,
    );
    bound(Statement::composed(sql).text(tenant_id), c.params)
}

/// How many users a search finds.
pub(crate) fn count<'a, DB: Dialect>(tenant_id: &'a str, s: &UserSearch<'_>) -> Statement<'a> {
    let c = filter_clause::<DB>(s.filter);
    let sql = format!(
        "SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1 AND {}",
        c.text
    );
    bound(Statement::composed(sql).text(tenant_id), c.params)
}

/// The identities of several users.
pub(crate) fn identities_of<'a>(tenant_id: &'a str, user_ids: &'a [String]) -> Statement<'a> {
    let marks: Vec<String> = (0..user_ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT {cols} FROM user_identities i WHERE i.tenant_id = $1 AND i.user_id IN ({marks}) \
         ORDER BY i.user_id, i.created_at, i.connection, i.provider_user_id",
        cols = super::identities::IDENTITY_COLUMNS,
        marks = marks.join(", "),
    );
    let mut st = Statement::composed(sql).text(tenant_id);
    for id in user_ids {
        st = st.text(id);
    }
    st
}

pub(crate) fn users_by_email<'a>(tenant_id: &'a str, email: &str, limit: i64) -> Statement<'a> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND email_key = $2 \
             ORDER BY created_at, user_id LIMIT $3"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .owned(email.to_lowercase())
        .int(limit)
}

/// The body of `update_user` in the backend's transaction. `Missing` and
/// `Changed` write nothing (the caller rolls back).
pub(crate) async fn update_user(
    tx: &mut impl Conn,
    tenant_id: &str,
    previous: &UserRow,
    next: &UserRow,
    change: &UserChange<'_>,
    now: Timestamp,
) -> StoreResult<UserWrite> {
    let current = super::tenants::user_by_id(tenant_id, &previous.user_id)
        .fetch_optional_in(tx)
        .await?;
    let Some(current) = current.as_ref().map(user_row).transpose()? else {
        return Ok(UserWrite::Missing);
    };
    if &current != previous {
        return Ok(UserWrite::Changed);
    }
    if next.email != previous.email {
        // Only users who log in by email change it (the service's rule):
        // their `email_lower` is the key of those logins.
        Statement::new(
            "UPDATE users SET email = $1, email_lower = $2, email_key = $2 \
             WHERE tenant_id = $3 AND user_id = $4",
        )
        .text(&next.email)
        .owned(next.email.to_lowercase())
        .text(tenant_id)
        .text(&next.user_id)
        .execute_or_conflict_in(tx, email_taken(next))
        .await?;
    }
    Statement::new(
        "UPDATE users SET email_verified = $1, profile = $2, blocked = $3, updated_at = $4, \
           username_lower = $5 \
         WHERE tenant_id = $6 AND user_id = $7",
    )
    .flag(next.email_verified)
    .owned(to_json(&next.profile))
    .flag(next.blocked)
    .int(next.updated_at)
    .owned_or_null(username_key(next))
    .text(tenant_id)
    .text(&next.user_id)
    .execute_or_conflict_in(tx, email_taken(next))
    .await?;
    if let Some(hash) = change.password_hash {
        let completion = Completion::SetPassword {
            user_id: next.user_id.clone(),
            hash: hash.to_string(),
            at: now,
        };
        methods::complete(tx, tenant_id, &completion, None).await?;
    }
    if let Some(reason) = change.end_sessions {
        sessions::revoke_user_grants(tenant_id, &next.user_id, reason, now)
            .execute_in(tx)
            .await?;
        sessions::revoke_user_sessions(tenant_id, &next.user_id, now)
            .execute_in(tx)
            .await?;
    }
    Ok(UserWrite::Done)
}

/// What a user holds outside the tables whose rows go with the user's
/// (`ON DELETE CASCADE`: connected accounts and their transactions,
/// identities, push transactions, account tickets), each deleted by
/// `(tenant_id, user_id)`. A grant's codes and refresh tokens go with it.
const HELD: [&str; 8] = [
    "DELETE FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM enrollments WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM password_history WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM login_failures WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM grants WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM user_identities WHERE tenant_id = $1 AND user_id = $2",
];

/// The body of `unlink_connection` in the backend's transaction.
pub(crate) async fn unlink_connection(
    tx: &mut impl Conn,
    tenant_id: &str,
    connection: &str,
) -> StoreResult<u64> {
    let mut gone = 0;
    for sql in [
        "DELETE FROM user_identities WHERE tenant_id = $1 AND connection = $2",
        "DELETE FROM connected_accounts WHERE tenant_id = $1 AND connection = $2",
    ] {
        gone += Statement::new(sql)
            .text(tenant_id)
            .text(connection)
            .execute_in(tx)
            .await?;
    }
    Ok(gone)
}

/// The body of `delete_user` in the backend's transaction: false (the
/// caller rolls back) when there is no such user.
pub(crate) async fn delete_user(
    tx: &mut impl Conn,
    tenant_id: &str,
    user_id: &str,
) -> StoreResult<bool> {
    for sql in HELD {
        Statement::new(sql)
            .text(tenant_id)
            .text(user_id)
            .execute_in(tx)
            .await?;
    }
    let gone = Statement::new("DELETE FROM users WHERE tenant_id = $1 AND user_id = $2")
        .text(tenant_id)
        .text(user_id)
        .execute_in(tx)
        .await?;
    Ok(gone == 1)
}
