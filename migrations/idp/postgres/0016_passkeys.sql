-- Passkeys (WebAuthn, factors/passkeys.rs): one row per credential. `id` is the
-- credential id (base64url), `passkey` the webauthn-rs credential (its public key and
-- signature counter) as JSON: nothing secret, since the private key never leaves the
-- authenticator. A passkey is a second factor after the password, and signs in
-- without one.
CREATE TABLE passkeys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    passkey      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);
