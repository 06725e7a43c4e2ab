//! Who an upstream login is at latchkey: the identity in Auth0's words
//! (`provider`, `user_id` such as `oidc|acme-idp|<sub>` or `github|<id>`,
//! `isSocial`), the profile the provider gave (email, whether it is
//! verified, name, picture…), and the user it belongs to: the one it was
//! seen with before, else the existing user it joins by a verified email
//! (only where the connection allows it and both sides are verified), else a
//! new user made from it.

use serde_json::{Map, Value, json};

use super::LoginRefusal;
use crate::clock::Timestamp;
use crate::context::Core;
use crate::services::email_address;
use crate::services::upstream::Identity;
use crate::store::{IdentityRow, StoreError, UserRow};
use crate::tenant::{Connection, ConnectionStrategy, Tenant};

/// The profile attributes kept from a provider, as OpenID names them.
const PROFILE_KEYS: [&str; 5] = ["name", "given_name", "family_name", "nickname", "picture"];
/// The longest profile value kept.
const MAX_VALUE: usize = 2048;

/// Auth0's `provider` of a strategy, and whether it is a social one.
fn provider_of(strategy: ConnectionStrategy) -> (&'static str, bool) {
    match strategy {
        ConnectionStrategy::Oidc => ("oidc", false),
        ConnectionStrategy::Auth0 => ("auth0", false),
        ConnectionStrategy::Oauth2 => ("oauth2", true),
        ConnectionStrategy::Github => ("github", true),
        ConnectionStrategy::GoogleOauth2 => ("google-oauth2", true),
        ConnectionStrategy::Windowslive => ("windowslive", true),
        ConnectionStrategy::Apple => ("apple", true),
        ConnectionStrategy::Email => ("email", false),
        ConnectionStrategy::Sms => ("sms", false),
    }
}

/// An account at a provider, as latchkey keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) connection: String,
    pub(crate) provider: &'static str,
    pub(crate) is_social: bool,
    /// Auth0's `identities[].user_id`: the connection's name before the
    /// subject for `oidc` and `oauth2` (any number of them), the subject
    /// alone for the presets (one provider each).
    pub(crate) provider_user_id: String,
    /// The email in its normal form, if the provider gave a usable one.
    pub(crate) email: Option<String>,
    pub(crate) email_verified: bool,
    /// The profile attributes the provider gave.
    pub(crate) profile: Map<String, Value>,
}

impl Account {
    pub(crate) fn of(connection: &Connection, who: &Identity) -> Self {
        let (provider, is_social) = provider_of(connection.strategy);
        let provider_user_id = match connection.strategy {
            ConnectionStrategy::Oidc | ConnectionStrategy::Oauth2 => {
                format!("{}|{}", connection.name, who.subject)
            }
            _ => who.subject.clone(),
        };
        let email = who
            .email
            .as_deref()
            .and_then(|e| email_address::normalize(e).ok());
        Self {
            connection: connection.name.clone(),
            provider,
            is_social,
            provider_user_id,
            email_verified: email.is_some() && who.email_verified,
            email,
            profile: profile_of(connection.strategy, &who.claims),
        }
    }

    /// The user ID of a user made from this account.
    pub(crate) fn user_id(&self) -> String {
        format!("{}|{}", self.provider, self.provider_user_id)
    }

    /// Auth0's `profileData`: what the provider said of the account.
    fn profile_data(&self) -> Value {
        let mut data = self.profile.clone();
        if let Some(email) = &self.email {
            data.insert("email".into(), json!(email));
            data.insert("email_verified".into(), json!(self.email_verified));
        }
        Value::Object(data)
    }

    fn identity_of(&self, user_id: &str, now: Timestamp) -> IdentityRow {
        IdentityRow {
            user_id: user_id.to_owned(),
            connection: self.connection.clone(),
            provider: self.provider.to_owned(),
            provider_user_id: self.provider_user_id.clone(),
            is_social: self.is_social,
            profile_data: self.profile_data(),
            created_at: now,
            updated_at: now,
        }
    }

    /// `user` (made from this account) with what the provider says now:
    /// its email and profile attributes, Auth0's root attributes kept in
    /// step with the provider at each login. Other profile keys stay.
    fn applied_to(&self, user: &UserRow, now: Timestamp) -> UserRow {
        let mut profile = match &user.profile {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        for key in PROFILE_KEYS {
            match self.profile.get(key) {
                Some(v) => profile.insert(key.into(), v.clone()),
                None => profile.remove(key),
            };
        }
        UserRow {
            email: self.email.clone().unwrap_or_default(),
            email_verified: self.email_verified,
            profile: Value::Object(profile),
            updated_at: now,
            ..user.clone()
        }
    }

    fn new_user(&self, now: Timestamp) -> UserRow {
        UserRow {
            user_id: self.user_id(),
            connection: self.connection.clone(),
            email: self.email.clone().unwrap_or_default(),
            email_verified: self.email_verified,
            password_hash: None,
            profile: Value::Object(self.profile.clone()),
            blocked: false,
            last_password_reset: None,
            created_at: now,
            updated_at: now,
            signed_up: false,
            seeded_password: None,
        }
    }
}

/// A profile value worth keeping: a short string without control
/// characters.
fn text(claims: &Map<String, Value>, key: &str) -> Option<Value> {
    claims
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= MAX_VALUE && !s.chars().any(char::is_control))
        .map(|s| Value::String(s.to_owned()))
}

/// The profile attributes in the provider's claims (or userinfo): OpenID's
/// names, GitHub's `login` and `avatar_url` for its nickname and picture.
fn profile_of(strategy: ConnectionStrategy, claims: &Map<String, Value>) -> Map<String, Value> {
    let mut profile = Map::new();
    for key in PROFILE_KEYS {
        if let Some(v) = text(claims, key) {
            profile.insert(key.into(), v);
        }
    }
    let fallbacks: &[(&str, &str)] = match strategy {
        ConnectionStrategy::Github => &[("nickname", "login"), ("picture", "avatar_url")],
        _ => &[("nickname", "preferred_username")],
    };
    for (key, from) in fallbacks {
        if !profile.contains_key(*key)
            && let Some(v) = text(claims, from)
        {
            profile.insert((*key).into(), v);
        }
    }
    profile
}

/// Whose login it is.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// Seen before: its user, with what the provider says now.
    Known(UserRow),
    /// Joined to the existing user with the same verified email.
    Linked(UserRow),
    /// A new user, made from it.
    Created(UserRow),
}

impl Resolved {
    pub(crate) fn user(&self) -> &UserRow {
        match self {
            Resolved::Known(u) | Resolved::Linked(u) | Resolved::Created(u) => u,
        }
    }
}

/// The user of `account`: found, linked or made. A blocked user is
/// refused before anything is written for them.
pub(crate) async fn resolve(
    core: &Core,
    tenant: &Tenant,
    connection: &Connection,
    account: &Account,
) -> Result<Resolved, LoginRefusal> {
    // A race with another login of the same new account loses at the
    // store's keys; the second look finds what the winner wrote.
    for _ in 0..2 {
        match resolve_once(core, tenant, connection, account).await {
            Err(LoginRefusal::Store(StoreError::Conflict(_))) => continue,
            outcome => return outcome,
        }
    }
    Err(LoginRefusal::Store(StoreError::Conflict(
        "the identity kept changing while it was looked up".into(),
    )))
}

async fn resolve_once(
    core: &Core,
    tenant: &Tenant,
    connection: &Connection,
    account: &Account,
) -> Result<Resolved, LoginRefusal> {
    let store = &core.store;
    let now = core.clock.now();
    let known = store
        .identity(&tenant.id, &account.connection, &account.provider_user_id)
        .await?;
    if let Some((identity, user)) = known {
        if user.blocked {
            return Err(LoginRefusal::Blocked(user.user_id));
        }
        let seen = IdentityRow {
            profile_data: account.profile_data(),
            updated_at: now,
            ..identity
        };
        // A user made from this account follows what its provider says; a
        // user it was joined to keeps their own.
        let own = user.user_id == account.user_id() && user.connection == account.connection;
        let user = if own {
            account.applied_to(&user, now)
        } else {
            user
        };
        store
            .update_identity(&tenant.id, &seen, own.then_some(&user))
            .await?;
        return Ok(Resolved::Known(user));
    }
    if let Some(user) = joinable(core, tenant, connection, account).await? {
        if user.blocked {
            return Err(LoginRefusal::Blocked(user.user_id));
        }
        store
            .add_identity(&tenant.id, &account.identity_of(&user.user_id, now))
            .await?;
        return Ok(Resolved::Linked(user));
    }
    let user = account.new_user(now);
    store
        .create_upstream_user(&tenant.id, &user, &account.identity_of(&user.user_id, now))
        .await?;
    Ok(Resolved::Created(user))
}

/// The existing user this account joins: only where the connection links
/// by verified email, the provider said the address is verified, and the
/// user's own address is verified too (an account that signed itself up
/// and never proved its address is never taken over). Of several such, the
/// oldest without an account of this connection already.
async fn joinable(
    core: &Core,
    tenant: &Tenant,
    connection: &Connection,
    account: &Account,
) -> Result<Option<UserRow>, StoreError> {
    let email = match &account.email {
        Some(e) if connection.link_by_verified_email && account.email_verified => e,
        _ => return Ok(None),
    };
    let candidates = core
        .store
        .users_with_verified_email(&tenant.id, email)
        .await?;
    for user in candidates {
        if !user.email_verified || !email_address::same(&user.email, email) {
            continue;
        }
        let identities = core.store.identities(&tenant.id, &user.user_id).await?;
        if user.connection == account.connection
            || identities
                .iter()
                .any(|i| i.connection == account.connection)
        {
            continue;
        }
        return Ok(Some(user));
    }
    Ok(None)
}

/// The user's `identities[]`, as Auth0's user profile lists them: the one
/// the user was made from first (the database identity of a user of a
/// database connection, or the provider's account), then the accounts
/// joined to it, oldest first; `profileData` on those the user was not made
/// from (the user's own attributes are at its root).
pub async fn identities(
    core: &Core,
    tenant: &Tenant,
    user: &UserRow,
) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    if tenant.database_connection(&user.connection).is_some() {
        let id = user.user_id.strip_prefix("auth0|").unwrap_or(&user.user_id);
        out.push(json!({
            "provider": "auth0",
            "user_id": id,
            "connection": user.connection,
            "isSocial": false,
        }));
    }
    let mut upstream = core.store.identities(&tenant.id, &user.user_id).await?;
    let own = |i: &IdentityRow| {
        user.connection == i.connection
            && user.user_id == format!("{}|{}", i.provider, i.provider_user_id)
    };
    // The identity the user was made from first, as Auth0 lists it.
    upstream.sort_by_key(|i| !own(i));
    for i in upstream {
        let own = own(&i);
        let mut entry = json!({
            "provider": i.provider,
            "user_id": i.provider_user_id,
            "connection": i.connection,
            "isSocial": i.is_social,
        });
        if !own {
            entry["profileData"] = i.profile_data;
        }
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::Connection;

    fn connection(name: &str, strategy: &str) -> Connection {
        serde_json::from_value(json!({
            "name": name, "strategy": strategy,
            "options": { "client_id": "c", "client_secret_env": "S" },
        }))
        .unwrap()
    }

    fn who(claims: Value) -> Identity {
        let claims = match claims {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        Identity {
            subject: claims["sub"].as_str().unwrap().to_owned(),
            email: claims
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_owned),
            email_verified: claims.get("email_verified") == Some(&json!(true)),
            claims,
        }
    }

    #[test]
    fn user_ids_in_auth0_form() {
        let claims = json!({"sub": "248289761001", "email": " Alice@IdP.test ", "email_verified": true,
            "name": "Alice", "preferred_username": "ali", "picture": "https://p.test/a.png"});
        let cases = [
            ("acme-idp", "oidc", "oidc|acme-idp|248289761001", false),
            ("custom", "oauth2", "oauth2|custom|248289761001", true),
            ("github", "github", "github|248289761001", true),
            (
                "google",
                "google-oauth2",
                "google-oauth2|248289761001",
                true,
            ),
            ("live", "windowslive", "windowslive|248289761001", true),
            ("apple", "apple", "apple|248289761001", true),
        ];
        for (name, strategy, user_id, social) in cases {
            let a = Account::of(&connection(name, strategy), &who(claims.clone()));
            assert_eq!((a.user_id().as_str(), a.is_social), (user_id, social));
            assert_eq!(a.provider, strategy);
        }
        let a = Account::of(&connection("acme-idp", "oidc"), &who(claims));
        assert_eq!(a.provider_user_id, "acme-idp|248289761001");
        assert_eq!(a.email.as_deref(), Some("Alice@IdP.test"));
        assert!(a.email_verified);
        assert_eq!(
            Value::Object(a.profile.clone()),
            json!({"name": "Alice", "nickname": "ali", "picture": "https://p.test/a.png"})
        );
        let u = a.new_user(7);
        assert_eq!(
            (
                u.email.as_str(),
                u.email_verified,
                u.password_hash,
                u.created_at
            ),
            ("Alice@IdP.test", true, None, 7)
        );
    }

    #[test]
    fn what_is_kept_of_a_profile() {
        // GitHub's login and avatar; an unusable email is none, and an
        // email the provider did not verify stays unverified.
        let gh = Account::of(
            &connection("github", "github"),
            &who(
                json!({"sub": "1", "login": "octocat", "avatar_url": "https://a.test/o",
                "email": "not an address", "email_verified": true, "name": "x\u{7}y"}),
            ),
        );
        assert_eq!(gh.email, None);
        assert!(!gh.email_verified);
        assert_eq!(
            Value::Object(gh.profile.clone()),
            json!({"nickname": "octocat", "picture": "https://a.test/o"})
        );
        let unverified = Account::of(
            &connection("idp", "oidc"),
            &who(
                json!({"sub": "2", "email": "m@idp.test", "email_verified": "true",
                "name": "y".repeat(MAX_VALUE + 1)}),
            ),
        );
        assert_eq!(unverified.email.as_deref(), Some("m@idp.test"));
        assert!(!unverified.email_verified);
        assert!(unverified.profile.is_empty());
        // A later login: the provider's attributes replace the old, other
        // keys stay.
        let mut user = unverified.new_user(1);
        user.profile =
            json!({"name": "Old", "picture": "https://old.test/", "user_metadata": {"a": 1}});
        let now = gh.applied_to(&user, 9);
        assert_eq!(
            now.profile,
            json!({"nickname": "octocat", "picture": "https://a.test/o", "user_metadata": {"a": 1}})
        );
        assert_eq!((now.email.as_str(), now.updated_at), ("", 9));
    }
}
