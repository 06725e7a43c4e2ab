-- Push-notification logins: a transaction a login's second step sent to a
-- device (docs/push-notifications.md, "Logging in: a transaction"). Its
-- transaction token, challenge and oob_code are kept as SHA-256 digests.
-- The number-matching code is kept as it is: the login page shows it to
-- whoever started the login, and it resolves nothing without the device's
-- signature. Resolved once (pending -> approved | rejected while unexpired)
-- and consumed once, each by one conditional UPDATE.
CREATE TABLE push_transactions (
    -- txlnkid
    id               TEXT PRIMARY KEY NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    method_id        TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    -- the login it belongs to: the digest of its mfa_token, or of the hosted
    -- login transaction
    login_digest     TEXT NOT NULL,
    token_digest     TEXT NOT NULL UNIQUE,
    challenge_digest TEXT NOT NULL,
    oob_digest       TEXT NOT NULL UNIQUE,
    binding_code     TEXT,
    -- pending, approved, rejected
    status           TEXT NOT NULL,
    reason           TEXT,
    -- what the device may show (application, ip, user_agent, started_at), JSON
    context          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    polled_at        INTEGER,
    resolved_at      INTEGER,
    consumed_at      INTEGER,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX push_transactions_login ON push_transactions (tenant_id, login_digest, created_at);
CREATE INDEX push_transactions_end ON push_transactions (tenant_id, expires_at);
