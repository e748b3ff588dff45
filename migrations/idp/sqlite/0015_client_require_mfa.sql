-- A client registered with `--require-mfa`: its users must have signed in with a
-- second factor before it gets a code (1), or as the request and IDP_REQUIRE_MFA say (0).
ALTER TABLE clients ADD COLUMN require_mfa BIGINT NOT NULL DEFAULT 0;
