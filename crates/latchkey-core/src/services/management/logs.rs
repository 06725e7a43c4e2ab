//! The tenant log through the Management API (`GET /logs`, `GET
//! /logs/{id}`, `GET /users/{id}/logs`): Auth0's two ways to read it — by
//! search (`q`, `page`, `per_page`, `sort` by date, at most the first 1,000
//! events) and by checkpoint (`from` an event, `take` the next ones in the
//! order they were written, without limit, which log exporters follow) — in
//! the shape of Auth0's log entries ([`audit::log_entry`]).
//!
//! `q` reads `type`, `user_id` and `client_id`, each `field:value` or
//! `field:"value"`, joined by `AND`; anything else is refused, naming it.

use serde_json::Value;

use super::{Caller, ManagementError};
use crate::context::Core;
use crate::services::audit;
use crate::store::AuditSearch;

/// Most events a page or a checkpoint read holds (Auth0's).
pub const MAX_PER_PAGE: i64 = 100;
/// How far a search may page (Auth0's).
pub const MAX_RESULTS: i64 = 1000;

/// What `GET /logs` asks.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogsRequest<'a> {
    pub q: Option<&'a str>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
    /// `date:1` or `date:-1` (the default).
    pub sort: Option<&'a str>,
    pub include_totals: bool,
    /// A checkpoint: the other parameters are ignored.
    pub from: Option<&'a str>,
    pub take: Option<i64>,
}

/// A page of the log.
#[derive(Debug)]
pub struct LogPage {
    pub logs: Vec<Value>,
    pub start: i64,
    pub limit: i64,
    pub total: Option<i64>,
}

fn bad_query(message: impl Into<String>) -> ManagementError {
    ManagementError::InvalidQuery(message.into())
}

/// The filter `q` names: type, user and client.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogFilter {
    pub event_type: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
}

/// Reads `q`. The error names what cannot be searched.
pub fn parse_q(q: &str) -> Result<LogFilter, String> {
    let mut filter = LogFilter::default();
    if q.chars().count() > 300 {
        return Err("the query is longer than 300 characters".into());
    }
    for term in q.split(" AND ").map(str::trim) {
        let Some((field, value)) = term.split_once(':') else {
            return Err(format!(
                "{term:?} is not field:value (latchkey searches logs by type, user_id and \
                 client_id, joined by AND)"
            ));
        };
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
            None if value.is_empty()
                || value.contains([' ', '"', '(', ')', '*', '?', '[', '{', '~']) =>
            {
                return Err(format!(
                    "{term:?}: only exact values are searched (a word, or a phrase in quotes)"
                ));
            }
            None => value.replace('\\', ""),
        };
        let slot = match field {
            "type" => &mut filter.event_type,
            "user_id" => &mut filter.user_id,
            "client_id" => &mut filter.client_id,
            other => {
                return Err(format!(
                    "{other:?} is not searched: latchkey searches logs by type, user_id and \
                     client_id"
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(format!("{field} is named twice"));
        }
    }
    Ok(filter)
}

/// `GET /logs` (and, with `user_id`, `GET /users/{id}/logs`).
pub async fn list(
    state: &Core,
    caller: &Caller<'_>,
    req: &LogsRequest<'_>,
    user_id: Option<&str>,
) -> Result<LogPage, ManagementError> {
    let tenant = &caller.tenant.id;
    if let Some(from) = req.from {
        let take = req.take.unwrap_or(50);
        if !(1..=MAX_PER_PAGE).contains(&take) {
            return Err(bad_query(format!(
                "Query validation error: 'take must be between 1 and {MAX_PER_PAGE}' on property take."
            )));
        }
        let search = AuditSearch {
            user_id,
            after: Some(from),
            limit: take,
            ..AuditSearch::default()
        };
        let (events, _) = state.store.search_audit(tenant, &search).await?;
        return Ok(LogPage {
            logs: events.into_iter().map(audit::log_entry).collect(),
            start: 0,
            limit: take,
            total: None,
        });
    }
    let per_page = req.per_page.unwrap_or(50);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(bad_query(format!(
            "Query validation error: 'per_page must be between 1 and {MAX_PER_PAGE}' on property per_page."
        )));
    }
    let page = req.page.unwrap_or(0);
    if page < 0 {
        return Err(bad_query(
            "Query validation error: 'page must be 0 or more' on property page.",
        ));
    }
    let start = page.saturating_mul(per_page);
    if start.saturating_add(per_page) > MAX_RESULTS {
        return Err(bad_query(format!(
            "You can only page through the first {MAX_RESULTS} records: narrow the search (q) \
             or read by checkpoint (from, take)."
        )));
    }
    let newest_first = match req.sort {
        None | Some("date:-1") => true,
        Some("date:1") => false,
        Some(other) => {
            return Err(bad_query(format!(
                "Query validation error: 'latchkey sorts logs by date:1 or date:-1, not {other:?}' on property sort."
            )));
        }
    };
    let filter = match req.q.filter(|q| !q.trim().is_empty()) {
        Some(q) => parse_q(q)
            .map_err(|e| bad_query(format!("Query validation error: '{e}' on property q.")))?,
        None => LogFilter::default(),
    };
    if let (Some(path), Some(q)) = (user_id, filter.user_id.as_deref())
        && path != q
    {
        return Ok(LogPage {
            logs: Vec::new(),
            start,
            limit: per_page,
            total: req.include_totals.then_some(0),
        });
    }
    let search = AuditSearch {
        event_type: filter.event_type.as_deref(),
        user_id: user_id.or(filter.user_id.as_deref()),
        client_id: filter.client_id.as_deref(),
        after: None,
        newest_first,
        offset: start,
        limit: per_page,
        count: req.include_totals,
    };
    let (events, total) = state.store.search_audit(tenant, &search).await?;
    Ok(LogPage {
        logs: events.into_iter().map(audit::log_entry).collect(),
        start,
        limit: per_page,
        total: total.map(|t| t.min(MAX_RESULTS)),
    })
}

/// `GET /logs/{id}`.
pub async fn get(state: &Core, caller: &Caller<'_>, id: &str) -> Result<Value, ManagementError> {
    state
        .store
        .audit_event(&caller.tenant.id, id)
        .await?
        .map(audit::log_entry)
        .ok_or(ManagementError::LogNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_reads_type_user_and_client_joined_by_and() {
        assert_eq!(
            parse_q("type:s AND user_id:\"auth0|alice\" AND client_id:spa"),
            Ok(LogFilter {
                event_type: Some("s".into()),
                user_id: Some("auth0|alice".into()),
                client_id: Some("spa".into()),
            })
        );
        for refused in [
            "s",
            "date:[2026-01-01 TO *]",
            "type:s OR type:f",
            "type:s*",
            "description:hello",
            "type:s AND type:f",
            "type:",
        ] {
            assert!(parse_q(refused).is_err(), "{refused}");
        }
    }
}
