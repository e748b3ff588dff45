-- Second factors (factors/).
--
-- An authenticator app (TOTP, RFC 6238) per row: its 160-bit secret sealed with the
-- key-encryption key (AES-256-GCM, bound to the row's id), and the last time step a
-- code was accepted for. A sign-in moves `last_step` forward with a conditional UPDATE,
-- so a code works once and only one of two racing requests with it wins (RFC 6238
-- §5.2). `confirmed_at` NULL: enrolment begun, no correct code yet; such a row counts
-- for nothing.
CREATE TABLE totp_credentials (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret       TEXT NOT NULL,
    last_step    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT
);
CREATE INDEX totp_credentials_user ON totp_credentials (user_id);

-- Recovery codes, ten per set: only a SHA-256 of the user id and the code is stored,
-- and `used_at` is set by a conditional UPDATE, so a code works once. A new set
-- replaces the old.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
