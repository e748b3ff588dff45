-- Single-use links sent by mail (accounts::tokens): password resets now, and next email
-- verification and email changes. Only the SHA-256 of a token is stored; `email` is the
-- address the link went to. A link is spent when `used_at` is set, by a conditional
-- UPDATE, so two uses race to one winner.
CREATE TABLE account_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
