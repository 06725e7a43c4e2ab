//! The user's accounts: listed (their own only, oldest first, paged with an
//! opaque cursor, filtered by connection), deleted (the tokens forgotten,
//! and the provider asked to revoke them where it can); and the
//! connections the application may link accounts of.

use super::{Account, ConnectError, audited, open_token};
use crate::context::Core;
use crate::services::enrollment::Who;
use crate::services::upstream::{self, Provider, Revoked};
use crate::store::AccountCursor;
use crate::tenant::{ConnectionStrategy, Tenant};

/// A page of the user's accounts, and where the next one starts.
pub async fn list(
    core: &Core,
    who: &Who<'_>,
    connections: &[String],
    from: Option<&str>,
    take: usize,
) -> Result<(Vec<Account>, Option<String>), ConnectError> {
    let after = from.map(parse_cursor).transpose()?;
    let take = i64::try_from(take).unwrap_or(20);
    let mut rows = core
        .store
        .connected_accounts(
            &who.tenant.id,
            who.user_id,
            connections,
            after.as_ref(),
            take + 1,
        )
        .await?;
    let more = rows.len() as i64 > take;
    rows.truncate(usize::try_from(take).unwrap_or(0));
    let next = more
        .then(|| rows.last())
        .flatten()
        .map(|r| format!("{}.{}", r.created_at, r.id));
    Ok((rows.iter().map(Account::from).collect(), next))
}

/// `{created_at}.{id}`, as [`list`] answers it in `next`.
fn parse_cursor(from: &str) -> Result<AccountCursor, ConnectError> {
    let bad = || ConnectError::Query {
        name: "from",
        detail: "is not a cursor this API answered".into(),
    };
    let (at, id) = from.split_once('.').ok_or_else(bad)?;
    let created_at = at.parse().map_err(|_| bad())?;
    let well_formed = id.strip_prefix("cac_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !well_formed {
        return Err(bad());
    }
    Ok(AccountCursor {
        created_at,
        id: id.to_owned(),
    })
}

/// Deletes the user's account `id` (another user's is not found): its
/// tokens are forgotten at once, then the provider is asked to revoke them
/// where it can. A provider that cannot be reached does not keep the
/// account: the outcome is logged and audited.
pub async fn delete(core: &Core, who: &Who<'_>, ip: &str, id: &str) -> Result<(), ConnectError> {
    let tenant = who.tenant;
    let row = core
        .store
        .delete_connected_account(&tenant.id, who.user_id, id)
        .await?
        .ok_or_else(|| ConnectError::NotFound("Connected account not found.".into()))?;
    let refresh = open_token(core, &tenant.id, &row, "refresh_token");
    let access = open_token(core, &tenant.id, &row, "access_token");
    let revoked = match tenant.upstream_connection(&row.connection) {
        None => "the connection is gone".to_owned(),
        Some(connection) => match Provider::of(core, tenant, connection) {
            Err(e) => e.to_string(),
            Ok(p) => {
                match upstream::revoke(core, &p, refresh.as_deref(), access.as_deref()).await {
                    Ok(Revoked::Done) => "revoked".to_owned(),
                    Ok(Revoked::Unsupported) => "the provider offers no revocation".to_owned(),
                    Err(e) => e.to_string(),
                }
            }
        },
    };
    if revoked != "revoked" {
        tracing::warn!(tenant = %tenant.name, account = %row.id, outcome = %revoked, "the provider's tokens were not revoked");
    }
    let revocation = serde_json::json!(revoked);
    audited(
        core,
        who,
        ip,
        "delete",
        &row,
        Some(("upstream_revocation", revocation)),
    )
    .await;
    Ok(())
}

/// A connection the application may link accounts of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionOffer {
    pub name: String,
    pub strategy: ConnectionStrategy,
    pub scopes: Vec<String>,
}

/// The connections active for connected accounts and enabled for
/// `client_id`, in the tenant file's order, after the one named `from`.
pub fn connections(
    tenant: &Tenant,
    client_id: &str,
    from: Option<&str>,
    take: usize,
) -> Result<(Vec<ConnectionOffer>, Option<String>), ConnectError> {
    let offered: Vec<_> = tenant
        .config
        .connections
        .iter()
        .filter(|c| c.connectable_from(client_id))
        .collect();
    let start = match from {
        None => 0,
        Some(name) => {
            offered
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| ConnectError::Query {
                    name: "from",
                    detail: "is not a cursor this API answered".into(),
                })?
                + 1
        }
    };
    let page: Vec<ConnectionOffer> = offered
        .iter()
        .skip(start)
        .take(take)
        .map(|c| ConnectionOffer {
            name: c.name.clone(),
            strategy: c.strategy,
            scopes: upstream::scopes_of(c),
        })
        .collect();
    let next = (start + take < offered.len())
        .then(|| page.last().map(|c| c.name.clone()))
        .flatten();
    Ok((page, next))
}
