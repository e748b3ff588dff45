-- Key rotation (issue 4). Several instances share one database: a lease row names the
-- one instance allowed to apply scheduled key transitions until `expires_at` (Unix
-- seconds); it is claimed or renewed with one atomic INSERT ... ON CONFLICT DO UPDATE.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- At most one key is staged at a time, so two instances can never both stage one.
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
