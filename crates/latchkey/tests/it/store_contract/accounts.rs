//! The store contract of connected accounts and their connect
//! transactions: each stage taken once, expiry, attempts, one provider
//! account a tenant, paging, and the version and hold a Token Vault
//! refresh is stored under. Each contract `x` runs on both backends, as
//! `accounts::x::sqlite` and `accounts::x::postgres`.

use latchkey::store::{
    AccountCursor, AccountStatus, ConnectRow, ConnectStage, ConnectedAccountRow, FinishConnect,
    RefreshedTokens, SealedTokens,
};

use super::*;

contract!(
    connect_transactions,
    finish_connect,
    race_finish_connect,
    listing_accounts,
    race_claim_refresh,
    release_refresh,
    account_by_subject,
    sweep_connect_transactions,
);

fn transaction(user_id: &str, expires_at: Timestamp) -> ConnectRow {
    ConnectRow {
        user_id: user_id.into(),
        client_id: "spa".into(),
        connection: "idp".into(),
        host: "login.acme.test".into(),
        redirect_uri: "https://app.test/cb".into(),
        app_state: Some("app-state".into()),
        code_challenge: Some("c".repeat(43)),
        scopes: vec!["openid".into(), "read:things".into()],
        authorization_params: vec![("login_hint".into(), "bob@idp.test".into())],
        stage: ConnectStage::Created,
        state_digest: None,
        browser_digest: None,
        sealed_upstream: None,
        code_digest: None,
        sealed_result: None,
        attempts: 0,
        created_at: T,
        expires_at,
    }
}

fn account(
    id: &str,
    user_id: &str,
    connection: &str,
    subject: &str,
    at: Timestamp,
) -> ConnectedAccountRow {
    ConnectedAccountRow {
        id: id.into(),
        user_id: user_id.into(),
        connection: connection.into(),
        subject: subject.into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        tokens: SealedTokens {
            access_token: Some(format!("sealed-at-{id}")),
            access_expires_at: Some(at + 3600),
            refresh_token: Some(format!("sealed-rt-{id}")),
            refresh_expires_at: None,
            id_token: Some(format!("sealed-it-{id}")),
        },
        status: AccountStatus::Active,
        version: 0,
        refresh_lock_until: None,
        created_at: at,
        updated_at: at,
    }
}

/// A tenant with users u1 and u2.
async fn tenant_with_users(s: &S) -> String {
    let t = tenant(s, "acme").await;
    s.upsert_user(&t, &user("u1", "u1@example.com"))
        .await
        .unwrap();
    s.upsert_user(&t, &user("u2", "u2@example.com"))
        .await
        .unwrap();
    t
}

/// Account `cac_1` of u1, which must be there.
async fn held(s: &S, t: &str) -> ConnectedAccountRow {
    s.connected_account(t, "u1", "cac_1")
        .await
        .unwrap()
        .unwrap()
}

/// A transaction taken to `returned`, its connect code's digest `code`.
async fn returned(s: &S, t: &str, session: &str, user_id: &str, code: &str) {
    let ticket = format!("ticket-{session}");
    s.create_connect(t, session, &ticket, &transaction(user_id, T + 300))
        .await
        .unwrap();
    assert!(
        s.connect_redirected(
            t,
            session,
            &format!("state-{session}"),
            "browser",
            "sealed",
            T + 900,
            T
        )
        .await
        .unwrap()
    );
    assert!(s.claim_connect_callback(t, session, T).await.unwrap());
    assert!(
        s.connect_returned(t, session, code, "sealed-result", T + 300)
            .await
            .unwrap()
    );
}

mod bodies {
    use super::*;

    pub async fn connect_transactions(s: S) {
        let t = tenant_with_users(&s).await;
        let row = transaction("u1", T + 300);
        s.create_connect(&t, "sess", "ticket", &row).await.unwrap();
        // The ticket finds it while unused and alive, in this tenant only.
        let (session, found) = s.connect_by_ticket(&t, "ticket", T).await.unwrap().unwrap();
        assert_eq!((session.as_str(), &found), ("sess", &row));
        assert!(
            s.connect_by_ticket(&t, "ticket", T + 300)
                .await
                .unwrap()
                .is_none()
        );
        let other = tenant(&s, "other").await;
        assert!(
            s.connect_by_ticket(&other, "ticket", T)
                .await
                .unwrap()
                .is_none()
        );
        // Used once: the browser goes upstream with its state.
        assert!(
            !s.connect_redirected(
                &t,
                "sess",
                "state",
                "browser",
                "sealed-up",
                T + 900,
                T + 300
            )
            .await
            .unwrap(),
            "expired"
        );
        assert!(
            s.connect_redirected(&t, "sess", "state", "browser", "sealed-up", T + 900, T)
                .await
                .unwrap()
        );
        assert!(
            !s.connect_redirected(&t, "sess", "state2", "browser2", "x", T + 900, T)
                .await
                .unwrap(),
            "a ticket is used once"
        );
        assert!(
            s.connect_by_ticket(&t, "ticket", T)
                .await
                .unwrap()
                .is_none()
        );
        let (session, found) = s
            .connect_by_state(&t, "state", T + 899)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session, "sess");
        assert_eq!(found.stage, ConnectStage::Redirected);
        assert_eq!(found.expires_at, T + 900);
        assert_eq!(
            (
                found.state_digest.as_deref(),
                found.browser_digest.as_deref(),
                found.sealed_upstream.as_deref()
            ),
            (Some("state"), Some("browser"), Some("sealed-up"))
        );
        assert!(
            s.connect_by_state(&t, "state", T + 900)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.connect_by_state(&other, "state", T)
                .await
                .unwrap()
                .is_none()
        );
        // The callback is claimed once, then its result stored.
        assert!(s.claim_connect_callback(&t, "sess", T).await.unwrap());
        assert!(!s.claim_connect_callback(&t, "sess", T).await.unwrap());
        assert!(s.connect_by_state(&t, "state", T).await.unwrap().is_none());
        assert!(
            s.connect_returned(&t, "sess", "code", "sealed-result", T + 300)
                .await
                .unwrap()
        );
        assert!(
            !s.connect_returned(&t, "sess", "code2", "x", T + 300)
                .await
                .unwrap()
        );
        let found = s.connect(&t, "sess", T).await.unwrap().unwrap();
        assert_eq!(found.stage, ConnectStage::Returned);
        assert_eq!(
            (found.code_digest.as_deref(), found.sealed_result.as_deref()),
            (Some("code"), Some("sealed-result"))
        );
        assert_eq!(found.authorization_params, row.authorization_params);
        // Wrong answers count; the last one ends it.
        assert_eq!(s.connect_failed(&t, "sess", 3).await.unwrap(), 2);
        assert_eq!(s.connect(&t, "sess", T).await.unwrap().unwrap().attempts, 1);
        assert_eq!(s.connect_failed(&t, "sess", 3).await.unwrap(), 1);
        assert_eq!(s.connect_failed(&t, "sess", 3).await.unwrap(), 0);
        assert!(s.connect(&t, "sess", T).await.unwrap().is_none());
        // Deleting one that is gone is no error.
        s.delete_connect(&t, "sess").await.unwrap();
        s.create_connect(&t, "sess2", "ticket2", &row)
            .await
            .unwrap();
        s.delete_connect(&t, "sess2").await.unwrap();
        assert!(s.connect(&t, "sess2", T).await.unwrap().is_none());
    }

    pub async fn finish_connect(s: S) {
        let t = tenant_with_users(&s).await;
        returned(&s, &t, "s1", "u1", "code1").await;
        let a = account("cac_1", "u1", "idp", "sub-bob", T);
        // Not with another code, nor once expired.
        assert_eq!(
            s.finish_connect(&t, "s1", "code-other", &a, T)
                .await
                .unwrap(),
            FinishConnect::Gone
        );
        assert_eq!(
            s.finish_connect(&t, "s1", "code1", &a, T + 300)
                .await
                .unwrap(),
            FinishConnect::Gone
        );
        assert_eq!(
            s.finish_connect(&t, "s1", "code1", &a, T).await.unwrap(),
            FinishConnect::Done(Box::new(a.clone()))
        );
        assert!(s.connect(&t, "s1", T).await.unwrap().is_none(), "consumed");
        assert_eq!(
            s.finish_connect(&t, "s1", "code1", &a, T).await.unwrap(),
            FinishConnect::Gone,
            "a connect code is used once"
        );
        assert_eq!(
            s.connected_account(&t, "u1", "cac_1").await.unwrap(),
            Some(a.clone())
        );
        // The same provider account again: the same account, new tokens.
        returned(&s, &t, "s2", "u1", "code2").await;
        let mut again = account("cac_new", "u1", "idp", "sub-bob", T + 10);
        again.scopes = vec!["openid".into()];
        again.tokens.access_token = Some("sealed-at-2".into());
        let FinishConnect::Done(stored) = s
            .finish_connect(&t, "s2", "code2", &again, T + 10)
            .await
            .unwrap()
        else {
            panic!("not done");
        };
        assert_eq!(
            (stored.id.as_str(), stored.created_at, stored.version),
            ("cac_1", T, 1)
        );
        assert_eq!(stored.updated_at, T + 10);
        assert_eq!(stored.scopes, ["openid"]);
        assert_eq!(
            s.connected_account(&t, "u1", "cac_1").await.unwrap(),
            Some(*stored)
        );
        assert!(
            s.connected_account(&t, "u1", "cac_new")
                .await
                .unwrap()
                .is_none()
        );
        // Another user's provider account: a conflict, nothing written or
        // consumed.
        returned(&s, &t, "s3", "u2", "code3").await;
        let theirs = account("cac_3", "u2", "idp", "sub-bob", T);
        assert_eq!(
            s.finish_connect(&t, "s3", "code3", &theirs, T)
                .await
                .unwrap(),
            FinishConnect::Conflict
        );
        assert!(s.connect(&t, "s3", T).await.unwrap().is_some());
        assert!(
            s.connected_account(&t, "u2", "cac_3")
                .await
                .unwrap()
                .is_none()
        );
        // Another subject, or the same subject of another connection, is
        // another account.
        let other = account("cac_4", "u2", "gh", "sub-bob", T);
        assert!(matches!(
            s.finish_connect(&t, "s3", "code3", &other, T)
                .await
                .unwrap(),
            FinishConnect::Done(_)
        ));
    }

    pub async fn race_finish_connect(s: S) {
        let t = tenant_with_users(&s).await;
        returned(&s, &t, "s1", "u1", "code").await;
        let outcomes = race(|i| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                let a = account(&format!("cac_{i}"), "u1", "idp", "sub", T);
                s.finish_connect(&t, "s1", "code", &a, T).await.unwrap()
            }
        })
        .await;
        let done = outcomes
            .iter()
            .filter(|o| matches!(o, FinishConnect::Done(_)))
            .count();
        assert_eq!(done, 1, "{outcomes:?}");
        let listed = s.connected_accounts(&t, "u1", &[], None, 50).await.unwrap();
        assert_eq!(listed.len(), 1);
    }

    pub async fn listing_accounts(s: S) {
        let t = tenant_with_users(&s).await;
        let mut n = 0;
        let mut add =
            |user: &'static str, id: &'static str, connection: &'static str, at: Timestamp| {
                n += 1;
                let s = s.clone();
                let t = t.clone();
                let session = format!("s{n}");
                let code = format!("c{n}");
                async move {
                    returned(&s, &t, &session, user, &code).await;
                    let a = account(id, user, connection, &format!("sub-{id}"), at);
                    assert!(matches!(
                        s.finish_connect(&t, &session, &code, &a, T).await.unwrap(),
                        FinishConnect::Done(_)
                    ));
                }
            };
        add("u1", "cac_b", "idp", T).await;
        add("u1", "cac_a", "idp", T).await;
        add("u1", "cac_c", "gh", T + 5).await;
        add("u1", "cac_0", "gh", T - 5).await;
        add("u2", "cac_z", "idp", T).await;
        let ids =
            |rows: Vec<ConnectedAccountRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = s.connected_accounts(&t, "u1", &[], None, 50).await.unwrap();
        assert_eq!(ids(all.clone()), ["cac_0", "cac_a", "cac_b", "cac_c"]);
        // Page by page from a cursor, even one whose account has gone.
        let first = s.connected_accounts(&t, "u1", &[], None, 2).await.unwrap();
        assert_eq!(ids(first.clone()), ["cac_0", "cac_a"]);
        let cursor = AccountCursor {
            created_at: first[1].created_at,
            id: first[1].id.clone(),
        };
        assert!(
            s.delete_connected_account(&t, "u1", "cac_a")
                .await
                .unwrap()
                .is_some()
        );
        let next = s
            .connected_accounts(&t, "u1", &[], Some(&cursor), 2)
            .await
            .unwrap();
        assert_eq!(ids(next), ["cac_b", "cac_c"]);
        // Filtered by connections.
        let gh = s
            .connected_accounts(&t, "u1", &["gh".into()], None, 50)
            .await
            .unwrap();
        assert_eq!(ids(gh), ["cac_0", "cac_c"]);
        let both = s
            .connected_accounts(
                &t,
                "u1",
                &["gh".into(), "idp".into(), "nope".into()],
                None,
                50,
            )
            .await
            .unwrap();
        assert_eq!(ids(both), ["cac_0", "cac_b", "cac_c"]);
        // Only the user's own, by ID as by listing.
        assert!(
            s.connected_account(&t, "u2", "cac_b")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.delete_connected_account(&t, "u2", "cac_b")
                .await
                .unwrap()
                .is_none()
        );
        let gone = s
            .delete_connected_account(&t, "u1", "cac_b")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            gone.tokens.refresh_token.as_deref(),
            Some("sealed-rt-cac_b")
        );
        assert!(
            s.delete_connected_account(&t, "u1", "cac_b")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            ids(s.connected_accounts(&t, "u2", &[], None, 50).await.unwrap()),
            ["cac_z"]
        );
    }

    pub async fn race_claim_refresh(s: S) {
        let t = tenant_with_users(&s).await;
        returned(&s, &t, "s1", "u1", "code").await;
        let a = account("cac_1", "u1", "idp", "sub", T);
        s.finish_connect(&t, "s1", "code", &a, T).await.unwrap();
        let wins = race(|_| {
            let (s, t) = (s.clone(), t.clone());
            async move { s.claim_refresh(&t, "cac_1", 0, T, T + 30).await.unwrap() }
        })
        .await;
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
        let row = held(&s, &t).await;
        assert_eq!(row.refresh_lock_until, Some(T + 30));
        // Nobody else takes it while held; anyone may once the hold passed.
        assert!(
            !s.claim_refresh(&t, "cac_1", 0, T + 29, T + 60)
                .await
                .unwrap()
        );
        assert!(
            s.claim_refresh(&t, "cac_1", 0, T + 30, T + 60)
                .await
                .unwrap()
        );
        let refreshed = RefreshedTokens {
            tokens: SealedTokens {
                access_token: Some("sealed-at-2".into()),
                access_expires_at: Some(T + 7200),
                refresh_token: Some("sealed-rt-2".into()),
                refresh_expires_at: None,
                id_token: None,
            },
            status: AccountStatus::Active,
        };
        assert!(
            s.store_refresh(&t, "cac_1", 0, &refreshed, T + 31)
                .await
                .unwrap()
        );
        assert!(
            !s.store_refresh(&t, "cac_1", 0, &refreshed, T + 31)
                .await
                .unwrap(),
            "stored over the version it started from only"
        );
        let now = held(&s, &t).await;
        assert_eq!(
            (now.version, now.refresh_lock_until, now.updated_at),
            (1, None, T + 31)
        );
        assert_eq!(now.tokens, refreshed.tokens);
        // A claim for an old version loses.
        assert!(
            !s.claim_refresh(&t, "cac_1", 0, T + 40, T + 70)
                .await
                .unwrap()
        );
        // The provider refused: the mark is stored the same way.
        let revoked = RefreshedTokens {
            tokens: SealedTokens::default(),
            status: AccountStatus::Revoked,
        };
        assert!(
            s.claim_refresh(&t, "cac_1", 1, T + 40, T + 70)
                .await
                .unwrap()
        );
        assert!(
            s.store_refresh(&t, "cac_1", 1, &revoked, T + 41)
                .await
                .unwrap()
        );
        let now = held(&s, &t).await;
        assert_eq!(
            (now.status, now.tokens),
            (AccountStatus::Revoked, SealedTokens::default())
        );
    }

    pub async fn release_refresh(s: S) {
        let t = tenant_with_users(&s).await;
        returned(&s, &t, "s1", "u1", "code").await;
        let a = account("cac_1", "u1", "idp", "sub", T);
        s.finish_connect(&t, "s1", "code", &a, T).await.unwrap();
        assert!(s.claim_refresh(&t, "cac_1", 0, T, T + 30).await.unwrap());
        // Only the hold taken, over the version it was taken on.
        assert!(!s.release_refresh(&t, "cac_1", 0, T + 31).await.unwrap());
        assert!(!s.release_refresh(&t, "cac_1", 1, T + 30).await.unwrap());
        assert!(!s.release_refresh(&t, "cac_2", 0, T + 30).await.unwrap());
        assert!(s.release_refresh(&t, "cac_1", 0, T + 30).await.unwrap());
        let now = held(&s, &t).await;
        assert_eq!(
            (now.version, now.refresh_lock_until, &now.tokens),
            (0, None, &a.tokens),
            "nothing but the hold changed"
        );
        assert!(!s.release_refresh(&t, "cac_1", 0, T + 30).await.unwrap());
        // Released, the next claim is anyone's at once.
        assert!(
            s.claim_refresh(&t, "cac_1", 0, T + 1, T + 31)
                .await
                .unwrap()
        );
        // A hold that passed and was taken by another is not given up.
        assert!(
            s.claim_refresh(&t, "cac_1", 0, T + 31, T + 61)
                .await
                .unwrap()
        );
        assert!(!s.release_refresh(&t, "cac_1", 0, T + 31).await.unwrap());
        assert_eq!(held(&s, &t).await.refresh_lock_until, Some(T + 61));
    }

    pub async fn account_by_subject(s: S) {
        let t = tenant_with_users(&s).await;
        for (n, (user, id, connection, subject)) in [
            ("u1", "cac_a", "idp", "alice"),
            ("u1", "cac_b", "idp", "alice-work"),
            ("u1", "cac_c", "gh", "alice"),
            ("u2", "cac_d", "idp", "bob"),
        ]
        .into_iter()
        .enumerate()
        {
            let (session, code) = (format!("s{n}"), format!("c{n}"));
            returned(&s, &t, &session, user, &code).await;
            let a = account(id, user, connection, subject, T);
            s.finish_connect(&t, &session, &code, &a, T).await.unwrap();
        }
        let found = |user: &'static str, connection: &'static str, subject: &'static str| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                s.connected_account_by_subject(&t, user, connection, subject)
                    .await
                    .unwrap()
                    .map(|a| a.id)
            }
        };
        assert_eq!(found("u1", "idp", "alice").await.as_deref(), Some("cac_a"));
        assert_eq!(
            found("u1", "idp", "alice-work").await.as_deref(),
            Some("cac_b")
        );
        assert_eq!(found("u1", "gh", "alice").await.as_deref(), Some("cac_c"));
        // Never another user's, another connection's, or a prefix.
        assert_eq!(found("u1", "idp", "bob").await, None);
        assert_eq!(found("u2", "idp", "alice").await, None);
        assert_eq!(found("u1", "gh", "alice-work").await, None);
        assert_eq!(found("u1", "idp", "alic").await, None);
        let other = tenant(&s, "other").await;
        assert!(
            s.connected_account_by_subject(&other, "u1", "idp", "alice")
                .await
                .unwrap()
                .is_none()
        );
    }

    pub async fn sweep_connect_transactions(s: S) {
        let t = tenant_with_users(&s).await;
        s.create_connect(&t, "old", "t-old", &transaction("u1", T - 1))
            .await
            .unwrap();
        s.create_connect(&t, "live", "t-live", &transaction("u1", T + 300))
            .await
            .unwrap();
        let swept = s.sweep_expired(&t, T, 0, 100).await.unwrap();
        assert_eq!(swept.connect_transactions, 1);
        assert!(s.connect(&t, "live", T).await.unwrap().is_some());
        let swept = s.sweep_expired(&t, T + 300, 0, 100).await.unwrap();
        assert_eq!(swept.connect_transactions, 1);
    }
}
