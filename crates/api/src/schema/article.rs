//! The article and its log: the `Article` object (its working copy, its revisions, comments,
//! corrections, past and events) and the `Event` object. They sit in one module because each
//! leads to the other (`Article.history` lists events, `Event.article` is the article now).

use std::borrow::Cow;

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{Context, Json, Object, ID};
use chrono::{DateTime, Utc};
use galley_domain::{RevisionNumber, Version};
use galley_storage::{ArticleColumns, ArticleRecord, Direction, Page, PageCursor, StoredEvent};

use crate::error::ApiError;
use crate::schema::args::{page_size, parse_cursor};
use crate::schema::context::ContextExt;
use crate::schema::enums::GqlStatus;
use crate::schema::history::{self, ArticleSnapshot, RevisionDiff};
use crate::schema::inputs::HistoryOrder;
use crate::schema::revision::{corrections, Comment, Correction, Revision};
use crate::schema::users::{load_user, load_users, User};
use crate::schema::view::{ArticleFields, ContentView};

/// An article: its current working copy, its publication state and its history, and how its
/// record was read. A list reads its page with only the columns its selection shows
/// ([`page_columns`]); a field of such an article that needs a column left out loads the whole
/// record, so what the look-ahead misses costs a query, never a wrong answer.
#[derive(Debug, Clone)]
pub struct Article(pub ArticleRecord, ArticleColumns);

impl From<ArticleRecord> for Article {
    fn from(record: ArticleRecord) -> Article {
        Article(record, ArticleColumns::All)
    }
}

/// The fields of `Article` that show its body.
const BODY_FIELDS: [&str; 3] = ["body", "bodyHtml", "content"];

/// The fields of `Article` that show a column [`ArticleColumns::Summary`] leaves out, other
/// than the body.
const DETAIL_FIELDS: [&str; 4] = ["tags", "byline", "authors", "reviewers"];

/// The columns a page of articles must read: the body only when a node of the page (through
/// `edges { node }` or `nodes`, fragments included) asks for a field that shows it, the tags,
/// byline and people only when one asks for those.
pub(crate) fn page_columns(ctx: &Context<'_>) -> ArticleColumns {
    let page = ctx.look_ahead();
    let nodes = [page.field("edges").field("node"), page.field("nodes")];
    let shows = |fields: &[&str]| {
        nodes
            .iter()
            .any(|node| fields.iter().any(|f| node.field(f).exists()))
    };
    if shows(&BODY_FIELDS) {
        ArticleColumns::All
    } else if shows(&DETAIL_FIELDS) {
        ArticleColumns::WithoutBody
    } else {
        ArticleColumns::Summary
    }
}

impl Article {
    fn fields(&self) -> ArticleFields<'_> {
        ArticleFields(&self.0)
    }

    /// The record with at least the columns `needed`: this one, or the whole record loaded
    /// when this one was read with fewer (the loader batches every such article of a page
    /// into one query).
    async fn record(
        &self,
        ctx: &Context<'_>,
        needed: ArticleColumns,
    ) -> async_graphql::Result<Cow<'_, ArticleRecord>> {
        if self.1.covers(needed) {
            return Ok(Cow::Borrowed(&self.0));
        }
        let record = ctx
            .loaders()
            .articles
            .load_one(self.0.id)
            .await
            .map_err(ApiError::from_shared)?
            .ok_or_else(|| ApiError::internal(format!("article {} is gone", self.0.id)))?;
        Ok(Cow::Owned(record))
    }

    /// The record with its body.
    async fn with_body(&self, ctx: &Context<'_>) -> async_graphql::Result<Cow<'_, ArticleRecord>> {
        self.record(ctx, ArticleColumns::All).await
    }

    /// The record with its tags, byline and people.
    async fn with_details(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Cow<'_, ArticleRecord>> {
        self.record(ctx, ArticleColumns::WithoutBody).await
    }
}

/// An article: its current draft, its workflow status, its revisions and its published
/// version.
#[Object]
impl Article {
    /// The id (UUIDv7).
    async fn id(&self) -> ID {
        self.fields().id()
    }
    /// The stream version: the number of its events. Send it back as `expectedVersion`.
    async fn version(&self) -> u64 {
        self.fields().version()
    }
    /// The number of the current working revision.
    async fn revision_number(&self) -> u32 {
        self.fields().revision_number()
    }
    /// The status of the working copy.
    async fn status(&self) -> GqlStatus {
        self.fields().status()
    }
    /// The revision readers see, if any.
    async fn live_revision(&self) -> Option<u32> {
        self.fields().live_revision()
    }
    /// The revision approved last (current or stale).
    async fn approved_revision(&self) -> Option<u32> {
        self.fields().approved_revision()
    }
    /// Whether a revision is live while a newer working revision exists.
    async fn has_unpublished_changes(&self) -> bool {
        self.0.has_unpublished_changes()
    }
    /// The current working revision's content.
    async fn content(&self, ctx: &Context<'_>) -> async_graphql::Result<ContentView> {
        Ok(ArticleFields(&*self.with_body(ctx).await?)
            .content()
            .object())
    }
    /// The headline of the working revision.
    async fn headline(&self) -> &str {
        self.fields().content().headline()
    }
    /// The dek or summary under the headline.
    async fn standfirst(&self) -> &str {
        self.fields().content().standfirst()
    }
    /// The body, CommonMark Markdown.
    async fn body(&self, ctx: &Context<'_>) -> async_graphql::Result<Cow<'_, str>> {
        Ok(match self.with_body(ctx).await? {
            Cow::Borrowed(record) => Cow::Borrowed(ArticleFields(record).content().body()),
            Cow::Owned(record) => Cow::Owned(record.content.body),
        })
    }
    /// The working body rendered from Markdown as sanitised HTML (no scripts, no event
    /// handlers, only http, https and mailto links, each with rel="noopener noreferrer").
    async fn body_html(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(ArticleFields(&*self.with_body(ctx).await?)
            .content()
            .body_html())
    }
    /// The URL name.
    async fn slug(&self) -> Option<&str> {
        self.fields().content().slug()
    }
    /// The desk or section.
    async fn category(&self) -> Option<&str> {
        self.fields().content().category()
    }
    /// Subject tags, ordered.
    async fn tags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        let record = self.with_details(ctx).await?;
        Ok(ArticleFields(&record)
            .content()
            .tags()
            .into_iter()
            .map(str::to_owned)
            .collect())
    }
    /// The authors' display names.
    async fn byline(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        let record = self.with_details(ctx).await?;
        Ok(ArticleFields(&record).content().byline().to_vec())
    }
    /// BCP 47 language tag.
    async fn language(&self) -> &str {
        self.fields().content().language()
    }
    /// Publication may not happen before this time, unless an admin lifts it.
    async fn embargo_until(&self) -> Option<DateTime<Utc>> {
        self.fields().embargo_until()
    }
    /// When the scheduler will publish it, while SCHEDULED.
    async fn scheduled_for(&self) -> Option<DateTime<Utc>> {
        self.fields().scheduled_for()
    }
    /// Why the scheduler could not publish it when it fell due, if it tried and failed.
    async fn schedule_blocked_reason(&self) -> Option<&str> {
        self.fields().schedule_blocked_reason()
    }
    /// Users who created or revised it.
    async fn authors(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        Ok(load_users(ctx, &self.with_details(ctx).await?.authors).await?)
    }
    /// Reviewers assigned.
    async fn reviewers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        Ok(load_users(ctx, &self.with_details(ctx).await?.reviewers).await?)
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.fields().created_at()
    }
    /// When it was first submitted for review.
    async fn first_submitted_at(&self) -> Option<DateTime<Utc>> {
        self.fields().first_submitted_at()
    }
    /// When it was last submitted for review.
    async fn submitted_at(&self) -> Option<DateTime<Utc>> {
        self.0.submitted_at
    }
    /// When it first went live.
    async fn first_published_at(&self) -> Option<DateTime<Utc>> {
        self.fields().first_published_at()
    }
    /// When it last went live.
    async fn last_published_at(&self) -> Option<DateTime<Utc>> {
        self.fields().last_published_at()
    }
    /// When the last event happened.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.fields().updated_at()
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
        Ok(corrections(ctx, self.0.id).await?)
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
    ) -> async_graphql::Result<Option<ArticleSnapshot>> {
        Ok(history::as_of(ctx, self.0.id, version, at).await?)
    }
    /// What changed from revision `from` to revision `to`: content fields, tags, and the body
    /// word by word (with a unified text form).
    async fn diff(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The revision number to compare from.")] from: u32,
        #[graphql(desc = "The revision number to compare to.")] to: u32,
    ) -> async_graphql::Result<RevisionDiff> {
        Ok(history::diff(ctx, self.0.id, from, to).await?)
    }
    /// The article's events. The cursor is the event's version.
    #[graphql(complexity = "crate::schema::args::page_complexity(first, child_complexity)")]
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
        // A page that shows no payload reads none (the look-ahead sees through fragments; a
        // payload it misses is loaded by the event's `payload` field).
        let page = ctx.look_ahead();
        let payloads = [page.field("edges").field("node"), page.field("nodes")]
            .iter()
            .any(|node| node.field("payload").exists());
        let store = ctx.store();
        let cursor_version = cursor.map(Version);
        let limit = first.saturating_add(1);
        let mut events = if payloads {
            store
                .read_stream(self.0.id, direction, cursor_version, limit, &types)
                .await
        } else {
            store
                .read_stream_envelopes(self.0.id, direction, cursor_version, limit, &types)
                .await
        }
        .map_err(ApiError::from)?;
        let has_next = events.len() > first as usize;
        events.truncate(first as usize);
        let mut connection = Connection::new(cursor.is_some(), has_next);
        connection.edges.extend(
            events
                .into_iter()
                .map(|e| Edge::new(e.version.0.to_string(), Event(e, payloads))),
        );
        Ok(connection)
    }
}

/// A page of articles.
pub type ArticleConnection = Connection<ListCursor, Article>;

/// An item's cursor in a list of articles, encoded only when the response shows it.
#[derive(Debug, Clone)]
pub struct ListCursor(PageCursor);

/// `ListCursor`s are decoded by the store (the resolvers take `after` as a string), never by
/// async-graphql.
#[derive(Debug)]
pub struct DecodedByTheStore;

impl std::fmt::Display for DecodedByTheStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list cursor is decoded by the store")
    }
}

impl CursorType for ListCursor {
    type Error = DecodedByTheStore;

    fn decode_cursor(_: &str) -> Result<Self, Self::Error> {
        Err(DecodedByTheStore)
    }

    fn encode_cursor(&self) -> String {
        self.0.to_string()
    }
}

/// A page of the store's articles as a Relay connection (`articles`, `reviewQueue`).
/// `columns` says how the page was read.
pub(crate) fn article_connection(
    after_given: bool,
    page: Page<ArticleRecord>,
    columns: ArticleColumns,
) -> ArticleConnection {
    let mut connection = Connection::new(after_given, page.has_next_page);
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|(cursor, a)| Edge::new(ListCursor(cursor), Article(a, columns))),
    );
    connection
}

/// One event of the log, with its envelope.
#[derive(Debug, Clone)]
pub struct Event(pub StoredEvent, bool);

impl From<StoredEvent> for Event {
    /// An event read whole.
    fn from(event: StoredEvent) -> Event {
        Event(event, true)
    }
}

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
    async fn payload(&self, ctx: &Context<'_>) -> async_graphql::Result<Json<serde_json::Value>> {
        if self.1 {
            return Ok(Json(self.0.payload.clone()));
        }
        // Read without its payload: load it whole.
        let event = ctx
            .store()
            .read_event_at(self.0.position)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::internal(format!("event {} is gone", self.0.position)))?;
        Ok(Json(event.payload))
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
            .map(Article::from))
    }
}

/// A page of events.
pub type EventConnection = Connection<String, Event>;
