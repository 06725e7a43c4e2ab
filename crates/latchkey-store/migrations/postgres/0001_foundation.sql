-- Foundation: tenants, keys, users, login sessions and the token service.
-- Secrets are stored as SHA-256 digests (*_digest) or sealed (sealed_*).
--
-- The PostgreSQL twin of migrations/sqlite/0001_foundation.sql: the same
-- tables, columns and indexes. Timestamps are epoch seconds (BIGINT), flags
-- are BOOLEAN, JSON documents stay TEXT (serialized by the application), and
-- `seq` identity columns stand in for SQLite's rowid where insertion order
-- breaks ties.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    config     TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tenant_domains (
    domain    TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    canonical BOOLEAN NOT NULL
);

CREATE TABLE signing_keys (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kid            TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    -- when a newer key took over signing; published until superseded_at + max token lifetime
    superseded_at  BIGINT,
    -- insertion order: breaks ties between keys created in the same second
    seq            BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant_id, kid)
);

CREATE TABLE users (
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id             TEXT NOT NULL,
    connection          TEXT NOT NULL,
    email               TEXT NOT NULL,
    email_lower         TEXT NOT NULL,
    email_verified      BOOLEAN NOT NULL,
    password_hash       TEXT,
    profile             TEXT NOT NULL,
    blocked             BOOLEAN NOT NULL,
    last_password_reset BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, connection, email_lower)
);

CREATE TABLE sessions (
    id_digest     TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    auth_time     BIGINT NOT NULL,
    amr           TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE login_transactions (
    id_digest  TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    request    TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- A grant is everything issued from one authentication for one client:
-- its authorization code, its refresh-token family and its access tokens.
CREATE TABLE grants (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    user_id    TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoke_reason TEXT
);
CREATE INDEX grants_user ON grants (tenant_id, user_id);

CREATE TABLE auth_codes (
    code_digest    TEXT PRIMARY KEY NOT NULL,
    grant_id       TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL,
    request        TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

CREATE TABLE refresh_tokens (
    token_digest    TEXT PRIMARY KEY NOT NULL,
    grant_id        TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    scope           TEXT NOT NULL,
    audience        TEXT,
    auth_time       BIGINT NOT NULL,
    amr             TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    rotated_at      BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

CREATE TABLE login_failures (
    tenant_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    ip            TEXT NOT NULL,
    failures      BIGINT NOT NULL,
    blocked_until BIGINT,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, ip)
);
