-- The event log: the source of truth. Every other table is a projection of it (or, for users
-- and tokens, operational data that is not part of the log).
--
-- Positions are global, contiguous and commit-ordered (DESIGN.md §5). They are not taken from
-- a sequence, whose values are handed out at call time and may commit out of order or be lost
-- to aborted transactions. Instead every append transaction locks the single `log_head` row
-- first and advances it by the number of events it writes; the row lock is held until commit,
-- so appends commit one after another, in position order, and an aborted append leaves the
-- counter untouched.

CREATE TABLE events (
    -- Global position: 1, 2, 3 … with no holes, in commit order.
    position        BIGINT      PRIMARY KEY CHECK (position >= 1),
    -- The event's own id (UUIDv7).
    event_id        UUID        NOT NULL UNIQUE,
    -- The stream the event belongs to.
    article_id      UUID        NOT NULL,
    -- 1, 2, 3 … within the stream. The unique constraint below is the optimistic-concurrency
    -- guard of last resort; the store checks expected versions before it gets here.
    version         BIGINT      NOT NULL CHECK (version >= 1),
    -- Stable type string and schema version: a persisted contract (DESIGN.md §4).
    event_type      TEXT        NOT NULL,
    schema_version  BIGINT      NOT NULL,
    payload         JSONB       NOT NULL,
    -- Who caused it (the nil UUID is the system actor).
    actor           UUID        NOT NULL,
    correlation_id  UUID        NOT NULL,
    causation_id    UUID,
    request_id      TEXT,
    -- The server clock when the command was accepted.
    recorded_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (article_id, version)
);

-- Feed reads filtered by article, type or actor walk these in position order.
CREATE INDEX events_article_position ON events (article_id, position);
CREATE INDEX events_type_position ON events (event_type, position);
CREATE INDEX events_actor_position ON events (actor, position);

-- Nothing updates or deletes an event.
CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();

-- The one-row counter that serialises position assignment (see the header).
CREATE TABLE log_head (
    id        BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    -- The highest position ever committed.
    position  BIGINT  NOT NULL CHECK (position >= 0)
);
INSERT INTO log_head (id, position) VALUES (TRUE, 0);

-- Idempotent retries: the first command sent with a key is remembered with a fingerprint of
-- the command and the events it appended, so a retry returns the same result and a different
-- command with the same key is refused.
CREATE TABLE idempotency_keys (
    key             TEXT        PRIMARY KEY,
    -- SHA-256 hex of the command (article, expected version, action, acting user).
    fingerprint     TEXT        NOT NULL,
    article_id      UUID        NOT NULL,
    -- The positions the command appended: a contiguous range, since one command's events are
    -- written together in one transaction.
    first_position  BIGINT      NOT NULL,
    last_position   BIGINT      NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
