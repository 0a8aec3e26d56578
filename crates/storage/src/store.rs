//! The facade the API and the binary use. Every method's contract is written on it; the
//! backends behind it must behave identically (the contract suite runs on both).
//!
//! NOTE FOR IMPLEMENTERS: the signatures here are the contract with galley-api and galley;
//! keep them (add methods freely). Bodies are filled in by the storage issue.

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use galley_domain::{ArticleId, Command, RevisionNumber, Role, UserId, Version};

use crate::error::StoreError;
use crate::model::{
    ArticleFilter, ArticleOrder, ArticleRecord, CommandOutcome, CommentRecord, EventFilter,
    Metadata, Page, Position, RevisionRecord, StoredEvent, UserRecord,
};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path?mode=rwc` or `sqlite:path` selects SQLite, `postgres://…` PostgreSQL.
    pub url: String,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Run migrations on connect.
    pub migrate: bool,
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The embedded default.
    Sqlite,
    /// The production store.
    Postgres,
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

/// The event store, its projections and its live feed. Cheap to clone (an `Arc` inside).
#[derive(Clone, Debug)]
pub struct Store {}

impl Store {
    /// Opens the pool the URL names, applies the session settings of DESIGN.md §5 and, when
    /// asked, runs migrations.
    pub async fn connect(options: &StoreOptions) -> Result<Store, StoreError> {
        let _ = options;
        todo!()
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        todo!()
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        todo!()
    }

    /// Whether the database answers and every migration is applied (for /readyz).
    pub async fn ready(&self) -> Result<(), StoreError> {
        todo!()
    }

    /// Closes the pool and stops background listeners.
    pub async fn close(&self) {
        todo!()
    }

    /// Runs a command: loads the article, `decide`s, appends, updates projections, all in one
    /// transaction, and wakes the feed. With an idempotency key, a retry of the same command
    /// returns the original outcome (`replayed = true`) and writes nothing; the same key with a
    /// different command is `IdempotencyKeyReused`.
    pub async fn execute(
        &self,
        command: Command,
        metadata: Metadata,
        idempotency_key: Option<String>,
    ) -> Result<CommandOutcome, StoreError> {
        let _ = (command, metadata, idempotency_key);
        todo!()
    }

    /// One article's projection.
    pub async fn article(&self, id: ArticleId) -> Result<Option<ArticleRecord>, StoreError> {
        let _ = id;
        todo!()
    }

    /// Several articles at once (for DataLoader); missing ids are absent from the result.
    pub async fn articles_by_ids(
        &self,
        ids: &[ArticleId],
    ) -> Result<Vec<ArticleRecord>, StoreError> {
        let _ = ids;
        todo!()
    }

    /// The article whose current revision has this slug.
    pub async fn article_by_slug(&self, slug: &str) -> Result<Option<ArticleRecord>, StoreError> {
        let _ = slug;
        todo!()
    }

    /// A keyset-paginated, filtered list. `after` is an opaque cursor from an earlier page
    /// (a malformed one is `StoreError::Invalid`); `first` is already capped by the caller.
    pub async fn list_articles(
        &self,
        filter: &ArticleFilter,
        order: ArticleOrder,
        first: u32,
        after: Option<&str>,
    ) -> Result<Page<ArticleRecord>, StoreError> {
        let _ = (filter, order, first, after);
        todo!()
    }

    /// Every revision of an article, oldest first.
    pub async fn revisions(&self, id: ArticleId) -> Result<Vec<RevisionRecord>, StoreError> {
        let _ = id;
        todo!()
    }

    /// One revision.
    pub async fn revision(
        &self,
        id: ArticleId,
        n: RevisionNumber,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        let _ = (id, n);
        todo!()
    }

    /// Review comments on an article, oldest first, optionally of one revision.
    pub async fn comments(
        &self,
        id: ArticleId,
        revision: Option<RevisionNumber>,
    ) -> Result<Vec<CommentRecord>, StoreError> {
        let _ = (id, revision);
        todo!()
    }

    /// Events of one stream. Forward: versions greater than `cursor` (0 = from the start).
    /// Backward: versions less than `cursor` (`None` = from the newest). At most `limit`,
    /// only the given types when `types` is not empty.
    pub async fn read_stream(
        &self,
        id: ArticleId,
        direction: Direction,
        cursor: Option<Version>,
        limit: u32,
        types: &[String],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let _ = (id, direction, cursor, limit, types);
        todo!()
    }

    /// Events of the global log with positions greater than `after`, in position order, at
    /// most `limit`, matching the filter.
    pub async fn read_all(
        &self,
        after: Position,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let _ = (after, limit, filter);
        todo!()
    }

    /// The highest committed position (0 for an empty log).
    pub async fn head(&self) -> Result<Position, StoreError> {
        todo!()
    }

    /// Every event after `after` that matches the filter, exactly once and in position order:
    /// first the catch-up from the log, then live as appends commit (on this process or, on
    /// PostgreSQL, any other). The stream ends only when the store is closed or on error.
    pub fn subscribe(
        &self,
        after: Position,
        filter: EventFilter,
    ) -> BoxStream<'static, Result<StoredEvent, StoreError>> {
        let _ = (after, filter);
        todo!()
    }

    /// Adds a user with the SHA-256 hex hash of their first token. Names are unique
    /// (`Invalid { field: "name" }` when taken).
    pub async fn create_user(
        &self,
        id: UserId,
        name: &str,
        roles: &[Role],
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, StoreError> {
        let _ = (id, name, roles, token_hash, now);
        todo!()
    }

    /// Adds another token for an existing user (by name).
    pub async fn add_token(
        &self,
        user_name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, StoreError> {
        let _ = (user_name, token_hash, now);
        todo!()
    }

    /// The user holding a live (not revoked) token with this hash.
    pub async fn user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let _ = token_hash;
        todo!()
    }

    /// Users by id (for resolving actors and reviewers).
    pub async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<UserRecord>, StoreError> {
        let _ = ids;
        todo!()
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        todo!()
    }

    /// Revokes every token of a user (by name); returns how many were revoked.
    pub async fn revoke_tokens(
        &self,
        user_name: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let _ = (user_name, now);
        todo!()
    }

    /// Scheduled articles due at `now`, oldest due first.
    pub async fn due_articles(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueArticle>, StoreError> {
        let _ = (now, limit);
        todo!()
    }

    /// Records why a due article could not be published, so it shows as overdue with the
    /// reason (`None` clears it).
    pub async fn set_schedule_blocked(
        &self,
        id: ArticleId,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let _ = (id, reason);
        todo!()
    }

    /// Drops every projection and replays the whole log into it. Returns events replayed.
    pub async fn rebuild_projections(&self) -> Result<u64, StoreError> {
        todo!()
    }

    /// Rebuilds into a scratch copy and reports every difference from the live tables.
    pub async fn verify_projections(&self) -> Result<Vec<ProjectionDiff>, StoreError> {
        todo!()
    }

    /// Appends events exactly as exported (ids, versions, positions, envelopes kept) and
    /// projects them; used by `galley events import` into an empty database.
    pub async fn import_events(&self, events: &[StoredEvent]) -> Result<u64, StoreError> {
        let _ = events;
        todo!()
    }
}
