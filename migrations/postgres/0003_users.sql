-- Users and their API tokens. Operational data, not part of the log: a rebuild leaves them
-- alone.

CREATE TABLE users (
    id          UUID        PRIMARY KEY,
    -- A unique display name (`galley users add NAME`).
    name        TEXT        NOT NULL UNIQUE,
    -- Role names as a JSON array (["EDITOR", "REVIEWER"]).
    roles       JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

-- Opaque bearer tokens are shown once and stored only as their SHA-256 hex hash.
CREATE TABLE api_tokens (
    token_hash  TEXT        PRIMARY KEY,
    user_id     UUID        NOT NULL REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL,
    -- Set when revoked; a revoked token authenticates no one.
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
