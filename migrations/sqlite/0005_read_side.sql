-- SQLite twin of postgres/0005_read_side.sql (BLOB UUIDs, TEXT timestamps).
--
-- The read side of issue 5: full-text search, the review queue and the dashboard figures.
-- Every table here is a projection: written in the append transaction by the same code that
-- `galley projections rebuild` runs, and compared by `galley projections verify`.

-- Full-text search. The store folds the text itself (Rust: deunicode, lower case, every run of
-- non-alphanumeric characters to one space), so "Vučić" is stored and searched as "vucic" and
-- both backends tokenise exactly the same ASCII words.
--
-- FTS5 rows are addressed by an integer rowid; `article_search` gives each article one.
CREATE TABLE article_search (
    doc         INTEGER PRIMARY KEY,
    article_id  BLOB NOT NULL UNIQUE
);
-- Columns: the folded headline (weighted higher by bm25), and the folded standfirst, tags and
-- body. rowid = article_search.doc.
CREATE VIRTUAL TABLE article_search_fts USING fts5 (headline, body);

-- The lower-cased LIKE columns of 0004 are replaced by `article_search`.
ALTER TABLE articles DROP COLUMN search_headline;
ALTER TABLE articles DROP COLUMN search_body;

-- Reviewers assigned to each article (ReviewerAssigned), for the review queue's "assigned to
-- me" and "unassigned" tests.
CREATE TABLE article_reviewers (
    article_id  BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    PRIMARY KEY (article_id, user_id)
);
CREATE INDEX article_reviewers_user ON article_reviewers (user_id, article_id);

-- The review queue: articles in review, oldest submission first.
CREATE INDEX articles_review_queue ON articles (submitted_at, id) WHERE status = 'IN_REVIEW';
-- Time to first publish, over the articles first published in a window.
CREATE INDEX articles_first_published ON articles (first_published_at)
    WHERE first_published_at IS NOT NULL;

-- One row per submission for review (SubmittedForReview), closed by the decision that ends it:
-- RevisionApproved (APPROVED), ChangesRequested (CHANGES_REQUESTED), SubmissionWithdrawn or
-- ArticleArchived (WITHDRAWN). Review turnaround, bounce-backs and per-reviewer figures read it.
CREATE TABLE review_cycles (
    article_id         BLOB    NOT NULL,
    -- The stream version of the SubmittedForReview event that opened the cycle.
    submitted_version  INTEGER NOT NULL,
    revision           INTEGER NOT NULL,
    submitted_at       TEXT    NOT NULL,
    submitted_by       BLOB    NOT NULL,
    -- NULL while the review is open.
    outcome            TEXT,
    decided_at         TEXT,
    decided_by         BLOB,
    PRIMARY KEY (article_id, submitted_version)
);
CREATE INDEX review_cycles_decided ON review_cycles (decided_at) WHERE decided_at IS NOT NULL;

-- One row per publication (ArticlePublished), for published-per-day.
CREATE TABLE publications (
    article_id     BLOB    NOT NULL,
    -- The stream version of the ArticlePublished event.
    version        INTEGER NOT NULL,
    revision       INTEGER NOT NULL,
    published_at   TEXT    NOT NULL,
    -- NOW (a publisher) or SCHEDULE (the scheduler).
    published_via  TEXT    NOT NULL,
    PRIMARY KEY (article_id, version)
);
CREATE INDEX publications_published ON publications (published_at);

-- Rows written before this migration are filled in by `galley projections rebuild`.
