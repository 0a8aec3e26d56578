-- SQLite twin of postgres/0007_user_changes.sql (BLOB UUIDs, TEXT timestamps and JSON).
--
-- Users as history (docs/adr/0003-users-as-history.md): every change to a user (added, roles
-- changed, renamed, disabled, enabled) is a row of this append-only log of its own, apart
-- from the article log. The `users` table is its projection (a rebuild rewrites it from
-- here, verify compares it); `galley events export` carries these rows, never a token.

CREATE TABLE user_changes (
    -- Contiguous from 1, in the order the changes were made (the single writer assigns it).
    seq         INTEGER PRIMARY KEY CHECK (seq > 0),
    -- The user changed.
    user_id     BLOB NOT NULL,
    -- UserAdded, UserRolesChanged, UserRenamed, UserDisabled or UserEnabled.
    change_type TEXT NOT NULL,
    -- The change's fields as JSON ({"name": …, "roles": […]} for UserAdded).
    payload     TEXT NOT NULL,
    -- Who made it: an ADMIN's id, or the system id for the command line.
    actor       BLOB NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX user_changes_user ON user_changes (user_id, seq);

CREATE TRIGGER user_changes_no_update BEFORE UPDATE ON user_changes
BEGIN
    SELECT RAISE(ABORT, 'user changes are append-only: UPDATE is not allowed');
END;
CREATE TRIGGER user_changes_no_delete BEFORE DELETE ON user_changes
BEGIN
    SELECT RAISE(ABORT, 'user changes are append-only: DELETE is not allowed');
END;

-- Set while the user is disabled: their tokens authenticate no one, their history stays
-- attributed to them.
ALTER TABLE users ADD COLUMN disabled_at TEXT;

-- Users added before this migration: their addition becomes the first change, in the order
-- they were added, by the system.
INSERT INTO user_changes (seq, user_id, change_type, payload, actor, recorded_at)
SELECT ROW_NUMBER() OVER (ORDER BY created_at, id), id, 'UserAdded',
       json_object('name', name, 'roles', json(roles)),
       zeroblob(16), created_at
FROM users;
