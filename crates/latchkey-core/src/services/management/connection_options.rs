//! A connection's `options` in Auth0's shape, read into the model and
//! written back: a database connection's `password_options` (Auth0's
//! password policy: `complexity`, `dictionary`, `history`, `profile_data`),
//! `disable_signup` and `requires_username`; a passwordless connection's
//! `disable_signup`; an upstream connection's options as the tenant file
//! names them (its client secret by environment variable, never itself).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ManagementError;
use super::connections::property_error;
use crate::context::Core;
use crate::tenant::{
    AllowOrBlock, CharacterType, CharacterTypeRule, Connection, DictionaryName, MaxLengthExceeded,
    PasswordPolicy, UpstreamOptions,
};

/// A database connection's options, as Auth0 writes them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseOptions {
    #[serde(default)]
    password_options: Option<PasswordOptions>,
    #[serde(default)]
    disable_signup: Option<bool>,
    #[serde(default)]
    requires_username: Option<bool>,
    /// latchkey's: a user whose email is not verified may not log in.
    #[serde(default)]
    require_email_verification: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordOptions {
    #[serde(default)]
    complexity: Option<Complexity>,
    #[serde(default)]
    dictionary: Option<Dictionary>,
    #[serde(default)]
    history: Option<History>,
    #[serde(default)]
    profile_data: Option<ProfileData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Complexity {
    min_length: Option<u32>,
    character_types: Option<Vec<CharacterType>>,
    character_type_rule: Option<CharacterTypeRule>,
    identical_characters: Option<AllowOrBlock>,
    sequential_characters: Option<AllowOrBlock>,
    max_length_exceeded: Option<MaxLengthExceeded>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Dictionary {
    active: Option<bool>,
    custom: Option<Vec<String>>,
    default: Option<DictionaryName>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct History {
    active: Option<bool>,
    size: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileData {
    active: Option<bool>,
    blocked_fields: Option<Vec<String>>,
}

/// The passwordless connections' options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordlessOptions {
    #[serde(default)]
    disable_signup: Option<bool>,
}

/// `options` read as `T`, its errors named by the property.
fn read<T: serde::de::DeserializeOwned>(o: &Map<String, Value>) -> Result<T, ManagementError> {
    serde_path_to_error::deserialize(Value::Object(o.clone())).map_err(|e| {
        let path = e.path().to_string();
        let property = if path == "." || path.is_empty() {
            "options".to_string()
        } else {
            format!("options.{path}")
        };
        property_error(&property, e.inner())
    })
}

fn policy_of(o: PasswordOptions) -> PasswordPolicy {
    let mut p = PasswordPolicy::default();
    if let Some(c) = o.complexity {
        p.min_length = c.min_length.unwrap_or(p.min_length);
        p.character_types = c.character_types.unwrap_or_default();
        p.character_type_rule = c.character_type_rule.unwrap_or(p.character_type_rule);
        p.identical_characters = c.identical_characters.unwrap_or(p.identical_characters);
        p.sequential_characters = c.sequential_characters.unwrap_or(p.sequential_characters);
        p.max_length_exceeded = c.max_length_exceeded.unwrap_or(p.max_length_exceeded);
    }
    if let Some(d) = o.dictionary {
        p.dictionary.active = d.active.unwrap_or(false);
        p.dictionary.entries = d.custom.unwrap_or_default();
        p.dictionary.default = d.default.unwrap_or(p.dictionary.default);
    }
    if let Some(h) = o.history {
        p.history.active = h.active.unwrap_or(false);
        p.history.size = h.size.unwrap_or(p.history.size);
    }
    if let Some(d) = o.profile_data {
        p.profile_data.active = d.active.unwrap_or(false);
        p.profile_data.blocked_fields = d.blocked_fields.unwrap_or_default();
    }
    p
}

/// Sets the options `o` on `c`, replacing what it had (defaults for what
/// `o` leaves out).
pub(super) fn set(
    state: &Core,
    c: &mut Connection,
    o: &Map<String, Value>,
) -> Result<(), ManagementError> {
    if c.strategy.is_database() {
        let d: DatabaseOptions = read(o)?;
        c.password_policy = policy_of(d.password_options.unwrap_or_default());
        c.disable_signup = d.disable_signup.unwrap_or(false);
        c.requires_username = d.requires_username.unwrap_or(false);
        c.require_email_verification = d.require_email_verification.unwrap_or(false);
    } else if c.strategy.is_passwordless() {
        let p: PasswordlessOptions = read(o)?;
        c.disable_signup = p.disable_signup.unwrap_or(false);
    } else {
        if o.contains_key("client_secret") {
            return Err(property_error(
                "options.client_secret",
                "latchkey takes no secret: name the environment variable holding it (client_secret_env)",
            ));
        }
        let upstream: UpstreamOptions = read(o)?;
        // As when a tenant file is applied: a connection whose secret is
        // not in the environment would fail every login.
        if let Some(variable) = &upstream.client_secret_env
            && state
                .outside
                .secrets
                .get(variable)
                .is_none_or(|v| v.is_empty())
        {
            return Err(property_error(
                "options.client_secret_env",
                format!("the environment variable {variable} is not set"),
            ));
        }
        c.options = Some(upstream);
    }
    Ok(())
}

/// The connection's `options` in Auth0's shape.
pub fn options_object(c: &Connection) -> Value {
    if c.strategy.is_database() {
        let p = &c.password_policy;
        let kinds: Vec<&str> = p.character_types.iter().map(|t| t.as_str()).collect();
        json!({
            "password_options": {
                "complexity": {
                    "min_length": p.min_length,
                    "character_types": kinds,
                    "character_type_rule": p.character_type_rule.as_str(),
                    "identical_characters": p.identical_characters.as_str(),
                    "sequential_characters": p.sequential_characters.as_str(),
                    "max_length_exceeded": p.max_length_exceeded.as_str(),
                },
                "dictionary": {
                    "active": p.dictionary.active,
                    "custom": p.dictionary.entries,
                    "default": p.dictionary.default.as_str(),
                },
                "history": { "active": p.history.active, "size": p.history.size },
                "profile_data": {
                    "active": p.profile_data.active,
                    "blocked_fields": p.profile_data.blocked_fields,
                },
            },
            "disable_signup": c.disable_signup,
            "requires_username": c.requires_username,
            "require_email_verification": c.require_email_verification,
        })
    } else if c.strategy.is_passwordless() {
        json!({ "disable_signup": c.disable_signup })
    } else {
        let mut o = c
            .options
            .as_ref()
            .and_then(|o| serde_json::to_value(o).ok())
            .unwrap_or_else(|| json!({}));
        // Auth0 writes an OpenID connection's scope as one string.
        if let Some(map) = o.as_object_mut()
            && let Some(Value::Array(scopes)) = map.get("scope")
        {
            let joined: Vec<&str> = scopes.iter().filter_map(Value::as_str).collect();
            let joined = joined.join(" ");
            map.insert("scope".into(), Value::String(joined));
        }
        o
    }
}
