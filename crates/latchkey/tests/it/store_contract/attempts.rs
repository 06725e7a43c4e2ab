//! The store contract of answers to a stored secret (a one-time code): an
//! attempt is taken before the answer is judged, so answers racing at one
//! enrollment cannot share a count; a right answer that leaves the
//! enrollment gives its attempt back; an enrollment is spent only while it
//! holds what its spender read. Each contract `x` runs on both backends, as
//! `attempts::x::sqlite` and `attempts::x::postgres`.

use super::*;

contract!(
    take_enrollment_attempt,
    return_enrollment_attempt,
    remove_enrollment_if,
    race_take_enrollment_attempt,
    race_remove_enrollment_if,
);

const MAX: i64 = 3;

mod bodies {
    use super::*;

    pub async fn take_enrollment_attempt(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let row = enrollment("u1", "code", T + 300);
        s.create_enrollment(&t, "slot", &row).await.unwrap();
        // Another tenant's, an unknown one, or one expired: none, nothing counted.
        assert_eq!(
            s.take_enrollment_attempt(&other, "slot", MAX, T)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.take_enrollment_attempt(&t, "nothing", MAX, T)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.take_enrollment_attempt(&t, "slot", MAX, T + 300)
                .await
                .unwrap(),
            None
        );
        // Each attempt counted and the row returned as counted.
        for n in 1..=MAX {
            let taken = s
                .take_enrollment_attempt(&t, "slot", MAX, T)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                taken,
                EnrollmentRow {
                    attempts: n,
                    ..row.clone()
                }
            );
        }
        // None left: refused, and the row keeps its count.
        assert_eq!(
            s.take_enrollment_attempt(&t, "slot", MAX, T).await.unwrap(),
            None
        );
        assert_eq!(
            s.enrollment(&t, "slot", T).await.unwrap().unwrap().attempts,
            MAX
        );
    }

    pub async fn return_enrollment_attempt(s: S) {
        let t = tenant(&s, "acme").await;
        let row = enrollment("u1", "code", T + 300);
        s.create_enrollment(&t, "slot", &row).await.unwrap();
        s.take_enrollment_attempt(&t, "slot", MAX, T)
            .await
            .unwrap()
            .unwrap();
        // Given back for another state (a newer code): nothing changes.
        s.return_enrollment_attempt(&t, "slot", &json!({ "other": true }))
            .await
            .unwrap();
        assert_eq!(
            s.enrollment(&t, "slot", T).await.unwrap().unwrap().attempts,
            1
        );
        s.return_enrollment_attempt(&t, "slot", &row.state)
            .await
            .unwrap();
        assert_eq!(
            s.enrollment(&t, "slot", T).await.unwrap().unwrap().attempts,
            0
        );
        // Never below zero.
        s.return_enrollment_attempt(&t, "slot", &row.state)
            .await
            .unwrap();
        assert_eq!(
            s.enrollment(&t, "slot", T).await.unwrap().unwrap().attempts,
            0
        );
    }

    pub async fn remove_enrollment_if(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let row = enrollment("u1", "code", T + 300);
        s.create_enrollment(&t, "slot", &row).await.unwrap();
        // Another state, another tenant, or expired: not removed.
        assert!(
            !s.remove_enrollment_if(&t, "slot", &json!({ "other": true }), T)
                .await
                .unwrap()
        );
        assert!(
            !s.remove_enrollment_if(&other, "slot", &row.state, T)
                .await
                .unwrap()
        );
        assert!(
            !s.remove_enrollment_if(&t, "slot", &row.state, T + 300)
                .await
                .unwrap()
        );
        assert!(s.enrollment(&t, "slot", T).await.unwrap().is_some());
        // Its own state: removed, once.
        assert!(
            s.remove_enrollment_if(&t, "slot", &row.state, T)
                .await
                .unwrap()
        );
        assert_eq!(s.enrollment(&t, "slot", T).await.unwrap(), None);
        assert!(
            !s.remove_enrollment_if(&t, "slot", &row.state, T)
                .await
                .unwrap()
        );
    }

    pub async fn race_take_enrollment_attempt(s: S) {
        let t = tenant(&s, "acme").await;
        s.create_enrollment(&t, "slot", &enrollment("u1", "code", T + 300))
            .await
            .unwrap();
        // Every racer asks at once: exactly MAX are let through, each with
        // its own count.
        let taken = race(|_| {
            let (s, t) = (s.clone(), t.clone());
            async move { s.take_enrollment_attempt(&t, "slot", MAX, T).await.unwrap() }
        })
        .await;
        let mut counts: Vec<i64> = taken.iter().flatten().map(|r| r.attempts).collect();
        counts.sort_unstable();
        assert_eq!(counts, (1..=MAX).collect::<Vec<_>>());
    }

    pub async fn race_remove_enrollment_if(s: S) {
        let t = tenant(&s, "acme").await;
        let row = enrollment("u1", "code", T + 300);
        s.create_enrollment(&t, "slot", &row).await.unwrap();
        let won = race(|_| {
            let (s, t, state) = (s.clone(), t.clone(), row.state.clone());
            async move { s.remove_enrollment_if(&t, "slot", &state, T).await.unwrap() }
        })
        .await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1);
    }
}
