-- Accounts. `email` is stored normalised (trimmed, lower-case), so the UNIQUE
-- constraint makes uniqueness case-insensitive and settles concurrent registrations.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Signing keys and their lifecycle: next (published, not signing) -> current (signing)
-- -> retired (published until its tokens expire) -> removed. Times are Unix seconds.
-- The private key is AES-256-GCM encrypted under the key-encryption key: base64 of
-- nonce || ciphertext, with the kid as associated data.
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    state           TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired', 'removed')),
    algorithm       TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    activated_at    BIGINT,
    retired_at      BIGINT,
    removed_at      BIGINT
);

-- At most one key signs at a time; concurrent first starts race on this index.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
