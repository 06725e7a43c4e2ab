//! The Management API's wire: JSON bodies of bounded size read into typed
//! properties with Auth0's validation messages, query strings read strictly
//! (an unknown or repeated parameter is refused), and the user object in
//! Auth0's shape, cut to `fields` when asked.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde_json::{Map, Value, json};

use super::error::MgmtError;
use axum::Json;
use latchkey_core::clock::rfc3339;
use latchkey_core::services::management::config::{Listed, Page, Paged, Paging};
use latchkey_core::services::management::users::UserRecord;

/// The largest body read, bytes.
pub(crate) const MAX_BODY: usize = 256 * 1024;

/// A JSON object body: `application/json`, at most [`MAX_BODY`] bytes.
pub(crate) struct MgmtJson(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for MgmtJson {
    type Rejection = MgmtError;

    async fn from_request(req: Request, _: &S) -> Result<Self, MgmtError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_ascii_lowercase());
        let bytes = to_bytes(Body::new(req.into_body()), MAX_BODY)
            .await
            .map_err(|_| {
                MgmtError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("Payload content length greater than maximum allowed: {MAX_BODY}"),
                )
            })?;
        let essence = content_type
            .as_deref()
            .and_then(|ct| ct.split(';').next())
            .map(str::trim);
        if essence != Some("application/json") {
            return Err(MgmtError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The body must be application/json.",
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(other) => Err(MgmtError::bad_body(format!(
                "Payload validation error: 'Expected type object but found type {}'.",
                json_type(&other)
            ))),
            Err(_) => Err(MgmtError::bad_body("Invalid request payload JSON format")),
        }
    }
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A body's properties, taken one by one with their schema; what is left
/// at the end is refused as Auth0 refuses additional properties.
pub(crate) struct Props {
    map: Map<String, Value>,
    /// `parent.` for the properties of a nested object (`refresh_token.`).
    prefix: String,
}

fn wrong_type(name: &str, expected: &str, found: &Value) -> MgmtError {
    MgmtError::bad_body(format!(
        "Payload validation error: 'Expected type {expected} but found type {}' on property {name}.",
        json_type(found)
    ))
}

impl Props {
    pub(crate) fn new(body: Map<String, Value>) -> Self {
        Self {
            map: body,
            prefix: String::new(),
        }
    }

    fn remove(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    fn wrong(&self, name: &str, expected: &str, found: &Value) -> MgmtError {
        wrong_type(&format!("{}{name}", self.prefix), expected, found)
    }

    /// An integer property; `null` reads as absent.
    pub(crate) fn integer(&mut self, name: &str) -> Result<Option<i64>, MgmtError> {
        match self.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(other) => Err(self.wrong(name, "integer", &other)),
        }
    }

    /// An array of strings; `null` reads as absent.
    pub(crate) fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>, MgmtError> {
        match self.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    other => Err(self.wrong(&format!("{name}[{i}]"), "string", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong(name, "array", &other)),
        }
    }

    /// A nested object, read property by property as this one; `null`
    /// reads as absent.
    pub(crate) fn nested(&mut self, name: &str) -> Result<Option<Props>, MgmtError> {
        match self.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Props {
                map,
                prefix: format!("{}{name}.", self.prefix),
            })),
            Some(other) => Err(self.wrong(name, "object", &other)),
        }
    }

    /// An array of objects, each read as this one.
    pub(crate) fn objects(&mut self, name: &str) -> Result<Option<Vec<Props>>, MgmtError> {
        match self.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(map) => Ok(Props {
                        map,
                        prefix: format!("{}{name}[{i}].", self.prefix),
                    }),
                    other => Err(self.wrong(&format!("{name}[{i}]"), "object", &other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong(name, "array", &other)),
        }
    }

    /// A required property's refusal.
    pub(crate) fn missing(&self, name: &str) -> MgmtError {
        MgmtError::bad_body(format!(
            "Payload validation error: 'Missing required property: {}{name}'.",
            self.prefix
        ))
    }

    /// A string property; `null` reads as absent.
    pub(crate) fn string(&mut self, name: &str) -> Result<Option<String>, MgmtError> {
        Ok(self.nullable_string(name)?.flatten())
    }

    /// A string property that may be `null`: `Some(None)` for `null`.
    pub(crate) fn nullable_string(
        &mut self,
        name: &str,
    ) -> Result<Option<Option<String>>, MgmtError> {
        match self.remove(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(other) => Err(self.wrong(name, "string", &other)),
        }
    }

    pub(crate) fn boolean(&mut self, name: &str) -> Result<Option<bool>, MgmtError> {
        match self.remove(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong(name, "boolean", &other)),
        }
    }

    pub(crate) fn object(&mut self, name: &str) -> Result<Option<Map<String, Value>>, MgmtError> {
        match self.remove(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(self.wrong(name, "object", &other)),
        }
    }

    /// Refuses what no `take` asked for.
    pub(crate) fn finish(self) -> Result<(), MgmtError> {
        let mut left: Vec<String> = self
            .map
            .keys()
            .map(|k| format!("{}{k}", self.prefix))
            .collect();
        left.sort();
        match left.as_slice() {
            [] => Ok(()),
            names => Err(MgmtError::bad_body(format!(
                "Payload validation error: 'Additional properties not allowed: {}'.",
                names.join(",")
            ))),
        }
    }
}

/// The query string's parameters, each at most once.
pub(crate) struct QueryParams(Vec<(String, String)>);

/// The parameters Auth0 takes more than once (`identifiers=a&identifiers=b`,
/// `strategy=auth0&strategy=oidc`).
const REPEATABLE: [&str; 2] = ["identifiers", "strategy"];

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = MgmtError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, MgmtError> {
        let raw = parts.uri.query().unwrap_or("");
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            if !REPEATABLE.contains(&k.as_ref()) && out.iter().any(|(seen, _)| *seen == k) {
                return Err(MgmtError::bad_query(format!(
                    "Query validation error: 'Expected a single value' on property {k}."
                )));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(out))
    }
}

impl QueryParams {
    /// Refuses a parameter not in `known`.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), MgmtError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some((k, _)) => Err(MgmtError::bad_query(format!(
                "Query validation error: 'Additional properties not allowed: {k}'."
            ))),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a parameter given more than once.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn integer(&self, name: &str) -> Result<Option<i64>, MgmtError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                MgmtError::bad_query(format!(
                    "Query validation error: 'Expected type integer but found type string' on property {name}."
                ))
            }),
        }
    }

    pub(crate) fn boolean(&self, name: &str) -> Result<Option<bool>, MgmtError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(MgmtError::bad_query(format!(
                "Query validation error: 'Expected type boolean but found type string' on property {name}."
            ))),
        }
    }

    /// `page` and `per_page`.
    pub(crate) fn paging(&self) -> Result<Paging, MgmtError> {
        Ok(Paging {
            page: self.integer("page")?,
            per_page: self.integer("per_page")?,
        })
    }

    /// Checkpoints when `from` or `take` is given, else pages.
    pub(crate) fn paged_how(&self) -> Result<Paged, MgmtError> {
        if self.get("from").is_some() || self.get("take").is_some() {
            Ok(Paged::Checkpoint {
                from: self.get("from").map(str::to_string),
                take: self.integer("take")?,
            })
        } else {
            Ok(Paged::Pages(self.paging()?))
        }
    }

    /// `fields` and `include_fields`: what to cut a user object to.
    pub(crate) fn projection(&self) -> Result<Projection, MgmtError> {
        let include = self.boolean("include_fields")?.unwrap_or(true);
        let fields: Vec<String> = self
            .get("fields")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Projection { fields, include })
    }
}

/// A page of a list as Auth0 answers it: with `include_totals=true`,
/// `{start, limit, length, total, <key>: [...]}`; else the array alone.
pub(crate) fn paged<T>(
    query: &QueryParams,
    key: &str,
    page: Page<T>,
    shape: impl Fn(&T) -> Value,
) -> Result<Json<Value>, MgmtError> {
    let items: Vec<Value> = page.items.iter().map(shape).collect();
    if !query.boolean("include_totals")?.unwrap_or(false) {
        return Ok(Json(Value::Array(items)));
    }
    let mut o = Map::new();
    o.insert("start".into(), json!(page.start));
    o.insert("limit".into(), json!(page.limit));
    o.insert("length".into(), json!(items.len()));
    o.insert("total".into(), json!(page.total));
    o.insert(key.into(), Value::Array(items));
    Ok(Json(Value::Object(o)))
}

/// A list paged either way: pages as [`paged`]; checkpoints as
/// `{<key>: [...], next}` (`next` only when there are more).
pub(crate) fn listed<T>(
    query: &QueryParams,
    key: &str,
    list: Listed<T>,
    shape: impl Fn(&T) -> Value,
) -> Result<Json<Value>, MgmtError> {
    match list {
        Listed::Page(page) => paged(query, key, page, shape),
        Listed::Checkpoint { items, next } => {
            let mut o = Map::new();
            o.insert(key.into(), Value::Array(items.iter().map(shape).collect()));
            if let Some(next) = next {
                o.insert("next".into(), json!(next));
            }
            Ok(Json(Value::Object(o)))
        }
    }
}

/// Which properties of a user object an answer keeps.
pub(crate) struct Projection {
    fields: Vec<String>,
    include: bool,
}

impl Projection {
    /// The object cut: with `include`, only the fields named (all when none
    /// are); without, all but them.
    pub(crate) fn apply(&self, mut user: Map<String, Value>) -> Value {
        if !self.fields.is_empty() {
            user.retain(|k, _| self.fields.iter().any(|f| f == k) == self.include);
        }
        Value::Object(user)
    }
}

/// A user in the shape of Auth0's user object: `user_id`, `email`,
/// `email_verified`, `username`, the profile, `identities[]` (the user's
/// own account first), `created_at`/`updated_at` in ISO 8601, the
/// metadata, `blocked`, `last_password_reset`.
pub(crate) fn user_object(r: &UserRecord) -> Map<String, Value> {
    let u = &r.user;
    let profile = u.profile.as_object().cloned().unwrap_or_default();
    let mut o = Map::new();
    o.insert("user_id".into(), json!(u.user_id));
    o.insert("email".into(), json!(u.email));
    o.insert("email_verified".into(), json!(u.email_verified));
    if let Some(username) = profile.get("username").filter(|v| v.is_string()) {
        o.insert("username".into(), username.clone());
    }
    for field in ["given_name", "family_name", "picture"] {
        if let Some(v) = profile.get(field).filter(|v| v.is_string()) {
            o.insert(field.into(), v.clone());
        }
    }
    // Auth0 fills these two in when a user is made without them.
    let name = profile
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&u.email);
    o.insert("name".into(), json!(name));
    let nickname = profile
        .get("nickname")
        .and_then(Value::as_str)
        .unwrap_or_else(|| u.email.split('@').next().unwrap_or_default());
    o.insert("nickname".into(), json!(nickname));
    o.insert("identities".into(), Value::Array(identities(r)));
    o.insert("created_at".into(), json!(rfc3339(u.created_at)));
    o.insert("updated_at".into(), json!(rfc3339(u.updated_at)));
    for key in ["user_metadata", "app_metadata"] {
        let v = profile
            .get(key)
            .filter(|v| v.is_object())
            .cloned()
            .unwrap_or_else(|| json!({}));
        o.insert(key.into(), v);
    }
    o.insert("blocked".into(), json!(u.blocked));
    if let Some(at) = u.last_password_reset {
        o.insert("last_password_reset".into(), json!(rfc3339(at)));
    }
    o
}

/// `identities[]`: the account of the user's own connection first (a
/// database user's, made from the user ID), then the accounts the user
/// logs in with at providers.
fn identities(r: &UserRecord) -> Vec<Value> {
    let u = &r.user;
    let mut out = Vec::new();
    if !r.identities.iter().any(|i| i.connection == u.connection) {
        let (provider, id) = u.user_id.split_once('|').unwrap_or(("auth0", &u.user_id));
        out.push(json!({
            "connection": u.connection,
            "provider": provider,
            "user_id": id,
            "isSocial": false,
        }));
    }
    for i in &r.identities {
        out.push(json!({
            "connection": i.connection,
            "provider": i.provider,
            "user_id": i.provider_user_id,
            "isSocial": i.is_social,
        }));
    }
    out
}
