//! `/api/v2/logs`, `/api/v2/logs/{id}` and `/api/v2/users/{id}/logs`: the
//! tenant log by search or by checkpoint (`services::management::logs`),
//! the checkpoint's next read in a `Link` header as Auth0 gives it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::MgmtError;
use super::gate::{ReadLogs, ReadUserLogs, Scoped};
use super::wire::QueryParams;
use crate::app::SharedState;
use latchkey_core::services::management::logs::{self, LogsRequest};
use latchkey_core::tenant::issuer_for_host;

const SEARCH: [&str; 9] = [
    "q",
    "page",
    "per_page",
    "sort",
    "fields",
    "include_fields",
    "include_totals",
    "from",
    "take",
];

fn request(query: &QueryParams) -> Result<LogsRequest<'_>, MgmtError> {
    query.only(&SEARCH)?;
    Ok(LogsRequest {
        q: query.get("q"),
        page: query.integer("page")?,
        per_page: query.integer("per_page")?,
        sort: query.get("sort").filter(|s| !s.is_empty()),
        include_totals: query.boolean("include_totals")?.unwrap_or(false),
        from: query.get("from").filter(|f| !f.is_empty()),
        take: query.integer("take")?,
    })
}

/// The answer: the entries cut to `fields`, in an array or, with
/// `include_totals`, Auth0's `{start, limit, length, total, logs}`; a
/// checkpoint read names the next one in `Link`.
fn answer(
    query: &QueryParams,
    req: &LogsRequest<'_>,
    page: logs::LogPage,
    base: &str,
) -> Result<Response, MgmtError> {
    let projection = query.projection()?;
    let next = req.from.map(|from| {
        let last = page
            .logs
            .last()
            .and_then(|l| l["log_id"].as_str())
            .unwrap_or(from);
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("from", last)
            .append_pair("take", &page.limit.to_string())
            .finish();
        format!("<{base}?{q}>; rel=\"next\"")
    });
    let entries: Vec<Value> = page
        .logs
        .into_iter()
        .map(|l| match l {
            Value::Object(m) => projection.apply(m),
            other => other,
        })
        .collect();
    let body = if req.include_totals && req.from.is_none() {
        json!({
            "start": page.start,
            "limit": page.limit,
            "length": entries.len(),
            "total": page.total.unwrap_or(0),
            "logs": entries,
        })
    } else {
        Value::Array(entries)
    };
    let mut res = Json(body).into_response();
    if let Some(link) = next.and_then(|l| HeaderValue::from_str(&l).ok()) {
        res.headers_mut().insert("link", link);
    }
    Ok(res)
}

/// `GET /logs`.
pub(crate) async fn list(
    State(state): State<SharedState>,
    caller: Scoped<ReadLogs>,
    query: QueryParams,
) -> Result<Response, MgmtError> {
    let req = request(&query)?;
    let page = logs::list(&state, &caller.caller(), &req, None).await?;
    let base = format!("{}api/v2/logs", issuer_for_host(&caller.host));
    answer(&query, &req, page, &base)
}

/// `GET /users/{id}/logs`.
pub(crate) async fn of_user(
    State(state): State<SharedState>,
    caller: Scoped<ReadUserLogs>,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Response, MgmtError> {
    let req = request(&query)?;
    let page = logs::list(&state, &caller.caller(), &req, Some(&id)).await?;
    let base = format!(
        "{}api/v2/users/{}/logs",
        issuer_for_host(&caller.host),
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );
    answer(&query, &req, page, &base)
}

/// `GET /logs/{id}`.
pub(crate) async fn get(
    State(state): State<SharedState>,
    caller: Scoped<ReadLogs>,
    Path(id): Path<String>,
) -> Result<Json<Value>, MgmtError> {
    Ok(Json(logs::get(&state, &caller.caller(), &id).await?))
}
