-- Passkeys: a credential ID is registered at most once per tenant.
ALTER TABLE authentication_methods ADD COLUMN credential_id TEXT;
CREATE UNIQUE INDEX authentication_methods_credential ON authentication_methods (tenant_id, credential_id);
