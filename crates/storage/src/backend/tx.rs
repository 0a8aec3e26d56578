//! Transactions and executors: where a statement runs (a pool or a transaction's
//! connection), always under the store's deadline.

use std::time::Duration;

use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

use super::args::{to_u64, Arg, Array, Row};
use crate::error::StoreError;

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
pub(super) async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(deadline, call)
        .await
        .unwrap_or_else(|_| Err(overran(deadline)))
}

/// An open write transaction, whose every call runs under the store's deadline. A commit
/// that overruns it is reported as failed although it may have committed: the caller was not
/// told it succeeded, so nothing acknowledged is lost, and a retry with the same idempotency
/// key finds the outcome.
#[derive(Debug)]
pub(crate) struct Tx {
    pub(super) kind: TxKind,
    pub(super) deadline: Duration,
}

#[derive(Debug)]
pub(super) enum TxKind {
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

    pub(super) fn is_pg(&self) -> bool {
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
    pub(super) async fn begin_locked(
        pool: &PgPool,
        deadline: Duration,
        begin: &'static str,
    ) -> Result<(PgTx, u64), StoreError> {
        let mut tx = PgTx {
            conn: pool.acquire().await?,
            open: true,
        };
        let row = within(deadline, sqlx::Executor::fetch_one(&mut *tx.conn, begin)).await?;
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
    pub(super) on: On<'a>,
    pub(super) deadline: Duration,
}

/// A pool or a connection inside a transaction.
#[derive(Debug)]
pub(super) enum On<'a> {
    SqlitePool(&'a SqlitePool),
    PgPool(&'a PgPool),
    SqliteConn(&'a mut SqliteConnection),
    PgConn(&'a mut PgConnection),
}

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
    pub(super) fn is_pg(&self) -> bool {
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
