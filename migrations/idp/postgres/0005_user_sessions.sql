-- Sessions people can see and end (issue 5). Times are Unix seconds.

-- One row per sign-in, from the sign-in page (`browser`: its id is the OIDC `sid` and
-- lives in the browser's session cookie) or the JSON API (`api`: its refresh tokens
-- keep it going). A session is live while `ended_at` is NULL, `expires_at` (the
-- absolute lifetime) is ahead and it was used within the idle timeout.
CREATE TABLE user_sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('browser', 'api')),
    device       TEXT NOT NULL, -- "Firefox on Linux", from the User-Agent
    ip           TEXT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    -- SHA-256 of the CSRF token that cookie-authenticated JSON calls must echo (api).
    csrf_hash    TEXT,
    ended_at     BIGINT,
    ended_reason TEXT
);
CREATE INDEX user_sessions_user ON user_sessions (user_id, created_at);

-- Refresh tokens of `api` sessions, by SHA-256. Rotated on every use with one
-- conditional UPDATE (`used_at IS NULL`); a used token presented again ends the session.
CREATE TABLE session_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX session_refresh_tokens_session ON session_refresh_tokens (session_id);

-- The device a sign-in came from, for the account page's activity list.
ALTER TABLE audit_events ADD COLUMN device TEXT;
