-- How each sign-in was made: RFC 8176 `amr` values, space-separated (`pwd`, or
-- `pwd otp mfa` with a second factor). A first-party API session keeps it for the access
-- tokens its refreshes issue; a code hands it to the grant it makes, whose ID tokens and
-- access tokens carry it (with `acr`) for as long as the grant lives.
ALTER TABLE user_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE grants ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
