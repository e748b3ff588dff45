-- When what the idp releases with the `profile` scope last changed (OIDC `updated_at`):
-- not `updated_at`, which a password change moves too.
ALTER TABLE users ADD COLUMN profile_updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE users SET profile_updated_at = created_at;
