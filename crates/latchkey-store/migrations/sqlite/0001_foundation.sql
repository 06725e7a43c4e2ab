-- Foundation: tenants, keys, users, login sessions and the token service.
-- Secrets are stored as SHA-256 digests (*_digest) or sealed (sealed_*).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    config     TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE tenant_domains (
    domain    TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    canonical INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kid            TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    -- when a newer key took over signing; published until retired_at + max token lifetime
    superseded_at  INTEGER,
    PRIMARY KEY (tenant_id, kid)
);

CREATE TABLE users (
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id             TEXT NOT NULL,
    connection          TEXT NOT NULL,
    email               TEXT NOT NULL,
    email_lower         TEXT NOT NULL,
    email_verified      INTEGER NOT NULL,
    password_hash       TEXT,
    profile             TEXT NOT NULL,
    blocked             INTEGER NOT NULL,
    last_password_reset INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, connection, email_lower)
);

CREATE TABLE sessions (
    id_digest     TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    auth_time     INTEGER NOT NULL,
    amr           TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE login_transactions (
    id_digest  TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    request    TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- A grant is everything issued from one authentication for one client:
-- its authorization code, its refresh-token family and its access tokens.
CREATE TABLE grants (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    user_id    TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoke_reason TEXT
);
CREATE INDEX grants_user ON grants (tenant_id, user_id);

CREATE TABLE auth_codes (
    code_digest    TEXT PRIMARY KEY NOT NULL,
    grant_id       TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL,
    request        TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);

CREATE TABLE refresh_tokens (
    token_digest    TEXT PRIMARY KEY NOT NULL,
    grant_id        TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    scope           TEXT NOT NULL,
    audience        TEXT,
    auth_time       INTEGER NOT NULL,
    amr             TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    rotated_at      INTEGER
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

CREATE TABLE login_failures (
    tenant_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    ip            TEXT NOT NULL,
    failures      INTEGER NOT NULL,
    blocked_until INTEGER,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, ip)
);
