//! `GET /users` and `GET /users-by-email`: pages with and without totals,
//! `sort`, `fields`, the Lucene subset of `q` (each query latchkey cannot
//! run refused by name), Auth0's limits, and one tenant's users only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::management::*;
use crate::support::*;

const DB: &str = "Username-Password-Authentication";

/// Ten users beside Alice, one created a second, in `Usernames` for the
/// odd ones; the odd ones' emails verified.
async fn seed(s: &TestServer, t: &str) {
    for i in 0..10 {
        s.clock.advance(1);
        let mut body = json!({
            "connection": if i % 2 == 1 { "Usernames" } else { DB },
            "email": format!("user{i}@{}", if i < 5 { "one.test" } else { "Two.Test" }),
            "password": "a-long-password-1",
            "user_id": format!("u{i:02}"),
            "name": format!("Person {}", 9 - i),
            "email_verified": i % 2 == 1,
        });
        if i % 2 == 1 {
            body["username"] = json!(format!("name{i}"));
        }
        create(s, t, body).await;
    }
}

fn ids(v: &Value) -> Vec<String> {
    let list = v.get("users").unwrap_or(v);
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap().to_string())
        .collect()
}

async fn get(s: &TestServer, t: &str, query: &str) -> Answer {
    call(s, "GET", &format!("/users{query}"), Some(t), None).await
}

#[tokio::test]
async fn pages_totals_sorts_and_fields() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    seed(&s, &t).await;

    // Without include_totals: an array, oldest first, 50 a page.
    let a = get(&s, &t, "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let all = ids(&a.body);
    assert_eq!(all.len(), 11);
    assert_eq!(all[0], "auth0|alice");
    assert_eq!(all[1], "auth0|u00");
    assert_eq!(all[10], "auth0|u09");

    // Pages with totals.
    let a = get(&s, &t, "?per_page=4&page=1&include_totals=true").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["start"], 4);
    assert_eq!(a.body["limit"], 4);
    assert_eq!(a.body["length"], 4);
    assert_eq!(a.body["total"], 11);
    assert_eq!(ids(&a.body), all[4..8].to_vec());
    let a = get(&s, &t, "?per_page=4&page=2&include_totals=true").await;
    assert_eq!(a.body["length"], 3);
    assert_eq!(ids(&a.body), all[8..].to_vec());
    let a = get(&s, &t, "?per_page=4&page=9&include_totals=true").await;
    assert_eq!(a.body["length"], 0);
    assert_eq!(a.body["total"], 11);

    // Sorted.
    let a = get(&s, &t, "?sort=created_at:-1").await;
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(ids(&a.body), reversed);
    let a = get(&s, &t, "?sort=name:1&per_page=3").await;
    assert_eq!(ids(&a.body), ["auth0|alice", "auth0|u09", "auth0|u08"]);
    let a = get(&s, &t, "?sort=email:1&per_page=2").await;
    assert_eq!(ids(&a.body), ["auth0|alice", "auth0|u00"]);

    // Cut to fields.
    let a = get(&s, &t, "?fields=user_id,email&per_page=1").await;
    assert_eq!(
        a.body,
        json!([{"user_id": "auth0|alice", "email": "alice@example.com"}])
    );
}

#[tokio::test]
async fn queries_find_what_they_say() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    seed(&s, &t).await;
    let q = |q: &str| format!("?q={}&search_engine=v3", urlencode(q));
    for (query, expected) in [
        ("email:\"USER3@one.test\"", vec!["auth0|u03"]),
        ("email:user7@two.test", vec!["auth0|u07"]),
        ("user_id:\"auth0|u04\"", vec!["auth0|u04"]),
        (
            "user_id:auth0|u0*",
            vec![
                "auth0|u00",
                "auth0|u01",
                "auth0|u02",
                "auth0|u03",
                "auth0|u04",
                "auth0|u05",
                "auth0|u06",
                "auth0|u07",
                "auth0|u08",
                "auth0|u09",
            ],
        ),
        (
            "identities.connection:\"Usernames\"",
            vec![
                "auth0|u01",
                "auth0|u03",
                "auth0|u05",
                "auth0|u07",
                "auth0|u09",
            ],
        ),
        (
            "identities.connection:\"Usernames\" AND email.domain:\"two.test\"",
            vec!["auth0|u05", "auth0|u07", "auth0|u09"],
        ),
        (
            "email:*@one.test AND NOT email_verified:true",
            vec!["auth0|u00", "auth0|u02", "auth0|u04"],
        ),
        (
            "email:\"user1@one.test\" OR username:NAME9",
            vec!["auth0|u01", "auth0|u09"],
        ),
        (
            "email:\"user1@one.test\" email:\"user2@one.test\"",
            vec!["auth0|u01", "auth0|u02"],
        ),
        ("name:\"person 3\"", vec!["auth0|u06"]),
        (
            "name:person*",
            vec![
                "auth0|u00",
                "auth0|u01",
                "auth0|u02",
                "auth0|u03",
                "auth0|u04",
                "auth0|u05",
                "auth0|u06",
                "auth0|u07",
                "auth0|u08",
                "auth0|u09",
            ],
        ),
        (
            "username:* AND email.domain:one.test",
            vec!["auth0|u01", "auth0|u03"],
        ),
        (
            "(user_id:\"auth0|alice\" OR user_id:\"auth0|u00\") AND -blocked:true",
            vec!["auth0|alice", "auth0|u00"],
        ),
        ("email:\"nobody@example.com\"", vec![]),
    ] {
        let a = get(&s, &t, &q(query)).await;
        assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.body);
        assert_eq!(ids(&a.body), expected, "{query}");
    }
    // Totals count what the query finds.
    let a = get(
        &s,
        &t,
        &format!(
            "{}&include_totals=true&per_page=1",
            q("email.domain:two.test")
        ),
    )
    .await;
    assert_eq!(a.body["total"], 5);
    assert_eq!(a.body["length"], 1);
}

#[tokio::test]
async fn what_cannot_be_run_is_a_400_naming_it() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    for (query, says) in [
        ("?q=jane", "has no field"),
        (
            "?q=app_metadata.plan%3Agold",
            "app_metadata.plan cannot be searched",
        ),
        ("?q=logins_count%3A%5B1%20TO%205%5D", "Range queries"),
        ("?q=name%3A*son", "wildcard search"),
        ("?q=email%3A%22open", "not closed"),
        ("?sort=logins_count%3A1", "logins_count"),
        ("?sort=created_at", "field:1"),
        ("?per_page=101", "per_page"),
        ("?per_page=0", "per_page"),
        ("?per_page=ten", "Expected type integer"),
        ("?page=-1", "page"),
        ("?page=10&per_page=100", "first 1000 records"),
        ("?include_totals=yes", "Expected type boolean"),
        ("?search_engine=v2", "v3 only"),
        ("?connection=Usernames", "identities.connection"),
        ("?color=red", "Additional properties not allowed: color"),
        ("?q=a&q=b", "single value"),
    ] {
        let a = get(&s, &t, query).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.body);
        let (code, message) = a.error();
        assert!(code == "invalid_query_string", "{query}: {code} {message}");
        assert!(message.contains(says), "{query}: {message}");
    }
}

#[tokio::test]
async fn users_by_email_ignores_case_and_stays_in_its_tenant() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    create(
        &s,
        &t,
        json!({"connection": "Usernames", "email": "Alice@Example.COM", "username": "alice2",
               "password": "a-long-password-1", "user_id": "alice-too"}),
    )
    .await;
    let a = call(
        &s,
        "GET",
        "/users-by-email?email=ALICE%40example.com",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(ids(&a.body), ["auth0|alice", "auth0|alice-too"]);
    assert_eq!(a.body[1]["email"], "Alice@Example.COM");
    let a = call(
        &s,
        "GET",
        "/users-by-email?email=alice%40example.com&fields=user_id",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(
        a.body,
        json!([{"user_id": "auth0|alice"}, {"user_id": "auth0|alice-too"}])
    );
    // The other tenant's users are not this tenant's.
    let a = call(
        &s,
        "GET",
        "/users-by-email?email=carol%40example.com",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body, json!([]));
    let a = call(
        &s,
        "GET",
        "/users?q=email%3Acarol%40example.com",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body, json!([]));
    // No email: Auth0's refusal.
    let a = call(&s, "GET", "/users-by-email", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error().0, "invalid_query_string");
    // Reading needs read:users.
    let writer = token(&s, "admin", "create:users").await;
    let a = call(
        &s,
        "GET",
        "/users-by-email?email=a%40b.c",
        Some(&writer),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = call(&s, "GET", "/users", Some(&writer), None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.error().0, "insufficient_scope");
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
