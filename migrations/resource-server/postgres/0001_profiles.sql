-- Profiles of the users the idp vouches for. `id` is the token's `sub` (a UUID as
-- text); the email comes from the token and is never changed by a client; timestamps
-- are unix seconds. No password is ever stored here.
CREATE TABLE profiles (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    bio TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The list endpoint pages in creation order.
CREATE INDEX profiles_created_at_id ON profiles (created_at, id);
