-- The My Account API: confirmed authentication methods, pending enrollments,
-- password history and audit events. A method row exists only once its
-- enrollment is confirmed; the password method is derived from users.

CREATE TABLE authentication_methods (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    type         TEXT NOT NULL,
    name         TEXT,
    -- type-specific data; secrets in it are sealed
    data         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_auth_at INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX authentication_methods_user ON authentication_methods (tenant_id, user_id);

CREATE TABLE enrollments (
    session_digest TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    method_type    TEXT NOT NULL,
    method_id      TEXT NOT NULL,
    -- the factor's pending state; secrets in it are sealed
    state          TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX enrollments_user ON enrollments (tenant_id, user_id);

CREATE TABLE password_history (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX password_history_user ON password_history (tenant_id, user_id, created_at);

CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    date       INTEGER NOT NULL,
    client_id  TEXT,
    user_id    TEXT,
    ip         TEXT,
    user_agent TEXT,
    details    TEXT NOT NULL
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, date);
