-- The sweep (services/sweep.rs) deletes what can no longer be used, a chunk
-- at a time: each kind of row is found through an index on when it ends.
CREATE INDEX refresh_tokens_end ON refresh_tokens (tenant_id, LEAST(expires_at, idle_expires_at));
CREATE INDEX auth_codes_grant ON auth_codes (grant_id);
CREATE INDEX auth_codes_end ON auth_codes (tenant_id, expires_at);
CREATE INDEX grants_created ON grants (tenant_id, created_at, id);
CREATE INDEX grants_revoked ON grants (tenant_id) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_end ON sessions (tenant_id, expires_at);
CREATE INDEX sessions_revoked ON sessions (tenant_id) WHERE revoked_at IS NOT NULL;
CREATE INDEX login_transactions_end ON login_transactions (tenant_id, expires_at);
CREATE INDEX enrollments_end ON enrollments (tenant_id, expires_at);
CREATE INDEX login_failures_blocked ON login_failures (tenant_id, blocked_until) WHERE blocked_until IS NOT NULL;
