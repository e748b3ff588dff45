-- OAuth 2.0 / OpenID Connect: clients, consents, grants, authorization codes, refresh
-- and access tokens. Times are Unix seconds; codes and tokens are stored only as
-- SHA-256 hashes (base64url), never in the clear.

-- An optional display name, released in ID tokens and userinfo with the `profile` scope.
ALTER TABLE users ADD COLUMN name TEXT;

CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY,
    name                       TEXT NOT NULL,
    client_type                TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    -- SHA-256 of the secret. Secrets are 256 random bits, so a fast hash is enough
    -- (RFC 6819 §5.1.4.1.3); public clients have none.
    secret_hash                TEXT,
    token_endpoint_auth_method TEXT NOT NULL
        CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')),
    redirect_uris              TEXT NOT NULL, -- JSON array, compared by exact string
    post_logout_redirect_uris  TEXT NOT NULL, -- JSON array, compared by exact string
    allowed_scopes             TEXT NOT NULL, -- space-separated
    grant_types                TEXT NOT NULL, -- space-separated
    skip_consent               BIGINT NOT NULL DEFAULT 0,
    require_pkce               BIGINT NOT NULL DEFAULT 1,
    created_at                 BIGINT NOT NULL
);

-- What a user agreed to share with a client; asked again when a request wants more.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- One authorization: created when a code is redeemed; its refresh tokens form one
-- rotation family, and revoking it ends them and its access tokens.
CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    session_id TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX grants_session ON grants (session_id);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT, -- S256 only
    auth_time      BIGINT NOT NULL,
    session_id     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT,
    grant_id       TEXT REFERENCES grants (id) ON DELETE SET NULL
);

CREATE TABLE refresh_tokens (
    token_hash          TEXT PRIMARY KEY,
    grant_id            TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id           TEXT NOT NULL,
    scope               TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL, -- idle expiry of this token
    absolute_expires_at BIGINT NOT NULL, -- the family's end, whatever the use
    used_at             BIGINT           -- rotated: presenting it again is reuse
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

-- Access tokens issued within a grant, so userinfo and introspection can refuse them
-- once the grant is revoked (a signature alone cannot say that).
CREATE TABLE access_tokens (
    jti        TEXT PRIMARY KEY,
    grant_id   TEXT REFERENCES grants (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
