//! The store contract of the Management API's users: a created user is new
//! or nothing is written; searches find what their filter says, in order,
//! with a count; a change is written over the row it was made from only, with
//! what it does (a password into the history, everything the user holds
//! ended), a taken email refused; a deletion takes everything the user holds
//! and nothing of anyone else's. Each contract `x` runs on both backends.

use latchkey::store::{
    UserChange, UserField, UserFilter, UserMatch, UserOrder, UserSearch, UserWrite,
};

use super::*;

contract!(
    create_user_is_new_or_nothing,
    search_users,
    update_user_over_what_was_read,
    delete_user_takes_everything,
    unlink_connection_forgets_the_links_there,
);

fn field(f: UserField, m: UserMatch) -> UserFilter {
    UserFilter::Field(f, m)
}

fn search(filter: Option<&UserFilter>) -> UserSearch<'_> {
    UserSearch {
        filter,
        order: UserOrder::CreatedAt,
        descending: false,
        offset: 0,
        limit: 100,
        count: true,
    }
}

mod bodies {
    use super::*;

    pub async fn create_user_is_new_or_nothing(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let u = user("auth0|a", "A@example.com");
        s.create_user(&t, &u).await.unwrap();
        assert_eq!(s.user_by_id(&t, "auth0|a").await.unwrap(), Some(u.clone()));
        // The same ID, or the same email in the connection: nothing written.
        let same_id = user("auth0|a", "other@example.com");
        assert!(matches!(
            s.create_user(&t, &same_id).await,
            Err(StoreError::Conflict(_))
        ));
        let same_email = user("auth0|b", "a@EXAMPLE.com");
        assert!(matches!(
            s.create_user(&t, &same_email).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.user_by_id(&t, "auth0|b").await.unwrap(), None);
        assert_eq!(s.user_by_id(&t, "auth0|a").await.unwrap(), Some(u.clone()));
        // Another tenant is another namespace.
        s.create_user(&other, &u).await.unwrap();
        assert_eq!(s.count_users(&t).await.unwrap(), 1);
    }

    pub async fn search_users(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        for i in 0..6 {
            let mut u = user(&format!("auth0|u{i}"), &format!("U{i}@{}.test", i % 2));
            u.created_at = T + i;
            u.email_verified = i < 3;
            u.profile =
                json!({ "name": format!("Name {}", 5 - i), "username": format!("User{i}") });
            if i == 5 {
                u.connection = "Other-DB".into();
            }
            s.create_user(&t, &u).await.unwrap();
        }
        s.create_user(&other, &user("auth0|x", "u0@0.test"))
            .await
            .unwrap();
        let (up, identity) = upstream_user("sub1", "up@1.test");
        s.create_upstream_user(&t, &up, &identity).await.unwrap();
        // An identity of another connection, linked to u4.
        s.add_identity(
            &t,
            &IdentityRow {
                user_id: "auth0|u4".into(),
                provider_user_id: "acme-idp|linked".into(),
                ..identity.clone()
            },
        )
        .await
        .unwrap();

        let ids = |users: &[UserRow]| -> Vec<String> {
            users.iter().map(|u| u.user_id.clone()).collect()
        };
        let run = |f: UserFilter| {
            let s = s.clone();
            let t = t.clone();
            async move {
                let (users, total) = s.search_users(&t, &search(Some(&f))).await.unwrap();
                assert_eq!(total, Some(users.len() as i64));
                ids(&users)
            }
        };
        assert_eq!(
            run(field(UserField::Email, UserMatch::Is("u1@1.TEST".into()))).await,
            ["auth0|u1"]
        );
        assert_eq!(
            run(field(
                UserField::EmailDomain,
                UserMatch::Is("0.test".into())
            ))
            .await,
            ["auth0|u0", "auth0|u2", "auth0|u4"]
        );
        assert_eq!(
            run(field(
                UserField::UserId,
                UserMatch::Prefix("auth0|u".into())
            ))
            .await,
            [
                "auth0|u0", "auth0|u1", "auth0|u2", "auth0|u3", "auth0|u4", "auth0|u5"
            ]
        );
        assert_eq!(
            run(field(
                UserField::UserId,
                UserMatch::Prefix("AUTH0|u".into())
            ))
            .await,
            Vec::<String>::new(),
            "user IDs are compared with their case"
        );
        assert_eq!(
            run(field(
                UserField::Connection,
                UserMatch::Is("acme-idp".into())
            ))
            .await,
            ["oidc|acme-idp|sub1", "auth0|u4"]
        );
        assert_eq!(
            run(UserFilter::All(vec![
                field(UserField::EmailVerified, UserMatch::Flag(true)),
                UserFilter::Not(Box::new(field(
                    UserField::Username,
                    UserMatch::Is("USER1".into())
                ))),
            ]))
            .await,
            ["oidc|acme-idp|sub1", "auth0|u0", "auth0|u2"],
            "NOT finds the users without the field too"
        );
        assert_eq!(
            run(UserFilter::Any(vec![
                field(UserField::Name, UserMatch::Is("name 5".into())),
                field(UserField::Connection, UserMatch::Prefix("Other".into())),
            ]))
            .await,
            ["auth0|u0", "auth0|u5"]
        );
        assert_eq!(
            run(field(UserField::Username, UserMatch::Present))
                .await
                .len(),
            6
        );
        // Ordered, paged, counted.
        let by_name = UserSearch {
            order: UserOrder::Name,
            offset: 1,
            limit: 2,
            ..search(None)
        };
        let (users, total) = s.search_users(&t, &by_name).await.unwrap();
        assert_eq!(total, Some(7));
        assert_eq!(ids(&users), ["auth0|u4", "auth0|u3"]);
        let newest = UserSearch {
            descending: true,
            limit: 1,
            count: false,
            ..search(None)
        };
        let (users, total) = s.search_users(&t, &newest).await.unwrap();
        assert_eq!(total, None);
        assert_eq!(users.len(), 1);
        // Users by email, any connection, without regard to case.
        let found = s.users_by_email(&t, "U1@1.test", 10).await.unwrap();
        assert_eq!(ids(&found), ["auth0|u1"]);
        let identities = s
            .identities_of(&t, &["auth0|u4".into(), "oidc|acme-idp|sub1".into()])
            .await
            .unwrap();
        assert_eq!(identities.len(), 2);
    }

    pub async fn update_user_over_what_was_read(s: S) {
        let t = tenant(&s, "acme").await;
        let a = user("auth0|a", "a@example.com");
        let b = user("auth0|b", "b@example.com");
        s.create_user(&t, &a).await.unwrap();
        s.create_user(&t, &b).await.unwrap();
        s.create_grant(&t, "g1", "spa", Some("auth0|a"), T)
            .await
            .unwrap();
        // Read into the cache, as a request would.
        let _ = s.user_with_methods(&t, "auth0|a").await.unwrap();

        let mut next = a.clone();
        next.profile = json!({ "name": "New" });
        next.email = "A2@example.com".into();
        next.updated_at = T;
        let hash = "new-hash";
        let change = UserChange {
            password_hash: Some(hash),
            end_sessions: Some("password_changed"),
        };
        assert_eq!(
            s.update_user(&t, &a, &next, &change).await.unwrap(),
            UserWrite::Done
        );
        let stored = s.user_by_id(&t, "auth0|a").await.unwrap().unwrap();
        assert_eq!(stored.profile, json!({ "name": "New" }));
        assert_eq!(stored.email, "A2@example.com");
        assert_eq!(stored.password_hash.as_deref(), Some(hash));
        assert_eq!(stored.last_password_reset, Some(T));
        let (cached, _) = s.user_with_methods(&t, "auth0|a").await.unwrap().unwrap();
        assert_eq!(cached, stored);
        assert!(s.grant_revoked(&t, "g1").await.unwrap());
        assert_eq!(
            s.password_history(&t, "auth0|a", 5).await.unwrap(),
            ["hash-of-auth0|a"]
        );
        assert!(
            s.user_by_email(&t, "Username-Password-Authentication", "a2@example.com")
                .await
                .unwrap()
                .is_some()
        );

        // Written over what was read only.
        let mut stale = next.clone();
        stale.blocked = true;
        assert_eq!(
            s.update_user(&t, &a, &stale, &UserChange::default())
                .await
                .unwrap(),
            UserWrite::Changed
        );
        assert!(!s.user_by_id(&t, "auth0|a").await.unwrap().unwrap().blocked);
        let ghost = user("auth0|ghost", "g@example.com");
        assert_eq!(
            s.update_user(&t, &ghost, &ghost, &UserChange::default())
                .await
                .unwrap(),
            UserWrite::Missing
        );
        // Another user's email: a conflict, nothing written.
        let mut taken = stored.clone();
        taken.email = "B@example.com".into();
        taken.profile = json!({ "name": "Taken" });
        assert!(matches!(
            s.update_user(&t, &stored, &taken, &UserChange::default())
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.user_by_id(&t, "auth0|a").await.unwrap().unwrap(), stored);
    }

    pub async fn unlink_connection_forgets_the_links_there(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let a = user("auth0|a", "a@example.com");
        for tenant in [&t, &other] {
            s.create_user(tenant, &a).await.unwrap();
        }
        let linked = |connection: &str, sub: &str| IdentityRow {
            user_id: "auth0|a".into(),
            connection: connection.into(),
            provider: "oidc".into(),
            provider_user_id: sub.into(),
            is_social: false,
            profile_data: serde_json::json!({}),
            created_at: T,
            updated_at: T,
        };
        for tenant in [&t, &other] {
            s.add_identity(tenant, &linked("gh", "1")).await.unwrap();
            s.add_identity(tenant, &linked("google", "2"))
                .await
                .unwrap();
        }
        assert_eq!(s.unlink_connection(&t, "gh").await.unwrap(), 1);
        assert_eq!(
            s.identities(&t, "auth0|a").await.unwrap(),
            [linked("google", "2")]
        );
        // The user stays; the other tenant keeps its own.
        assert!(s.user_by_id(&t, "auth0|a").await.unwrap().is_some());
        assert_eq!(s.identities(&other, "auth0|a").await.unwrap().len(), 2);
        assert_eq!(s.unlink_connection(&t, "gh").await.unwrap(), 0);
    }

    pub async fn delete_user_takes_everything(s: S) {
        let t = tenant(&s, "acme").await;
        let a = user("auth0|a", "a@example.com");
        let b = user("auth0|b", "b@example.com");
        s.create_user(&t, &a).await.unwrap();
        s.create_user(&t, &b).await.unwrap();
        for who in ["auth0|a", "auth0|b"] {
            let row = MethodRow {
                user_id: who.into(),
                ..method(&format!("m-{who}"), who, "totp", T)
            };
            let done = Completion::AddMethod {
                row,
                replace_type: false,
            };
            s.create_enrollment(
                &t,
                &format!("e-{who}"),
                &enrollment(who, &format!("m-{who}"), T + 60),
            )
            .await
            .unwrap();
            assert!(
                s.complete_enrollment(&t, &format!("e-{who}"), &done, T)
                    .await
                    .unwrap()
            );
            s.create_grant(&t, &format!("g-{who}"), "spa", Some(who), T)
                .await
                .unwrap();
            let rt = RefreshTokenRow {
                user_id: who.into(),
                ..refresh(&format!("g-{who}"), T + 100, T + 100)
            };
            s.create_refresh_token(&t, &format!("rt-{who}"), &rt)
                .await
                .unwrap();
            let session = SessionRow {
                user_id: who.into(),
                auth_time: T,
                amr: vec!["pwd".into()],
                expires_at: T + 100,
            };
            s.create_session(&t, &format!("s-{who}"), &session, T)
                .await
                .unwrap();
        }
        let _ = s.user_with_methods(&t, "auth0|a").await.unwrap();
        assert!(s.delete_user(&t, "auth0|a").await.unwrap());
        assert_eq!(s.user_by_id(&t, "auth0|a").await.unwrap(), None);
        assert_eq!(s.user_with_methods(&t, "auth0|a").await.unwrap(), None);
        assert!(s.methods(&t, "auth0|a").await.unwrap().is_empty());
        assert!(
            s.grant_revoked(&t, "g-auth0|a").await.unwrap(),
            "unknown reads as revoked"
        );
        assert!(matches!(
            s.redeem_refresh_token(&t, "rt-auth0|a", T, None, 0)
                .await
                .unwrap(),
            Redeem::Missing
        ));
        assert_eq!(s.session(&t, "s-auth0|a", T, 3600).await.unwrap(), None);
        // Bob keeps all of his.
        assert_eq!(s.methods(&t, "auth0|b").await.unwrap().len(), 1);
        assert!(!s.grant_revoked(&t, "g-auth0|b").await.unwrap());
        assert!(s.session(&t, "s-auth0|b", T, 3600).await.unwrap().is_some());
        assert!(!s.delete_user(&t, "auth0|a").await.unwrap());
        // The email is free again.
        s.create_user(&t, &user("auth0|a2", "a@example.com"))
            .await
            .unwrap();
    }
}
