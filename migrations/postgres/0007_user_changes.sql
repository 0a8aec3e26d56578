-- Users as history (docs/adr/0003-users-as-history.md): every change to a user (added, roles
-- changed, renamed, disabled, enabled) is a row of this append-only log of its own, apart
-- from the article log. The `users` table is its projection (a rebuild rewrites it from
-- here, verify compares it); `galley events export` carries these rows, never a token.

CREATE TABLE user_changes (
    -- Contiguous from 1, in the order the changes were made (assigned under a lock).
    seq          BIGINT      PRIMARY KEY CHECK (seq > 0),
    -- The user changed.
    user_id      UUID        NOT NULL,
    -- UserAdded, UserRolesChanged, UserRenamed, UserDisabled or UserEnabled.
    change_type  TEXT        NOT NULL,
    -- The change's fields as JSON ({"name": …, "roles": […]} for UserAdded).
    payload      JSONB       NOT NULL,
    -- Who made it: an ADMIN's id, or the system id for the command line.
    actor        UUID        NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX user_changes_user ON user_changes (user_id, seq);

CREATE FUNCTION user_changes_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'user changes are append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER user_changes_append_only
    BEFORE UPDATE OR DELETE ON user_changes
    FOR EACH ROW EXECUTE FUNCTION user_changes_are_append_only();

-- Set while the user is disabled: their tokens authenticate no one, their history stays
-- attributed to them.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMPTZ;

-- Users added before this migration: their addition becomes the first change, in the order
-- they were added, by the system.
INSERT INTO user_changes (seq, user_id, change_type, payload, actor, recorded_at)
SELECT ROW_NUMBER() OVER (ORDER BY created_at, id), id, 'UserAdded',
       jsonb_build_object('name', name, 'roles', roles),
       '00000000-0000-0000-0000-000000000000', created_at
FROM users;
