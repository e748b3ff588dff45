-- One account per mailbox: the confusable key of each address (see
-- idp/src/accounts/email.rs) is unique. Accounts registered before this column existed
-- get theirs at the next start (accounts::store::backfill_email_keys); NULLs do not
-- collide in a unique index.
ALTER TABLE users ADD COLUMN email_key TEXT;
CREATE UNIQUE INDEX users_email_key_unique ON users (email_key);
