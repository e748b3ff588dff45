-- Security events (idp/src/events): receivers an operator configured (`idp streams`),
-- and the outbox of SETs and back-channel logout tokens waiting for them.

-- An SSF push receiver. `events` lists the event type URIs it wants, space-separated;
-- `auth_header` is the Authorization header value sent with each push, sealed with
-- the key-encryption key (NULL: none).
CREATE TABLE event_streams (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    push_url      TEXT NOT NULL,
    audience      TEXT NOT NULL,
    events        TEXT NOT NULL,
    auth_header   TEXT,
    created_at    BIGINT NOT NULL
);

-- One token to deliver to one receiver: a stream (`stream_id`) or a client's
-- back-channel logout URI (`client_id`); `receiver` names either, for grouping.
-- `claims` holds everything but `aud`, `iat` and `exp`, which are set when it is signed,
-- at delivery. Written in the transaction of the change that causes it; delivered in
-- order per receiver and `subject` (the user), at least once (`sent_at`: the receiver
-- answered 2xx), retried with backoff until
-- IDP_EVENTS_MAX_ATTEMPTS, then a dead letter (`failed_at`) for `idp streams retry`.
CREATE TABLE event_outbox (
    id              TEXT PRIMARY KEY,
    receiver        TEXT NOT NULL,
    stream_id       TEXT REFERENCES event_streams (id) ON DELETE CASCADE,
    client_id       TEXT REFERENCES clients (client_id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    claims          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         BIGINT,
    failed_at       BIGINT
);
CREATE INDEX event_outbox_due ON event_outbox (receiver, next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX event_outbox_subject ON event_outbox (receiver, subject, created_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

-- OpenID Connect Back-Channel Logout 1.0 §2.2.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BIGINT NOT NULL DEFAULT 0;

-- Set by `idp users disable`: no sign-in until `idp users enable`.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
