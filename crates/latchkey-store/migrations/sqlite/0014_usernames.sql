-- Usernames (database connections with `requires_username`): one user a
-- username in a connection, compared without regard to case, and what a
-- password login given a username finds its user by. The username itself
-- stays in the profile (`profile.username`, as the user chose it); this is
-- its lowercase, NULL for users without one (NULLs never collide).
ALTER TABLE users ADD COLUMN username_lower TEXT;
-- Usernames given before they were unique: the earliest user keeps theirs
-- as a key; a later one with the same name keeps it in the profile only,
-- and logs in by email until it is changed.
UPDATE users SET username_lower = lower(json_extract(users.profile, '$.username'))
 WHERE json_extract(users.profile, '$.username') IS NOT NULL
   AND NOT EXISTS (
       SELECT 1 FROM users earlier
        WHERE earlier.tenant_id = users.tenant_id
          AND earlier.connection = users.connection
          AND lower(json_extract(earlier.profile, '$.username')) = lower(json_extract(users.profile, '$.username'))
          AND (earlier.created_at < users.created_at
               OR (earlier.created_at = users.created_at AND earlier.user_id < users.user_id)));
CREATE UNIQUE INDEX users_username ON users (tenant_id, connection, username_lower);
