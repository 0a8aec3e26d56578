//! The thin layer that lets one body of SQL run on both backends.
//!
//! Every statement the store runs is written once, with `$1`-style placeholders (which SQLite
//! accepts too), and its arguments are collected as [`Arg`] values that both drivers can bind.
//! Rows come back as [`Row`], whose [`Row::get`] decodes any type that both drivers decode.
//! The few places where the dialects differ (locking the log head, `TRUNCATE`, `pg_notify`)
//! branch on [`Db`] explicitly.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Decode, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Type};
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::{BackendKind, StoreOptions};

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
        read: SqlitePool,
        /// The single writer.
        write: SqlitePool,
    },
    /// PostgreSQL: one pool; appends serialise on the `log_head` row lock.
    Postgres(PgPool),
}

/// The error a call that overran its deadline fails with.
fn overran(deadline: Duration) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the database did not answer within the {} ms deadline",
            deadline.as_millis()
        ),
    ))
}

/// Runs one database call under `deadline`.
async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(deadline, call)
        .await
        .unwrap_or_else(|_| Err(overran(deadline)))
}

impl Db {
    /// Opens the pools. Every call runs under `options.statement_timeout`, on PostgreSQL
    /// enforced by the server too (`statement_timeout`); a pool connection, connecting a new
    /// one included, is waited for at most `options.acquire_timeout`.
    pub(crate) async fn connect(options: &StoreOptions) -> Result<Db, StoreError> {
        let deadline = options.statement_timeout.max(Duration::from_millis(1));
        let pools = Self::open(options).await?;
        Ok(Db { pools, deadline })
    }

    async fn open(options: &StoreOptions) -> Result<Pools, StoreError> {
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
        let deadline = self.deadline;
        let kind = match &self.pools {
            Pools::Sqlite { write, .. } => {
                TxKind::Sqlite(within(deadline, write.begin_with("BEGIN IMMEDIATE")).await?)
            }
            Pools::Postgres(pool) if lock_log => {
                let (tx, head) = PgTx::begin_locked(pool, deadline).await?;
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

/// An open write transaction, whose every call runs under the store's deadline. A commit
/// that overruns it is reported as failed although it may have committed: the caller was not
/// told it succeeded, so nothing acknowledged is lost, and a retry with the same idempotency
/// key finds the outcome.
#[derive(Debug)]
pub(crate) struct Tx {
    kind: TxKind,
    deadline: Duration,
}

#[derive(Debug)]
enum TxKind {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Pg(sqlx::Transaction<'static, Postgres>),
    /// A PostgreSQL transaction holding the log lock (see [`PgTx`]).
    PgLocked(PgTx),
}

impl Tx {
    pub(crate) fn exec(&mut self) -> Exec<'_> {
        let on = match &mut self.kind {
            TxKind::Sqlite(tx) => On::SqliteConn(tx),
            TxKind::Pg(tx) => On::PgConn(tx),
            TxKind::PgLocked(tx) => On::PgConn(&mut tx.conn),
        };
        Exec {
            on,
            deadline: self.deadline,
        }
    }

    pub(crate) fn is_pg(&self) -> bool {
        matches!(self.kind, TxKind::Pg(_) | TxKind::PgLocked(_))
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        let deadline = self.deadline;
        match self.kind {
            TxKind::Sqlite(tx) => within(deadline, tx.commit()).await,
            TxKind::Pg(tx) => within(deadline, tx.commit()).await,
            TxKind::PgLocked(tx) => within(deadline, tx.end("COMMIT")).await,
        }
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        let deadline = self.deadline;
        match self.kind {
            TxKind::Sqlite(tx) => within(deadline, tx.rollback()).await,
            TxKind::Pg(tx) => within(deadline, tx.rollback()).await,
            TxKind::PgLocked(tx) => within(deadline, tx.end("ROLLBACK")).await,
        }
    }
}

/// A PostgreSQL transaction that took the log lock and read the head in the same round trip
/// as its `BEGIN`: one simple-protocol query, `BEGIN; SELECT … FOR UPDATE`. Every append
/// batch waits for the one before it, so a round trip saved here is saved on the log's
/// critical path (sqlx's own transaction sends `BEGIN` on its own).
///
/// sqlx does not know this connection is inside a transaction, so this guard ends it: a
/// transaction that is neither committed nor rolled back (an error, a panic, a cancelled
/// batch) closes its connection instead of returning it to the pool, and PostgreSQL rolls
/// it back when the session ends.
#[derive(Debug)]
pub(crate) struct PgTx {
    conn: sqlx::pool::PoolConnection<Postgres>,
    open: bool,
}

impl PgTx {
    /// Both statements go as plain strings, which sqlx sends by the simple protocol (no
    /// arguments), the one that accepts several statements in one message.
    async fn begin_locked(pool: &PgPool, deadline: Duration) -> Result<(PgTx, u64), StoreError> {
        let mut tx = PgTx {
            conn: pool.acquire().await?,
            open: true,
        };
        let row = within(
            deadline,
            sqlx::Executor::fetch_one(
                &mut *tx.conn,
                "BEGIN; SELECT position FROM log_head FOR UPDATE",
            ),
        )
        .await?;
        let head: i64 = sqlx::Row::try_get(&row, "position")?;
        Ok((tx, to_u64(head)))
    }

    async fn end(mut self, statement: &'static str) -> Result<(), sqlx::Error> {
        sqlx::Executor::execute(&mut *self.conn, statement).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// Something to run a statement on, under the store's deadline.
#[derive(Debug)]
pub(crate) struct Exec<'a> {
    on: On<'a>,
    deadline: Duration,
}

/// A pool or a connection inside a transaction.
#[derive(Debug)]
enum On<'a> {
    SqlitePool(&'a SqlitePool),
    PgPool(&'a PgPool),
    SqliteConn(&'a mut SqliteConnection),
    PgConn(&'a mut PgConnection),
}

/// A statement argument that both drivers can bind.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(Option<i64>),
    F64(Option<f64>),
    Text(Option<String>),
    Uuid(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
    Json(serde_json::Value),
    /// A whole column of values, bound as one PostgreSQL array (see [`relation`]); never
    /// bound on SQLite, whose multi-row statements spell each value out.
    Array(Array),
}

/// One column of a multi-row statement, as a PostgreSQL array.
#[derive(Debug, Clone)]
pub(crate) enum Array {
    I64(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Uuid(Vec<Option<Uuid>>),
    Time(Vec<Option<DateTime<Utc>>>),
    Json(Vec<Json<serde_json::Value>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::I64(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::F64(Some(v))
    }
}
impl From<u64> for Arg {
    fn from(v: u64) -> Self {
        Arg::I64(Some(to_i64(v)))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<Uuid> for Arg {
    fn from(v: Uuid) -> Self {
        Arg::Uuid(Some(v))
    }
}
impl From<Option<Uuid>> for Arg {
    fn from(v: Option<Uuid>) -> Self {
        Arg::Uuid(v)
    }
}
impl From<DateTime<Utc>> for Arg {
    fn from(v: DateTime<Utc>) -> Self {
        Arg::Time(Some(v))
    }
}
impl From<Option<DateTime<Utc>>> for Arg {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Arg::Time(v)
    }
}
impl From<serde_json::Value> for Arg {
    fn from(v: serde_json::Value) -> Self {
        Arg::Json(v)
    }
}

/// Builds an array of [`Arg`] from values of mixed types.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        [$($crate::db::Arg::from($value)),*]
    };
}
pub(crate) use args;

macro_rules! bind_all {
    ($backend:ident, $query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::I64(v) => q.bind(*v),
                Arg::F64(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_deref()),
                Arg::Uuid(v) => q.bind(*v),
                Arg::Time(v) => q.bind(*v),
                Arg::Json(v) => q.bind(Json(v)),
                Arg::Array(a) => bind_array!($backend, q, a),
            };
        }
        q
    }};
}

macro_rules! bind_array {
    (pg, $q:expr, $a:expr) => {
        match $a {
            Array::I64(v) => $q.bind(v.as_slice()),
            Array::F64(v) => $q.bind(v.as_slice()),
            Array::Text(v) => $q.bind(v.as_slice()),
            Array::Uuid(v) => $q.bind(v.as_slice()),
            Array::Time(v) => $q.bind(v.as_slice()),
            Array::Json(v) => $q.bind(v.as_slice()),
        }
    };
    // `relation` never builds arrays for SQLite; a NULL makes a mistake fail loudly in SQL.
    (sqlite, $q:expr, $a:expr) => {{
        let _ = $a;
        $q.bind(Option::<i64>::None)
    }};
}

macro_rules! on_exec {
    ($exec:expr, $sql:expr, $args:expr, $method:ident, $wrap:expr) => {
        match &mut $exec.on {
            On::SqlitePool(p) => bind_all!(sqlite, sqlx::query::<Sqlite>($sql), $args)
                .$method(*p)
                .await
                .map($wrap(Row::Sqlite)),
            On::SqliteConn(c) => bind_all!(sqlite, sqlx::query::<Sqlite>($sql), $args)
                .$method(&mut **c)
                .await
                .map($wrap(Row::Sqlite)),
            On::PgPool(p) => bind_all!(pg, sqlx::query::<Postgres>($sql), $args)
                .$method(*p)
                .await
                .map($wrap(Row::Pg)),
            On::PgConn(c) => bind_all!(pg, sqlx::query::<Postgres>($sql), $args)
                .$method(&mut **c)
                .await
                .map($wrap(Row::Pg)),
        }
    };
}

fn each<R>(f: fn(R) -> Row) -> impl FnOnce(Vec<R>) -> Vec<Row> {
    move |rows| rows.into_iter().map(f).collect()
}

fn one<R>(f: fn(R) -> Row) -> impl FnOnce(R) -> Row {
    f
}

fn maybe<R>(f: fn(R) -> Row) -> impl FnOnce(Option<R>) -> Option<Row> {
    move |row| row.map(f)
}

impl Exec<'_> {
    /// Whether this runs on PostgreSQL.
    pub(crate) fn is_pg(&self) -> bool {
        matches!(self.on, On::PgPool(_) | On::PgConn(_))
    }

    /// Runs a statement and returns the number of rows it affected.
    pub(crate) async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
        let deadline = self.deadline;
        within(deadline, async {
            match &mut self.on {
                On::SqlitePool(p) => bind_all!(sqlite, sqlx::query::<Sqlite>(sql), args)
                    .execute(*p)
                    .await
                    .map(|r| r.rows_affected()),
                On::SqliteConn(c) => bind_all!(sqlite, sqlx::query::<Sqlite>(sql), args)
                    .execute(&mut **c)
                    .await
                    .map(|r| r.rows_affected()),
                On::PgPool(p) => bind_all!(pg, sqlx::query::<Postgres>(sql), args)
                    .execute(*p)
                    .await
                    .map(|r| r.rows_affected()),
                On::PgConn(c) => bind_all!(pg, sqlx::query::<Postgres>(sql), args)
                    .execute(&mut **c)
                    .await
                    .map(|r| r.rows_affected()),
            }
        })
        .await
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<Row>, sqlx::Error> {
        let deadline = self.deadline;
        within(deadline, async {
            on_exec!(self, sql, args, fetch_all, each)
        })
        .await
    }

    pub(crate) async fn fetch_one(&mut self, sql: &str, args: &[Arg]) -> Result<Row, sqlx::Error> {
        let deadline = self.deadline;
        within(deadline, async {
            on_exec!(self, sql, args, fetch_one, one)
        })
        .await
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<Row>, sqlx::Error> {
        let deadline = self.deadline;
        within(deadline, async {
            on_exec!(self, sql, args, fetch_optional, maybe)
        })
        .await
    }
}

/// A row from either backend.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Pg(PgRow),
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Row::Sqlite(_) => "Row::Sqlite",
            Row::Pg(_) => "Row::Pg",
        })
    }
}

impl Row {
    /// Decodes a column into any type both drivers understand.
    pub(crate) fn get<T>(&self, column: &str) -> Result<T, sqlx::Error>
    where
        T: for<'r> Decode<'r, Sqlite>
            + Type<Sqlite>
            + for<'r> Decode<'r, Postgres>
            + Type<Postgres>,
    {
        use sqlx::Row as _;
        match self {
            Row::Sqlite(r) => r.try_get(column),
            Row::Pg(r) => r.try_get(column),
        }
    }

    /// Decodes a JSON column.
    pub(crate) fn json<T>(&self, column: &str) -> Result<T, StoreError>
    where
        T: serde::de::DeserializeOwned,
    {
        let Json(value) = self.get::<Json<serde_json::Value>>(column)?;
        serde_json::from_value(value)
            .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
    }
}

/// Positions and versions are `u64` in Rust and `BIGINT` in SQL.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// See [`to_i64`]; stored values are never negative (the schema checks).
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Whether an error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// At most this many parameters per SQLite statement (its limit is 32,766); a multi-row
/// statement over more rows runs in chunks.
const SQLITE_MAX_PARAMS: usize = 10_000;

/// A column of a set of rows: its name and its PostgreSQL type (for the array it travels in).
pub(crate) type Col = (&'static str, &'static str);

/// Spells `rows` as a relation `u` with the columns `cols`, for a set-based statement, and
/// pushes its arguments onto `args`:
///
/// - PostgreSQL: `UNNEST($1::uuid[], $2::bigint[], …) AS u(id, version, …)`, one array per
///   column. The SQL text is the same whatever the number of rows, so it stays prepared.
/// - SQLite: `(SELECT column1 AS id, … FROM (VALUES ($1, $2, …), (…))) AS u`.
fn relation(pg: bool, args: &mut Vec<Arg>, cols: &[Col], rows: Vec<Vec<Arg>>) -> String {
    let names = cols.iter().map(|c| c.0).collect::<Vec<_>>().join(", ");
    if pg {
        let mut columns: Vec<Option<Array>> = vec![None; cols.len()];
        for row in rows {
            for (slot, arg) in columns.iter_mut().zip(row) {
                push_to_array(slot, arg);
            }
        }
        let arrays = columns
            .into_iter()
            .zip(cols)
            .map(|(array, (_, ty))| {
                args.push(Arg::Array(array.unwrap_or(Array::I64(Vec::new()))));
                format!("${}::{ty}[]", args.len())
            })
            .collect::<Vec<_>>()
            .join(", ");
        return format!("UNNEST({arrays}) AS u({names})");
    }
    let values = rows
        .into_iter()
        .map(|row| {
            let list = row
                .into_iter()
                .map(|arg| {
                    args.push(arg);
                    format!("${}", args.len())
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("({list})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let renamed = cols
        .iter()
        .enumerate()
        .map(|(i, (name, _))| format!("column{} AS {name}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    format!("(SELECT {renamed} FROM (VALUES {values})) AS u")
}

/// Appends one value to the array of its column (the first value fixes the array's type).
fn push_to_array(slot: &mut Option<Array>, arg: Arg) {
    let array = slot.get_or_insert_with(|| match &arg {
        Arg::I64(_) | Arg::Array(_) => Array::I64(Vec::new()),
        Arg::F64(_) => Array::F64(Vec::new()),
        Arg::Text(_) => Array::Text(Vec::new()),
        Arg::Uuid(_) => Array::Uuid(Vec::new()),
        Arg::Time(_) => Array::Time(Vec::new()),
        Arg::Json(_) => Array::Json(Vec::new()),
    });
    match (array, arg) {
        (Array::I64(a), Arg::I64(v)) => a.push(v),
        (Array::F64(a), Arg::F64(v)) => a.push(v),
        (Array::Text(a), Arg::Text(v)) => a.push(v),
        (Array::Uuid(a), Arg::Uuid(v)) => a.push(v),
        (Array::Time(a), Arg::Time(v)) => a.push(v),
        (Array::Json(a), Arg::Json(v)) => a.push(Json(v)),
        // A column mixing types is a bug in the caller; the statement then fails on the
        // array's length.
        _ => debug_assert!(false, "a column of mixed types"),
    }
}

impl Tx {
    /// Runs one set-based statement over `rows`: `sql` receives the relation (see
    /// [`relation`]) and returns the statement, which may also carry fixed arguments in
    /// `fixed` (bound first, as `$1 …`). PostgreSQL runs it once; SQLite in chunks within its
    /// parameter limit. No rows, no statement. Returns the rows the statement returns.
    pub(crate) async fn rows(
        &mut self,
        cols: &[Col],
        rows: Vec<Vec<Arg>>,
        fixed: &[Arg],
        sql: impl Fn(&str) -> String,
    ) -> Result<Vec<Row>, sqlx::Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let pg = self.is_pg();
        let per_chunk = if pg {
            rows.len()
        } else {
            (SQLITE_MAX_PARAMS.saturating_sub(fixed.len()) / cols.len().max(1)).max(1)
        };
        let mut out = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Arg>> = rows.by_ref().take(per_chunk).collect();
            let mut args = fixed.to_vec();
            let rel = relation(pg, &mut args, cols, chunk);
            out.extend(self.exec().fetch_all(&sql(&rel), &args).await?);
        }
        Ok(out)
    }
}

/// One set-based statement of a group run by [`Tx::write_parts`].
pub(crate) struct Part {
    pub(crate) cols: Vec<Col>,
    pub(crate) rows: Vec<Vec<Arg>>,
    /// The statement, given the relation of `rows` (see [`relation`]).
    pub(crate) sql: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// Whether the statement has a `RETURNING` clause whose rows are counted.
    pub(crate) returning: bool,
}

impl Part {
    pub(crate) fn new(
        cols: &[Col],
        rows: Vec<Vec<Arg>>,
        sql: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Part {
        Part {
            cols: cols.to_vec(),
            rows,
            sql: Box::new(sql),
            returning: false,
        }
    }
}

impl Tx {
    /// Runs a group of set-based statements that touch distinct tables, and returns how many
    /// rows each `RETURNING` part returned (0 for the others). Parts without rows are skipped.
    ///
    /// PostgreSQL runs the whole group as one statement, one round trip: each part a
    /// data-modifying `WITH` query. They all run on the same snapshot and cannot see one
    /// another's changes, which is why a group must not touch one table twice (a `DELETE`
    /// and the `INSERT` that replaces its rows go in successive groups). SQLite runs the
    /// parts one after another (in-process, no round trips to save).
    pub(crate) async fn write_parts(
        &mut self,
        parts: Vec<Part>,
    ) -> Result<Vec<usize>, sqlx::Error> {
        let mut counts = vec![0; parts.len()];
        if !self.is_pg() {
            for (count, part) in counts.iter_mut().zip(parts) {
                *count = self.rows(&part.cols, part.rows, &[], part.sql).await?.len();
            }
            return Ok(counts);
        }
        let mut args = Vec::new();
        let mut ctes = Vec::new();
        let mut counted = Vec::new();
        for (i, part) in parts.into_iter().enumerate() {
            if part.rows.is_empty() {
                continue;
            }
            let rel = relation(true, &mut args, &part.cols, part.rows);
            ctes.push(format!("p{i} AS ({})", (part.sql)(&rel)));
            if part.returning {
                counted.push(i);
            }
        }
        if ctes.is_empty() {
            return Ok(counts);
        }
        let select = if counted.is_empty() {
            "1 AS none".to_owned()
        } else {
            counted
                .iter()
                .map(|i| format!("(SELECT count(*) FROM p{i}) AS c{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!("WITH {} SELECT {select}", ctes.join(", "));
        let row = self.exec().fetch_one(&sql, &args).await?;
        for i in counted {
            counts[i] = to_u64(row.get::<i64>(&format!("c{i}"))?) as usize;
        }
        Ok(counts)
    }
}
