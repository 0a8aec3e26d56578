//! The records the store reads and writes. These are the read models the API serves.

use chrono::{DateTime, Utc};
use galley_domain::{
    Article, ArticleContent, ArticleId, Command, CommentId, Event, EventData, RevisionNumber, Role,
    Status, UserId, Version,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A global position in the log: 1, 2, 3 … with no holes, in commit order.
pub type Position = u64;

/// How far the search index has got (see `Store::search_index`): a text search finds the
/// content of every event up to `checkpoint` (or a newer content of the same article).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchIndexState {
    /// The position of the last event indexed.
    pub checkpoint: Position,
    /// The log's head when it was read (in the same snapshot).
    pub head: Position,
}

impl SearchIndexState {
    /// How many events the index is behind the head.
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.checkpoint)
    }
}

/// Tracing metadata stored in every event's envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Groups every event caused by one user request (or scheduler run).
    pub correlation_id: Option<Uuid>,
    /// The event or message that caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// The HTTP request id (x-request-id), if any.
    pub request_id: Option<String>,
}

/// An event as stored, with its envelope (DESIGN.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// The event's own id (UUIDv7).
    pub event_id: Uuid,
    /// The stream.
    pub article_id: ArticleId,
    /// 1, 2, 3 … within the stream.
    pub version: Version,
    /// Global position, contiguous and commit-ordered.
    pub position: Position,
    /// The stable type string.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload, upcast to the current schema.
    pub payload: serde_json::Value,
    /// Who caused it.
    pub actor: UserId,
    /// See [`Metadata`].
    pub correlation_id: Uuid,
    /// See [`Metadata`].
    pub causation_id: Option<Uuid>,
    /// See [`Metadata`].
    pub request_id: Option<String>,
    /// The server clock when it was recorded.
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// The domain event this envelope holds, read through the upcaster.
    pub fn event(&self) -> Result<Event, galley_domain::UpcastError> {
        Ok(Event {
            at: self.recorded_at,
            actor: self.actor,
            data: EventData::from_stored(
                &self.event_type,
                self.schema_version,
                self.payload.clone(),
            )?,
        })
    }
}

/// Which events a reader wants from the global log. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this article's events.
    pub article_id: Option<ArticleId>,
    /// Only these types.
    pub event_types: Vec<String>,
    /// Only events caused by this actor.
    pub actor: Option<UserId>,
}

impl EventFilter {
    /// Whether an event passes the filter.
    pub fn matches(&self, e: &StoredEvent) -> bool {
        self.article_id.is_none_or(|a| a == e.article_id)
            && (self.event_types.is_empty() || self.event_types.contains(&e.event_type))
            && self.actor.is_none_or(|a| a == e.actor)
    }
}

/// The result of a command: the events appended (or, for an idempotent retry, the events the
/// original command appended) and the article's projection after them.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    /// The appended events, in order.
    pub events: Vec<StoredEvent>,
    /// The article as the API reads it after the command.
    pub article: ArticleRecord,
    /// Whether this is a replay of an earlier command with the same idempotency key.
    pub replayed: bool,
}

/// The `articles` projection: the current state of one article.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleRecord {
    /// The id.
    pub id: ArticleId,
    /// The stream version.
    pub version: Version,
    /// The working copy's status.
    pub status: Status,
    /// The current working revision.
    pub revision: RevisionNumber,
    /// Its content.
    pub content: ArticleContent,
    /// The revision readers see, if any.
    pub live_revision: Option<RevisionNumber>,
    /// The revision approved last (current or stale).
    pub approved_revision: Option<RevisionNumber>,
    /// Embargo end, if any.
    pub embargo_until: Option<DateTime<Utc>>,
    /// Scheduled publication time, while SCHEDULED.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Why the scheduler could not publish it when due, if it tried and failed.
    pub schedule_blocked_reason: Option<String>,
    /// Users who created or revised it.
    pub authors: Vec<UserId>,
    /// Reviewers assigned.
    pub reviewers: Vec<UserId>,
    /// Timestamps.
    pub created_at: DateTime<Utc>,
    /// When first submitted.
    pub first_submitted_at: Option<DateTime<Utc>>,
    /// When last submitted.
    pub submitted_at: Option<DateTime<Utc>>,
    /// When first published.
    pub first_published_at: Option<DateTime<Utc>>,
    /// When last published.
    pub last_published_at: Option<DateTime<Utc>>,
    /// When the last event happened.
    pub updated_at: DateTime<Utc>,
}

impl ArticleRecord {
    /// Whether a revision is live while a newer working revision exists.
    pub fn has_unpublished_changes(&self) -> bool {
        self.live_revision.is_some_and(|l| l != self.revision)
    }
}

/// One row of the `article_revisions` projection.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionRecord {
    /// The article.
    pub article_id: ArticleId,
    /// The revision number.
    pub revision: RevisionNumber,
    /// Its full content.
    pub content: ArticleContent,
    /// Who wrote it.
    pub author: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The revision it restored, for a restored revision.
    pub restored_from: Option<RevisionNumber>,
}

/// One row of the `review_comments` projection.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRecord {
    /// The comment.
    pub id: CommentId,
    /// The article.
    pub article_id: ArticleId,
    /// The revision commented on.
    pub revision: RevisionNumber,
    /// Who wrote it.
    pub author: UserId,
    /// The text.
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A user of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The id.
    pub id: UserId,
    /// A unique display name.
    pub name: String,
    /// The roles held.
    pub roles: Vec<Role>,
    /// When the user was added.
    pub created_at: DateTime<Utc>,
    /// When the user was disabled, while they are (their tokens authenticate no one).
    pub disabled_at: Option<DateTime<Utc>>,
}

/// Filters for the `articles` list. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ArticleFilter {
    /// Full-text search over headline, standfirst, body and tags.
    pub text: Option<String>,
    /// Only these statuses.
    pub status: Vec<Status>,
    /// Only this category.
    pub category: Option<String>,
    /// Only articles carrying this tag.
    pub tag: Option<String>,
    /// Only articles this user created or revised.
    pub author: Option<UserId>,
    /// Only articles updated at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
}

/// The order of the `articles` list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ArticleOrder {
    /// Most recently updated first.
    #[default]
    UpdatedDesc,
    /// Least recently updated first.
    UpdatedAsc,
    /// Most recently created first.
    CreatedDesc,
    /// Best text match first (falls back to `UpdatedDesc` without a text filter).
    Relevance,
}

/// Which of an article's columns a list reads. A list that shows headlines need not read (nor
/// the database decompress) every body on the page, nor decode its tags, byline and people.
/// The variants are ordered by what they read: each reads everything the one before it does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArticleColumns {
    /// The scalar columns only: `body` is left empty, and `tags`, `byline`, `authors` and
    /// `reviewers` are left empty too.
    Summary,
    /// Everything but the body, which is left empty.
    WithoutBody,
    /// The whole record.
    #[default]
    All,
}

impl ArticleColumns {
    /// Whether a record read with these columns has every column `needed` reads.
    pub fn covers(self, needed: ArticleColumns) -> bool {
        self >= needed
    }
}

impl ArticleRecord {
    /// The `articles` row the live path writes for this state; `None` before `ArticleCreated`.
    pub(crate) fn of(article: &Article) -> Option<ArticleRecord> {
        Some(ArticleRecord {
            id: article.id?,
            version: article.version,
            status: article.status,
            revision: article.revision(),
            content: article.content()?.clone(),
            live_revision: article.live_revision,
            approved_revision: article.approval.as_ref().map(|a| a.revision),
            embargo_until: article.embargo_until,
            scheduled_for: article.scheduled_for,
            schedule_blocked_reason: article.schedule_blocked.clone(),
            authors: article.authors.clone(),
            reviewers: article.reviewers.clone(),
            created_at: article.created_at?,
            first_submitted_at: article.first_submitted_at,
            submitted_at: article.submitted_at,
            first_published_at: article.first_published_at,
            last_published_at: article.last_published_at,
            updated_at: article.updated_at?,
        })
    }
}

/// A difference `verify` found between the live projections and a rebuild from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionDiff {
    /// The table.
    pub table: String,
    /// The row's key, as text.
    pub key: String,
    /// What differs, for a human.
    pub detail: String,
}

/// Order of a stream read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    #[default]
    Forward,
    /// Newest first.
    Backward,
}

/// A scheduled article whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueArticle {
    /// The article.
    pub id: ArticleId,
    /// Its version, to expect when publishing.
    pub version: Version,
    /// When it was due.
    pub scheduled_for: DateTime<Utc>,
}

/// A point in an article's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Right after the event with this stream version.
    Version(Version),
    /// Right after the last event recorded at or before this time.
    Time(DateTime<Utc>),
}

/// One command waiting to be appended: the unit a group-commit writer gathers.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCommand {
    /// The command.
    pub command: Command,
    /// Tracing metadata for its events.
    pub metadata: Metadata,
    /// The idempotency key the client sent, if any, already scoped to its user.
    pub idempotency_key: Option<String>,
}
