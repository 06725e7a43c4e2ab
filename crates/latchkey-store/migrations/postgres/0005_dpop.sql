-- DPoP: a public client's refresh token is bound to the key of the proof
-- it was issued with (RFC 9449 §5): the key's JWK thumbprint.
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
