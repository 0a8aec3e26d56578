-- SQLite twin of postgres/0003_users.sql (BLOB UUIDs, TEXT timestamps and JSON).
--
-- Users and their API tokens. Operational data, not part of the log: a rebuild leaves them
-- alone.

CREATE TABLE users (
    id BLOB PRIMARY KEY,
    -- A unique display name (`galley users add NAME`).
    name TEXT NOT NULL UNIQUE,
    -- Role names as a JSON array (["EDITOR", "REVIEWER"]).
    roles      TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Opaque bearer tokens are shown once and stored only as their SHA-256 hex hash.
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    BLOB NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    -- Set when revoked; a revoked token authenticates no one.
    revoked_at TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
