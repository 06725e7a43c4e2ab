//! Signing keys: rotation keeps old tokens verifiable until they expire.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

async fn jwks(s: &TestServer) -> Vec<Value> {
    let v: Value = s
        .http()
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["keys"].as_array().unwrap().clone()
}

fn kid(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let h: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(h["alg"], "RS256");
    h["kid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn rotation_publishes_both_keys_until_old_tokens_expire() {
    let s = TestServer::start().await;
    let before = s.password_login("openid", None).await;
    let old_at = before["access_token"].as_str().unwrap().to_string();
    let old_kid = kid(&old_at);
    let tenant = latchkey::tenant::Tenant::from_row(
        &s.state.store.tenant_by_name("acme").await.unwrap().unwrap(),
    )
    .unwrap();
    let new_kid = s.state.keys.rotate(&tenant.id).await.unwrap();
    assert_ne!(new_kid, old_kid);

    let keys = jwks(&s).await;
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()));
    let after = s.password_login("openid", None).await;
    assert_eq!(kid(after["access_token"].as_str().unwrap()), new_kid);
    assert_eq!(
        userinfo(&s, &old_at).await.0,
        StatusCode::OK,
        "old tokens still verify"
    );

    // Once every token the old key could have signed has expired, it goes.
    let horizon = latchkey::services::tokens::max_token_lifetime(&tenant);
    s.clock.advance(horizon + 1);
    let keys = jwks(&s).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], new_kid);
    assert_eq!(s.state.keys.prune(&tenant.id, horizon).await.unwrap(), 1);
}

/// Tokens are verified once and remembered; a remembered token stops
/// verifying when the key that signed it is no longer published, even if
/// the token itself claims to live longer.
#[tokio::test]
async fn a_remembered_token_dies_with_its_key() {
    use latchkey::clock::Clock;
    use latchkey::services::tokens::{AccessTokenError, max_token_lifetime, verify_access_token};
    let s = TestServer::start().await;
    let tenant = latchkey::tenant::Tenant::from_row(
        &s.state.store.tenant_by_name("acme").await.unwrap().unwrap(),
    )
    .unwrap();
    let host = s.base.trim_start_matches("http://").to_string();
    let key = s.state.keys.signing_key(&tenant.id).await.unwrap();
    let now = s.clock.now();
    let long_lived = key
        .sign(
            "at+jwt",
            &serde_json::json!({
                "iss": s.issuer, "sub": "backend@clients", "aud": "https://api.acme.test/",
                "gty": "client-credentials", "iat": now, "exp": now + 10 * 365 * 86_400,
            }),
        )
        .unwrap();
    for _ in 0..2 {
        let at = verify_access_token(&s.state, &tenant, &host, &long_lived)
            .await
            .unwrap();
        assert_eq!(at.sub, "backend@clients");
    }
    // A tampered copy is not the remembered token.
    let tampered = format!("{}A", &long_lived[..long_lived.len() - 1]);
    if tampered != long_lived {
        assert_eq!(
            verify_access_token(&s.state, &tenant, &host, &tampered)
                .await
                .unwrap_err(),
            AccessTokenError::Invalid
        );
    }
    s.state.keys.rotate(&tenant.id).await.unwrap();
    s.clock.advance(max_token_lifetime(&tenant) + 1);
    assert_eq!(
        verify_access_token(&s.state, &tenant, &host, &long_lived)
            .await
            .unwrap_err(),
        AccessTokenError::Invalid
    );
}

#[tokio::test]
async fn a_wrong_master_key_is_a_clear_start_up_error() {
    let s = TestServer::start().await;
    let mut opts = latchkey::server::Options::new(
        s.dir.path().to_path_buf(),
        latchkey::server::MasterKeySource::Value(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ),
    );
    if let Some((url, schema)) = &s.postgres {
        opts.database = latchkey::server::Database::Postgres {
            url: url.clone(),
            pool: latchkey::store::postgres::PoolOptions {
                schema: Some(schema.clone()),
                ..Default::default()
            },
        };
    }
    let err = latchkey::server::open(opts)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("master key does not match"), "{err}");
    let opts = latchkey::server::Options::new(
        s.dir.path().to_path_buf(),
        latchkey::server::MasterKeySource::Value("too-short".into()),
    );
    let err = latchkey::server::open(opts)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("32 bytes"), "{err}");
}

#[tokio::test]
async fn a_schema_from_a_newer_latchkey_is_refused() {
    let s = TestServer::start().await;
    let insert = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                  VALUES (99990101000000, 'from a newer latchkey', TRUE, X'00', 0)";
    let mut opts = latchkey::server::Options::new(
        s.dir.path().to_path_buf(),
        latchkey::server::MasterKeySource::DataDir,
    );
    match &s.postgres {
        None => {
            let url = format!("sqlite://{}", s.dir.path().join("latchkey.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(insert).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Some((url, schema)) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let sql = insert
                .replace("_sqlx_migrations", &format!("{schema}._sqlx_migrations"))
                .replace("X'00'", "'\\x00'::bytea");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            opts.database = latchkey::server::Database::Postgres {
                url: url.clone(),
                pool: latchkey::store::postgres::PoolOptions {
                    schema: Some(schema.clone()),
                    ..Default::default()
                },
            };
        }
    }
    let err = latchkey::server::open(opts).await.err().expect("refused");
    let err = format!("{err:#}");
    assert!(err.contains("newer version"), "{err}");
}
