-- The search index follows the log on its own (issue 15): the append transaction no longer
-- writes `article_search`; an indexer does, and records here how far it has got. One row
-- per projection that follows the log this way ('search' only, for now).
CREATE TABLE projection_checkpoints (
    name        TEXT    PRIMARY KEY,
    -- The position of the last event the projection has applied.
    position    BIGINT  NOT NULL CHECK (position >= 0)
);
-- Until now every document was written with its event, so the index is complete up to the head.
INSERT INTO projection_checkpoints (name, position) SELECT 'search', position FROM log_head;
