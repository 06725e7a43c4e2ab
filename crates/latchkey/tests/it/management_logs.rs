//! The Management API's `/logs`, `/logs/{id}` and `/users/{id}/logs`: the
//! tenant log in Auth0's log-entry shape, searched (`q` by type, user and
//! client; `sort` by date; `page`/`per_page`; `include_totals`; `fields`)
//! and read by checkpoint (`from` an entry, `take` the next ones in the
//! order written, the next read in `Link`), each behind `read:logs`, another
//! tenant's entries never found.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::management::*;
use crate::support::*;

/// A login, a wrong password and a few machine tokens: the log's events.
async fn some_events(s: &TestServer) {
    s.password_login("openid", None).await;
    let (status, _) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", "not-her-password"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.password_login("openid", None).await;
    s.password_login("openid", None).await;
}

fn types(logs: &Value) -> Vec<String> {
    logs.as_array()
        .unwrap()
        .iter()
        .map(|l| l["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_log_is_searched_sorted_and_paged_as_auth0_does() {
    let s = server().await;
    some_events(&s).await;
    let t = token(&s, "admin", "read:logs").await;
    // Everything, newest first, in Auth0's shape.
    let all = call(&s, "GET", "/logs", Some(&t), None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let newest = &all.body[0];
    for key in [
        "log_id",
        "type",
        "date",
        "client_id",
        "ip",
        "user_agent",
        "details",
    ] {
        assert!(newest.get(key).is_some(), "{key}: {newest}");
    }
    let login = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["type"] == "s")
        .unwrap();
    assert_eq!(login["user_id"], "auth0|alice");
    assert_eq!(login["connection"], "Username-Password-Authentication");
    assert_eq!(login["client_id"], "spa");
    assert!(login["date"].as_str().unwrap().ends_with('Z'), "{login}");
    let n = all.body.as_array().unwrap().len();
    assert!(n >= 4, "{}", all.body);

    // Oldest first.
    let asc = call(&s, "GET", "/logs?sort=date:1", Some(&t), None).await;
    let mut reversed = types(&all.body);
    reversed.reverse();
    assert_eq!(types(&asc.body), reversed);

    // By type, by user, both.
    let failed = call(&s, "GET", "/logs?q=type:fp", Some(&t), None).await;
    assert_eq!(types(&failed.body), ["fp"]);
    let alices = call(
        &s,
        "GET",
        "/logs?q=user_id:%22auth0%7Calice%22%20AND%20type:s",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(types(&alices.body), ["s", "s", "s"]);

    // Paged, with totals, cut to fields.
    let page = call(
        &s,
        "GET",
        "/logs?per_page=2&page=1&include_totals=true&fields=type,log_id&include_fields=true",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["start"], 2);
    assert_eq!(page.body["limit"], 2);
    assert_eq!(page.body["length"], 2);
    assert_eq!(page.body["total"], n);
    let first = page.body["logs"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["log_id", "type"]);
    assert_eq!(page.body["logs"][0]["log_id"], all.body[2]["log_id"]);

    // Refused, in Auth0's words and dialect.
    for (query, names) in [
        ("per_page=101", "per_page"),
        ("page=20&per_page=50", "1000"),
        ("q=description:hello", "description"),
        ("q=type:s%20OR%20type:f", "q"),
        ("sort=type:1", "sort"),
        ("take=5&colour=blue", "colour"),
    ] {
        let a = call(&s, "GET", &format!("/logs?{query}"), Some(&t), None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.body);
        let (code, message) = a.error();
        assert_eq!(code, "invalid_query_string", "{query}");
        assert!(message.contains(names), "{query}: {message}");
    }
}

#[tokio::test]
async fn a_checkpoint_reads_what_came_after_in_order_and_links_the_next_read() {
    let s = server().await;
    some_events(&s).await;
    let t = token(&s, "admin", "read:logs").await;
    let asc = call(&s, "GET", "/logs?sort=date:1", Some(&t), None).await;
    let ids: Vec<String> = asc
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["log_id"].as_str().unwrap().to_string())
        .collect();
    let read = call(
        &s,
        "GET",
        &format!("/logs?from={}&take=2&q=ignored:here", ids[0]),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let got: Vec<&str> = read
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["log_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[1].as_str(), ids[2].as_str()]);
    // Follow the links to the end: every later entry once, in order.
    let mut seen = got.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut link = read.header("link").unwrap().to_string();
    loop {
        let url = link
            .strip_prefix('<')
            .and_then(|l| l.split_once(">; rel=\"next\""))
            .map(|(u, _)| u.to_string())
            .unwrap_or_else(|| panic!("{link}"));
        assert!(
            url.starts_with(&format!("{}api/v2/logs?from=", s.issuer)),
            "{url}"
        );
        let res = s.http().get(&url).bearer_auth(&t).send().await.unwrap();
        let next_link = res.headers()["link"].to_str().unwrap().to_string();
        let body: Value = res.json().await.unwrap();
        let page = body.as_array().unwrap();
        if page.is_empty() {
            // At the end the next read is this one again.
            assert_eq!(next_link, link);
            break;
        }
        seen.extend(
            page.iter()
                .map(|l| l["log_id"].as_str().unwrap().to_string()),
        );
        link = next_link;
    }
    // The reads themselves may have logged nothing new; what is there was
    // all seen, once.
    assert_eq!(seen, ids[1..].to_vec());
    // An unknown checkpoint: nothing after it.
    let none = call(&s, "GET", "/logs?from=log_unknown&take=5", Some(&t), None).await;
    assert_eq!(none.body, json!([]));
    let bad = call(
        &s,
        "GET",
        &format!("/logs?from={}&take=101", ids[0]),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn one_entry_a_users_entries_scopes_and_other_tenants() {
    let s = server().await;
    some_events(&s).await;
    let t = token(&s, "admin", "read:logs").await;
    let all = call(&s, "GET", "/logs", Some(&t), None).await;
    let entry = &all.body[0];
    let id = entry["log_id"].as_str().unwrap();
    let one = call(&s, "GET", &format!("/logs/{id}"), Some(&t), None).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(&one.body, entry);
    let missing = call(&s, "GET", "/logs/log_nothing", Some(&t), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error().0, "inexistent_log");

    // A user's entries: theirs alone.
    let alices = call(&s, "GET", "/users/auth0%7Calice/logs", Some(&t), None).await;
    assert_eq!(alices.status, StatusCode::OK, "{}", alices.body);
    assert!(!alices.body.as_array().unwrap().is_empty());
    assert!(
        alices
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["user_id"] == "auth0|alice"),
        "{}",
        alices.body
    );

    // Without read:logs: refused, naming it.
    let users_only = token(&s, "admin", "read:users").await;
    let refused = call(&s, "GET", "/logs", Some(&users_only), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let (code, message) = refused.error();
    assert_eq!(code, "insufficient_scope");
    assert!(message.contains("read:logs"), "{message}");

    // The other tenant's token finds none of this tenant's entries.
    let other_token = {
        let audience = format!("{}/api/v2/", other_base(&s));
        let (status, body) =
            client_token(&s, &other_base(&s), "admin", &audience, Some("read:users")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    };
    let theirs = call_at(
        &s,
        &other_base(&s),
        "GET",
        &format!("/logs/{id}"),
        Some(&other_token),
        None,
    )
    .await;
    // Their grant has no read:logs: refused before anything is looked up.
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
}
