-- Connected accounts (Token Vault): accounts at upstream identity providers
-- linked to users, their tokens sealed under the master key (sealed_*); and
-- the transactions that link them (connect, the provider, complete), found
-- by the digests of their secrets (*_digest). A user's accounts and
-- transactions go with the user.
--
-- The PostgreSQL twin of migrations/sqlite/0009_connected_accounts.sql.

CREATE TABLE connected_accounts (
    tenant_id            TEXT NOT NULL,
    id                   TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    connection           TEXT NOT NULL,
    -- the provider's identifier of the account
    subject              TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    sealed_access_token  TEXT,
    access_expires_at    BIGINT,
    sealed_refresh_token TEXT,
    refresh_expires_at   BIGINT,
    sealed_id_token      TEXT,
    -- active, or revoked (the provider refused the refresh token)
    status               TEXT NOT NULL,
    -- counts writes of the tokens: a refresh is stored over the version it
    -- started from only
    version              BIGINT NOT NULL DEFAULT 0,
    -- until when one node holds the right to refresh the tokens
    refresh_lock_until   BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, connection, subject),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX connected_accounts_user ON connected_accounts (tenant_id, user_id, created_at, id);

CREATE TABLE connect_transactions (
    -- the auth_session's digest
    session_digest       TEXT PRIMARY KEY NOT NULL,
    tenant_id            TEXT NOT NULL,
    ticket_digest        TEXT NOT NULL UNIQUE,
    -- the digest of the state sent to the provider
    state_digest         TEXT UNIQUE,
    code_digest          TEXT,
    user_id              TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    connection           TEXT NOT NULL,
    host                 TEXT NOT NULL,
    redirect_uri         TEXT NOT NULL,
    app_state            TEXT,
    code_challenge       TEXT,
    scopes               TEXT NOT NULL,
    authorization_params TEXT NOT NULL,
    -- created, redirected, exchanging, returned
    stage                TEXT NOT NULL,
    browser_digest       TEXT,
    -- the PKCE verifier and nonce sent to the provider
    sealed_upstream      TEXT,
    -- the provider account and tokens the exchange gave
    sealed_result        TEXT,
    attempts             BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX connect_transactions_end ON connect_transactions (tenant_id, expires_at);
CREATE INDEX connect_transactions_user ON connect_transactions (tenant_id, user_id);
