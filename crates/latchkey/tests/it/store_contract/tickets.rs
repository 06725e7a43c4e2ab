//! The store contract of the tickets of links mailed about accounts: found
//! in their tenant only, used once while live and unexpired with what they
//! are for in the same transaction (of racing uses one wins), counting
//! failed attempts, ended by enough of them, swept when expired. Each
//! contract `x` runs on both backends, as `tickets::x::sqlite` and
//! `tickets::x::postgres`.

use latchkey::store::{AccountTicketRow, TicketKind, TicketUse};

use super::*;

contract!(
    account_tickets,
    reset_ticket_sets_the_password_and_ends_what_the_user_holds,
    ticket_attempts,
    race_use_account_ticket,
    tickets_are_swept,
);

fn ticket(kind: TicketKind, expires_at: Timestamp) -> AccountTicketRow {
    AccountTicketRow {
        user_id: "u1".into(),
        client_id: "spa".into(),
        kind,
        created_at: T,
        expires_at,
        used_at: None,
        attempts: 0,
    }
}

async fn with_user(s: &S) -> (String, String) {
    let t = tenant(s, "acme").await;
    let other = tenant(s, "other").await;
    let unverified = UserRow {
        email_verified: false,
        ..user("u1", "u1@example.com")
    };
    s.upsert_user(&t, &unverified).await.unwrap();
    (t, other)
}

mod bodies {
    use super::*;

    pub async fn account_tickets(s: S) {
        let (t, other) = with_user(&s).await;
        let row = ticket(TicketKind::VerifyEmail, T + 100);
        s.create_account_ticket(&t, "d1", &row).await.unwrap();
        s.create_account_ticket(&t, "d2", &row).await.unwrap();
        assert_eq!(s.account_ticket(&t, "d1").await.unwrap(), Some(row.clone()));
        assert_eq!(s.account_ticket(&other, "d1").await.unwrap(), None);
        // Another tenant's, or another kind: not used, nothing written.
        let verify = TicketUse::VerifyEmail;
        assert_eq!(
            s.use_account_ticket(&other, "d1", TicketKind::VerifyEmail, T, 5, &verify)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.use_account_ticket(&t, "d1", TicketKind::ResetPassword, T, 5, &verify)
                .await
                .unwrap(),
            None
        );
        assert!(
            !s.user_by_id(&t, "u1")
                .await
                .unwrap()
                .unwrap()
                .email_verified
        );
        assert_eq!(
            s.use_account_ticket(&t, "d1", TicketKind::VerifyEmail, T + 1, 5, &verify)
                .await
                .unwrap()
                .as_deref(),
            Some("u1")
        );
        assert!(
            s.user_by_id(&t, "u1")
                .await
                .unwrap()
                .unwrap()
                .email_verified
        );
        // Used once; the user's other ticket of the kind is used up with it.
        assert_eq!(
            s.account_ticket(&t, "d1").await.unwrap().unwrap().used_at,
            Some(T + 1)
        );
        assert_eq!(
            s.account_ticket(&t, "d2").await.unwrap().unwrap().used_at,
            Some(T + 1)
        );
        for d in ["d1", "d2"] {
            assert_eq!(
                s.use_account_ticket(&t, d, TicketKind::VerifyEmail, T + 2, 5, &verify)
                    .await
                    .unwrap(),
                None
            );
        }
        // Expired: not used.
        s.create_account_ticket(&t, "d3", &row).await.unwrap();
        assert_eq!(
            s.use_account_ticket(&t, "d3", TicketKind::VerifyEmail, T + 100, 5, &verify)
                .await
                .unwrap(),
            None
        );
        // A ticket's digest is unique.
        assert!(s.create_account_ticket(&t, "d3", &row).await.is_err());
    }

    pub async fn reset_ticket_sets_the_password_and_ends_what_the_user_holds(s: S) {
        let (t, _) = with_user(&s).await;
        s.create_grant(&t, "g1", "spa", Some("u1"), T)
            .await
            .unwrap();
        s.create_session(
            &t,
            "sess",
            &SessionRow {
                user_id: "u1".into(),
                auth_time: T,
                amr: vec!["pwd".into()],
                expires_at: T + 3600,
            },
            T,
        )
        .await
        .unwrap();
        let old = s.user_by_id(&t, "u1").await.unwrap().unwrap().password_hash;
        s.create_account_ticket(&t, "r1", &ticket(TicketKind::ResetPassword, T + 100))
            .await
            .unwrap();
        let action = TicketUse::ResetPassword {
            hash: "new-hash",
            reason: "password_reset",
        };
        assert_eq!(
            s.use_account_ticket(&t, "r1", TicketKind::ResetPassword, T + 5, 5, &action)
                .await
                .unwrap()
                .as_deref(),
            Some("u1")
        );
        let u = s.user_by_id(&t, "u1").await.unwrap().unwrap();
        assert_eq!(u.password_hash.as_deref(), Some("new-hash"));
        assert_eq!(u.last_password_reset, Some(T + 5));
        assert!(s.grant_revoked(&t, "g1").await.unwrap());
        assert_eq!(s.session(&t, "sess", T + 6, 3600).await.unwrap(), None);
        // The old password is kept in the history.
        assert_eq!(
            s.password_history(&t, "u1", 5).await.unwrap(),
            vec![old.unwrap()]
        );
    }

    pub async fn ticket_attempts(s: S) {
        let (t, _) = with_user(&s).await;
        s.create_account_ticket(&t, "r1", &ticket(TicketKind::ResetPassword, T + 100))
            .await
            .unwrap();
        for n in 1..=3 {
            assert_eq!(
                s.account_ticket_failed(&t, "r1", TicketKind::ResetPassword, T)
                    .await
                    .unwrap(),
                Some(n)
            );
        }
        // Another kind, an unknown ticket, an expired one: nothing counted.
        assert_eq!(
            s.account_ticket_failed(&t, "r1", TicketKind::VerifyEmail, T)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.account_ticket_failed(&t, "nope", TicketKind::ResetPassword, T)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.account_ticket_failed(&t, "r1", TicketKind::ResetPassword, T + 100)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.account_ticket(&t, "r1").await.unwrap().unwrap().attempts,
            3
        );
        // At the limit, it is not used.
        let action = TicketUse::ResetPassword {
            hash: "h",
            reason: "password_reset",
        };
        assert_eq!(
            s.use_account_ticket(&t, "r1", TicketKind::ResetPassword, T, 3, &action)
                .await
                .unwrap(),
            None
        );
        assert_ne!(
            s.user_by_id(&t, "u1")
                .await
                .unwrap()
                .unwrap()
                .password_hash
                .as_deref(),
            Some("h")
        );
    }

    pub async fn race_use_account_ticket(s: S) {
        let (t, _) = with_user(&s).await;
        s.create_account_ticket(&t, "r1", &ticket(TicketKind::ResetPassword, T + 100))
            .await
            .unwrap();
        let results = race(|i| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                let hash = format!("hash-{i}");
                let action = TicketUse::ResetPassword {
                    hash: &hash,
                    reason: "password_reset",
                };
                s.use_account_ticket(&t, "r1", TicketKind::ResetPassword, T, 5, &action)
                    .await
                    .unwrap()
                    .map(|_| hash.clone())
            }
        })
        .await;
        let winners: Vec<String> = results.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "{winners:?}");
        assert_eq!(
            s.user_by_id(&t, "u1").await.unwrap().unwrap().password_hash,
            Some(winners[0].clone())
        );
    }

    pub async fn tickets_are_swept(s: S) {
        let (t, _) = with_user(&s).await;
        s.create_account_ticket(&t, "old", &ticket(TicketKind::VerifyEmail, T + 10))
            .await
            .unwrap();
        s.create_account_ticket(&t, "live", &ticket(TicketKind::VerifyEmail, T + 1000))
            .await
            .unwrap();
        let swept = s.sweep_expired(&t, T + 10, 0, 1000).await.unwrap();
        assert_eq!(swept.account_tickets, 1);
        assert_eq!(s.account_ticket(&t, "old").await.unwrap(), None);
        assert!(s.account_ticket(&t, "live").await.unwrap().is_some());
    }
}
