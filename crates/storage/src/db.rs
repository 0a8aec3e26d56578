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

/// How long a PostgreSQL statement may run before the server cancels it.
const PG_STATEMENT_TIMEOUT: &str = "30s";
/// How long a PostgreSQL session may sit idle inside a transaction; a crashed or stuck writer
/// must not hold the log head's row lock for longer.
const PG_IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";
/// How long an SQLite connection waits for a lock held by another process.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection pools of one store.
#[derive(Debug, Clone)]
pub(crate) enum Db {
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

impl Db {
    pub(crate) async fn connect(options: &StoreOptions) -> Result<Db, StoreError> {
        let url = options.url.trim();
        let max = options.max_connections.max(1);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url)?.options([
                ("statement_timeout", PG_STATEMENT_TIMEOUT),
                (
                    "idle_in_transaction_session_timeout",
                    PG_IDLE_IN_TRANSACTION_TIMEOUT,
                ),
            ]);
            let pool = PgPoolOptions::new()
                // One connection is held by the LISTEN task; keep at least two for work.
                .max_connections(max.max(3))
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(30))
                .idle_timeout(Duration::from_secs(600))
                .connect_with(connect)
                .await?;
            Ok(Db::Postgres(pool))
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
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(connect)
                    .await?
            };
            Ok(Db::Sqlite { read, write })
        } else {
            Err(StoreError::Invalid {
                field: "url".to_owned(),
                message: "must start with sqlite: or postgres://".to_owned(),
            })
        }
    }

    pub(crate) fn kind(&self) -> BackendKind {
        match self {
            Db::Sqlite { .. } => BackendKind::Sqlite,
            Db::Postgres(_) => BackendKind::Postgres,
        }
    }

    pub(crate) fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self {
            Db::Sqlite { .. } => &SQLITE_MIGRATOR,
            Db::Postgres(_) => &PG_MIGRATOR,
        }
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite { write, .. } => SQLITE_MIGRATOR.run(write).await?,
            Db::Postgres(pool) => PG_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// A connection for reads outside a transaction.
    pub(crate) fn reader(&self) -> Exec<'_> {
        match self {
            Db::Sqlite { read, .. } => Exec::SqlitePool(read),
            Db::Postgres(pool) => Exec::PgPool(pool),
        }
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE` on the single writer; on
    /// PostgreSQL, `lock_log` also takes the `log_head` row lock, which serialises appends so
    /// that they commit in position order (see migrations/postgres/0001_event_log.sql).
    /// Returns the transaction and the committed head position.
    pub(crate) async fn begin_write(&self, lock_log: bool) -> Result<(Tx, u64), StoreError> {
        let mut tx = match self {
            Db::Sqlite { write, .. } => Tx::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Pg(pool.begin().await?),
        };
        let sql = match (&tx, lock_log) {
            (Tx::Pg(_), true) => "SELECT position FROM log_head FOR UPDATE",
            _ => "SELECT position FROM log_head",
        };
        let row = tx.exec().fetch_one(sql, &[]).await?;
        let head = row.get::<i64>("position")?;
        Ok((tx, to_u64(head)))
    }
}

/// An open write transaction.
#[derive(Debug)]
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Pg(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn exec(&mut self) -> Exec<'_> {
        match self {
            Tx::Sqlite(tx) => Exec::SqliteConn(tx),
            Tx::Pg(tx) => Exec::PgConn(tx),
        }
    }

    pub(crate) fn is_pg(&self) -> bool {
        matches!(self, Tx::Pg(_))
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Pg(tx) => tx.commit().await,
        }
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await,
            Tx::Pg(tx) => tx.rollback().await,
        }
    }
}

/// Something to run a statement on: a pool or a connection inside a transaction.
#[derive(Debug)]
pub(crate) enum Exec<'a> {
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
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::I64(v) => q.bind(*v),
                Arg::F64(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_deref()),
                Arg::Uuid(v) => q.bind(*v),
                Arg::Time(v) => q.bind(*v),
                Arg::Json(v) => q.bind(Json(v)),
            };
        }
        q
    }};
}

macro_rules! on_exec {
    ($exec:expr, $sql:expr, $args:expr, $method:ident, $wrap:expr) => {
        match $exec {
            Exec::SqlitePool(p) => bind_all!(sqlx::query::<Sqlite>($sql), $args)
                .$method(*p)
                .await
                .map($wrap(Row::Sqlite)),
            Exec::SqliteConn(c) => bind_all!(sqlx::query::<Sqlite>($sql), $args)
                .$method(&mut **c)
                .await
                .map($wrap(Row::Sqlite)),
            Exec::PgPool(p) => bind_all!(sqlx::query::<Postgres>($sql), $args)
                .$method(*p)
                .await
                .map($wrap(Row::Pg)),
            Exec::PgConn(c) => bind_all!(sqlx::query::<Postgres>($sql), $args)
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
    /// The same connection, borrowed again, so that one `Exec` can be handed to several
    /// functions in turn.
    pub(crate) fn reborrow(&mut self) -> Exec<'_> {
        match self {
            Exec::SqlitePool(p) => Exec::SqlitePool(p),
            Exec::PgPool(p) => Exec::PgPool(p),
            Exec::SqliteConn(c) => Exec::SqliteConn(c),
            Exec::PgConn(c) => Exec::PgConn(c),
        }
    }

    /// Runs a statement and returns the number of rows it affected.
    pub(crate) async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
        match self {
            Exec::SqlitePool(p) => bind_all!(sqlx::query::<Sqlite>(sql), args)
                .execute(*p)
                .await
                .map(|r| r.rows_affected()),
            Exec::SqliteConn(c) => bind_all!(sqlx::query::<Sqlite>(sql), args)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()),
            Exec::PgPool(p) => bind_all!(sqlx::query::<Postgres>(sql), args)
                .execute(*p)
                .await
                .map(|r| r.rows_affected()),
            Exec::PgConn(c) => bind_all!(sqlx::query::<Postgres>(sql), args)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()),
        }
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<Row>, sqlx::Error> {
        on_exec!(self, sql, args, fetch_all, each)
    }

    pub(crate) async fn fetch_one(&mut self, sql: &str, args: &[Arg]) -> Result<Row, sqlx::Error> {
        on_exec!(self, sql, args, fetch_one, one)
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<Row>, sqlx::Error> {
        on_exec!(self, sql, args, fetch_optional, maybe)
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
