-- Text search over articles that behaves the same on both backends: SQLite's lower() folds
-- only ASCII, so the store writes lower-cased copies itself (Rust's Unicode-aware
-- to_lowercase) and the `articles` text filter matches them with LIKE.

-- The lower-cased headline (a match here ranks first in relevance order).
ALTER TABLE articles ADD COLUMN search_headline TEXT NOT NULL DEFAULT '';
-- The lower-cased standfirst, tags and body.
ALTER TABLE articles ADD COLUMN search_body TEXT NOT NULL DEFAULT '';

-- Rows written before this migration; `galley projections rebuild` writes the same values.
UPDATE articles SET
    search_headline = lower(headline),
    search_body = lower(standfirst || ' ' || body);
