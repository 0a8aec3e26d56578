-- Passwords and browser sessions for the newsroom console. Operational data, not part of the
-- log: a rebuild leaves them alone.

-- An Argon2id hash in PHC string form ($argon2id$v=19$…); NULL when the user has no password
-- (they can still use API tokens, but cannot sign in to the console).
ALTER TABLE users ADD COLUMN password_hash TEXT;

-- A console session: the cookie holds a random secret, the table only its SHA-256 hex hash.
CREATE TABLE sessions (
    session_hash TEXT        PRIMARY KEY,
    user_id      UUID        NOT NULL REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL,
    -- A session authenticates no one after this time.
    expires_at   TIMESTAMPTZ NOT NULL,
    -- Set by sign-out or `galley sessions revoke`; a revoked session authenticates no one.
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX sessions_user ON sessions (user_id);
