-- SQLite twin of postgres/0002_projections.sql: BLOB for UUIDs, TEXT for timestamps (RFC 3339,
-- UTC) and JSON, INTEGER for numbers.
--
-- Projections the API reads. They are written in the same transaction as the events they
-- derive from (so clients read their own writes) and can be dropped and rebuilt from the log
-- (`galley projections rebuild`), which must give exactly what the live path wrote.

-- The current state of every article.
CREATE TABLE articles (
    id BLOB PRIMARY KEY,
    -- Stream version: the number of events of the article.
    version INTEGER NOT NULL,
    -- Status of the working copy (DRAFT, IN_REVIEW, …).
    status TEXT NOT NULL,
    -- Current working revision and its content.
    revision   INTEGER NOT NULL,
    headline   TEXT NOT NULL,
    standfirst TEXT NOT NULL,
    body       TEXT NOT NULL,
    slug       TEXT,
    category   TEXT,
    -- Ordered lists, kept as JSON arrays for display; `article_tags` and `article_authors`
    -- below index them for filtering.
    tags              TEXT NOT NULL,
    byline            TEXT NOT NULL,
    language          TEXT NOT NULL,
    live_revision     INTEGER,
    approved_revision INTEGER,
    embargo_until     TEXT,
    scheduled_for     TEXT,
    -- Not derived from the log: the scheduler writes why a due article could not be published.
    -- A rebuild clears it and the scheduler writes it again on its next run.
    schedule_blocked_reason TEXT,
    authors                 TEXT NOT NULL,
    reviewers               TEXT NOT NULL,
    created_at              TEXT NOT NULL,
    first_submitted_at      TEXT,
    submitted_at            TEXT,
    first_published_at      TEXT,
    last_published_at       TEXT,
    updated_at              TEXT NOT NULL
);

-- List pages: newest or oldest first, optionally by status or category (keyset on (time, id)).
CREATE INDEX articles_updated ON articles (updated_at, id);
CREATE INDEX articles_created ON articles (created_at, id);
CREATE INDEX articles_status_updated ON articles (status, updated_at, id);
CREATE INDEX articles_category_updated ON articles (category, updated_at, id);
-- The scheduler's query: scheduled articles by due time.
CREATE INDEX articles_due ON articles (scheduled_for, id) WHERE status = 'SCHEDULED';

-- Full content of every revision of every article; history is never rewritten.
CREATE TABLE article_revisions (
    article_id BLOB NOT NULL,
    revision   INTEGER NOT NULL,
    headline   TEXT NOT NULL,
    standfirst TEXT NOT NULL,
    body       TEXT NOT NULL,
    slug       TEXT,
    category   TEXT,
    tags       TEXT NOT NULL,
    byline     TEXT NOT NULL,
    language   TEXT NOT NULL,
    author     BLOB NOT NULL,
    created_at TEXT NOT NULL,
    -- For a restored revision, the revision whose content it carries.
    restored_from INTEGER,
    PRIMARY KEY (article_id, revision)
);

-- Review comments, each on a specific revision.
CREATE TABLE review_comments (
    id         BLOB PRIMARY KEY,
    article_id BLOB NOT NULL,
    revision   INTEGER NOT NULL,
    author     BLOB NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- The position of the event that added it, for a stable oldest-first order.
    position INTEGER NOT NULL
);
CREATE INDEX review_comments_article ON review_comments (article_id, position);

-- Slugs of current revisions. The primary key makes a slug unique across articles
-- (SLUG_TAKEN); an article holds at most one slug, that of its current revision.
CREATE TABLE slugs (
    slug       TEXT PRIMARY KEY,
    article_id BLOB NOT NULL UNIQUE
);

-- Tags of current revisions, lower-cased, for the tag filter.
CREATE TABLE article_tags (
    article_id BLOB NOT NULL,
    tag_key    TEXT NOT NULL,
    PRIMARY KEY (article_id, tag_key)
);
CREATE INDEX article_tags_tag ON article_tags (tag_key, article_id);

-- Users who created or revised each article, for the author filter.
CREATE TABLE article_authors (
    article_id BLOB NOT NULL,
    user_id    BLOB NOT NULL,
    PRIMARY KEY (article_id, user_id)
);
CREATE INDEX article_authors_user ON article_authors (user_id, article_id);
