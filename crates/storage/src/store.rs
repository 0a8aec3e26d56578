//! The facade the API and the binary use. Every method's contract is written on it; the
//! backends behind it must behave identically (the contract suite runs on both).

use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use galley_domain::{ArticleId, Command, RevisionNumber, Role, UserId, Version};
use tokio::task::JoinHandle;

use crate::append::PendingCommand;
use crate::db::{args, Db};
use crate::error::StoreError;
use crate::feed::Feed;
use crate::model::{
    ArticleFilter, ArticleOrder, ArticleRecord, CommandOutcome, CommentRecord, EventFilter,
    Metadata, Page, Position, RevisionRecord, StoredEvent, UserRecord,
};
use crate::{project, read};

/// How many imported events are written per set-based flush.
const IMPORT_PAGE: u64 = 2_000;

/// The default deadline of one database call.
pub const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The default wait for a pool connection.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path?mode=rwc` or `sqlite:path` selects SQLite, `postgres://…` PostgreSQL.
    pub url: String,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Run migrations on connect.
    pub migrate: bool,
    /// Most concurrent `execute` calls grouped into one transaction and one commit (group
    /// commit); 1 turns grouping off, so each command runs its own transaction.
    pub max_batch: usize,
    /// How long a successful token lookup is reused without asking the database again;
    /// zero turns the cache off. A revocation made through this store, or on PostgreSQL
    /// through any process, empties the cache at once; on SQLite another process's
    /// revocation takes effect within this time (see [`crate::users`]).
    pub token_cache_ttl: std::time::Duration,
    /// The deadline of every database call (a statement, a begin, a commit): one that
    /// overruns it fails as unavailable ([`StoreError::is_unavailable`]), so a stalled
    /// connection never holds a request, the writer or readiness for longer. PostgreSQL also
    /// enforces it as `statement_timeout`.
    pub statement_timeout: std::time::Duration,
    /// How long to wait for a pool connection, opening a new one included.
    pub acquire_timeout: std::time::Duration,
}

impl Default for StoreOptions {
    /// An SQLite file `galley.db` in the working directory, a pool of 8, migrations on, group
    /// commit on.
    fn default() -> Self {
        StoreOptions {
            url: "sqlite://galley.db?mode=rwc".to_owned(),
            max_connections: 8,
            migrate: true,
            max_batch: crate::group::DEFAULT_MAX_BATCH,
            token_cache_ttl: crate::users::TOKEN_CACHE_TTL,
            statement_timeout: STATEMENT_TIMEOUT,
            acquire_timeout: ACQUIRE_TIMEOUT,
        }
    }
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
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// What a [`BeforeCommitHook`] decides.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitDecision {
    /// Go on and commit.
    Commit,
    /// Roll the transaction back, as a crash before commit would.
    Abort,
}

/// A test hook run inside every append transaction after its events are written and before it
/// commits, with the events about to commit. The contract suite uses it to hold a writer's
/// transaction open (out-of-order commits) and to abort transactions mid-way. `None` in
/// production.
#[doc(hidden)]
pub type BeforeCommitHook =
    Arc<dyn Fn(Vec<StoredEvent>) -> BoxFuture<'static, CommitDecision> + Send + Sync>;

/// The shared state behind every clone of a [`Store`].
pub(crate) struct Inner {
    /// The pools.
    pub(crate) db: Db,
    /// Wakes subscribers when the head moves.
    pub(crate) feed: Feed,
    /// See [`BeforeCommitHook`].
    pub(crate) before_commit: RwLock<Option<BeforeCommitHook>>,
    /// The PostgreSQL LISTEN task, stopped on close or drop.
    pub(crate) listener: Mutex<Option<JoinHandle<()>>>,
    /// The group-commit writer that `execute` queues commands to.
    pub(crate) writer: crate::group::Writer,
    /// Recent token lookups (see [`crate::users::TokenCache`]).
    pub(crate) tokens: crate::users::TokenCache,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("db", &self.db)
            .field("feed", &self.feed)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .listener
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

impl Store {
    /// Installs (or, with `None`, removes) the [`BeforeCommitHook`]. For tests only.
    #[doc(hidden)]
    pub fn set_before_commit_hook(&self, hook: Option<BeforeCommitHook>) {
        *self
            .inner
            .before_commit
            .write()
            .unwrap_or_else(|e| e.into_inner()) = hook;
    }

    pub(crate) fn before_commit_hook(&self) -> Option<BeforeCommitHook> {
        self.inner
            .before_commit
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs raw SQL outside the event log's rules, for tests that must corrupt a projection
    /// row on purpose. Returns the rows affected.
    #[doc(hidden)]
    pub async fn execute_raw_sql_for_tests(&self, sql: &str) -> Result<u64, StoreError> {
        let (mut tx, _) = self.inner.db.begin_write(false).await?;
        let n = tx.exec().execute(sql, &[]).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Opens the pool the URL names, applies the session settings of DESIGN.md §5 and, when
    /// asked, runs migrations.
    pub async fn connect(options: &StoreOptions) -> Result<Store, StoreError> {
        let db = Db::connect(options).await?;
        if options.migrate {
            db.migrate().await?;
        }
        let inner = Arc::new(Inner {
            db,
            feed: Feed::new(),
            before_commit: RwLock::new(None),
            listener: Mutex::new(None),
            writer: crate::group::Writer::new(options.max_batch),
            tokens: crate::users::TokenCache::new(options.token_cache_ttl),
        });
        crate::group::Writer::start(&inner);
        if let Some(pool) = inner.db.pg_pool() {
            let task = tokio::spawn(crate::feed::listen_postgres(
                pool.clone(),
                Arc::downgrade(&inner),
                inner.db.deadline(),
            ));
            *inner.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        Ok(Store { inner })
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        self.inner.db.kind()
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.db.migrate().await
    }

    /// Whether the database answers and every migration is applied (for /readyz).
    pub async fn ready(&self) -> Result<(), StoreError> {
        let applied = self
            .inner
            .db
            .reader()
            .fetch_all("SELECT version FROM _sqlx_migrations WHERE success", &[])
            .await?;
        let applied = applied
            .iter()
            .map(|r| r.get::<i64>("version"))
            .collect::<Result<Vec<_>, _>>()?;
        for migration in self.inner.db.migrator().iter() {
            if !applied.contains(&migration.version) {
                return Err(StoreError::Corrupt(format!(
                    "migration {} ({}) is not applied",
                    migration.version, migration.description
                )));
            }
        }
        Ok(())
    }

    /// Closes the pool and stops background listeners.
    pub async fn close(&self) {
        self.inner.feed.close();
        if let Some(task) = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        // Queued commands are answered with an error; a batch in flight finishes first.
        self.inner.writer.close().await;
        self.inner.db.close().await;
        // A closed store authenticates nobody: its lookups now fail like its other reads.
        self.inner.tokens.clear();
    }

    /// Runs a command: loads the article, `decide`s, appends, updates projections, all in one
    /// transaction, and wakes the feed. With an idempotency key, a retry of the same command
    /// from the same user returns the original outcome (`replayed = true`) and writes nothing;
    /// the same key with a different command is `IdempotencyKeyReused`. Keys are the user's
    /// own (another user's same key is another command) and are kept for the store's
    /// idempotency retention, then pruned ([`Store::prune_idempotency_keys`]).
    pub async fn execute(
        &self,
        command: Command,
        metadata: Metadata,
        idempotency_key: Option<String>,
    ) -> Result<CommandOutcome, StoreError> {
        let idempotency_key =
            idempotency_key.map(|key| crate::append::scoped_key(command.actor.user, &key));
        self.execute_one(PendingCommand {
            command,
            metadata,
            idempotency_key,
        })
        .await
    }

    /// Forgets the idempotency keys recorded before `before`, in batches, and says how many it
    /// removed. The log is not touched: a key only remembers which positions a command
    /// appended. A key used again after it is pruned names a new command.
    pub async fn prune_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let (mut tx, _) = self.inner.db.begin_write(false).await?;
            let n = tx
                .exec()
                .execute(
                    "DELETE FROM idempotency_keys WHERE key IN \
                     (SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT 1000)",
                    &args![before],
                )
                .await?;
            tx.commit().await?;
            removed += n;
            if n < 1000 {
                return Ok(removed);
            }
        }
    }

    /// One article's projection.
    pub async fn article(&self, id: ArticleId) -> Result<Option<ArticleRecord>, StoreError> {
        read::article(self.inner.db.reader(), id).await
    }

    /// Several articles at once (for DataLoader); missing ids are absent from the result.
    pub async fn articles_by_ids(
        &self,
        ids: &[ArticleId],
    ) -> Result<Vec<ArticleRecord>, StoreError> {
        read::articles_by_ids(self.inner.db.reader(), ids).await
    }

    /// The article whose current revision has this slug.
    pub async fn article_by_slug(&self, slug: &str) -> Result<Option<ArticleRecord>, StoreError> {
        read::article_by_slug(self.inner.db.reader(), slug).await
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
        read::list_articles(self.inner.db.reader(), filter, order, first, after).await
    }

    /// Every revision of an article, oldest first.
    pub async fn revisions(&self, id: ArticleId) -> Result<Vec<RevisionRecord>, StoreError> {
        read::revisions(self.inner.db.reader(), id, None).await
    }

    /// One revision.
    pub async fn revision(
        &self,
        id: ArticleId,
        n: RevisionNumber,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        Ok(read::revisions(self.inner.db.reader(), id, Some(n))
            .await?
            .pop())
    }

    /// Review comments on an article, oldest first, optionally of one revision.
    pub async fn comments(
        &self,
        id: ArticleId,
        revision: Option<RevisionNumber>,
    ) -> Result<Vec<CommentRecord>, StoreError> {
        read::comments(self.inner.db.reader(), id, revision).await
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
        read::read_stream(self.inner.db.reader(), id, direction, cursor, limit, types).await
    }

    /// Events of the global log with positions greater than `after`, in position order, at
    /// most `limit`, matching the filter.
    pub async fn read_all(
        &self,
        after: Position,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        read::read_all(self.inner.db.reader(), after, limit, filter).await
    }

    /// The highest committed position (0 for an empty log).
    pub async fn head(&self) -> Result<Position, StoreError> {
        read::head(self.inner.db.reader()).await
    }

    /// Every event after `after` that matches the filter, exactly once and in position order:
    /// first the catch-up from the log, then live as appends commit (on this process or, on
    /// PostgreSQL, any other). The stream ends only when the store is closed or on error.
    pub fn subscribe(
        &self,
        after: Position,
        filter: EventFilter,
    ) -> BoxStream<'static, Result<StoredEvent, StoreError>> {
        self.subscribe_stream(after, filter)
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
        self.create_user_impl(id, name, roles, token_hash, now)
            .await
    }

    /// Adds another token for an existing user (by name).
    pub async fn add_token(
        &self,
        user_name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, StoreError> {
        self.add_token_impl(user_name, token_hash, now).await
    }

    /// The user holding a live (not revoked) token with this hash.
    pub async fn user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.user_by_token_hash_impl(token_hash).await
    }

    /// Changes whenever token lookups may have been revoked: a revocation through this store,
    /// on PostgreSQL one through any process, or a reconnection of the listener (when one may
    /// have been missed). Holders of a long-lived credential (a WebSocket connection) look
    /// their token up again when it changes; on SQLite, another process's revocation is seen
    /// by looking up again every [`Store::token_cache_ttl`].
    pub fn token_revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.tokens.revocations()
    }

    /// How long a successful token lookup is reused.
    pub fn token_cache_ttl(&self) -> std::time::Duration {
        self.inner.tokens.ttl()
    }

    /// Users by id (for resolving actors and reviewers).
    pub async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<UserRecord>, StoreError> {
        self.users_by_ids_impl(ids).await
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.users_impl().await
    }

    /// Revokes every token of a user (by name); returns how many were revoked.
    pub async fn revoke_tokens(
        &self,
        user_name: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.revoke_tokens_impl(user_name, now).await
    }

    /// Scheduled articles due at `now`, oldest due first.
    pub async fn due_articles(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueArticle>, StoreError> {
        read::due_articles(self.inner.db.reader(), now, limit).await
    }

    /// Drops every projection and replays the whole log into it. Returns events replayed.
    pub async fn rebuild_projections(&self) -> Result<u64, StoreError> {
        let (mut tx, _) = self.inner.db.begin_write(true).await?;
        let replayed = project::rebuild(&mut tx).await?;
        tx.commit().await?;
        // The users rows were rewritten from the user log; cached lookups may hold old ones.
        self.inner.tokens.clear();
        Ok(replayed)
    }

    /// Rebuilds into a scratch copy and reports every difference from the live tables.
    pub async fn verify_projections(&self) -> Result<Vec<ProjectionDiff>, StoreError> {
        // The scratch copy is the live tables themselves, rebuilt inside a transaction that
        // is rolled back: the comparison runs the very code a rebuild runs. The transaction
        // holds the write lock, so no append changes the log between the two readings.
        let (mut tx, _) = self.inner.db.begin_write(true).await?;
        let live = project::dump(&mut tx).await?;
        project::rebuild(&mut tx).await?;
        let rebuilt = project::dump(&mut tx).await?;
        tx.rollback().await?;
        Ok(project::diff(&live, &rebuilt))
    }

    /// Appends events exactly as exported (ids, versions, positions, envelopes kept) and
    /// projects them; used by `galley events import` into an empty database.
    pub async fn import_events(&self, events: &[StoredEvent]) -> Result<u64, StoreError> {
        let (mut tx, mut head) = self.inner.db.begin_write(true).await?;
        let mut projector = project::Projector::default();
        for event in events {
            if event.position != head + 1 {
                return Err(StoreError::Invalid {
                    field: "position".to_owned(),
                    message: format!(
                        "event {} has position {} but the log continues at {}",
                        event.event_id,
                        event.position,
                        head + 1
                    ),
                });
            }
            // Read through the upcaster first: an event this build cannot read is refused.
            event.event()?;
            projector.insert(event);
            projector.apply(&mut tx, event).await?;
            head = event.position;
            if head % IMPORT_PAGE == 0 {
                projector.flush(&mut tx).await?;
            }
        }
        projector.flush(&mut tx).await?;
        tx.exec()
            .execute("UPDATE log_head SET position = $1", &args![head])
            .await?;
        if tx.is_pg() {
            tx.exec()
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &args![crate::append::NOTIFY_CHANNEL, head.to_string()],
                )
                .await?;
        }
        tx.commit().await?;
        self.inner.feed.bump(head);
        Ok(events.len() as u64)
    }
}

/// Webhooks: endpoints, their checkpoints, attempts and audit (see [`crate::webhooks`]).
impl Store {
    /// Creates a webhook endpoint as `actor`, recording the creation. At most
    /// [`crate::MAX_WEBHOOK_ENDPOINTS`] exist (`Invalid { field: "endpoints" }` beyond).
    pub async fn create_webhook_endpoint(
        &self,
        new: crate::NewWebhookEndpoint,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<crate::WebhookEndpointRecord, StoreError> {
        crate::webhooks::create(&self.inner.db, new, actor, now).await
    }

    /// One webhook endpoint (without its secrets).
    pub async fn webhook_endpoint(
        &self,
        id: crate::WebhookEndpointId,
    ) -> Result<Option<crate::WebhookEndpointRecord>, StoreError> {
        crate::webhooks::endpoint(self.inner.db.reader(), id).await
    }

    /// Every webhook endpoint, oldest first.
    pub async fn webhook_endpoints(&self) -> Result<Vec<crate::WebhookEndpointRecord>, StoreError> {
        crate::webhooks::endpoints(self.inner.db.reader()).await
    }

    /// An endpoint's signing secrets, for the dispatcher; nothing else reads them.
    pub async fn webhook_secrets(
        &self,
        id: crate::WebhookEndpointId,
    ) -> Result<Option<crate::WebhookSecrets>, StoreError> {
        crate::webhooks::secrets(self.inner.db.reader(), id).await
    }

    /// Changes an endpoint at version `expected` as `actor`, recording the change: `NotFound`,
    /// a conflict with the current version, or `Invalid` when its state does not allow it.
    pub async fn change_webhook_endpoint(
        &self,
        id: crate::WebhookEndpointId,
        expected: u64,
        change: crate::WebhookEndpointChange,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<crate::WebhookEndpointRecord, StoreError> {
        crate::webhooks::change(&self.inner.db, id, expected, change, actor, now).await
    }

    /// Deletes an endpoint at version `expected` with its attempts, recording the deletion;
    /// returns it as it was.
    pub async fn delete_webhook_endpoint(
        &self,
        id: crate::WebhookEndpointId,
        expected: u64,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<crate::WebhookEndpointRecord, StoreError> {
        crate::webhooks::delete(&self.inner.db, id, expected, actor, now).await
    }

    /// Records a delivery attempt (the newest [`crate::WEBHOOK_ATTEMPTS_KEPT`] per endpoint
    /// are kept).
    pub async fn record_webhook_attempt(
        &self,
        attempt: &crate::WebhookAttempt,
    ) -> Result<(), StoreError> {
        crate::webhooks::record_attempt(&self.inner.db, attempt).await
    }

    /// An endpoint's newest attempts, newest first.
    pub async fn webhook_attempts(
        &self,
        id: crate::WebhookEndpointId,
        limit: u32,
    ) -> Result<Vec<crate::WebhookAttempt>, StoreError> {
        crate::webhooks::attempts(self.inner.db.reader(), id, limit).await
    }

    /// Records a failed attempt's error on the endpoint; returns since when it has been
    /// failing (`None` when it is gone).
    pub async fn record_webhook_failure(
        &self,
        id: crate::WebhookEndpointId,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        crate::webhooks::record_failure(&self.inner.db, id, error, now).await
    }

    /// Records an audit row about an endpoint that changes nothing in it (a redelivery).
    pub async fn record_webhook_change(
        &self,
        id: crate::WebhookEndpointId,
        change_type: &str,
        detail: serde_json::Value,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        crate::webhooks::record_change(&self.inner.db, id, change_type, detail, actor, now).await
    }

    /// The newest recorded endpoint changes, newest first: of one endpoint, or of all.
    pub async fn webhook_changes(
        &self,
        id: Option<crate::WebhookEndpointId>,
        limit: u32,
    ) -> Result<Vec<crate::WebhookChangeRecord>, StoreError> {
        crate::webhooks::changes(self.inner.db.reader(), id, limit).await
    }

    /// This process's webhook leases (see [`crate::WebhookLeases`]); the dispatcher makes one.
    pub fn webhook_leases(&self) -> crate::WebhookLeases {
        crate::webhooks::WebhookLeases::new(self.clone())
    }
}
