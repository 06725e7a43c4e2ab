-- The tickets of the links latchkey mails about an account: verifying its
-- email address, resetting its password (docs/authentication-api.md,
-- "Sign-up, email verification and password reset"). The ticket travels in
-- the link; only its SHA-256 digest is kept. A ticket is used once (one
-- conditional UPDATE, in the transaction that does what it is for), until
-- it expires; failed attempts at it are counted, and enough of them end it.
-- The sweep deletes expired ones.
CREATE TABLE account_tickets (
    digest      TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    -- the application that asked for it (a sign-up's, a reset's)
    client_id   TEXT NOT NULL,
    -- verify_email, reset_password
    kind        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX account_tickets_user ON account_tickets (tenant_id, user_id, kind);
CREATE INDEX account_tickets_end ON account_tickets (tenant_id, expires_at);
