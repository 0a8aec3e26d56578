//! An article's past: time travel (`asOf`) and the difference between two revisions
//! (`diff`). The `Article` object exposes these through thin resolvers that call the
//! functions here.

use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use galley_domain::{ArticleId, RevisionNumber, Version};
use galley_storage::{ArticleRecord, AsOf};

use crate::error::{ApiError, ApiResult};
use crate::schema::args::check_time;
use crate::schema::context::ContextExt;
use crate::schema::diff::{self, ChangeKind};
use crate::schema::enums::GqlStatus;
use crate::schema::view::{ArticleFields, ContentView};

/// An article exactly as it was at a point of its history: the record the store replayed from
/// the article's events up to that point.
#[derive(Debug, Clone)]
pub struct ArticleSnapshot(pub ArticleRecord);

impl ArticleSnapshot {
    fn fields(&self) -> ArticleFields<'_> {
        ArticleFields(&self.0)
    }
}

/// An article exactly as it was at a point of its history.
#[Object]
impl ArticleSnapshot {
    /// The article's id.
    async fn id(&self) -> ID {
        self.fields().id()
    }
    /// The stream version the snapshot is taken right after.
    async fn version(&self) -> u64 {
        self.fields().version()
    }
    /// The working revision then.
    async fn revision_number(&self) -> u32 {
        self.fields().revision_number()
    }
    /// The status then.
    async fn status(&self) -> GqlStatus {
        self.fields().status()
    }
    /// The working revision's content then.
    async fn content(&self) -> ContentView {
        self.fields().content().object()
    }
    /// The working body then, rendered as sanitised HTML.
    async fn body_html(&self) -> String {
        self.fields().content().body_html()
    }
    /// The revision readers saw then, if any.
    async fn live_revision(&self) -> Option<u32> {
        self.fields().live_revision()
    }
    /// The revision approved last, as of then.
    async fn approved_revision(&self) -> Option<u32> {
        self.fields().approved_revision()
    }
    /// The embargo then, if any.
    async fn embargo_until(&self) -> Option<DateTime<Utc>> {
        self.fields().embargo_until()
    }
    /// The scheduled publication then, if any.
    async fn scheduled_for(&self) -> Option<DateTime<Utc>> {
        self.fields().scheduled_for()
    }
    /// Why the due scheduled publication could not happen, as of then (PublicationBlocked).
    async fn schedule_blocked_reason(&self) -> Option<&str> {
        self.fields().schedule_blocked_reason()
    }
    /// Ids of the reviewers assigned by then.
    async fn reviewer_ids(&self) -> Vec<ID> {
        self.0.reviewers.iter().map(|u| ID(u.to_string())).collect()
    }
    /// Ids of the users who had created or revised it by then.
    async fn author_ids(&self) -> Vec<ID> {
        self.0.authors.iter().map(|u| ID(u.to_string())).collect()
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.fields().created_at()
    }
    /// When it was first submitted, as of then.
    async fn first_submitted_at(&self) -> Option<DateTime<Utc>> {
        self.fields().first_submitted_at()
    }
    /// When it was first published, as of then.
    async fn first_published_at(&self) -> Option<DateTime<Utc>> {
        self.fields().first_published_at()
    }
    /// When it was last published, as of then.
    async fn last_published_at(&self) -> Option<DateTime<Utc>> {
        self.fields().last_published_at()
    }
    /// The time of the snapshot's last event.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.fields().updated_at()
    }
}

/// `asOf(version, at)`: exactly one of the two.
pub(crate) async fn as_of(
    ctx: &Context<'_>,
    id: ArticleId,
    version: Option<u64>,
    at: Option<DateTime<Utc>>,
) -> ApiResult<Option<ArticleSnapshot>> {
    let point = match (version, at) {
        (Some(v), None) => AsOf::Version(Version(v)),
        (None, Some(t)) => AsOf::Time(check_time("at", t)?),
        _ => {
            return Err(ApiError::validation(
                "version",
                "or at must be given, and not both",
            ))
        }
    };
    let record = ctx.store().article_as_of(id, point).await?;
    Ok(record.map(ArticleSnapshot))
}

/// What happened to a run of body text.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DiffChangeKind {
    /// In both revisions.
    Equal,
    /// Only in the newer revision.
    Insert,
    /// Only in the older revision.
    Delete,
}

/// A content field that differs between two revisions.
#[derive(SimpleObject, Debug, Clone)]
pub struct FieldChange {
    /// headline, standfirst, slug, category, byline (names joined with ", ") or language.
    pub field: String,
    /// The older value.
    pub before: Option<String>,
    /// The newer value.
    pub after: Option<String>,
}

/// A run of body text with the same fate.
#[derive(SimpleObject, Debug, Clone)]
pub struct DiffSegment {
    /// What happened to it.
    pub kind: DiffChangeKind,
    /// The text.
    pub text: String,
}

/// A group of nearby body changes with some context. Positions count tokens: words and the
/// whitespace runs between them, from 0.
#[derive(SimpleObject, Debug, Clone)]
pub struct DiffHunk {
    /// First token in the older body.
    pub old_start: u64,
    /// Tokens of the older body covered.
    pub old_length: u64,
    /// First token in the newer body.
    pub new_start: u64,
    /// Tokens of the newer body covered.
    pub new_length: u64,
    /// The hunk's text, run by run.
    pub segments: Vec<DiffSegment>,
    /// The hunk in `git diff --word-diff` style: `[-removed-]{+added+}`.
    pub inline: String,
}

/// The word-level difference between two bodies.
#[derive(SimpleObject, Debug, Clone)]
pub struct BodyDiff {
    /// Whether the body changed at all.
    pub changed: bool,
    /// Words only in the newer body.
    pub words_added: u64,
    /// Words only in the older body.
    pub words_removed: u64,
    /// The changes, grouped into hunks.
    pub hunks: Vec<DiffHunk>,
    /// The classic line-based unified diff of the two bodies (empty when equal).
    pub unified: String,
}

/// The difference between two revisions of an article.
#[derive(SimpleObject, Debug, Clone)]
pub struct RevisionDiff {
    /// The older revision compared.
    pub from: u32,
    /// The newer revision compared.
    pub to: u32,
    /// Content fields that changed.
    pub changed_fields: Vec<FieldChange>,
    /// Tags added in `to`.
    pub tags_added: Vec<String>,
    /// Tags removed in `to`.
    pub tags_removed: Vec<String>,
    /// The body, word by word.
    pub body: BodyDiff,
}

/// `diff(from, to)` between two revisions of an article.
pub(crate) async fn diff(
    ctx: &Context<'_>,
    id: ArticleId,
    from: u32,
    to: u32,
) -> ApiResult<RevisionDiff> {
    let store = ctx.store();
    let old = store
        .revision(id, RevisionNumber(from))
        .await?
        .ok_or_else(|| ApiError::validation("from", format!("revision {from} does not exist")))?;
    let new = store
        .revision(id, RevisionNumber(to))
        .await?
        .ok_or_else(|| ApiError::validation("to", format!("revision {to} does not exist")))?;
    let d = diff::diff_revisions(
        &old.content,
        &new.content,
        &format!("revision {from}"),
        &format!("revision {to}"),
    );
    Ok(RevisionDiff {
        from,
        to,
        changed_fields: d
            .fields
            .into_iter()
            .map(|f| FieldChange {
                field: f.field.to_owned(),
                before: f.before,
                after: f.after,
            })
            .collect(),
        tags_added: d.tags_added,
        tags_removed: d.tags_removed,
        body: BodyDiff {
            changed: d.body_changed,
            words_added: d.words_added as u64,
            words_removed: d.words_removed as u64,
            hunks: d
                .hunks
                .into_iter()
                .map(|h| DiffHunk {
                    old_start: h.old_start as u64,
                    old_length: h.old_len as u64,
                    new_start: h.new_start as u64,
                    new_length: h.new_len as u64,
                    segments: h
                        .segments
                        .into_iter()
                        .map(|s| DiffSegment {
                            kind: match s.kind {
                                ChangeKind::Equal => DiffChangeKind::Equal,
                                ChangeKind::Insert => DiffChangeKind::Insert,
                                ChangeKind::Delete => DiffChangeKind::Delete,
                            },
                            text: s.text,
                        })
                        .collect(),
                    inline: h.inline,
                })
                .collect(),
            unified: d.unified,
        },
    })
}
