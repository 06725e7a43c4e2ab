//! The store contract of upstream logins: logins waiting for their
//! provider's callback (spent once, expiry), and the identities users log
//! in with (one user an account of a connection, users found by a verified
//! address whatever their connection, a user and its first identity written
//! together). Each contract `x` runs on both backends, as
//! `identities::x::sqlite` and `identities::x::postgres`.

use super::*;

contract!(
    upstream_logins,
    user_identities,
    race_spend_upstream_login,
    race_create_upstream_user,
);

mod bodies {
    use super::*;

    pub async fn upstream_logins(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let row = upstream_login("tx-digest", T + 600);
        s.create_upstream_login(&t, "state-1", &row).await.unwrap();
        assert_eq!(
            s.upstream_login(&t, "state-1", T).await.unwrap(),
            Some(row.clone())
        );
        // Another tenant's, unknown, or expired: none.
        assert_eq!(s.upstream_login(&other, "state-1", T).await.unwrap(), None);
        assert_eq!(s.upstream_login(&t, "state-2", T).await.unwrap(), None);
        assert_eq!(
            s.upstream_login(&t, "state-1", T + 600).await.unwrap(),
            None
        );
        assert!(!s.spend_upstream_login(&other, "state-1", T).await.unwrap());
        assert!(
            !s.spend_upstream_login(&t, "state-1", T + 600)
                .await
                .unwrap()
        );
        // Spent once; then gone.
        assert!(s.spend_upstream_login(&t, "state-1", T).await.unwrap());
        assert!(!s.spend_upstream_login(&t, "state-1", T).await.unwrap());
        assert_eq!(s.upstream_login(&t, "state-1", T).await.unwrap(), None);
    }

    pub async fn user_identities(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let db = user("auth0|alice", "Alice@Example.com");
        s.upsert_user(&t, &db).await.unwrap();
        let (alice_up, alice_id) = upstream_user("A-1", "alice@example.com");
        s.create_upstream_user(&t, &alice_up, &alice_id)
            .await
            .unwrap();
        assert_eq!(
            s.identity(&t, "acme-idp", "acme-idp|A-1").await.unwrap(),
            Some((alice_id.clone(), alice_up.clone()))
        );
        assert_eq!(
            s.user_by_id(&t, &alice_up.user_id).await.unwrap(),
            Some(alice_up.clone())
        );
        // The provider's subjects are case-sensitive.
        assert_eq!(
            s.identity(&t, "acme-idp", "acme-idp|a-1").await.unwrap(),
            None
        );
        assert_eq!(
            s.identity(&other, "acme-idp", "acme-idp|A-1")
                .await
                .unwrap(),
            None
        );
        // Users of an upstream connection never log in by email, and two
        // accounts of the provider may share an address (or have none).
        assert_eq!(
            s.user_by_email(&t, "acme-idp", "alice@example.com")
                .await
                .unwrap(),
            None
        );
        let (twin, twin_id) = upstream_user("a-1", "ALICE@example.com");
        let twin = UserRow {
            email_verified: false,
            created_at: T - 10,
            ..twin
        };
        s.create_upstream_user(&t, &twin, &twin_id).await.unwrap();
        for sub in ["n-1", "n-2"] {
            let (u, i) = upstream_user(sub, "");
            s.create_upstream_user(&t, &u, &i).await.unwrap();
        }

        // A verified address finds its users whatever their connection, oldest
        // first, by its lowercase; unverified ones are not found.
        let found = s
            .users_with_verified_email(&t, "ALICE@example.COM")
            .await
            .unwrap();
        let ids: Vec<&str> = found.iter().map(|u| u.user_id.as_str()).collect();
        assert_eq!(ids, ["auth0|alice", "oidc|acme-idp|A-1"]);
        assert!(
            s.users_with_verified_email(&other, "alice@example.com")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.users_with_verified_email(&t, "")
                .await
                .unwrap()
                .is_empty()
        );

        // An identity linked to the database user; twice is a conflict, as is
        // another user's identity.
        let linked = IdentityRow {
            user_id: "auth0|alice".into(),
            connection: "github".into(),
            provider: "github".into(),
            provider_user_id: "583231".into(),
            is_social: true,
            profile_data: json!({ "nickname": "octocat" }),
            created_at: T + 5,
            updated_at: T + 5,
        };
        s.add_identity(&t, &linked).await.unwrap();
        assert!(matches!(
            s.add_identity(&t, &linked).await,
            Err(StoreError::Conflict(_))
        ));
        let stolen = IdentityRow {
            user_id: alice_up.user_id.clone(),
            ..linked.clone()
        };
        assert!(matches!(
            s.add_identity(&t, &stolen).await,
            Err(StoreError::Conflict(_))
        ));
        let older = IdentityRow {
            connection: "google".into(),
            provider: "google-oauth2".into(),
            provider_user_id: "g-1".into(),
            created_at: T + 1,
            ..linked.clone()
        };
        s.add_identity(&t, &older).await.unwrap();
        assert_eq!(
            s.identities(&t, "auth0|alice").await.unwrap(),
            [older.clone(), linked.clone()]
        );
        assert_eq!(
            s.identities(&t, &alice_up.user_id).await.unwrap(),
            std::slice::from_ref(&alice_id)
        );
        assert!(s.identities(&t, "nobody").await.unwrap().is_empty());

        // A user made from a known identity: a conflict, and no user written.
        let (again, _) = upstream_user("other-sub", "x@example.com");
        assert!(matches!(
            s.create_upstream_user(&t, &again, &linked).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.user_by_id(&t, &again.user_id).await.unwrap(), None);

        // What the provider says at a later login.
        let said = IdentityRow {
            profile_data: json!({ "email": "alice@new.example", "email_verified": true }),
            updated_at: T + 100,
            ..alice_id.clone()
        };
        let now = UserRow {
            email: "Alice@New.example".into(),
            profile: json!({ "name": "Alice", "picture": "https://p.test/a.png" }),
            updated_at: T + 100,
            ..alice_up.clone()
        };
        s.update_identity(&t, &said, Some(&now)).await.unwrap();
        assert_eq!(
            s.identity(&t, "acme-idp", "acme-idp|A-1").await.unwrap(),
            Some((said.clone(), now.clone()))
        );
        let found = s
            .users_with_verified_email(&t, "alice@new.example")
            .await
            .unwrap();
        assert_eq!(found, std::slice::from_ref(&now));
        assert_eq!(
            s.users_with_verified_email(&t, "alice@example.com")
                .await
                .unwrap(),
            std::slice::from_ref(&db)
        );
        // A linked identity's data alone; the user stays.
        let seen = IdentityRow {
            profile_data: json!({ "nickname": "octo" }),
            updated_at: T + 200,
            ..linked.clone()
        };
        s.update_identity(&t, &seen, None).await.unwrap();
        let (identity, owner) = s.identity(&t, "github", "583231").await.unwrap().unwrap();
        assert_eq!((identity, owner), (seen, db.clone()));
        // Read through the methods cache too (SQLite): the change is seen.
        let (cached, _) = s
            .user_with_methods(&t, &now.user_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cached, now);
        let later = UserRow {
            email_verified: false,
            updated_at: T + 300,
            ..now.clone()
        };
        s.update_identity(&t, &said, Some(&later)).await.unwrap();
        let (cached, _) = s
            .user_with_methods(&t, &now.user_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cached, later);
    }

    pub async fn race_spend_upstream_login(s: S) {
        let t = tenant(&s, "acme").await;
        s.create_upstream_login(&t, "state", &upstream_login("tx", T + 600))
            .await
            .unwrap();
        let won = race(|_| {
            let (s, t) = (s.clone(), t.clone());
            async move { s.spend_upstream_login(&t, "state", T).await.unwrap() }
        })
        .await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    }

    pub async fn race_create_upstream_user(s: S) {
        let t = tenant(&s, "acme").await;
        // One new account at the provider, logging in on every racer at once.
        let outcomes = race(|_| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                let (u, i) = upstream_user("new", "new@example.com");
                match s.create_upstream_user(&t, &u, &i).await {
                    Ok(()) => true,
                    Err(StoreError::Conflict(_)) => false,
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await;
        assert_eq!(outcomes.iter().filter(|w| **w).count(), 1, "{outcomes:?}");
        assert_eq!(
            s.identities(&t, "oidc|acme-idp|new").await.unwrap().len(),
            1
        );
    }
}
