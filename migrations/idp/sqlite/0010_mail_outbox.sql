-- Mail waiting to be sent (idp/src/mail), written in the same transaction as the change
-- that causes it and delivered afterwards, at least once. Pending until the server
-- accepted it (`sent_at`), or a dead letter (`failed_at`) after IDP_MAIL_MAX_ATTEMPTS
-- tries, which `idp mail retry` sends again. An instance claims a message by moving
-- `lease_until` past now, so instances sharing a database do not send one twice in the
-- normal case. `message` is the whole RFC 5322 message; it is emptied once sent, since
-- it may carry a link with a token.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    message         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         BIGINT,
    failed_at       BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
