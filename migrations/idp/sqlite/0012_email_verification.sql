-- When the account's current address was proven to be its owner's (a verification link
-- opened); NULL: not yet. OIDC `email_verified` is whether this is set.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
