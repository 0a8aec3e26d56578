//! Set-based projection writes: every projection row a set of events produces (the `articles`
//! rows with their slugs, tags and authors, revisions, comments, reviewers,
//! review cycles, publications) is gathered in memory and written, together with the log's own
//! rows (events, idempotency keys, the head: `crate::log::append`), with one multi-row
//! statement per table ([`Tx::rows`]), not one statement per row.
//!
//! Why: appends are serialised, so the writer's round trips are the append rate's limit. Per
//! command, the writes used to cost about ten round trips; now a whole batch's writes cost
//! two on PostgreSQL ([`Tx::write_parts`] sends each group of statements as one), whatever
//! its size. The live path (one batch), rebuild and import (pages of the log) all write
//! through [`Rows`], so a rebuild writes exactly what the live path wrote.
//!
//! The search documents are not written here: the search index follows the log on its own
//! (`super::search_index`).
//!
//! The `articles` row (with its slug, tags and authors) is a function of the
//! aggregate state, written once per article per set with the state the set left. Per-event rows
//! are functions of single events, except review cycles, which a decision closes: that is
//! replayed here in memory, in event order, exactly as the per-event `UPDATE … WHERE outcome IS
//! NULL` it replaces (see [`Rows::decide_cycles`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use galley_domain::{Article, ArticleContent, ArticleId, Event, EventData, PublishTrigger};
use uuid::Uuid;

use crate::backend::{args, Arg, Col, Part, Tx};
use crate::error::StoreError;
use crate::log::append::LogParts;
use crate::model::StoredEvent;

/// The new current content an event gives its article, if it changes it (and so its slug,
/// tags, and, later, its search document).
pub(crate) fn new_content(data: &EventData) -> Option<&ArticleContent> {
    match data {
        EventData::ArticleCreated { content, .. }
        | EventData::DraftRevised { content, .. }
        | EventData::RevisionRestored { content, .. } => Some(content),
        _ => None,
    }
}

/// Whether an event changes the article's current content.
pub(crate) fn changes_content(data: &EventData) -> bool {
    new_content(data).is_some()
}

/// What the tables hold for an article before a set of events (from the article's state
/// then): enough to rewrite only the slug, tag and author rows that change.
#[derive(Debug, Clone, Default)]
pub(crate) struct Before {
    /// 0 if the article had no rows.
    version: u64,
    slug: Option<String>,
    tags: Vec<String>,
    authors: Vec<Uuid>,
}

impl Before {
    pub(crate) fn of(article: &Article) -> Before {
        Before {
            version: article.version.0,
            slug: slug_of(article),
            tags: tag_keys(article),
            authors: article.authors.iter().map(|a| a.as_uuid()).collect(),
        }
    }
}

fn slug_of(article: &Article) -> Option<String> {
    article
        .content()
        .and_then(|c| c.slug.as_ref())
        .map(|s| s.as_str().to_owned())
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The content columns shared by `articles` and `article_revisions`.
const CONTENT_COLS: [Col; 8] = [
    ("headline", "text"),
    ("standfirst", "text"),
    ("body", "text"),
    ("slug", "text"),
    ("category", "text"),
    ("tags", "jsonb"),
    ("byline", "jsonb"),
    ("language", "text"),
];

fn content_args(c: &ArticleContent) -> [Arg; 8] {
    args![
        c.headline.as_str(),
        c.standfirst.as_str(),
        c.body.as_str(),
        c.slug.as_ref().map(|s| s.as_str()),
        c.category.as_ref().map(|s| s.as_str()),
        json(&c.tags),
        json(&c.byline),
        c.language.as_str(),
    ]
}

/// The derived columns of `articles` after `id`, `version`, `status` and `revision` and the
/// content columns.
const ARTICLE_TAIL_COLS: [Col; 13] = [
    ("live_revision", "bigint"),
    ("approved_revision", "bigint"),
    ("embargo_until", "timestamptz"),
    ("scheduled_for", "timestamptz"),
    ("authors", "jsonb"),
    ("reviewers", "jsonb"),
    ("created_at", "timestamptz"),
    ("first_submitted_at", "timestamptz"),
    ("submitted_at", "timestamptz"),
    ("first_published_at", "timestamptz"),
    ("last_published_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("schedule_blocked_reason", "text"),
];

/// Every derived column of `articles`, in the order of [`article_args`].
fn article_cols() -> Vec<Col> {
    let mut cols = vec![
        ("id", "uuid"),
        ("version", "bigint"),
        ("status", "text"),
        ("revision", "bigint"),
    ];
    cols.extend(CONTENT_COLS);
    cols.extend(ARTICLE_TAIL_COLS);
    cols
}

fn article_args(id: ArticleId, article: &Article, content: &ArticleContent) -> Vec<Arg> {
    let mut a = Vec::from(args![
        id.as_uuid(),
        article.version.0,
        article.status.as_str(),
        i64::from(article.revision().0),
    ]);
    a.extend(content_args(content));
    a.extend(args![
        article.live_revision.map(|r| i64::from(r.0)),
        article.approval.as_ref().map(|x| i64::from(x.revision.0)),
        article.embargo_until,
        article.scheduled_for,
        json(&article.authors),
        json(&article.reviewers),
        article.created_at,
        article.first_submitted_at,
        article.submitted_at,
        article.first_published_at,
        article.last_published_at,
        article.updated_at,
        article.schedule_blocked.as_deref(),
    ]);
    a
}

/// A decision that closes the review cycles open at the time.
#[derive(Debug, Clone)]
struct Decision {
    outcome: &'static str,
    at: DateTime<Utc>,
    by: Uuid,
}

/// A review cycle opened by a `SubmittedForReview` of this set.
#[derive(Debug)]
struct Cycle {
    article: Uuid,
    submitted_version: u64,
    revision: i64,
    submitted_at: DateTime<Utc>,
    submitted_by: Uuid,
    decision: Option<Decision>,
}

/// The projection rows of a set of events, to be written by [`Rows::flush`].
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// `articles` rows of articles that had none before the set.
    new_articles: Vec<Vec<Arg>>,
    /// `articles` rows of articles that had one, each with whether the scheduler's note stays.
    updated_articles: Vec<Vec<Arg>>,
    /// Articles whose slug row goes (they gave it up or took another).
    slugs_gone: Vec<Vec<Arg>>,
    /// Articles whose tag rows are replaced.
    tags_gone: Vec<Vec<Arg>>,
    slugs: Vec<Vec<Arg>>,
    tags: Vec<Vec<Arg>>,
    authors: Vec<Vec<Arg>>,
    revisions: Vec<Vec<Arg>>,
    comments: Vec<Vec<Arg>>,
    /// Reviewer pairs: assigned (`true`) or unassigned (`false`) by the set's last event.
    reviewers: BTreeMap<(Uuid, Uuid), bool>,
    publications: Vec<Vec<Arg>>,
    cycles: Vec<Cycle>,
    /// Per article, the first decision of the set: it closes the cycles opened before the set.
    closes_earlier: BTreeMap<Uuid, Decision>,
}

impl Rows {
    /// The `articles` row of `article` as the set leaves it, and, when its content changed in
    /// the set, its slug, tags and authors. `before` is the article before
    /// the set, whose rows are in the tables (its version is 0 if it had none): slug, tag and
    /// author rows are rewritten only where they differ from those.
    pub(crate) fn article(
        &mut self,
        article: &Article,
        before: &Before,
        content_changed: bool,
    ) -> Result<(), StoreError> {
        let (Some(id), Some(content)) = (article.id, article.content()) else {
            return Err(StoreError::Corrupt(
                "an event stream does not start with ArticleCreated".to_owned(),
            ));
        };
        let row = article_args(id, article, content);
        if before.version > 0 {
            self.updated_articles.push(row);
        } else {
            self.new_articles.push(row);
        }
        if !content_changed {
            return Ok(());
        }
        let uuid = id.as_uuid();
        let new = slug_of(article);
        if before.slug != new {
            if before.slug.is_some() {
                self.slugs_gone.push(Vec::from(args![uuid]));
            }
            if let Some(slug) = new {
                self.slugs.push(Vec::from(args![slug, uuid]));
            }
        }
        let new = tag_keys(article);
        if before.tags != new {
            if !before.tags.is_empty() {
                self.tags_gone.push(Vec::from(args![uuid]));
            }
            self.tags
                .extend(new.into_iter().map(|k| Vec::from(args![uuid, k])));
        }
        // Authors are only ever added (by content changes), so the new ones are the rows to add.
        let mut authors: Vec<Uuid> = article
            .authors
            .iter()
            .map(|a| a.as_uuid())
            .filter(|a| !before.authors.contains(a))
            .collect();
        authors.sort();
        authors.dedup();
        self.authors
            .extend(authors.into_iter().map(|a| Vec::from(args![uuid, a])));
        Ok(())
    }

    /// The rows a single event adds: revisions and review comments, and for the review queue
    /// and dashboard, assigned reviewers, review cycles and publications.
    pub(crate) fn event_rows(&mut self, stored: &StoredEvent, event: &Event) {
        let id = stored.article_id.as_uuid();
        let (revision, content, restored_from) = match &event.data {
            EventData::ArticleCreated {
                revision, content, ..
            }
            | EventData::DraftRevised { revision, content } => (revision, content, None),
            EventData::RevisionRestored {
                revision,
                from,
                content,
            } => (revision, content, Some(i64::from(from.0))),
            EventData::ReviewCommentAdded {
                comment_id,
                revision,
                body,
            } => {
                self.comments.push(Vec::from(args![
                    comment_id.as_uuid(),
                    id,
                    i64::from(revision.0),
                    event.actor.as_uuid(),
                    body.as_str(),
                    event.at,
                    stored.position,
                ]));
                return;
            }
            EventData::ReviewerAssigned { reviewer } => {
                self.reviewers.insert((id, reviewer.as_uuid()), true);
                return;
            }
            EventData::ReviewerUnassigned { reviewer } => {
                self.reviewers.insert((id, reviewer.as_uuid()), false);
                return;
            }
            EventData::SubmittedForReview { revision } => {
                self.cycles.push(Cycle {
                    article: id,
                    submitted_version: stored.version.0,
                    revision: i64::from(revision.0),
                    submitted_at: event.at,
                    submitted_by: event.actor.as_uuid(),
                    decision: None,
                });
                return;
            }
            EventData::ArticlePublished {
                revision, trigger, ..
            } => {
                let via = match trigger {
                    PublishTrigger::Now => "NOW",
                    PublishTrigger::Schedule => "SCHEDULE",
                };
                self.publications.push(Vec::from(args![
                    id,
                    stored.version.0,
                    i64::from(revision.0),
                    event.at,
                    via
                ]));
                return;
            }
            EventData::RevisionApproved { .. } => {
                return self.decide_cycles(id, "APPROVED", event);
            }
            EventData::ChangesRequested { .. } => {
                return self.decide_cycles(id, "CHANGES_REQUESTED", event);
            }
            EventData::SubmissionWithdrawn { .. } | EventData::ArticleArchived {} => {
                return self.decide_cycles(id, "WITHDRAWN", event);
            }
            _ => return,
        };
        let mut row = Vec::from(args![id, i64::from(revision.0)]);
        row.extend(content_args(content));
        row.extend(args![event.actor.as_uuid(), event.at, restored_from]);
        self.revisions.push(row);
    }

    /// A decision closes every cycle of the article that is open at that moment: those this
    /// set opened earlier (closed here, in memory) and, for the set's first decision, those
    /// opened before the set (closed by one `UPDATE`, run before this set's cycles are
    /// inserted). Later decisions find the earlier cycles closed already, as they would have.
    fn decide_cycles(&mut self, article: Uuid, outcome: &'static str, event: &Event) {
        let decision = Decision {
            outcome,
            at: event.at,
            by: event.actor.as_uuid(),
        };
        for cycle in &mut self.cycles {
            if cycle.article == article && cycle.decision.is_none() {
                cycle.decision = Some(decision.clone());
            }
        }
        self.closes_earlier.entry(article).or_insert(decision);
    }

    /// Writes every row gathered: one statement per table, and on PostgreSQL two statements
    /// in all (see [`Tx::write_parts`]): first everything that removes or replaces rows and
    /// every table written once, then the inserts that must follow a removal from the same
    /// table (slugs and tags replaced, review cycles opened after the earlier ones closed).
    pub(crate) async fn flush(self, tx: &mut Tx, log: LogParts) -> Result<(), StoreError> {
        let Rows {
            new_articles,
            updated_articles,
            slugs_gone,
            tags_gone,
            slugs,
            tags,
            authors,
            revisions,
            comments,
            reviewers,
            publications,
            cycles,
            closes_earlier,
        } = self;
        let names = |cols: &[Col]| cols.iter().map(|c| c.0).collect::<Vec<_>>().join(", ");
        let insert = |table: &'static str, cols: &[Col], rows: Vec<Vec<Arg>>| {
            let list = names(cols);
            Part::new(cols, rows, move |u| {
                format!("INSERT INTO {table} ({list}) SELECT {list} FROM {u}")
            })
        };
        let article_cols = article_cols();
        let expected = updated_articles.len();

        let LogParts {
            rows: log_rows,
            head,
        } = log;
        let mut first = log_rows;
        let update_cols = article_cols.clone();
        let set = article_cols[1..]
            .iter()
            .map(|(c, _)| format!("{c} = u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut update = Part::new(&update_cols, updated_articles, move |u| {
            format!(
                "UPDATE articles SET {set} FROM {u} WHERE articles.id = u.id \
                 RETURNING articles.id"
            )
        });
        update.returning = true;
        let updated_part = first.len();
        first.push(update);
        const ID: [Col; 1] = [("id", "uuid")];
        first.push(Part::new(&ID, slugs_gone, |u| {
            format!("DELETE FROM slugs WHERE article_id IN (SELECT id FROM {u})")
        }));
        first.push(Part::new(&ID, tags_gone, |u| {
            format!("DELETE FROM article_tags WHERE article_id IN (SELECT id FROM {u})")
        }));
        first.push(Part::new(
            &[("article_id", "uuid"), ("user_id", "uuid")],
            authors,
            |u| {
                // `WHERE true` tells SQLite's parser that ON CONFLICT is the upsert clause.
                format!(
                    "INSERT INTO article_authors (article_id, user_id) \
                     SELECT article_id, user_id FROM {u} WHERE true \
                     ON CONFLICT (article_id, user_id) DO NOTHING"
                )
            },
        ));
        const REVISION_HEAD: [Col; 2] = [("article_id", "uuid"), ("revision", "bigint")];
        const REVISION_TAIL: [Col; 3] = [
            ("author", "uuid"),
            ("created_at", "timestamptz"),
            ("restored_from", "bigint"),
        ];
        let revision_cols: Vec<Col> = REVISION_HEAD
            .into_iter()
            .chain(CONTENT_COLS)
            .chain(REVISION_TAIL)
            .collect();
        first.push(insert("article_revisions", &revision_cols, revisions));
        const COMMENT_COLS: [Col; 7] = [
            ("id", "uuid"),
            ("article_id", "uuid"),
            ("revision", "bigint"),
            ("author", "uuid"),
            ("body", "text"),
            ("created_at", "timestamptz"),
            ("position", "bigint"),
        ];
        first.push(insert("review_comments", &COMMENT_COLS, comments));
        // The last assignment or unassignment of a pair in the set wins, so each pair is
        // either inserted (here) or deleted (in the second group), never both.
        let (assigned, unassigned): (Vec<_>, Vec<_>) =
            reviewers.into_iter().partition(|(_, on)| *on);
        let pairs = |v: Vec<((Uuid, Uuid), bool)>| {
            v.into_iter()
                .map(|((a, u), _)| Vec::from(args![a, u]))
                .collect::<Vec<_>>()
        };
        let unassigned = Part::new(
            &[("article_id", "uuid"), ("user_id", "uuid")],
            pairs(unassigned),
            |u| {
                format!(
                    "DELETE FROM article_reviewers WHERE EXISTS (SELECT 1 FROM {u} \
                     WHERE u.article_id = article_reviewers.article_id \
                     AND u.user_id = article_reviewers.user_id)"
                )
            },
        );
        let reviewers = pairs(assigned);
        first.push(Part::new(
            &[("article_id", "uuid"), ("user_id", "uuid")],
            reviewers,
            |u| {
                format!(
                    "INSERT INTO article_reviewers (article_id, user_id) \
                     SELECT article_id, user_id FROM {u} WHERE true \
                     ON CONFLICT (article_id, user_id) DO NOTHING"
                )
            },
        ));
        const PUBLICATION_COLS: [Col; 5] = [
            ("article_id", "uuid"),
            ("version", "bigint"),
            ("revision", "bigint"),
            ("published_at", "timestamptz"),
            ("published_via", "text"),
        ];
        first.push(insert("publications", &PUBLICATION_COLS, publications));
        // The cycles opened before this set are closed before this set's cycles exist.
        let closing = closes_earlier
            .into_iter()
            .map(|(article, d)| Vec::from(args![article, d.outcome, d.at, d.by]))
            .collect();
        first.push(Part::new(
            &[
                ("article_id", "uuid"),
                ("outcome", "text"),
                ("decided_at", "timestamptz"),
                ("decided_by", "uuid"),
            ],
            closing,
            |u| {
                format!(
                    "UPDATE review_cycles SET outcome = u.outcome, decided_at = u.decided_at, \
                     decided_by = u.decided_by FROM {u} \
                     WHERE review_cycles.article_id = u.article_id \
                     AND review_cycles.outcome IS NULL"
                )
            },
        ));
        const CYCLE_COLS: [Col; 8] = [
            ("article_id", "uuid"),
            ("submitted_version", "bigint"),
            ("revision", "bigint"),
            ("submitted_at", "timestamptz"),
            ("submitted_by", "uuid"),
            ("outcome", "text"),
            ("decided_at", "timestamptz"),
            ("decided_by", "uuid"),
        ];
        let cycles = cycles
            .into_iter()
            .map(|c| {
                let d = c.decision;
                Vec::from(args![
                    c.article,
                    c.submitted_version,
                    c.revision,
                    c.submitted_at,
                    c.submitted_by,
                    d.as_ref().map(|d| d.outcome),
                    d.as_ref().map(|d| d.at),
                    d.as_ref().map(|d| d.by),
                ])
            })
            .collect();
        // What must follow the first statement's deletes and updates (a slug given up and
        // taken in one set, a cycle closed before the next opens).
        let mut second = vec![
            insert("articles", &article_cols, new_articles),
            insert("slugs", &[("slug", "text"), ("article_id", "uuid")], slugs),
            insert(
                "article_tags",
                &[("article_id", "uuid"), ("tag_key", "text")],
                tags,
            ),
            insert("review_cycles", &CYCLE_COLS, cycles),
            unassigned,
        ];
        // Moving the head depends on nothing else, so when nothing has to follow (revisions
        // that keep their slug and tags, the common case) it rides in the first statement
        // and the set costs one round trip on PostgreSQL instead of two.
        let follows = second.iter().any(|p| !p.rows.is_empty());
        if follows {
            second.extend(head);
        } else {
            first.extend(head);
        }
        let counts = tx.write_parts(first).await?;
        if counts[updated_part] != expected {
            return Err(StoreError::Corrupt(format!(
                "{} of {expected} existing articles have no articles row",
                expected - counts[updated_part]
            )));
        }
        tx.write_parts(second).await?;
        Ok(())
    }
}

/// The lower-cased, distinct tags of an article's current revision, as `article_tags` keys.
fn tag_keys(article: &Article) -> Vec<String> {
    let mut keys: Vec<String> = article
        .content()
        .map(|c| c.tags.iter().map(|t| t.as_str().to_lowercase()).collect())
        .unwrap_or_default();
    keys.sort();
    keys.dedup();
    keys
}
