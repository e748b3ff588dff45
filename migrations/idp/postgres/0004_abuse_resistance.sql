-- Abuse resistance (issue 5): throttling counters shared by every instance on one
-- database, and the audit trail. Times are Unix seconds.

-- One row per throttled key (`account:<email>`, `ip:<address>`, `register-ip:<address>`):
-- failures counted in a fixed window from `window_start`, and a temporary lock. Updated
-- with one atomic INSERT ... ON CONFLICT DO UPDATE, so concurrent instances never lose
-- a failure.
CREATE TABLE auth_failures (
    throttle_key TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0
);

-- Security-relevant events. Never a password, secret, token or the submitted email of
-- an unknown account (people type passwords into the email field).
CREATE TABLE audit_events (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    user_id   TEXT,
    client_id TEXT,
    ip        TEXT,
    detail    TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id);
