-- Idempotency keys belong to the user who sent them (the same key from two users names two
-- commands), and are kept for a retention period, then pruned: the store now writes each key
-- as '<user id>/<key>'. Keys recorded before this migration are rewritten under the actor of
-- the first event their command appended, so a retry across the upgrade is still a retry.
UPDATE idempotency_keys AS k
   SET key = e.actor::text || '/' || k.key
  FROM events AS e
 WHERE e.position = k.first_position;

-- Pruning deletes by age.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
