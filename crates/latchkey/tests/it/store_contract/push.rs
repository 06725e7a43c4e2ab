//! The store contract of push-notification logins' transactions: found by
//! each key in its tenant only, resolved once while pending and unexpired
//! (of racing resolutions one wins), polled no more often than asked,
//! consumed once when approved, swept when expired. Each contract `x` runs
//! on both backends, as `push::x::sqlite` and `push::x::postgres`.

use latchkey::store::{PushKey, PushStatus, PushTransactionRow};

use super::*;

contract!(
    push_transactions,
    push_resolution,
    push_polls_and_consumption,
    race_resolve_push_transaction,
    race_consume_push_transaction,
);

fn push_tx(id: &str, login: &str, created_at: Timestamp) -> PushTransactionRow {
    PushTransactionRow {
        id: id.into(),
        user_id: "u1".into(),
        method_id: "push-notification|dev_0123456789abcdef".into(),
        client_id: "spa".into(),
        login_digest: login.into(),
        token_digest: format!("token-{id}"),
        challenge_digest: format!("challenge-{id}"),
        oob_digest: format!("oob-{id}"),
        binding_code: Some("42".into()),
        status: PushStatus::Pending,
        reason: None,
        context: json!({ "application": "Acme", "ip": "203.0.113.9" }),
        created_at,
        expires_at: created_at + 300,
        polled_at: None,
        resolved_at: None,
        consumed_at: None,
    }
}

async fn with_user(s: &S) -> (String, String) {
    let t = tenant(s, "acme").await;
    let other = tenant(s, "other").await;
    s.upsert_user(&t, &user("u1", "u1@example.com"))
        .await
        .unwrap();
    (t, other)
}

mod bodies {
    use super::*;

    pub async fn push_transactions(s: S) {
        let (t, other) = with_user(&s).await;
        let first = push_tx("tx1", "login-a", T);
        let again = PushTransactionRow {
            binding_code: None,
            ..push_tx("tx2", "login-a", T + 10)
        };
        s.create_push_transaction(&t, &first).await.unwrap();
        s.create_push_transaction(&t, &again).await.unwrap();
        for by in [
            PushKey::Id("tx1"),
            PushKey::Token("token-tx1"),
            PushKey::Oob("oob-tx1"),
        ] {
            assert_eq!(
                s.push_transaction(&t, by).await.unwrap(),
                Some(first.clone())
            );
            // Another tenant's: none.
            assert_eq!(s.push_transaction(&other, by).await.unwrap(), None);
        }
        // The login's newest.
        assert_eq!(
            s.push_transaction(&t, PushKey::Login("login-a"))
                .await
                .unwrap(),
            Some(again.clone())
        );
        assert_eq!(
            s.push_transaction(&t, PushKey::Login("login-b"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.push_transaction(&t, PushKey::Token("oob-tx1"))
                .await
                .unwrap(),
            None
        );
        // Read whatever its expiry.
        assert_eq!(
            s.push_transaction(&t, PushKey::Id("tx1"))
                .await
                .unwrap()
                .map(|r| r.expires_at),
            Some(T + 300)
        );
        // A token is one transaction's.
        let clash = PushTransactionRow {
            token_digest: "token-tx1".into(),
            ..push_tx("tx3", "login-c", T)
        };
        assert!(s.create_push_transaction(&t, &clash).await.is_err());
        assert_eq!(
            s.push_transaction(&t, PushKey::Id("tx3")).await.unwrap(),
            None
        );
        // Swept once expired.
        let swept = s.sweep_expired(&t, T + 300, 0, 100).await.unwrap();
        assert_eq!(swept.push_transactions, 1);
        assert_eq!(
            s.push_transaction(&t, PushKey::Id("tx1")).await.unwrap(),
            None
        );
        assert!(
            s.push_transaction(&t, PushKey::Id("tx2"))
                .await
                .unwrap()
                .is_some()
        );
    }

    pub async fn push_resolution(s: S) {
        let (t, other) = with_user(&s).await;
        s.create_push_transaction(&t, &push_tx("tx1", "l", T))
            .await
            .unwrap();
        s.create_push_transaction(&t, &push_tx("tx2", "l", T))
            .await
            .unwrap();
        // Another tenant's, unknown, expired: nothing changes.
        for (tenant, id, now) in [(&other, "tx1", T), (&t, "tx9", T), (&t, "tx1", T + 300)] {
            assert!(
                !s.resolve_push_transaction(tenant, id, PushStatus::Approved, None, now)
                    .await
                    .unwrap()
            );
        }
        assert_eq!(
            s.push_transaction(&t, PushKey::Id("tx1"))
                .await
                .unwrap()
                .unwrap()
                .status,
            PushStatus::Pending
        );
        assert!(
            s.resolve_push_transaction(&t, "tx1", PushStatus::Rejected, Some("not me"), T + 5)
                .await
                .unwrap()
        );
        // Resolved once: a second resolution changes nothing.
        assert!(
            !s.resolve_push_transaction(&t, "tx1", PushStatus::Approved, None, T + 6)
                .await
                .unwrap()
        );
        let row = s
            .push_transaction(&t, PushKey::Id("tx1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, PushStatus::Rejected);
        assert_eq!(row.reason.as_deref(), Some("not me"));
        assert_eq!(row.resolved_at, Some(T + 5));
        // A rejected transaction is never consumed.
        assert!(!s.consume_push_transaction(&t, "tx1", T + 7).await.unwrap());
        assert!(
            s.resolve_push_transaction(&t, "tx2", PushStatus::Approved, None, T + 299)
                .await
                .unwrap()
        );
        let row = s
            .push_transaction(&t, PushKey::Id("tx2"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.status, row.reason), (PushStatus::Approved, None));
    }

    pub async fn push_polls_and_consumption(s: S) {
        let (t, other) = with_user(&s).await;
        s.create_push_transaction(&t, &push_tx("tx1", "l", T))
            .await
            .unwrap();
        assert!(s.poll_push_transaction(&t, "tx1", T, 5).await.unwrap());
        // Within the interval: refused, and the last poll stays.
        assert!(!s.poll_push_transaction(&t, "tx1", T + 4, 5).await.unwrap());
        assert!(
            !s.poll_push_transaction(&other, "tx1", T + 9, 5)
                .await
                .unwrap()
        );
        assert!(s.poll_push_transaction(&t, "tx1", T + 5, 5).await.unwrap());
        assert_eq!(
            s.push_transaction(&t, PushKey::Id("tx1"))
                .await
                .unwrap()
                .unwrap()
                .polled_at,
            Some(T + 5)
        );
        // Pending: nothing to consume.
        assert!(!s.consume_push_transaction(&t, "tx1", T + 6).await.unwrap());
        assert!(
            s.resolve_push_transaction(&t, "tx1", PushStatus::Approved, None, T + 6)
                .await
                .unwrap()
        );
        assert!(
            !s.consume_push_transaction(&other, "tx1", T + 7)
                .await
                .unwrap()
        );
        assert!(s.consume_push_transaction(&t, "tx1", T + 7).await.unwrap());
        assert!(!s.consume_push_transaction(&t, "tx1", T + 8).await.unwrap());
        assert_eq!(
            s.push_transaction(&t, PushKey::Id("tx1"))
                .await
                .unwrap()
                .unwrap()
                .consumed_at,
            Some(T + 7)
        );
    }

    pub async fn race_resolve_push_transaction(s: S) {
        let (t, _) = with_user(&s).await;
        s.create_push_transaction(&t, &push_tx("tx1", "l", T))
            .await
            .unwrap();
        let won = race(|i| {
            let (s, t) = (s.clone(), t.clone());
            let status = if i % 2 == 0 {
                PushStatus::Approved
            } else {
                PushStatus::Rejected
            };
            async move {
                let ok = s
                    .resolve_push_transaction(&t, "tx1", status, None, T + 1)
                    .await
                    .unwrap();
                ok.then_some(status)
            }
        })
        .await;
        let winners: Vec<PushStatus> = won.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1);
        assert_eq!(
            s.push_transaction(&t, PushKey::Id("tx1"))
                .await
                .unwrap()
                .unwrap()
                .status,
            winners[0]
        );
    }

    pub async fn race_consume_push_transaction(s: S) {
        let (t, _) = with_user(&s).await;
        s.create_push_transaction(&t, &push_tx("tx1", "l", T))
            .await
            .unwrap();
        assert!(
            s.resolve_push_transaction(&t, "tx1", PushStatus::Approved, None, T + 1)
                .await
                .unwrap()
        );
        let won = race(|_| {
            let (s, t) = (s.clone(), t.clone());
            async move { s.consume_push_transaction(&t, "tx1", T + 2).await.unwrap() }
        })
        .await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1);
    }
}
