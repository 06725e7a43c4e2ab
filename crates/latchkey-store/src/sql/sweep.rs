//! The sweep's statements (`SweepStore`): its rules, a chunk of each a
//! statement, and the walk over a tenant's grants.

use std::sync::LazyLock;

use super::rows::Columns;
use super::{Dialect, Statement};
use crate::{GrantCursor, Swept};
use latchkey_core::clock::Timestamp;

/// The moment a [`SweepRule`] compares with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SweepAt {
    Now,
    /// `now` less the tenant's longest token lifetime: for what can have
    /// issued tokens.
    Ended,
}

/// One kind of row `SweepStore::sweep_expired` deletes: rows of `table`
/// in the tenant for which `filter` holds, where `{at}` is the moment and
/// `{least}` the backend's two-argument minimum; counted in `count`.
pub(crate) struct SweepRule {
    pub table: &'static str,
    pub filter: &'static str,
    pub at: SweepAt,
    pub count: fn(&mut Swept) -> &mut u64,
}

impl SweepRule {
    fn moment(&self, now: Timestamp, grace: i64) -> Timestamp {
        match self.at {
            SweepAt::Now => now,
            SweepAt::Ended => now.saturating_sub(grace),
        }
    }

    /// Deletes at most `limit` of the tenant's rows the rule holds for.
    pub(crate) fn delete<'a, DB: Dialect>(
        &self,
        tenant_id: &'a str,
        now: Timestamp,
        grace: i64,
        limit: i64,
    ) -> Statement<'a> {
        let filter = self
            .filter
            .replace("{at}", "$2")
            .replace("{least}", DB::LEAST);
        Statement::composed(format!(
            "DELETE FROM {t} WHERE {id} IN (SELECT {id} FROM {t} WHERE tenant_id = $1 AND {filter} LIMIT $3)",
            t = self.table,
            id = DB::ROW_ID,
        ))
        .text(tenant_id)
        .int(self.moment(now, grace))
        .int(limit)
    }
}

/// The rules, in order: codes are looked at once the refresh tokens that
/// ended are gone; a revoked grant goes last, with what it issued (ON DELETE
/// CASCADE), and reads as revoked once unknown, as it did before. A revoked
/// row's `revoked_at` is never after `now`.
pub(crate) const SWEEP_RULES: &[SweepRule] = &[
    SweepRule {
        table: "refresh_tokens",
        filter: "{least}(expires_at, idle_expires_at) < {at}",
        at: SweepAt::Ended,
        count: |s| &mut s.refresh_tokens,
    },
    SweepRule {
        table: "auth_codes",
        filter: "expires_at < {at} AND (used_at IS NULL OR NOT EXISTS \
                 (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = auth_codes.grant_id))",
        at: SweepAt::Ended,
        count: |s| &mut s.auth_codes,
    },
    SweepRule {
        table: "sessions",
        filter: "expires_at <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.sessions,
    },
    SweepRule {
        table: "sessions",
        filter: "revoked_at <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.sessions,
    },
    SweepRule {
        table: "login_transactions",
        filter: "expires_at <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.login_transactions,
    },
    SweepRule {
        table: "enrollments",
        filter: "expires_at <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.enrollments,
    },
    SweepRule {
        table: "connect_transactions",
        filter: "expires_at <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.connect_transactions,
    },
    SweepRule {
        table: "upstream_logins",
        filter: "expires_at <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.upstream_logins,
    },
    SweepRule {
        table: "push_transactions",
        filter: "expires_at <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.push_transactions,
    },
    SweepRule {
        table: "account_tickets",
        filter: "expires_at <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.account_tickets,
    },
    SweepRule {
        table: "login_failures",
        filter: "blocked_until <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.login_failures,
    },
    SweepRule {
        table: "grants",
        filter: "revoked_at <= {at}",
        at: SweepAt::Now,
        count: |s| &mut s.grants,
    },
];

/// A grant with nothing left that can issue a token (`grants` unaliased).
const GRANT_IS_SPENT: &str = "NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id) \
     AND NOT EXISTS (SELECT 1 FROM auth_codes c WHERE c.grant_id = grants.id)";

/// One step of the walk of `SweepStore::sweep_grants`: the tenant's grants
/// created before `before`, after `from`, oldest first, at most `limit`,
/// each with whether it is spent.
pub(crate) fn grant_walk<'a>(
    tenant_id: &'a str,
    before: Timestamp,
    from: Option<&'a GrantCursor>,
    limit: i64,
) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT id, created_at, {GRANT_IS_SPENT} AS spent FROM grants \
             WHERE tenant_id = $1 AND created_at < $2 AND (created_at, id) > ($3, $4) \
             ORDER BY created_at, id LIMIT $5"
        )
    });
    let (after_at, after_id) = match from {
        Some(c) => (c.created_at, c.id.as_str()),
        None => (Timestamp::MIN, ""),
    };
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .int(before)
        .int(after_at)
        .text(after_id)
        .int(limit)
}

/// From one step's rows: the spent grants' IDs, and where the next step
/// starts (`None` when this one was the last).
pub(crate) fn walked(rows: &[impl Columns], limit: i64) -> (Vec<String>, Option<GrantCursor>) {
    let next = match rows.last() {
        Some(r) if rows.len() as i64 >= limit => Some(GrantCursor {
            created_at: r.int("created_at"),
            id: r.text("id"),
        }),
        _ => None,
    };
    let spent = rows
        .iter()
        .filter(|r| r.flag("spent"))
        .map(|r| r.text("id"))
        .collect();
    (spent, next)
}

/// Deletes the grants of `spent` that are spent still (checked again: a
/// grant gains codes and refresh tokens only while it has some, or when it
/// is created, but the delete does not rely on it); their IDs.
pub(crate) fn delete_spent<'a>(
    tenant_id: &'a str,
    before: Timestamp,
    spent: &'a [String],
) -> Statement<'a> {
    let list = (0..spent.len())
        .map(|i| format!("${}", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    let mut st = Statement::composed(format!(
        "DELETE FROM grants WHERE tenant_id = $1 AND created_at < $2 AND id IN ({list}) \
           AND {GRANT_IS_SPENT} RETURNING id"
    ))
    .text(tenant_id)
    .int(before);
    for id in spent {
        st = st.text(id);
    }
    st
}
