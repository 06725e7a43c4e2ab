-- Accounts. `signed_up`: the user created their own account (a sign-up), so
-- its email is only their word until verified; a tenant file never takes
-- such an account over. `seeded_password`: a MAC of the password (or hash)
-- the tenant file last applied, so that applying the same file again leaves
-- a password the user has since changed alone.
ALTER TABLE users ADD COLUMN signed_up INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN seeded_password TEXT;

-- Sign-ups made before: no password, an unverified email, and a passkey
-- written in the same transaction (the same instant) as the user.
UPDATE users SET signed_up = 1
 WHERE password_hash IS NULL AND email_verified = 0
   AND EXISTS (SELECT 1 FROM authentication_methods m
                WHERE m.tenant_id = users.tenant_id AND m.user_id = users.user_id
                  AND m.type = 'passkey' AND m.created_at = users.created_at);

-- Emails in their normal form (services/email_address.rs) as far as SQL can
-- tell: without spaces around or the domain's final dot. A user whose
-- address, so rewritten, another user of the connection already has keeps
-- it as it was (of several such, the first by user_id is rewritten).
UPDATE users SET email = rtrim(trim(email), '.'), email_lower = rtrim(trim(email_lower), '.')
 WHERE email_lower <> rtrim(trim(email_lower), '.')
   AND NOT EXISTS (SELECT 1 FROM users o
                    WHERE o.tenant_id = users.tenant_id AND o.connection = users.connection
                      AND o.email_lower = rtrim(trim(users.email_lower), '.'))
   AND users.user_id = (SELECT min(o.user_id) FROM users o
                         WHERE o.tenant_id = users.tenant_id AND o.connection = users.connection
                           AND rtrim(trim(o.email_lower), '.') = rtrim(trim(users.email_lower), '.'));
