//! The GraphQL object, enum and input types, as thin views over the store's records.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, InputObject, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use galley_domain::{
    ArticleContent, ArticleId, ContentDraft, EventData, RevisionNumber, UserId, Version,
};
use galley_storage::{
    ArticleRecord, CommentRecord, Direction, EventFilter, RevisionRecord, StoredEvent, UserRecord,
};

use crate::error::{ApiError, ApiResult};
use crate::schema::context::ContextExt;

/// Parses an `ID` argument into a domain id, naming the argument on failure.
pub(crate) fn parse_id<T: std::str::FromStr>(field: &str, id: &ID) -> ApiResult<T> {
    id.parse::<T>()
        .map_err(|_| ApiError::validation(field, "is not a valid id"))
}

/// The earliest time an argument may name: nothing in the log is older than the Unix epoch.
pub(crate) const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// The latest time an argument may name (9999-12-31T23:59:59Z): far enough for any embargo or
/// schedule, and far from the end of the calendar, so date arithmetic on it cannot overflow.
pub(crate) fn latest() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Checks that a time argument lies between 1970-01-01 and 9999-12-31, naming it on failure.
pub(crate) fn check_time(field: &str, t: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    if t < EARLIEST || t > latest() {
        return Err(ApiError::validation(
            field,
            "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        ));
    }
    Ok(t)
}

/// Checks a page size against the configured cap.
pub(crate) fn page_size(ctx: &Context<'_>, first: Option<i32>) -> ApiResult<u32> {
    let limits = ctx.limits();
    let first = first.unwrap_or(limits.default_page_size as i32);
    if first < 0 || first as u32 > limits.max_page_size {
        return Err(ApiError::validation(
            "first",
            format!("must be between 0 and {}", limits.max_page_size),
        ));
    }
    Ok(first as u32)
}

/// Parses a numeric cursor (a position or a version).
pub(crate) fn parse_cursor(after: Option<&str>) -> ApiResult<Option<u64>> {
    after
        .map(|a| {
            a.parse::<u64>()
                .map_err(|_| ApiError::validation("after", "is not a valid cursor"))
        })
        .transpose()
}

/// The status of an article's working copy.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ArticleStatus", remote = "galley_domain::Status")]
pub enum GqlStatus {
    /// Being written.
    Draft,
    /// Submitted, waiting for a reviewer.
    InReview,
    /// Sent back by a reviewer.
    ChangesRequested,
    /// The current revision is approved and may be published.
    Approved,
    /// Approved and due to be published at `scheduledFor`.
    Scheduled,
    /// The current revision is live.
    Published,
    /// Was live and was taken down.
    Unpublished,
    /// Put away.
    Archived,
}

/// What a user may do. ADMIN may do everything.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Role", remote = "galley_domain::Role")]
pub enum GqlRole {
    /// Reads articles, history and dashboards.
    Viewer,
    /// Creates, revises, submits and withdraws drafts.
    Editor,
    /// Comments on, approves or sends back submitted drafts.
    Reviewer,
    /// Publishes, schedules, unpublishes, archives and restores.
    Publisher,
    /// Everything, including users and embargo lifts.
    Admin,
}

/// A user of the API.
#[derive(Debug, Clone)]
pub struct User(pub UserRecord);

/// A person with an account: their name and roles.
#[Object]
impl User {
    /// The user's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// A unique display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The roles held.
    async fn roles(&self) -> Vec<GqlRole> {
        self.0.roles.iter().copied().map(GqlRole::from).collect()
    }
    /// When the user was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Whether the user is disabled (their tokens authenticate no one; their history stays
    /// theirs).
    async fn disabled(&self) -> bool {
        self.0.disabled_at.is_some()
    }
    /// When the user was disabled, while they are.
    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at
    }
    /// Every change to the user (added, roles, renames, disabling), oldest first (ADMIN).
    #[graphql(complexity = "10 * child_complexity")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::schema::users::UserChangeEntry>> {
        Ok(crate::schema::users::changes(ctx, self.0.id).await?)
    }
}

/// Loads users by id in one batch, keeping the order of `ids` and skipping unknown ones.
pub(crate) async fn load_users(ctx: &Context<'_>, ids: &[UserId]) -> ApiResult<Vec<User>> {
    let found = ctx
        .loaders()
        .users
        .load_many(ids.iter().copied())
        .await
        .map_err(ApiError::from_shared)?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(id).cloned().map(User))
        .collect())
}

/// Loads one user by id (`None` for the system actor or an unknown id).
pub(crate) async fn load_user(ctx: &Context<'_>, id: UserId) -> ApiResult<Option<User>> {
    if id.is_system() {
        return Ok(None);
    }
    Ok(ctx
        .loaders()
        .users
        .load_one(id)
        .await
        .map_err(ApiError::from_shared)?
        .map(User))
}

/// The content of one revision, as a client sends it. Absent fields are empty; the slug is
/// derived from the headline when absent, the language is "en" when absent.
#[derive(InputObject, Debug, Clone, Default)]
pub struct ContentInput {
    /// The headline; required to submit.
    #[graphql(default)]
    pub headline: String,
    /// The dek or summary under the headline.
    #[graphql(default)]
    pub standfirst: String,
    /// The body, CommonMark Markdown.
    #[graphql(default)]
    pub body: String,
    /// ASCII, lowercase, hyphens; derived from the headline when absent.
    pub slug: Option<String>,
    /// The desk or section.
    pub category: Option<String>,
    /// Subject tags, ordered; duplicates are dropped.
    #[graphql(default)]
    pub tags: Vec<String>,
    /// The authors' display names.
    #[graphql(default)]
    pub byline: Vec<String>,
    /// BCP 47 language tag; "en" when absent.
    pub language: Option<String>,
}

impl From<ContentInput> for ContentDraft {
    fn from(c: ContentInput) -> Self {
        ContentDraft {
            headline: c.headline,
            standfirst: c.standfirst,
            body: c.body,
            slug: c.slug,
            category: c.category,
            tags: c.tags,
            byline: c.byline,
            language: c.language,
        }
    }
}

/// The content fields of a revision.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "Content")]
pub struct ContentView {
    /// The headline.
    pub headline: String,
    /// The dek or summary under the headline.
    pub standfirst: String,
    /// The body, CommonMark Markdown.
    pub body: String,
    /// The URL name.
    pub slug: Option<String>,
    /// The desk or section.
    pub category: Option<String>,
    /// Subject tags.
    pub tags: Vec<String>,
    /// The authors' display names.
    pub byline: Vec<String>,
    /// BCP 47 language tag.
    pub language: String,
}

impl From<&ArticleContent> for ContentView {
    fn from(c: &ArticleContent) -> Self {
        ContentView {
            headline: c.headline.clone(),
            standfirst: c.standfirst.clone(),
            body: c.body.clone(),
            slug: c.slug.as_ref().map(|s| s.as_str().to_owned()),
            category: c.category.as_ref().map(|s| s.as_str().to_owned()),
            tags: c.tags.iter().map(|t| t.as_str().to_owned()).collect(),
            byline: c.byline.clone(),
            language: c.language.as_str().to_owned(),
        }
    }
}

/// One revision of an article's content.
#[derive(Debug, Clone)]
pub struct Revision(pub RevisionRecord);

/// One submitted revision of an article: its content and the review it got.
#[Object]
impl Revision {
    /// The revision number, from 1.
    async fn number(&self) -> u32 {
        self.0.revision.0
    }
    /// Its content.
    async fn content(&self) -> ContentView {
        ContentView::from(&self.0.content)
    }
    /// The headline.
    async fn headline(&self) -> &str {
        &self.0.content.headline
    }
    /// The dek or summary under the headline.
    async fn standfirst(&self) -> &str {
        &self.0.content.standfirst
    }
    /// The body, CommonMark Markdown.
    async fn body(&self) -> &str {
        &self.0.content.body
    }
    /// The URL name.
    async fn slug(&self) -> Option<&str> {
        self.0.content.slug.as_ref().map(|s| s.as_str())
    }
    /// The body rendered from Markdown as sanitised HTML (no scripts, no event handlers, only
    /// http, https and mailto links, each with rel="noopener noreferrer").
    async fn body_html(&self) -> String {
        crate::schema::history::body_html(&self.0.content.body)
    }
    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.author).await?)
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The revision whose content this one restored, if it is a restore.
    async fn restored_from(&self) -> Option<u32> {
        self.0.restored_from.map(|r| r.0)
    }
}

/// A review comment, attached to one revision.
#[derive(Debug, Clone)]
pub struct Comment(pub CommentRecord);

/// A review comment, attached to one revision.
#[Object]
impl Comment {
    /// The comment's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The revision commented on.
    async fn revision(&self) -> u32 {
        self.0.revision.0
    }
    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.author).await?)
    }
    /// The text.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// One event of the log, with its envelope.
#[derive(Debug, Clone)]
pub struct Event(pub StoredEvent);

/// One event of the append-only log: what happened to an article, by whom, at which position.
#[Object]
impl Event {
    /// The event's own id (UUIDv7).
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    /// The article (the stream).
    async fn article_id(&self) -> ID {
        ID(self.0.article_id.to_string())
    }
    /// 1, 2, 3 … within the article's stream.
    async fn version(&self) -> u64 {
        self.0.version.0
    }
    /// The global position in the log: contiguous and commit-ordered.
    async fn position(&self) -> u64 {
        self.0.position
    }
    /// The stable type string, such as "DraftRevised".
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// The payload's schema version.
    async fn schema_version(&self) -> u32 {
        self.0.schema_version
    }
    /// The payload, upcast to the current schema version.
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }
    /// The id of the user who caused the event; the nil UUID for the system (the scheduler).
    async fn actor(&self) -> ID {
        ID(self.0.actor.to_string())
    }
    /// The user who caused the event; null for the system.
    async fn actor_user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.actor).await?)
    }
    /// Groups every event caused by one request or scheduler run.
    async fn correlation_id(&self) -> ID {
        ID(self.0.correlation_id.to_string())
    }
    /// The event or message that caused this one, if any.
    async fn causation_id(&self) -> Option<ID> {
        self.0.causation_id.map(|c| ID(c.to_string()))
    }
    /// The x-request-id of the HTTP request that caused it, if any.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
    /// The server clock when it was recorded.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    /// The article as it is now.
    async fn article(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Article>> {
        Ok(ctx
            .loaders()
            .articles
            .load_one(self.0.article_id)
            .await
            .map_err(ApiError::from_shared)?
            .map(Article))
    }
}

/// Filters for the global event feed. Absent fields match everything.
#[derive(InputObject, Debug, Clone, Default)]
pub struct EventFilterInput {
    /// Only this article's events.
    pub article_id: Option<ID>,
    /// Only these event types ("ArticlePublished", …).
    #[graphql(default)]
    pub types: Vec<String>,
    /// Only events caused by this user.
    pub actor: Option<ID>,
}

impl EventFilterInput {
    /// The store's filter.
    pub fn to_filter(&self) -> ApiResult<EventFilter> {
        Ok(EventFilter {
            article_id: self
                .article_id
                .as_ref()
                .map(|id| parse_id::<ArticleId>("filter.articleId", id))
                .transpose()?,
            event_types: self.types.clone(),
            actor: self
                .actor
                .as_ref()
                .map(|id| parse_id::<UserId>("filter.actor", id))
                .transpose()?,
        })
    }
}

/// A public correction: the note a re-publication carried.
#[derive(Debug, Clone)]
pub struct Correction {
    note: String,
    revision: u32,
    previous_live: Option<u32>,
    version: u64,
    published_at: DateTime<Utc>,
    actor: UserId,
}

/// A public correction: the note a re-publication carried, the revision it put live and the
/// one it replaced, when and by whom.
#[Object]
impl Correction {
    /// The public correction note.
    async fn note(&self) -> &str {
        &self.note
    }
    /// The revision the correcting publication put live.
    async fn revision(&self) -> u32 {
        self.revision
    }
    /// The revision it replaced, if one was live.
    async fn previous_live(&self) -> Option<u32> {
        self.previous_live
    }
    /// The stream version of the `ArticlePublished` event.
    async fn version(&self) -> u64 {
        self.version
    }
    /// When it went live.
    async fn published_at(&self) -> DateTime<Utc> {
        self.published_at
    }
    /// Who published it (the system id for the scheduler).
    async fn actor(&self) -> ID {
        ID(self.actor.to_string())
    }
    /// The publishing user; null for the scheduler or an unknown id.
    async fn actor_user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.actor).await?)
    }
}

/// The order of an article's history.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum HistoryOrder {
    /// Oldest first.
    #[default]
    OldestFirst,
    /// Newest first.
    NewestFirst,
}

/// A page of events.
pub type EventConnection = Connection<String, Event>;

/// An article: its current working copy, its publication state and its history.
#[derive(Debug, Clone)]
pub struct Article(pub ArticleRecord);

/// An article: its current draft, its workflow status, its revisions and its published
/// version.
#[Object]
impl Article {
    /// The id (UUIDv7).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The stream version: the number of its events. Send it back as `expectedVersion`.
    async fn version(&self) -> u64 {
        self.0.version.0
    }
    /// The number of the current working revision.
    async fn revision_number(&self) -> u32 {
        self.0.revision.0
    }
    /// The status of the working copy.
    async fn status(&self) -> GqlStatus {
        self.0.status.into()
    }
    /// The revision readers see, if any.
    async fn live_revision(&self) -> Option<u32> {
        self.0.live_revision.map(|r| r.0)
    }
    /// The revision approved last (current or stale).
    async fn approved_revision(&self) -> Option<u32> {
        self.0.approved_revision.map(|r| r.0)
    }
    /// Whether a revision is live while a newer working revision exists.
    async fn has_unpublished_changes(&self) -> bool {
        self.0.has_unpublished_changes()
    }
    /// The current working revision's content.
    async fn content(&self) -> ContentView {
        ContentView::from(&self.0.content)
    }
    /// The headline of the working revision.
    async fn headline(&self) -> &str {
        &self.0.content.headline
    }
    /// The dek or summary under the headline.
    async fn standfirst(&self) -> &str {
        &self.0.content.standfirst
    }
    /// The body, CommonMark Markdown.
    async fn body(&self) -> &str {
        &self.0.content.body
    }
    /// The working body rendered from Markdown as sanitised HTML (no scripts, no event
    /// handlers, only http, https and mailto links, each with rel="noopener noreferrer").
    async fn body_html(&self) -> String {
        crate::schema::history::body_html(&self.0.content.body)
    }
    /// The URL name.
    async fn slug(&self) -> Option<&str> {
        self.0.content.slug.as_ref().map(|s| s.as_str())
    }
    /// The desk or section.
    async fn category(&self) -> Option<&str> {
        self.0.content.category.as_ref().map(|s| s.as_str())
    }
    /// Subject tags, ordered.
    async fn tags(&self) -> Vec<&str> {
        self.0.content.tags.iter().map(|t| t.as_str()).collect()
    }
    /// The authors' display names.
    async fn byline(&self) -> &[String] {
        &self.0.content.byline
    }
    /// BCP 47 language tag.
    async fn language(&self) -> &str {
        self.0.content.language.as_str()
    }
    /// Publication may not happen before this time, unless an admin lifts it.
    async fn embargo_until(&self) -> Option<DateTime<Utc>> {
        self.0.embargo_until
    }
    /// When the scheduler will publish it, while SCHEDULED.
    async fn scheduled_for(&self) -> Option<DateTime<Utc>> {
        self.0.scheduled_for
    }
    /// Why the scheduler could not publish it when it fell due, if it tried and failed.
    async fn schedule_blocked_reason(&self) -> Option<&str> {
        self.0.schedule_blocked_reason.as_deref()
    }
    /// Users who created or revised it.
    async fn authors(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        Ok(load_users(ctx, &self.0.authors).await?)
    }
    /// Reviewers assigned.
    async fn reviewers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        Ok(load_users(ctx, &self.0.reviewers).await?)
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it was first submitted for review.
    async fn first_submitted_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_submitted_at
    }
    /// When it was last submitted for review.
    async fn submitted_at(&self) -> Option<DateTime<Utc>> {
        self.0.submitted_at
    }
    /// When it first went live.
    async fn first_published_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_published_at
    }
    /// When it last went live.
    async fn last_published_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_published_at
    }
    /// When the last event happened.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Every revision, oldest first.
    #[graphql(complexity = "10 * child_complexity")]
    async fn revisions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Revision>> {
        let revisions = ctx
            .store()
            .revisions(self.0.id)
            .await
            .map_err(ApiError::from)?;
        Ok(revisions.into_iter().map(Revision).collect())
    }
    /// The public corrections, oldest first: each re-publication that carried a correction
    /// note, with the revision it put live, when and by whom (read from the article's
    /// `ArticlePublished` events).
    #[graphql(complexity = "10 * child_complexity")]
    async fn corrections(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Correction>> {
        let published = ctx
            .store()
            .read_stream(
                self.0.id,
                Direction::Forward,
                None,
                u32::MAX,
                &["ArticlePublished".to_owned()],
            )
            .await
            .map_err(ApiError::from)?;
        let mut out = Vec::new();
        for stored in published {
            let event = stored.event().map_err(ApiError::internal)?;
            if let EventData::ArticlePublished {
                revision,
                previous_live,
                correction: Some(note),
                ..
            } = event.data
            {
                out.push(Correction {
                    note,
                    revision: revision.0,
                    previous_live: previous_live.map(|r| r.0),
                    version: stored.version.0,
                    published_at: stored.recorded_at,
                    actor: stored.actor,
                });
            }
        }
        Ok(out)
    }
    /// One revision by number.
    async fn revision(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The revision number, from 1.")] number: u32,
    ) -> async_graphql::Result<Option<Revision>> {
        let revision = ctx
            .store()
            .revision(self.0.id, RevisionNumber(number))
            .await
            .map_err(ApiError::from)?;
        Ok(revision.map(Revision))
    }
    /// The revision readers see, if any.
    async fn live(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Revision>> {
        let Some(live) = self.0.live_revision else {
            return Ok(None);
        };
        let revision = ctx
            .store()
            .revision(self.0.id, live)
            .await
            .map_err(ApiError::from)?;
        Ok(revision.map(Revision))
    }
    /// Review comments, oldest first; only those on one revision when `revision` is given.
    #[graphql(complexity = "10 * child_complexity")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Only the comments on this revision number; every revision's when absent."
        )]
        revision: Option<u32>,
    ) -> async_graphql::Result<Vec<Comment>> {
        let comments = ctx
            .store()
            .comments(self.0.id, revision.map(RevisionNumber))
            .await
            .map_err(ApiError::from)?;
        Ok(comments.into_iter().map(Comment).collect())
    }
    /// The article exactly as it was right after stream version `version`, or right after its
    /// last event recorded at or before `at` (give one of the two); null when it did not exist
    /// yet. Replays the article's own events up to that point.
    async fn as_of(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article right after this stream version; give this or at.")] version: Option<u64>,
        #[graphql(
            desc = "The article right after its last event recorded at or before this time; give this or version."
        )]
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Option<crate::schema::history::ArticleSnapshot>> {
        Ok(crate::schema::history::as_of(ctx, self.0.id, version, at).await?)
    }
    /// What changed from revision `from` to revision `to`: content fields, tags, and the body
    /// word by word (with a unified text form).
    async fn diff(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The revision number to compare from.")] from: u32,
        #[graphql(desc = "The revision number to compare to.")] to: u32,
    ) -> async_graphql::Result<crate::schema::history::RevisionDiff> {
        Ok(crate::schema::history::diff(ctx, self.0.id, from, to).await?)
    }
    /// The article's events. The cursor is the event's version.
    #[graphql(complexity = "crate::schema::page_complexity(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many items to return (at most the server's largest page size; the default page size when absent)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Return the items after this cursor (from a previous page's pageInfo.endCursor); from the start when absent."
        )]
        after: Option<String>,
        #[graphql(default, desc = "The order of the events: oldest first by default.")]
        order: HistoryOrder,
        #[graphql(
            default,
            desc = "Only events of these types (e.g. ArticleCreated); every type when absent."
        )]
        types: Vec<String>,
    ) -> async_graphql::Result<EventConnection> {
        let first = page_size(ctx, first)?;
        let cursor = parse_cursor(after.as_deref())?;
        let direction = match order {
            HistoryOrder::OldestFirst => Direction::Forward,
            HistoryOrder::NewestFirst => Direction::Backward,
        };
        let mut events = ctx
            .store()
            .read_stream(
                self.0.id,
                direction,
                cursor.map(Version),
                first.saturating_add(1),
                &types,
            )
            .await
            .map_err(ApiError::from)?;
        let has_next = events.len() > first as usize;
        events.truncate(first as usize);
        let mut connection = Connection::new(cursor.is_some(), has_next);
        connection.edges.extend(
            events
                .into_iter()
                .map(|e| Edge::new(e.version.0.to_string(), Event(e))),
        );
        Ok(connection)
    }
}

/// The result of a mutation: the article after the command and the events it appended.
#[derive(SimpleObject, Debug)]
pub struct ArticlePayload {
    /// The article after the command.
    pub article: Article,
    /// The events the command appended, in order (for a replayed idempotent retry, the events
    /// the original command appended).
    pub events: Vec<Event>,
    /// Whether this is a replay of an earlier command with the same idempotency key.
    pub replayed: bool,
}

/// Filters for the article list. Absent fields match everything.
#[derive(InputObject, Debug, Clone, Default)]
pub struct ArticleFilterInput {
    /// Full-text search over headline, standfirst, body and tags.
    pub text: Option<String>,
    /// Only these statuses.
    #[graphql(default)]
    pub status: Vec<GqlStatus>,
    /// Only this category.
    pub category: Option<String>,
    /// Only articles carrying this tag.
    pub tag: Option<String>,
    /// Only articles this user created or revised.
    pub author: Option<ID>,
    /// Only articles updated at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
}

/// The order of the article list.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum ArticleOrderBy {
    /// Most recently updated first.
    #[default]
    UpdatedDesc,
    /// Least recently updated first.
    UpdatedAsc,
    /// Most recently created first.
    CreatedDesc,
    /// Best text match first (most recently updated first without a text filter).
    Relevance,
}
