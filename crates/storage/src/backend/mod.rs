//! The dialect layer: pools, transactions, arguments, rows, set-based statements, and every
//! place where PostgreSQL and SQLite differ.
//!
//! Every statement the store runs is written once, with `$1`-style placeholders (which SQLite
//! accepts too), and its arguments are collected as [`Arg`] values that both drivers can bind.
//! Rows come back as [`Row`], whose [`Row::get`] decodes any type that both drivers decode.
//! Where the dialects differ (locking the log head, notifications, full-text search, how a
//! time is kept, per-row lateral joins), the difference is spelled here, in [`dialect`] and
//! [`fulltext`], so that nothing above this module asks which database it runs on.

mod args;
pub(crate) mod dialect;
pub(crate) mod fulltext;
mod sets;
mod tx;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::PgPool;

pub(crate) use args::{args, is_unique_violation, placeholders, push_arg, to_u64, Arg, Row};
pub(crate) use sets::{Col, Part};
pub(crate) use tx::{Exec, Tx};

use crate::error::StoreError;
use tx::{within, On, PgTx, TxKind};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The embedded default.
    Sqlite,
    /// The production store.
    Postgres,
}

/// What opening the pools needs.
#[derive(Debug, Clone)]
pub(crate) struct Connect<'a> {
    /// `sqlite:…` or `postgres://…`.
    pub(crate) url: &'a str,
    /// Most connections in the pool.
    pub(crate) max_connections: u32,
    /// The deadline of every database call, on PostgreSQL also its `statement_timeout`.
    pub(crate) statement_timeout: Duration,
    /// How long to wait for a pool connection, opening a new one included.
    pub(crate) acquire_timeout: Duration,
    /// SQLite's page cache per connection, in KiB; 0 leaves SQLite's default (2 MiB).
    pub(crate) sqlite_cache_kib: u32,
    /// How much of the SQLite file is read through a memory map, in MiB; 0 reads it all
    /// through SQLite's page cache.
    pub(crate) sqlite_mmap_mib: u32,
}

/// Migrations embedded at compile time, one set per backend.
pub(crate) static PG_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/postgres");
/// See [`PG_MIGRATOR`].
pub(crate) static SQLITE_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/sqlite");

/// Server-side TCP keepalive on PostgreSQL sessions (seconds idle, seconds between probes,
/// probes) and `tcp_user_timeout` (milliseconds unacknowledged data may wait): a replica cut
/// off mid-transaction loses its session, and with it the log head's row lock, within about
/// 25 seconds instead of the kernel's two hours. sqlx 0.8 does not expose the client's socket,
/// so the client side is covered by the deadline on every call (see [`Db::connect`]) and the
/// listener's heartbeat (crate::feed).
const PG_TCP_KEEPALIVES: [(&str, &str); 4] = [
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "25000"),
];
/// How long a PostgreSQL session may sit idle inside a transaction; a crashed or stuck writer
/// must not hold the log head's row lock for longer.
const PG_IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";
/// How long an SQLite connection waits for a lock held by another process.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL connection idle at least this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

/// The connection pools of one store, and the deadline every call on them runs under.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pools: Pools,
    /// How long one database call (a statement, a begin, a commit) may take before it fails
    /// with a timed-out I/O error, which the API answers as SERVICE_UNAVAILABLE. A partition
    /// that holds packets and closes nothing would otherwise stall a call for minutes.
    deadline: Duration,
}

/// The pools themselves.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    /// SQLite has one writer: `write` is a single-connection pool whose transactions start
    /// with `BEGIN IMMEDIATE`, so in-process writers queue on the pool and other processes on
    /// the database lock (with the busy timeout). Reads use `read`, which WAL lets run beside
    /// the writer.
    Sqlite {
        /// Readers.
        read: sqlx::SqlitePool,
        /// The single writer.
        write: sqlx::SqlitePool,
    },
    /// PostgreSQL: one pool; appends serialise on the `log_head` row lock.
    Postgres(PgPool),
}

impl Db {
    /// Opens the pools. Every call runs under `options.statement_timeout`, on PostgreSQL
    /// enforced by the server too (`statement_timeout`); a pool connection, connecting a new
    /// one included, is waited for at most `options.acquire_timeout`.
    pub(crate) async fn connect(options: &Connect<'_>) -> Result<Db, StoreError> {
        let deadline = options.statement_timeout.max(Duration::from_millis(1));
        let pools = Self::open(options).await?;
        Ok(Db { pools, deadline })
    }

    async fn open(options: &Connect<'_>) -> Result<Pools, StoreError> {
        let url = options.url.trim();
        let max = options.max_connections.max(1);
        let acquire = options.acquire_timeout.max(Duration::from_millis(1));
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let statement_timeout = format!("{}ms", options.statement_timeout.as_millis().max(1));
            let connect = PgConnectOptions::from_str(url)?
                .options([
                    ("statement_timeout", statement_timeout.as_str()),
                    (
                        "idle_in_transaction_session_timeout",
                        PG_IDLE_IN_TRANSACTION_TIMEOUT,
                    ),
                ])
                .options(PG_TCP_KEEPALIVES);
            let pool = PgPoolOptions::new()
                // One connection is held by the LISTEN task; keep at least two for work.
                .max_connections(max.max(3))
                // sqlx pings every connection it hands out by default: one more round trip
                // for every token lookup and every batch. Ping only a connection that sat
                // idle long enough to have been dropped by a proxy or a restart; a broken
                // one that slips through fails its statement like any other network error.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_AFTER_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .min_connections(0)
                .acquire_timeout(acquire)
                .idle_timeout(Duration::from_secs(600))
                .connect_with(connect)
                .await?;
            Ok(Pools::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let connect = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(if memory {
                    SqliteJournalMode::Memory
                } else {
                    SqliteJournalMode::Wal
                })
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            // A negative cache_size is a size in KiB (a positive one would count pages).
            let connect = match options.sqlite_cache_kib {
                0 => connect,
                kib => connect.pragma("cache_size", format!("-{kib}")),
            };
            let connect = match options.sqlite_mmap_mib {
                0 => connect,
                mib => connect.pragma("mmap_size", (u64::from(mib) << 20).to_string()),
            };
            // Opening a fresh file switches it to WAL, which SQLite refuses with "database
            // is locked" (no busy wait) while another process does the same: opening, like
            // migrating, holds the lock beside the database.
            let _lock = lock_beside(connect.get_filename()).await?;
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(60))
                // An in-memory database lives as long as its one connection.
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(connect.clone())
                .await?;
            // An in-memory database is private to its connection, so readers share the
            // writer's connection.
            let read = if memory {
                write.clone()
            } else {
                SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(acquire)
                    .connect_with(connect)
                    .await?
            };
            Ok(Pools::Sqlite { read, write })
        } else {
            Err(StoreError::Invalid {
                field: "url".to_owned(),
                message: "must start with sqlite: or postgres://".to_owned(),
            })
        }
    }

    pub(crate) fn kind(&self) -> BackendKind {
        match &self.pools {
            Pools::Sqlite { .. } => BackendKind::Sqlite,
            Pools::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The PostgreSQL pool, on PostgreSQL.
    pub(crate) fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pools {
            Pools::Postgres(pool) => Some(pool),
            Pools::Sqlite { .. } => None,
        }
    }

    /// The deadline of one call.
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    pub(crate) fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match &self.pools {
            Pools::Sqlite { .. } => &SQLITE_MIGRATOR,
            Pools::Postgres(_) => &PG_MIGRATOR,
        }
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pools {
            Pools::Sqlite { write, .. } => {
                // SQLite has no advisory lock, and sqlx's migrator takes none there: two
                // processes migrating one fresh file at once (`galley serve &` and then
                // `galley users add`) both try to create the tables. An exclusive lock on a
                // file beside the database serialises them; the second then finds every
                // migration applied. The lock is released when the file is dropped.
                let _lock = lock_beside(write.connect_options().get_filename()).await?;
                SQLITE_MIGRATOR.run(write).await?
            }
            Pools::Postgres(pool) => PG_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    pub(crate) async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }

    /// A connection for reads outside a transaction.
    pub(crate) fn reader(&self) -> Exec<'_> {
        let on = match &self.pools {
            Pools::Sqlite { read, .. } => On::SqlitePool(read),
            Pools::Postgres(pool) => On::PgPool(pool),
        };
        Exec {
            on,
            deadline: self.deadline,
        }
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE` on the single writer; on
    /// PostgreSQL, `lock_log` also takes the `log_head` row lock, which serialises appends so
    /// that they commit in position order (see migrations/postgres/0001_event_log.sql).
    /// Returns the transaction and the committed head position.
    pub(crate) async fn begin_write(&self, lock_log: bool) -> Result<(Tx, u64), StoreError> {
        self.begin(lock_log, LOCKED).await
    }

    /// [`Db::begin_write`] with the log locked, for an append batch: on PostgreSQL its
    /// statements are planned once per connection (see [`APPEND`]).
    pub(crate) async fn begin_append(&self) -> Result<(Tx, u64), StoreError> {
        self.begin(true, APPEND).await
    }

    async fn begin(&self, lock_log: bool, locked: &'static str) -> Result<(Tx, u64), StoreError> {
        let deadline = self.deadline;
        let kind = match &self.pools {
            Pools::Sqlite { write, .. } => {
                TxKind::Sqlite(within(deadline, write.begin_with("BEGIN IMMEDIATE")).await?)
            }
            Pools::Postgres(pool) if lock_log => {
                let (tx, head) = PgTx::begin_locked(pool, deadline, locked).await?;
                let tx = Tx {
                    kind: TxKind::PgLocked(tx),
                    deadline,
                };
                return Ok((tx, head));
            }
            Pools::Postgres(pool) => TxKind::Pg(within(deadline, pool.begin()).await?),
        };
        let mut tx = Tx { kind, deadline };
        let sql = match (&tx.kind, lock_log) {
            (TxKind::Pg(_), true) => "SELECT position FROM log_head FOR UPDATE",
            _ => "SELECT position FROM log_head",
        };
        let row = tx.exec().fetch_one(sql, &[]).await?;
        let head = row.get::<i64>("position")?;
        Ok((tx, to_u64(head)))
    }
}

/// `BEGIN` and the log lock, in one simple-protocol message (see `PgTx`).
const LOCKED: &str = "BEGIN; SELECT position FROM log_head FOR UPDATE";

/// [`LOCKED`] for an append batch, whose statements are planned once per connection.
///
/// A batch's write is one statement over arrays of the batch's rows (`crate::backend::sets`).
/// PostgreSQL's default plan cache plans it again at every execution: a custom plan sees the
/// arrays' lengths, so it always looks cheaper than the generic one, and planning a statement
/// whose parameters carry every row's content (copied into the plan as constants) cost about
/// a third of the statement at 16 rows. A generic plan is made once per connection and kept
/// until the tables' statistics change. Without row counts it could pick a hash join and a
/// scan of a whole table that is small when the plan is made and large later; with hash and
/// merge joins and materialising off, each batch row is looked up by index instead, as a
/// batch of a few rows should be. Only the batch's own statements run under these settings
/// (`SET LOCAL`): its reads are lookups by key of the same kind.
const APPEND: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; \
     SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; \
     SET LOCAL enable_material = off; SELECT position FROM log_head FOR UPDATE";

/// Takes an exclusive lock on `<database>-migrate.lock`, waiting for another process that
/// holds it; `None` for an in-memory database, which no other process can open.
async fn lock_beside(database: &std::path::Path) -> Result<Option<std::fs::File>, StoreError> {
    let name = database.as_os_str();
    let in_memory = name
        .to_str()
        .is_some_and(|n| n.is_empty() || n == ":memory:" || n.starts_with("file:sqlx-in-memory"));
    if in_memory {
        return Ok(None);
    }
    let mut path = name.to_owned();
    path.push("-migrate.lock");
    let file = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| StoreError::Backend(sqlx::Error::Io(std::io::Error::other(e))))?
    .map_err(|e| StoreError::Backend(sqlx::Error::Io(e)))?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pragma's value on a reader and on the writer of an SQLite file opened with these
    /// settings.
    async fn pragma(name: &str, cache_kib: u32, mmap_mib: u32) -> (i64, i64) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        let db = Db::connect(&Connect {
            url: &url,
            max_connections: 2,
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            sqlite_cache_kib: cache_kib,
            sqlite_mmap_mib: mmap_mib,
        })
        .await
        .unwrap();
        let sql = format!("PRAGMA {name}");
        let read: i64 = db
            .reader()
            .fetch_one(&sql, &[])
            .await
            .unwrap()
            .get(name)
            .unwrap();
        let Pools::Sqlite { write, .. } = &db.pools else {
            unreachable!("an SQLite URL")
        };
        let written: i64 = sqlx::query_scalar(&sql).fetch_one(write).await.unwrap();
        db.close().await;
        (read, written)
    }

    async fn cache_size(kib: u32) -> i64 {
        pragma("cache_size", kib, 0).await.0
    }

    #[tokio::test]
    async fn the_sqlite_page_cache_is_the_size_asked_for_or_sqlites_own() {
        assert_eq!(cache_size(65_536).await, -65_536, "64 MiB, in KiB");
        assert_eq!(cache_size(0).await, -2_000, "SQLite's default");
    }

    #[tokio::test]
    async fn every_sqlite_connection_maps_as_much_of_the_file_as_asked() {
        assert_eq!(pragma("mmap_size", 0, 256).await, (256 << 20, 256 << 20));
        assert_eq!(pragma("mmap_size", 0, 0).await, (0, 0));
        // SQLite caps the map (at just under 2 GiB as built here); the default asks for
        // all of that.
        let (capped, _) = pragma("mmap_size", 0, crate::SQLITE_MMAP_MIB).await;
        assert!(capped > 2000 << 20 && capped <= 2048 << 20, "{capped}");
    }
}
