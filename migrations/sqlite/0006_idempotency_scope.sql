-- Idempotency keys belong to the user who sent them (the same key from two users names two
-- commands), and are kept for a retention period, then pruned: the store now writes each key
-- as '<user id>/<key>'. Keys recorded before this migration are rewritten under the actor of
-- the first event their command appended (the actor is a 16-byte UUID, written here in its
-- hyphenated lower-case form), so a retry across the upgrade is still a retry.
UPDATE idempotency_keys
   SET key = (
       SELECT lower(substr(hex(e.actor), 1, 8) || '-' || substr(hex(e.actor), 9, 4) || '-' ||
                    substr(hex(e.actor), 13, 4) || '-' || substr(hex(e.actor), 17, 4) || '-' ||
                    substr(hex(e.actor), 21, 12))
         FROM events AS e
        WHERE e.position = idempotency_keys.first_position
   ) || '/' || key
 WHERE EXISTS (SELECT 1 FROM events AS e WHERE e.position = idempotency_keys.first_position);

-- Pruning deletes by age.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
