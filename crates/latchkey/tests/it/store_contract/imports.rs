//! The store contract of imported users: a user and their methods written
//! together or not at all, refused with the reason when the user ID, the
//! email or username in the connection, or a credential is taken (racing
//! imports of one user: one wins); and a password rehashed only over the
//! hash it replaces. Each contract `x` runs on both backends, as
//! `imports::x::sqlite` and `imports::x::postgres`.

use latchkey::store::ImportRefusal;

use super::*;

contract!(
    import_user_all_or_nothing,
    race_import_user,
    rehash_password_over_the_old_hash,
);

fn passkey(id: &str, user_id: &str, credential: &str) -> MethodRow {
    MethodRow {
        credential_id: Some(credential.into()),
        ..method(id, user_id, "passkey", T)
    }
}

mod bodies {
    use super::*;

    pub async fn import_user_all_or_nothing(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let carol = user("auth0|carol", "Carol@Example.com");
        let methods = [
            method("totp|dev_1", "auth0|carol", "totp", T),
            passkey("passkey|dev_1", "auth0|carol", "cred-1"),
        ];
        assert_eq!(s.import_user(&t, &carol, &methods).await.unwrap(), Ok(()));
        let (got, got_methods) = s
            .user_with_methods(&t, "auth0|carol")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, carol);
        assert_eq!(got_methods.len(), 2);
        // The same user ID, the same email (any case), a taken credential:
        // refused, nothing of the user written.
        let again = user("auth0|carol", "someone@example.com");
        assert_eq!(
            s.import_user(&t, &again, &[]).await.unwrap(),
            Err(ImportRefusal::UserId)
        );
        let twin = user("auth0|twin", "CAROL@example.COM");
        assert_eq!(
            s.import_user(&t, &twin, &[]).await.unwrap(),
            Err(ImportRefusal::Email("auth0|carol".into()))
        );
        let dave = user("auth0|dave", "dave@example.com");
        let taken = [
            method("totp|dev_2", "auth0|dave", "totp", T),
            passkey("passkey|dev_2", "auth0|dave", "cred-1"),
        ];
        assert_eq!(
            s.import_user(&t, &dave, &taken).await.unwrap(),
            Err(ImportRefusal::Credential)
        );
        assert_eq!(s.user_by_id(&t, "auth0|dave").await.unwrap(), None);
        assert_eq!(s.method_by_id(&t, "totp|dev_2").await.unwrap(), None);
        // A username, without regard to case.
        let named = |id: &str, email: &str, name: &str| UserRow {
            profile: json!({ "username": name }),
            ..user(id, email)
        };
        assert_eq!(
            s.import_user(&t, &named("auth0|e1", "e1@example.com", "Erin"), &[])
                .await
                .unwrap(),
            Ok(())
        );
        assert_eq!(
            s.import_user(&t, &named("auth0|e2", "e2@example.com", "ERIN"), &[])
                .await
                .unwrap(),
            Err(ImportRefusal::Username)
        );
        // Another connection, another tenant: other users.
        let elsewhere = UserRow {
            connection: "Partners".into(),
            ..user("auth0|carol-partner", "carol@example.com")
        };
        assert_eq!(s.import_user(&t, &elsewhere, &[]).await.unwrap(), Ok(()));
        assert_eq!(
            s.import_user(&other, &carol, &methods).await.unwrap(),
            Ok(())
        );
        assert_eq!(s.count_users(&t).await.unwrap(), 3);
    }

    pub async fn race_import_user(s: S) {
        let t = tenant(&s, "acme").await;
        let outcomes = race(|i| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                // The same address under two user IDs, each raced for.
                let id = format!("auth0|racer-{}", i % 2);
                let row = user(&id, "racer@example.com");
                let m = [method(&format!("totp|dev_r{i}"), &id, "totp", T)];
                s.import_user(&t, &row, &m).await.unwrap()
            }
        })
        .await;
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "{outcomes:?}"
        );
        assert_eq!(s.count_users(&t).await.unwrap(), 1);
        let winner = ["auth0|racer-0", "auth0|racer-1"];
        let mut methods = 0;
        for id in winner {
            methods += s.methods(&t, id).await.unwrap().len();
        }
        assert_eq!(methods, 1, "the winner's method only");
    }

    pub async fn rehash_password_over_the_old_hash(s: S) {
        let t = tenant(&s, "acme").await;
        let u = user("u1", "u1@example.com");
        s.upsert_user(&t, &u).await.unwrap();
        assert!(
            !s.rehash_password(&t, "u1", "not-the-hash", "new")
                .await
                .unwrap()
        );
        assert_eq!(s.user_by_id(&t, "u1").await.unwrap().unwrap(), u);
        assert!(
            s.rehash_password(&t, "u1", "hash-of-u1", "argon2id-of-u1")
                .await
                .unwrap()
        );
        let now = s.user_by_id(&t, "u1").await.unwrap().unwrap();
        assert_eq!(now.password_hash.as_deref(), Some("argon2id-of-u1"));
        assert_eq!(
            UserRow {
                password_hash: u.password_hash.clone(),
                ..now
            },
            u,
            "nothing else changes"
        );
        assert!(s.password_history(&t, "u1", 5).await.unwrap().is_empty());
        // Read through the user with methods too (SQLite's cache).
        let (cached, _) = s.user_with_methods(&t, "u1").await.unwrap().unwrap();
        assert_eq!(cached.password_hash.as_deref(), Some("argon2id-of-u1"));
        assert!(
            !s.rehash_password(&t, "u1", "hash-of-u1", "again")
                .await
                .unwrap()
        );
    }
}
