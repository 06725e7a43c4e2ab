//! Changes to a tenant's configuration made in code (what the Management API
//! does), beside tenant files: a change is checked by the rules a tenant file
//! is held to and written only if nobody changed the configuration meanwhile
//! (concurrent changes are all kept); what it made is recorded as the API's,
//! so applying a tenant file that does not list it keeps it, while a file that
//! lists it takes it over. A tenant file may not write that record.

use latchkey::tenant::edit::{EditError, edit};
use latchkey::tenant::{Client, ClientGrant, GrantKey, SubjectType, TenantFile};
use reqwest::StatusCode;

use crate::support::*;

/// The acme tenant's stored configuration and revision.
async fn stored(s: &TestServer) -> (TenantFile, i64) {
    let row = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    (serde_json::from_str(&row.config).unwrap(), row.revision)
}

/// A public client like the file's `spa`, named `id`.
fn client_like_spa(file: &TenantFile, id: &str) -> Client {
    let mut c = file
        .clients
        .iter()
        .find(|c| c.client_id == "spa")
        .unwrap()
        .clone();
    c.client_id = id.to_string();
    c.name = format!("Made through the API: {id}");
    c
}

/// Adds a client as the Management API would: made and recorded as its own.
async fn add_client(s: &TestServer, id: &str) {
    let id = id.to_string();
    edit(&s.state, "acme", |f| {
        if f.clients.iter().any(|c| c.client_id == id) {
            return Err("exists");
        }
        let c = client_like_spa(f, &id);
        f.clients.push(c);
        f.api_owned.clients.insert(id.clone());
        Ok(())
    })
    .await
    .unwrap();
}

/// Whether the tenant serves `client_id` at /authorize (the login page
/// rather than "Unknown client.").
async fn serves(s: &TestServer, client_id: &str) -> bool {
    let mut req = AuthRequest::new("openid");
    req.client_id = Box::leak(client_id.to_string().into_boxed_str());
    s.clock.advance(61); // past the tenant cache's lifetime
    let res = s.http().get(req.url(s)).send().await.unwrap();
    res.status() == StatusCode::OK
}

#[tokio::test]
async fn what_the_api_made_survives_a_file_that_does_not_list_it() {
    let s = TestServer::start().await;
    add_client(&s, "api-app").await;
    assert!(serves(&s, "api-app").await);
    let (before, _) = stored(&s).await;
    assert!(before.api_owned.clients.contains("api-app"));

    // The same file again: the client stays, still the API's.
    let report = latchkey::tenant::apply::apply_text(&s.state, &acme(s.port))
        .await
        .unwrap();
    assert_eq!(report.kept_from_api, 1);
    let (after, _) = stored(&s).await;
    assert_eq!(after.clients, before.clients);
    assert_eq!(after.api_owned, before.api_owned);
    assert!(serves(&s, "api-app").await);

    // A file that lists it takes it over: its version now, no longer the API's.
    let listed = acme(s.port).replace(
        "client_grants:\n",
        &format!(
            "  - {{ client_id: api-app, name: From the file, app_type: spa, callbacks: [\"{APP}/cb\"], \
             grant_types: [authorization_code] }}\nclient_grants:\n"
        ),
    );
    let report = latchkey::tenant::apply::apply_text(&s.state, &listed)
        .await
        .unwrap();
    assert_eq!(report.kept_from_api, 0);
    let (taken, _) = stored(&s).await;
    let app = taken.clients.iter().find(|c| c.client_id == "api-app");
    assert_eq!(app.unwrap().name, "From the file");
    assert!(taken.api_owned.is_empty(), "{:?}", taken.api_owned);
    // ...so a file without it removes it.
    latchkey::tenant::apply::apply_text(&s.state, &acme(s.port))
        .await
        .unwrap();
    let (gone, _) = stored(&s).await;
    assert!(!gone.clients.iter().any(|c| c.client_id == "api-app"));
    assert!(!serves(&s, "api-app").await);
}

#[tokio::test]
async fn a_change_that_breaks_the_rules_is_refused_and_nothing_is_written() {
    let s = TestServer::start().await;
    let (_, revision) = stored(&s).await;
    // A grant for a client that does not exist.
    let refused = edit(&s.state, "acme", |f| {
        f.client_grants.push(ClientGrant {
            client_id: "nobody".into(),
            audience: API.into(),
            subject_type: SubjectType::Client,
            scope: vec!["read:things".into()],
            allow_all_scopes: false,
        });
        Ok::<(), ()>(())
    })
    .await;
    let Err(EditError::Invalid(e)) = refused else {
        panic!("{refused:?}");
    };
    assert!(e.path.starts_with("client_grants"), "{e}");
    assert!(e.to_string().contains("nobody"), "{e}");
    // A change that refuses itself.
    let refused = edit(&s.state, "acme", |_| Err::<(), _>("no")).await;
    assert!(
        matches!(refused, Err(EditError::Refused("no"))),
        "{refused:?}"
    );
    // An unknown tenant.
    let none = edit(&s.state, "nobody", |_| Ok::<(), ()>(())).await;
    assert!(matches!(none, Err(EditError::NoTenant)), "{none:?}");
    assert_eq!(stored(&s).await.1, revision);
}

#[tokio::test]
async fn concurrent_changes_are_all_kept() {
    let s = TestServer::start().await;
    let ids: Vec<String> = (0..8).map(|i| format!("api-{i}")).collect();
    let changes = ids.iter().map(|id| add_client(&s, id));
    futures_join(changes).await;
    let (file, _) = stored(&s).await;
    for id in &ids {
        assert!(file.clients.iter().any(|c| &c.client_id == id), "{id}");
        assert!(file.api_owned.clients.contains(id), "{id}");
    }
}

/// Runs the futures at once, to completion.
async fn futures_join<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

#[tokio::test]
async fn a_file_that_breaks_what_the_api_made_is_refused() {
    let s = TestServer::start().await;
    // The API grants the file's `web` client access to the API.
    edit(&s.state, "acme", |f| {
        let grant = ClientGrant {
            client_id: "web".into(),
            audience: API.into(),
            subject_type: SubjectType::Client,
            scope: vec!["read:things".into()],
            allow_all_scopes: false,
        };
        f.api_owned.client_grants.insert(GrantKey::of(&grant));
        f.client_grants.push(grant);
        Ok::<(), ()>(())
    })
    .await
    .unwrap();
    let (before, revision) = stored(&s).await;
    // A file without `web`: the API's grant would name a client that is gone.
    let without_web = acme(s.port).replace(
        "  - { client_id: web, app_type: regular_web, client_secret: \"web-secret-value\",\n      \
         callbacks: [\"https://web.acme.test/callback\"], grant_types: [authorization_code, refresh_token] }\n",
        "",
    );
    assert_ne!(without_web, acme(s.port));
    let err = latchkey::tenant::apply::apply_text(&s.state, &without_web)
        .await
        .unwrap_err();
    assert!(err.contains("Management API"), "{err}");
    assert!(err.contains("web"), "{err}");
    assert_eq!(stored(&s).await, (before, revision));
}

#[tokio::test]
async fn a_tenant_file_may_not_write_the_apis_record() {
    let s = TestServer::start().await;
    let file = acme(s.port) + "api_owned: { clients: [spa] }\n";
    let err = latchkey::tenant::apply::apply_text(&s.state, &file)
        .await
        .unwrap_err();
    assert!(err.contains("api_owned"), "{err}");
    assert!(err.contains("Management API"), "{err}");
}
