-- The read side of issue 5: full-text search, the review queue and the dashboard figures.
-- Every table here is a projection: written in the append transaction by the same code that
-- `galley projections rebuild` runs, and compared by `galley projections verify`.

-- Full-text search. The store folds the text itself (Rust: deunicode, lower case, every run of
-- non-alphanumeric characters to one space), so "Vučić" is stored and searched as "vucic" and
-- both backends tokenise exactly the same ASCII words. The 'simple' configuration neither
-- stems nor drops stop words, which keeps PostgreSQL's hits equal to SQLite FTS5's.
CREATE TABLE article_search (
    article_id  UUID PRIMARY KEY,
    -- The folded headline (weight A: a match here ranks higher).
    headline    TEXT NOT NULL,
    -- The folded standfirst, tags and body (weight B).
    body        TEXT NOT NULL,
    document    TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, headline), 'A')
        || setweight(to_tsvector('simple'::regconfig, body), 'B')
    ) STORED
);
CREATE INDEX article_search_document ON article_search USING GIN (document);

-- The lower-cased LIKE columns of 0004 are replaced by `article_search`.
ALTER TABLE articles DROP COLUMN search_headline;
ALTER TABLE articles DROP COLUMN search_body;

-- Reviewers assigned to each article (ReviewerAssigned), for the review queue's "assigned to
-- me" and "unassigned" tests.
CREATE TABLE article_reviewers (
    article_id  UUID NOT NULL,
    user_id     UUID NOT NULL,
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
    article_id         UUID        NOT NULL,
    -- The stream version of the SubmittedForReview event that opened the cycle.
    submitted_version  BIGINT      NOT NULL,
    revision           BIGINT      NOT NULL,
    submitted_at       TIMESTAMPTZ NOT NULL,
    submitted_by       UUID        NOT NULL,
    -- NULL while the review is open.
    outcome            TEXT,
    decided_at         TIMESTAMPTZ,
    decided_by         UUID,
    PRIMARY KEY (article_id, submitted_version)
);
CREATE INDEX review_cycles_decided ON review_cycles (decided_at) WHERE decided_at IS NOT NULL;

-- One row per publication (ArticlePublished), for published-per-day.
CREATE TABLE publications (
    article_id     UUID        NOT NULL,
    -- The stream version of the ArticlePublished event.
    version        BIGINT      NOT NULL,
    revision       BIGINT      NOT NULL,
    published_at   TIMESTAMPTZ NOT NULL,
    -- NOW (a publisher) or SCHEDULE (the scheduler).
    published_via  TEXT        NOT NULL,
    PRIMARY KEY (article_id, version)
);
CREATE INDEX publications_published ON publications (published_at);

-- Rows written before this migration are filled in by `galley projections rebuild`.
