//! The store contract of a tenant's configuration changed by
//! compare-and-set: written only while the revision is the one the caller
//! read, the revision bumped when the configuration changed, domains
//! replaced when given, and of racing writers from one revision exactly one
//! wins. Each contract `x` runs on both backends, as
//! `tenant_config::x::sqlite` and `tenant_config::x::postgres`.

use super::*;

contract!(replace_tenant_config, race_replace_tenant_config);

mod bodies {
    use super::*;

    pub async fn replace_tenant_config(s: S) {
        let id = s
            .upsert_tenant("acme", "id-acme", "{\"v\":1}", &["acme.test".into()], T)
            .await
            .unwrap();
        s.upsert_tenant("other", "id-other", "{}", &["other.test".into()], T)
            .await
            .unwrap();
        let row = s.tenant_by_name("acme").await.unwrap().unwrap();
        // A stale revision: nothing written.
        assert!(
            !s.replace_tenant_config("acme", row.revision - 1, "{\"v\":2}", None, T)
                .await
                .unwrap()
        );
        assert_eq!(
            s.tenant_by_name("acme").await.unwrap().unwrap().config,
            row.config
        );
        // An unknown tenant: false.
        assert!(
            !s.replace_tenant_config("nobody", 1, "{}", None, T)
                .await
                .unwrap()
        );
        // The revision read: written, the revision bumped, the domains kept.
        assert!(
            s.replace_tenant_config("acme", row.revision, "{\"v\":2}", None, T + 1)
                .await
                .unwrap()
        );
        let now = s.tenant_by_name("acme").await.unwrap().unwrap();
        assert_eq!(
            (now.config.as_str(), now.revision),
            ("{\"v\":2}", row.revision + 1)
        );
        assert_eq!(
            s.tenant_by_domain("acme.test").await.unwrap().unwrap().id,
            id
        );
        // The same configuration: written, the revision as it was.
        assert!(
            s.replace_tenant_config("acme", now.revision, "{\"v\":2}", None, T + 2)
                .await
                .unwrap()
        );
        assert_eq!(
            s.tenant_by_name("acme").await.unwrap().unwrap().revision,
            now.revision
        );
        // Domains given: replaced.
        assert!(
            s.replace_tenant_config(
                "acme",
                now.revision,
                "{\"v\":2}",
                Some(&["login.acme.test".into()]),
                T + 3
            )
            .await
            .unwrap()
        );
        assert!(s.tenant_by_domain("acme.test").await.unwrap().is_none());
        assert_eq!(
            s.tenant_by_domain("login.acme.test")
                .await
                .unwrap()
                .unwrap()
                .id,
            id
        );
        // Another tenant's domain: a conflict, nothing written.
        let err = s
            .replace_tenant_config(
                "acme",
                now.revision,
                "{\"v\":3}",
                Some(&["other.test".into()]),
                T + 4,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let after = s.tenant_by_name("acme").await.unwrap().unwrap();
        assert_eq!(
            (after.config.as_str(), after.revision),
            ("{\"v\":2}", now.revision)
        );
    }

    pub async fn race_replace_tenant_config(s: S) {
        s.upsert_tenant("acme", "id-acme", "{}", &[], T)
            .await
            .unwrap();
        let revision = s.tenant_by_name("acme").await.unwrap().unwrap().revision;
        let won = race(|i| {
            let s = s.clone();
            async move {
                let config = format!("{{\"writer\":{i}}}");
                let ok = s
                    .replace_tenant_config("acme", revision, &config, None, T)
                    .await
                    .unwrap();
                (ok, config)
            }
        })
        .await;
        let winners: Vec<_> = won.iter().filter(|(ok, _)| *ok).collect();
        assert_eq!(winners.len(), 1, "{won:?}");
        let row = s.tenant_by_name("acme").await.unwrap().unwrap();
        assert_eq!(row.config, winners[0].1);
        assert_eq!(row.revision, revision + 1);
    }
}
