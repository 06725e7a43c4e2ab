-- A refresh token is good only on the host that minted it (its issuer): the
-- host, lowercased with its port, as the request named it. NULL for tokens
-- minted before: they count as the tenant's canonical host's.
ALTER TABLE refresh_tokens ADD COLUMN host TEXT;
