-- The newest one-time-password step a method has accepted: a code is never
-- accepted twice, and of two racing uses exactly one wins.
ALTER TABLE authentication_methods ADD COLUMN last_otp_step BIGINT;
