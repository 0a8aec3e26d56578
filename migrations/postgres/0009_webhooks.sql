-- Webhooks (issue 16; ARCHITECTURE.md "Webhooks"): endpoints that other systems register to be
-- told what happened. Each endpoint follows the event log from its own checkpoint, as an
-- asynchronous reader does. Operational data, not part of the log and not a projection: a
-- rebuild leaves these tables alone, and `galley events export` carries none of them. The
-- signing secrets live in `webhook_endpoints` only: never in the log, the audit rows, an
-- export or a log line.

CREATE TABLE webhook_endpoints (
    id                    UUID        PRIMARY KEY,
    -- Where deliveries are posted (https, or http when the operator allows it).
    url                   TEXT        NOT NULL,
    description           TEXT        NOT NULL,
    -- The filter: event types as a JSON array of strings (empty: every type), and optionally
    -- a category (the article's current one) and one article.
    event_types           JSONB       NOT NULL,
    category              TEXT,
    article_id            UUID,
    -- ACTIVE endpoints are dispatched; PAUSED and DISABLED ones wait for an admin's resume.
    -- DISABLED is set by the dispatcher when deliveries have failed for too long.
    state                 TEXT        NOT NULL CHECK (state IN ('ACTIVE', 'PAUSED', 'DISABLED')),
    state_reason          TEXT,
    state_since           TIMESTAMPTZ NOT NULL,
    -- whsec_ + base64 of 32 random bytes. After a rotation the previous secret still signs
    -- deliveries (a second signature) until previous_secret_until.
    secret                TEXT        NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TIMESTAMPTZ,
    -- The log position of the last event this endpoint is done with (delivered, failed for
    -- good, skipped or not matching its filter).
    checkpoint            BIGINT      NOT NULL CHECK (checkpoint >= 0),
    -- Counts the changes made to the endpoint (by admins, or its disabling): every change
    -- names the version it expects. The dispatcher's progress does not count.
    version               BIGINT      NOT NULL CHECK (version > 0),
    -- Since when deliveries have failed without a success in between (NULL: not failing).
    failing_since         TIMESTAMPTZ,
    last_error            TEXT,
    last_error_at         TIMESTAMPTZ,
    last_delivered_at     TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

-- The recent delivery attempts of each endpoint (the newest hundred are kept).
CREATE TABLE webhook_attempts (
    id               BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      UUID        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The event delivered.
    position         BIGINT      NOT NULL,
    event_id         UUID        NOT NULL,
    -- 1, 2, 3 … within one delivery (the same event to the same endpoint).
    attempt          BIGINT      NOT NULL CHECK (attempt > 0),
    -- DISPATCH (the dispatcher following the log) or REDELIVERY (an admin's).
    kind             TEXT        NOT NULL CHECK (kind IN ('DISPATCH', 'REDELIVERY')),
    -- DELIVERED (2xx), RETRYING (network error, timeout, 408, 429, 5xx: tried again) or
    -- FAILED (any other answer: the delivery failed for good).
    outcome          TEXT        NOT NULL CHECK (outcome IN ('DELIVERED', 'RETRYING', 'FAILED')),
    -- The HTTP status, when the receiver answered.
    status           BIGINT,
    latency_ms       BIGINT      NOT NULL,
    error            TEXT,
    -- The first bytes of the receiver's answer (at most 1 KiB is read).
    response_excerpt TEXT,
    attempted_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);

-- The audit of endpoint changes: who changed what, when; never a secret. Rows outlive their
-- endpoint (no foreign key), so a deletion stays on record.
CREATE TABLE webhook_endpoint_changes (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id  UUID        NOT NULL,
    -- Created, Updated, Paused, Resumed, Disabled, SecretRotated, Rewound, Skipped,
    -- Redelivered or Deleted.
    change_type  TEXT        NOT NULL,
    -- What changed, as JSON (the new url, description and filter; a position; a reason).
    detail       JSONB       NOT NULL,
    -- The ADMIN, or the system id for the dispatcher.
    actor        UUID        NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoint_changes_endpoint ON webhook_endpoint_changes (endpoint_id, id);

CREATE FUNCTION webhook_endpoint_changes_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'webhook endpoint changes are append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER webhook_endpoint_changes_append_only
    BEFORE UPDATE OR DELETE ON webhook_endpoint_changes
    FOR EACH ROW EXECUTE FUNCTION webhook_endpoint_changes_are_append_only();
