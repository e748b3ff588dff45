-- Rate limits with a burst (GCRA), shared by every instance: one row per key holding
-- its theoretical arrival time (Unix seconds). A row whose time has passed is a full
-- allowance, the same as no row; housekeeping deletes those. The first user is how
-- many accounts one IP address may create (accounts::register).
CREATE TABLE rate_limits (
    limit_key TEXT PRIMARY KEY,
    tat       BIGINT NOT NULL
);
