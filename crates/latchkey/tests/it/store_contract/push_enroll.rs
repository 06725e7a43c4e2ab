//! The store contract of push-notification enrollment: a pending
//! enrollment found by its ticket as well as by its session, the ticket
//! spent once (the device's enrollment written with it), and a method found
//! by its ID alone. Each contract `x` runs on both backends, as
//! `push_enroll::x::sqlite` and `push_enroll::x::postgres`.

use super::*;

contract!(
    enrollment_tickets,
    method_by_id,
    race_spend_enrollment_ticket,
);

fn pending(user_id: &str) -> EnrollmentRow {
    EnrollmentRow {
        method_type: "push-notification".into(),
        state: json!({ "totp_secret": "sealed", "ticket": null }),
        ..enrollment(user_id, "push-notification|dev_a", T + 300)
    }
}

mod bodies {
    use super::*;

    pub async fn enrollment_tickets(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let row = pending("u1");
        s.create_ticketed_enrollment(&t, "session-1", Some("ticket-1"), &row)
            .await
            .unwrap();
        // An enrollment without a ticket is found by none.
        s.create_enrollment(&t, "session-2", &enrollment("u1", "totp|m", T + 300))
            .await
            .unwrap();
        assert_eq!(
            s.enrollment_by_ticket(&t, "ticket-1", T).await.unwrap(),
            Some(("session-1".to_string(), row.clone()))
        );
        // Another tenant's, unknown, or expired: none.
        assert_eq!(
            s.enrollment_by_ticket(&other, "ticket-1", T).await.unwrap(),
            None
        );
        assert_eq!(
            s.enrollment_by_ticket(&t, "session-1", T).await.unwrap(),
            None
        );
        assert_eq!(
            s.enrollment_by_ticket(&t, "ticket-1", T + 300)
                .await
                .unwrap(),
            None
        );
        // Spending needs the live enrollment of this tenant as it was read.
        let device = json!({ "totp_secret": "sealed", "device": { "id": "dev_a" } });
        assert!(
            !s.spend_enrollment_ticket(&other, "ticket-1", &row.state, &device, T)
                .await
                .unwrap()
        );
        assert!(
            !s.spend_enrollment_ticket(&t, "ticket-1", &row.state, &device, T + 300)
                .await
                .unwrap()
        );
        assert!(
            !s.spend_enrollment_ticket(&t, "ticket-1", &device, &device, T)
                .await
                .unwrap()
        );
        assert!(
            s.spend_enrollment_ticket(&t, "ticket-1", &row.state, &device, T)
                .await
                .unwrap()
        );
        // Spent: found by its session alone, with the new state.
        assert_eq!(
            s.enrollment_by_ticket(&t, "ticket-1", T).await.unwrap(),
            None
        );
        assert!(
            !s.spend_enrollment_ticket(&t, "ticket-1", &device, &device, T)
                .await
                .unwrap()
        );
        let live = s.enrollment(&t, "session-1", T).await.unwrap().unwrap();
        assert_eq!(live.state, device);
        assert_eq!(live.attempts, 0);
        // Consumed as any enrollment.
        let c = Completion::AddMethod {
            row: method("push-notification|dev_a", "u1", "push-notification", T),
            replace_type: false,
        };
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        assert!(s.complete_enrollment(&t, "session-1", &c, T).await.unwrap());
        assert_eq!(s.enrollment(&t, "session-1", T).await.unwrap(), None);
        // Two enrollments cannot share a ticket.
        s.create_ticketed_enrollment(&t, "session-3", Some("ticket-3"), &row)
            .await
            .unwrap();
        assert!(
            s.create_ticketed_enrollment(&t, "session-4", Some("ticket-3"), &row)
                .await
                .is_err()
        );
    }

    pub async fn method_by_id(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        for (tenant, u) in [(&t, "u1"), (&other, "u9")] {
            s.upsert_user(tenant, &user(u, &format!("{u}@example.com")))
                .await
                .unwrap();
        }
        s.create_enrollment(&t, "e", &enrollment("u1", "x", T + 60))
            .await
            .unwrap();
        let m = method("push-notification|dev_b", "u1", "push-notification", T);
        let c = Completion::AddMethod {
            row: m.clone(),
            replace_type: false,
        };
        assert!(s.complete_enrollment(&t, "e", &c, T).await.unwrap());
        let found = s
            .method_by_id(&t, "push-notification|dev_b")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.id.as_str(), found.user_id.as_str()),
            (m.id.as_str(), "u1")
        );
        assert_eq!(found.data, m.data);
        assert_eq!(
            s.method_by_id(&other, "push-notification|dev_b")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.method_by_id(&t, "push-notification|dev_c").await.unwrap(),
            None
        );
        // Data changed by compare-and-set reads back; a deleted method is gone.
        let data = json!({ "id": m.id, "name": "renamed" });
        assert!(
            s.update_method_data(&t, &m.id, &m.data, &data, None)
                .await
                .unwrap()
        );
        assert_eq!(s.method_by_id(&t, &m.id).await.unwrap().unwrap().data, data);
        assert_eq!(
            s.delete_method(&t, "u1", &m.id, None).await.unwrap(),
            Removal::Removed
        );
        assert_eq!(s.method_by_id(&t, &m.id).await.unwrap(), None);
    }

    pub async fn race_spend_enrollment_ticket(s: S) {
        let t = tenant(&s, "acme").await;
        let row = pending("u1");
        s.create_ticketed_enrollment(&t, "session", Some("ticket"), &row)
            .await
            .unwrap();
        // Every racer read the enrollment and writes its own device: one wins.
        let won = race(|i| {
            let (s, t, previous) = (s.clone(), t.clone(), row.state.clone());
            async move {
                let device = json!({ "totp_secret": "sealed", "device": i });
                let ok = s
                    .spend_enrollment_ticket(&t, "ticket", &previous, &device, T)
                    .await
                    .unwrap();
                (ok, device)
            }
        })
        .await;
        let winners: Vec<_> = won.iter().filter(|(ok, _)| *ok).collect();
        assert_eq!(winners.len(), 1, "{won:?}");
        let live = s.enrollment(&t, "session", T).await.unwrap().unwrap();
        assert_eq!(live.state, winners[0].1);
    }
}
