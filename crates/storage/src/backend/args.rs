//! Arguments and rows that both drivers understand.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::{Decode, Postgres, Sqlite, Type};
use uuid::Uuid;

use crate::error::StoreError;

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
        [$($crate::backend::Arg::from($value)),*]
    };
}
pub(crate) use args;

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
    /// Decodes a column, by name or by place from 0, into any type both drivers understand.
    pub(crate) fn get<T>(
        &self,
        column: impl sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow>,
    ) -> Result<T, sqlx::Error>
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
        use sqlx::Row as _;
        // Straight into `T`, not through a `serde_json::Value`.
        let decoded = match self {
            Row::Sqlite(r) => r.try_get::<Json<T>, _>(column),
            Row::Pg(r) => r.try_get::<Json<T>, _>(column),
        };
        match decoded {
            Ok(Json(value)) => Ok(value),
            Err(sqlx::Error::ColumnDecode { source, .. }) => {
                Err(StoreError::Corrupt(format!("column {column}: {source}")))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Positions and versions are `u64` in Rust and `BIGINT` in SQL.
fn to_i64(v: u64) -> i64 {
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

/// Appends `$n` placeholders for `values` to `args` and returns them comma-separated.
pub(crate) fn placeholders(args: &mut Vec<Arg>, values: impl IntoIterator<Item = Arg>) -> String {
    let mut out = Vec::new();
    for v in values {
        args.push(v);
        out.push(format!("${}", args.len()));
    }
    out.join(", ")
}

/// Adds one argument and returns its placeholder.
pub(crate) fn push_arg(args: &mut Vec<Arg>, v: impl Into<Arg>) -> String {
    args.push(v.into());
    format!("${}", args.len())
}
