//! The facade the API and the binary use. Every method's contract is written on it; the
//! backends behind it must behave identically (the contract suite runs on both).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use galley_domain::{ArticleId, Command, RevisionNumber, Role, UserId, Version};
use tokio::task::JoinHandle;

use crate::auth::cache::{TokenCache, TOKENS_CHANNEL};
use crate::backend::{BackendKind, Connect, Db};
use crate::error::StoreError;
use crate::feed::{self, Feed, Listener};
use crate::log::{self, read::Payloads, NOTIFY_CHANNEL};
use crate::model::{
    ArticleColumns, ArticleFilter, ArticleOrder, ArticleRecord, AsOf, CommandOutcome,
    CommentRecord, Direction, DueArticle, EventFilter, Metadata, PendingCommand, Position,
    ProjectionDiff, RevisionRecord, SearchIndexState, StoredEvent, UserRecord,
};
use crate::projections::search_index;
use crate::write::{BeforeCommitHook, Writer};
use crate::{auth, projections, read, write};
use auth::changes::{UserChange, UserChangeRecord};
use auth::sessions::Credentials;
use read::dashboard::{Dashboard, DashboardQuery};
use read::list_cache::{ListCache, ListKey};
use read::page::Page;
use read::stages::StageFigures;

/// The default deadline of one database call.
pub const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The default wait for a pool connection.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How many list pages a store keeps by default ([`StoreOptions::list_cache_pages`]).
pub const LIST_CACHE_PAGES: usize = 256;
/// How much of an SQLite file is memory-mapped by default ([`StoreOptions::sqlite_mmap_mib`]).
pub const SQLITE_MMAP_MIB: u32 = 2048;

pub use crate::projections::search_index::IndexerOptions;

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
    /// revocation takes effect within this time.
    pub token_cache_ttl: std::time::Duration,
    /// The deadline of every database call (a statement, a begin, a commit): one that
    /// overruns it fails as unavailable ([`StoreError::is_unavailable`]), so a stalled
    /// connection never holds a request, the writer or readiness for longer. PostgreSQL also
    /// enforces it as `statement_timeout`.
    pub statement_timeout: std::time::Duration,
    /// How long to wait for a pool connection, opening a new one included.
    pub acquire_timeout: std::time::Duration,
    /// How many of the newest events the feed keeps in memory for its subscribers, who then
    /// share one log read per commit; 0 makes every subscriber read the log itself.
    pub feed_tail: usize,
    /// How many pages of article lists read without bodies are kept for the log head they
    /// were read at (see `read/list_cache.rs`); 0 keeps none, so every list reads the
    /// projection.
    pub list_cache_pages: usize,
    /// SQLite's page cache per connection, in KiB (`PRAGMA cache_size`); 0 leaves SQLite's
    /// default of 2 MiB. Ignored on PostgreSQL, whose cache is the server's.
    pub sqlite_cache_kib: u32,
    /// How much of the SQLite file each connection reads through a memory map, in MiB
    /// (`PRAGMA mmap_size`); 0 reads every page through the page cache with a system call.
    /// Ignored on PostgreSQL.
    pub sqlite_mmap_mib: u32,
    /// The search indexer task (see `projections/search_index.rs`).
    pub search_indexer: IndexerOptions,
}

impl Default for StoreOptions {
    /// An SQLite file `galley.db` in the working directory, a pool of 8, migrations on, group
    /// commit on.
    fn default() -> Self {
        StoreOptions {
            url: "sqlite://galley.db?mode=rwc".to_owned(),
            max_connections: 8,
            migrate: true,
            max_batch: write::DEFAULT_MAX_BATCH,
            token_cache_ttl: crate::auth::cache::TOKEN_CACHE_TTL,
            statement_timeout: STATEMENT_TIMEOUT,
            acquire_timeout: ACQUIRE_TIMEOUT,
            feed_tail: feed::TAIL_EVENTS,
            list_cache_pages: LIST_CACHE_PAGES,
            sqlite_cache_kib: 0,
            sqlite_mmap_mib: SQLITE_MMAP_MIB,
            search_indexer: IndexerOptions::default(),
        }
    }
}

/// The event store, its projections and its live feed. Cheap to clone (an `Arc` inside).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// The shared state behind every clone of a [`Store`].
pub(crate) struct Inner {
    /// The pools.
    pub(crate) db: Db,
    /// Wakes subscribers when the head moves.
    pub(crate) feed: Arc<Feed>,
    /// The background tasks (the PostgreSQL LISTEN task, the search indexer), stopped on
    /// close or drop.
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The group-commit writer that `execute` queues commands to.
    pub(crate) writer: Writer,
    /// Recent token lookups.
    pub(crate) tokens: TokenCache,
    /// Pages of article lists at the current head.
    pub(crate) lists: ListCache,
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
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// The PostgreSQL listener's notifications: a new head rings the doorbell; a revocation, or a
/// moment when either may have been missed, also empties the token cache.
impl Listener for Inner {
    fn notified(&self, channel: &str, payload: &str) {
        if channel == TOKENS_CHANNEL {
            self.tokens.clear();
        } else {
            self.feed.notified(payload);
        }
    }

    fn missed(&self) {
        self.feed.ring();
        self.tokens.clear();
    }
}

impl Store {
    /// Installs (or, with `None`, removes) the [`BeforeCommitHook`]. For tests only.
    #[doc(hidden)]
    pub fn set_before_commit_hook(&self, hook: Option<BeforeCommitHook>) {
        self.inner.writer.set_hook(hook);
    }

    /// Append transactions this store has committed (grouped or not). For tests.
    #[doc(hidden)]
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits()
    }

    /// Append transactions begun beside the previous batch's commit, because commands were
    /// already waiting (PostgreSQL only). For tests.
    #[doc(hidden)]
    pub fn transactions_begun_ahead(&self) -> u64 {
        self.inner.writer.begun_ahead()
    }

    /// Log queries the feed has made for subscribers (the shared reader's and their own
    /// catch-ups). For tests.
    #[doc(hidden)]
    pub fn feed_reads(&self) -> u64 {
        self.inner.feed.reads()
    }

    /// Commands waiting in the group-commit queue, not yet taken into a batch. For tests.
    #[doc(hidden)]
    pub fn queued_commands(&self) -> usize {
        self.inner.writer.queued()
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

    /// Runs `statements` one after another inside an append batch's transaction, as the
    /// writer begins it, and rolls it back; returns each statement's rows as the text of their
    /// first column. For tests of the batch's plans (`EXPLAIN`).
    #[doc(hidden)]
    pub async fn in_append_transaction_for_tests(
        &self,
        statements: &[&str],
    ) -> Result<Vec<Vec<String>>, StoreError> {
        let (mut tx, _) = self.inner.db.begin_append().await?;
        let mut out = Vec::new();
        for sql in statements {
            let rows = tx.exec().fetch_all(sql, &[]).await?;
            out.push(
                rows.iter()
                    .map(|r| r.get::<String>(0))
                    .collect::<Result<_, _>>()?,
            );
        }
        tx.rollback().await?;
        Ok(out)
    }

    /// Opens the pool the URL names, applies the session settings of DESIGN.md §5 and, when
    /// asked, runs migrations.
    pub async fn connect(options: &StoreOptions) -> Result<Store, StoreError> {
        let db = Db::connect(&Connect {
            url: &options.url,
            max_connections: options.max_connections,
            statement_timeout: options.statement_timeout,
            acquire_timeout: options.acquire_timeout,
            sqlite_cache_kib: options.sqlite_cache_kib,
            sqlite_mmap_mib: options.sqlite_mmap_mib,
        })
        .await?;
        if options.migrate {
            db.migrate().await?;
        }
        let feed = Arc::new(Feed::new(db.clone(), options.feed_tail));
        let inner = Arc::new(Inner {
            writer: Writer::new(db.clone(), feed.clone(), options.max_batch),
            db,
            feed,
            tasks: Mutex::new(Vec::new()),
            tokens: TokenCache::new(options.token_cache_ttl),
            lists: ListCache::new(options.list_cache_pages),
        });
        inner.writer.start();
        if let Some(pool) = inner.db.pg_pool() {
            let target: std::sync::Weak<dyn Listener> = Arc::downgrade(&inner) as _;
            let task = tokio::spawn(feed::listen_postgres(
                pool.clone(),
                vec![NOTIFY_CHANNEL, TOKENS_CHANNEL],
                target,
                inner.db.deadline(),
            ));
            inner
                .tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(task);
        }
        if options.search_indexer.enabled {
            let task = tokio::spawn(search_index::run(
                inner.db.clone(),
                inner.feed.listen(),
                options.search_indexer,
            ));
            inner
                .tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(task);
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
        let tasks: Vec<_> = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for task in tasks {
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
            idempotency_key.map(|key| log::keys::scoped(command.actor.user, &key));
        self.inner
            .writer
            .execute(PendingCommand {
                command,
                metadata,
                idempotency_key,
            })
            .await
    }

    /// Runs a batch of commands in one transaction: each is checked against its own expected
    /// version and either appends all its events or none, without affecting the others; the
    /// transaction commits once and every result is answered after the commit. If the commit
    /// itself fails, every command of the batch fails and nothing of it is visible.
    ///
    /// The group-commit writer runs concurrent [`Store::execute`] calls through it; with
    /// grouping off, `execute` runs it with a batch of one.
    ///
    /// Runs in an `append_batch` span (info), a child of the caller's span.
    pub async fn execute_batch(
        &self,
        batch: Vec<PendingCommand>,
    ) -> Vec<Result<CommandOutcome, StoreError>> {
        self.inner.writer.execute_batch(batch).await
    }

    /// Forgets the idempotency keys recorded before `before`, in batches, and says how many it
    /// removed. The log is not touched: a key only remembers which positions a command
    /// appended. A key used again after it is pruned names a new command.
    pub async fn prune_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        log::keys::prune(&self.inner.db, before).await
    }

    /// One article's projection.
    pub async fn article(&self, id: ArticleId) -> Result<Option<ArticleRecord>, StoreError> {
        read::articles::article(self.inner.db.reader(), id).await
    }

    /// Several articles at once (for DataLoader); missing ids are absent from the result.
    pub async fn articles_by_ids(
        &self,
        ids: &[ArticleId],
    ) -> Result<Vec<ArticleRecord>, StoreError> {
        read::articles::articles_by_ids(self.inner.db.reader(), ids).await
    }

    /// The article whose current revision has this slug.
    pub async fn article_by_slug(&self, slug: &str) -> Result<Option<ArticleRecord>, StoreError> {
        read::articles::article_by_slug(self.inner.db.reader(), slug).await
    }

    /// A keyset-paginated, filtered list. `after` is an opaque cursor from an earlier page
    /// (a malformed one is `StoreError::Invalid`); `first` is already capped by the caller.
    /// The columns [`ArticleColumns`] leaves out are empty in the items. A page without
    /// bodies is served from the pages kept for the log head and the search index's checkpoint
    /// when neither has moved since it was read ([`StoreOptions::list_cache_pages`]).
    pub async fn list_articles(
        &self,
        filter: &ArticleFilter,
        order: ArticleOrder,
        first: u32,
        after: Option<&str>,
        columns: ArticleColumns,
    ) -> Result<Page<ArticleRecord>, StoreError> {
        let read = || {
            read::articles::list_articles(
                self.inner.db.reader(),
                filter,
                order,
                first,
                after,
                columns,
            )
        };
        let lists = &self.inner.lists;
        if !lists.keeps(columns) {
            return read().await;
        }
        // The head and the search index's checkpoint first, then the page: see
        // read/list_cache.rs for why this order is safe.
        let generation = read::list_cache::generation(self.search_index().await?);
        let key = ListKey::new(filter, order, first, after, columns);
        if let Some(page) = lists.get(&key, generation) {
            return Ok(Page::clone(&page));
        }
        let page = read().await?;
        lists.put(key, generation, Arc::new(page.clone()));
        Ok(page)
    }

    /// Every revision of an article, oldest first.
    pub async fn revisions(&self, id: ArticleId) -> Result<Vec<RevisionRecord>, StoreError> {
        read::articles::revisions(self.inner.db.reader(), id, None).await
    }

    /// One revision.
    pub async fn revision(
        &self,
        id: ArticleId,
        n: RevisionNumber,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        Ok(
            read::articles::revisions(self.inner.db.reader(), id, Some(n))
                .await?
                .pop(),
        )
    }

    /// Review comments on an article, oldest first, optionally of one revision.
    pub async fn comments(
        &self,
        id: ArticleId,
        revision: Option<RevisionNumber>,
    ) -> Result<Vec<CommentRecord>, StoreError> {
        read::articles::comments(self.inner.db.reader(), id, revision).await
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
        let reader = self.inner.db.reader();
        log::read::read_stream(reader, id, direction, cursor, limit, types, Payloads::With).await
    }

    /// [`Store::read_stream`] without the payloads: every event's `payload` is `Null`, for a
    /// history page that does not show them (the rows' payloads are neither read nor parsed).
    /// [`Store::read_event_at`] gives one event whole.
    pub async fn read_stream_envelopes(
        &self,
        id: ArticleId,
        direction: Direction,
        cursor: Option<Version>,
        limit: u32,
        types: &[String],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let reader = self.inner.db.reader();
        log::read::read_stream(
            reader,
            id,
            direction,
            cursor,
            limit,
            types,
            Payloads::Without,
        )
        .await
    }

    /// The event at `position`, whole; `None` past the head.
    pub async fn read_event_at(
        &self,
        position: Position,
    ) -> Result<Option<StoredEvent>, StoreError> {
        Ok(
            log::read::read_positions(self.inner.db.reader(), position, position)
                .await?
                .pop(),
        )
    }

    /// Events of the global log with positions greater than `after`, in position order, at
    /// most `limit`, matching the filter.
    pub async fn read_all(
        &self,
        after: Position,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        log::read::read_all(self.inner.db.reader(), after, limit, filter).await
    }

    /// The highest committed position (0 for an empty log).
    pub async fn head(&self) -> Result<Position, StoreError> {
        log::read::head(self.inner.db.reader()).await
    }

    /// How far the search index has got, with the head in the same snapshot. The index
    /// follows the log on its own ([`StoreOptions::search_indexer`], any process's indexer):
    /// a text search finds an event's content once `checkpoint` has reached its position.
    /// Everything else (the article, its revisions and history, the other list filters) is
    /// current as soon as the append is acknowledged.
    pub async fn search_index(&self) -> Result<SearchIndexState, StoreError> {
        search_index::state(self.inner.db.reader()).await
    }

    /// Indexes, now, everything committed before the call (waiting for another process's
    /// pass in flight), and says how far the index has got: at least the head read at the
    /// start. Used after an import, by tests, and by anything that must search its own
    /// writes.
    pub async fn index_search(&self) -> Result<SearchIndexState, StoreError> {
        let target = self.head().await?;
        loop {
            match search_index::pass(&self.inner.db).await? {
                search_index::Pass::Done(s) if s.checkpoint >= target => return Ok(s),
                search_index::Pass::Done(_) => {}
                search_index::Pass::Busy => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await
                }
            }
        }
    }

    /// Every event after `after` that matches the filter, exactly once and in position order:
    /// first the catch-up from the log, then live as appends commit (on this process or, on
    /// PostgreSQL, any other). The stream ends only when the store is closed or on error.
    pub fn subscribe(
        &self,
        after: Position,
        filter: EventFilter,
    ) -> BoxStream<'static, Result<StoredEvent, StoreError>> {
        self.inner.feed.subscribe(after, filter)
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
        auth::users::create_user(
            &self.inner.db,
            &self.inner.tokens,
            id,
            name,
            roles,
            token_hash,
            now,
        )
        .await
    }

    /// Adds another token for an existing user (by name).
    pub async fn add_token(
        &self,
        user_name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, StoreError> {
        auth::users::add_token(&self.inner.db, user_name, token_hash, now).await
    }

    /// The user holding a live (not revoked) token with this hash.
    pub async fn user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        auth::users::user_by_token_hash(&self.inner.db, &self.inner.tokens, token_hash).await
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
        auth::users::users_by_ids(&self.inner.db, ids).await
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        auth::users::users(&self.inner.db).await
    }

    /// Revokes every token of a user (by name); returns how many were revoked.
    pub async fn revoke_tokens(
        &self,
        user_name: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        auth::users::revoke_tokens(&self.inner.db, &self.inner.tokens, user_name, now).await
    }

    /// Scheduled articles due at `now`, oldest due first.
    pub async fn due_articles(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueArticle>, StoreError> {
        read::articles::due_articles(self.inner.db.reader(), now, limit).await
    }

    /// Drops every projection and replays the whole log into it. Returns events replayed.
    pub async fn rebuild_projections(&self) -> Result<u64, StoreError> {
        let replayed = projections::rebuild_in_place(&self.inner.db).await?;
        // The users rows were rewritten from the user log; cached lookups may hold old ones.
        self.inner.tokens.clear();
        self.inner.lists.clear();
        Ok(replayed)
    }

    /// Rebuilds into a scratch copy and reports every difference from the live tables.
    pub async fn verify_projections(&self) -> Result<Vec<ProjectionDiff>, StoreError> {
        projections::verify(&self.inner.db).await
    }

    /// Appends events exactly as exported (ids, versions, positions, envelopes kept) and
    /// projects them; used by `galley events import` into an empty database.
    pub async fn import_events(&self, events: &[StoredEvent]) -> Result<u64, StoreError> {
        let head = write::import_events(&self.inner.db, events).await?;
        self.inner.feed.bump(head);
        Ok(events.len() as u64)
    }

    /// Brings PostgreSQL's planner statistics up to date (`ANALYZE`, which samples each
    /// table: seconds, not a scan), for after a bulk import or a rebuild, so that the first
    /// queries are planned on the tables as they are rather than as autovacuum last saw
    /// them. Returns whether anything was done: SQLite keeps no statistics unless asked to,
    /// and Galley's queries are planned without them there, so it is left alone.
    pub async fn analyze(&self) -> Result<bool, StoreError> {
        if self.backend() != BackendKind::Postgres {
            return Ok(false);
        }
        self.inner.db.reader().execute("ANALYZE", &[]).await?;
        Ok(true)
    }

    /// The user with this name (surrounding spaces ignored).
    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        auth::rows::user_by_name(self.inner.db.reader(), name.trim()).await
    }

    /// The article exactly as it was right after a version, or right after the last event
    /// recorded at or before a time; `None` when the article did not exist then (or has no
    /// such version). Replays only this article's stream, up to that point.
    pub async fn article_as_of(
        &self,
        id: ArticleId,
        at: AsOf,
    ) -> Result<Option<ArticleRecord>, StoreError> {
        read::history::article_as_of(&self.inner.db, id, at).await
    }

    /// Articles in review for `reviewer`: those assigned to them first, then those assigned to
    /// no one, each oldest submission first, a page at a time (`after` is the cursor of the
    /// last item seen). Articles assigned only to other reviewers are left out. With
    /// [`ArticleColumns::WithoutBody`] the items' bodies are empty.
    pub async fn review_queue(
        &self,
        reviewer: UserId,
        first: u32,
        after: Option<&str>,
        columns: ArticleColumns,
    ) -> Result<Page<ArticleRecord>, StoreError> {
        read::dashboard::review_queue(&self.inner.db, reviewer, first, after, columns).await
    }

    /// The dashboard figures for a window (at most [`MAX_DASHBOARD_DAYS`] days) and,
    /// optionally, one category.
    pub async fn dashboard(&self, q: &DashboardQuery) -> Result<Dashboard, StoreError> {
        read::dashboard::dashboard(&self.inner.db, q).await
    }

    /// Time in stage for a dashboard query (the same window checks as
    /// [`Store::dashboard`]).
    pub async fn time_in_stage(&self, q: &DashboardQuery) -> Result<StageFigures, StoreError> {
        read::stages::time_in_stage(&self.inner.db, q).await
    }

    /// Sets (or replaces) the password hash of a user, by name; `NotFound` when there is no
    /// such user. Every session of the user is revoked, so a changed password signs out
    /// whoever held the old one.
    pub async fn set_password_hash(
        &self,
        user_name: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, StoreError> {
        auth::sessions::set_password_hash(&self.inner.db, user_name, password_hash, now).await
    }

    /// The user named `name` with their password hash, for signing in.
    pub async fn credentials(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        auth::sessions::credentials(&self.inner.db, name).await
    }

    /// Whether any user exists (the console's sign-in page says how to create the first).
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        auth::sessions::has_users(&self.inner.db).await
    }

    /// Records a new session for a user, valid until `expires_at`.
    pub async fn create_session(
        &self,
        session_hash: &str,
        user: UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        auth::sessions::create_session(&self.inner.db, session_hash, user, now, expires_at).await
    }

    /// The user of a session that is neither revoked nor expired at `now`.
    pub async fn user_by_session_hash(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRecord>, StoreError> {
        auth::sessions::user_by_session_hash(&self.inner.db, session_hash, now).await
    }

    /// Ends one session (sign-out); returns whether it was live.
    pub async fn revoke_session(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        auth::sessions::revoke_session(&self.inner.db, session_hash, now).await
    }

    /// Ends every session of a user (by name); returns how many live sessions were revoked.
    pub async fn revoke_sessions(
        &self,
        user_name: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        auth::sessions::revoke_sessions(&self.inner.db, user_name, now).await
    }

    /// Records a change to a user (not `UserAdded`: see [`Store::create_user`]) by `actor`
    /// and returns the user as it leaves them.
    pub async fn change_user(
        &self,
        user_id: UserId,
        change: UserChange,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, StoreError> {
        auth::changes::change_user(
            &self.inner.db,
            &self.inner.tokens,
            user_id,
            change,
            actor,
            now,
        )
        .await
    }

    /// The user log after `after`, oldest first, at most `limit` changes; only one user's
    /// when `user` is given.
    pub async fn user_changes(
        &self,
        after: u64,
        limit: u32,
        user: Option<UserId>,
    ) -> Result<Vec<UserChangeRecord>, StoreError> {
        auth::changes::user_changes(&self.inner.db, after, limit, user).await
    }

    /// Appends exported user changes as they were (numbers, ids, times), after checking that
    /// they continue the user log without a gap, and writes the users they leave. Users come
    /// without tokens: `galley tokens add NAME` gives them one.
    pub async fn import_user_changes(
        &self,
        changes: &[UserChangeRecord],
    ) -> Result<u64, StoreError> {
        auth::changes::import_user_changes(&self.inner.db, &self.inner.tokens, changes).await
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

    /// An endpoint's signing secrets (for an admin's redelivery); nothing but the webhooks
    /// crate reads them.
    pub async fn webhook_secrets(
        &self,
        id: crate::WebhookEndpointId,
    ) -> Result<Option<crate::WebhookSecrets>, StoreError> {
        crate::webhooks::secrets(self.inner.db.reader(), id, None).await
    }

    /// An endpoint's signing secrets for a dispatch attempt: `None` unless the endpoint is
    /// still active at `version`, the one the dispatching task read, so that nothing committed
    /// after a pause (or a change of URL or filter) is sent under the old settings.
    pub async fn webhook_dispatch_secrets(
        &self,
        id: crate::WebhookEndpointId,
        version: u64,
    ) -> Result<Option<crate::WebhookSecrets>, StoreError> {
        crate::webhooks::secrets(self.inner.db.reader(), id, Some(version)).await
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
        crate::webhooks::WebhookLeases::new(self.inner.db.clone())
    }
}
