-- Logging in with upstream identity providers.
--
-- users.email_key: every user's address, lowercased, for finding the users
-- with a verified address whoever their connection (an upstream login joining
-- an existing user). users.email_lower stays the key of password logins,
-- unique in a connection; a user made from an upstream identity never logs in
-- by email and two accounts of a provider may share an address, so theirs
-- holds their user_id instead.
ALTER TABLE users ADD COLUMN email_key TEXT;
UPDATE users SET email_key = email_lower;
CREATE INDEX users_email_key ON users (tenant_id, email_key);

-- The accounts at upstream providers users log in with (Auth0's identities[]
-- beside a user's own): one account of a connection belongs to one user.
CREATE TABLE user_identities (
    tenant_id        TEXT NOT NULL,
    connection       TEXT NOT NULL,
    -- Auth0's identities[].user_id: `acme-idp|<sub>`, `583231`
    provider_user_id TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    provider         TEXT NOT NULL,
    is_social        BOOLEAN NOT NULL,
    -- the profile the provider last gave (Auth0's profileData), JSON
    profile_data     TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, connection, provider_user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX user_identities_user ON user_identities (tenant_id, user_id, created_at);

-- Logins gone to an upstream provider, found by the digest of the state sent
-- there; the PKCE verifier and nonce sent with it are sealed.
CREATE TABLE upstream_logins (
    state_digest   TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- the login transaction it carries
    tx_digest      TEXT NOT NULL,
    connection     TEXT NOT NULL,
    host           TEXT NOT NULL,
    sealed_secrets TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX upstream_logins_end ON upstream_logins (tenant_id, expires_at);
