-- The event log: the source of truth. Every other table is a projection of it (or, for users
-- and tokens, operational data that is not part of the log).
--
-- Positions are global, contiguous and commit-ordered (DESIGN.md §5). SQLite has a single
-- writer: every append runs in a BEGIN IMMEDIATE transaction, which takes the write lock
-- before it reads the head, so appends are serialised and commit in position order. The store
-- assigns positions itself (head + 1, …) rather than relying on rowid allocation.
--
-- Types: UUIDs are 16-byte BLOBs, timestamps are RFC 3339 TEXT in UTC (which sorts in time
-- order), JSON is TEXT.

CREATE TABLE events (
    -- Global position: 1, 2, 3 … with no holes, in commit order.
    position        INTEGER PRIMARY KEY CHECK (position >= 1),
    -- The event's own id (UUIDv7).
    event_id        BLOB    NOT NULL UNIQUE,
    -- The stream the event belongs to.
    article_id      BLOB    NOT NULL,
    -- 1, 2, 3 … within the stream; unique per stream as a guard of last resort.
    version         INTEGER NOT NULL CHECK (version >= 1),
    -- Stable type string and schema version: a persisted contract (DESIGN.md §4).
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    -- Who caused it (the nil UUID is the system actor).
    actor           BLOB    NOT NULL,
    correlation_id  BLOB    NOT NULL,
    causation_id    BLOB,
    request_id      TEXT,
    -- The server clock when the command was accepted.
    recorded_at     TEXT    NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (article_id, version)
);

-- Feed reads filtered by article, type or actor walk these in position order.
CREATE INDEX events_article_position ON events (article_id, position);
CREATE INDEX events_type_position ON events (event_type, position);
CREATE INDEX events_actor_position ON events (actor, position);

-- Nothing updates or deletes an event.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
END;

-- The highest position ever committed, kept beside the log so both backends read the head
-- the same way.
CREATE TABLE log_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    position  INTEGER NOT NULL CHECK (position >= 0)
);
INSERT INTO log_head (id, position) VALUES (1, 0);

-- Idempotent retries: the first command sent with a key is remembered with a fingerprint of
-- the command and the events it appended, so a retry returns the same result and a different
-- command with the same key is refused.
CREATE TABLE idempotency_keys (
    key             TEXT    PRIMARY KEY,
    -- SHA-256 hex of the command (article, expected version, action, acting user).
    fingerprint     TEXT    NOT NULL,
    article_id      BLOB    NOT NULL,
    -- The positions the command appended: a contiguous range.
    first_position  INTEGER NOT NULL,
    last_position   INTEGER NOT NULL,
    created_at      TEXT    NOT NULL
);
