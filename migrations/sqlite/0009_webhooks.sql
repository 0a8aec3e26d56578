-- SQLite twin of postgres/0009_webhooks.sql (BLOB UUIDs, TEXT timestamps and JSON).
--
-- Webhooks (issue 16; ARCHITECTURE.md "Webhooks"): endpoints that other systems register to be
-- told what happened. Each endpoint follows the event log from its own checkpoint, as an
-- asynchronous reader does. Operational data, not part of the log and not a projection: a
-- rebuild leaves these tables alone, and `galley events export` carries none of them. The
-- signing secrets live in `webhook_endpoints` only: never in the log, the audit rows, an
-- export or a log line.

CREATE TABLE webhook_endpoints (
    id                    BLOB    PRIMARY KEY,
    -- Where deliveries are posted (https, or http when the operator allows it).
    url                   TEXT    NOT NULL,
    description           TEXT    NOT NULL,
    -- The filter: event types as a JSON array of strings (empty: every type), and optionally
    -- a category (the article's current one) and one article.
    event_types           TEXT    NOT NULL,
    category              TEXT,
    article_id            BLOB,
    -- ACTIVE endpoints are dispatched; PAUSED and DISABLED ones wait for an admin's resume.
    -- DISABLED is set by the dispatcher when deliveries have failed for too long.
    state                 TEXT    NOT NULL CHECK (state IN ('ACTIVE', 'PAUSED', 'DISABLED')),
    state_reason          TEXT,
    state_since           TEXT    NOT NULL,
    -- whsec_ + base64 of 32 random bytes. After a rotation the previous secret still signs
    -- deliveries (a second signature) until previous_secret_until.
    secret                TEXT    NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TEXT,
    -- The log position of the last event this endpoint is done with (delivered, failed for
    -- good, skipped or not matching its filter).
    checkpoint            INTEGER NOT NULL CHECK (checkpoint >= 0),
    -- Counts the changes made to the endpoint (by admins, or its disabling): every change
    -- names the version it expects. The dispatcher's progress does not count.
    version               INTEGER NOT NULL CHECK (version > 0),
    -- Since when deliveries have failed without a success in between (NULL: not failing).
    failing_since         TEXT,
    last_error            TEXT,
    last_error_at         TEXT,
    last_delivered_at     TEXT,
    created_at            TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL
);

-- The recent delivery attempts of each endpoint (the newest hundred are kept).
CREATE TABLE webhook_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id      BLOB    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The event delivered.
    position         INTEGER NOT NULL,
    event_id         BLOB    NOT NULL,
    -- 1, 2, 3 … within one delivery (the same event to the same endpoint).
    attempt          INTEGER NOT NULL CHECK (attempt > 0),
    -- DISPATCH (the dispatcher following the log) or REDELIVERY (an admin's).
    kind             TEXT    NOT NULL CHECK (kind IN ('DISPATCH', 'REDELIVERY')),
    -- DELIVERED (2xx), RETRYING (network error, timeout, 408, 429, 5xx: tried again) or
    -- FAILED (any other answer: the delivery failed for good).
    outcome          TEXT    NOT NULL CHECK (outcome IN ('DELIVERED', 'RETRYING', 'FAILED')),
    -- The HTTP status, when the receiver answered.
    status           INTEGER,
    latency_ms       INTEGER NOT NULL,
    error            TEXT,
    -- The first bytes of the receiver's answer (at most 1 KiB is read).
    response_excerpt TEXT,
    attempted_at     TEXT    NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);

-- The audit of endpoint changes: who changed what, when; never a secret. Rows outlive their
-- endpoint (no foreign key), so a deletion stays on record.
CREATE TABLE webhook_endpoint_changes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id  BLOB    NOT NULL,
    -- Created, Updated, Paused, Resumed, Disabled, SecretRotated, Rewound, Skipped,
    -- Redelivered or Deleted.
    change_type  TEXT    NOT NULL,
    -- What changed, as JSON (the new url, description and filter; a position; a reason).
    detail       TEXT    NOT NULL,
    -- The ADMIN, or the system id for the dispatcher.
    actor        BLOB    NOT NULL,
    recorded_at  TEXT    NOT NULL
);
CREATE INDEX webhook_endpoint_changes_endpoint ON webhook_endpoint_changes (endpoint_id, id);

CREATE TRIGGER webhook_endpoint_changes_no_update BEFORE UPDATE ON webhook_endpoint_changes
BEGIN
    SELECT RAISE(ABORT, 'webhook endpoint changes are append-only: UPDATE is not allowed');
END;
CREATE TRIGGER webhook_endpoint_changes_no_delete BEFORE DELETE ON webhook_endpoint_changes
BEGIN
    SELECT RAISE(ABORT, 'webhook endpoint changes are append-only: DELETE is not allowed');
END;
