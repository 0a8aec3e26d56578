//! Set-based statements: many rows in one statement ([`Tx::rows`]) and groups of statements
//! in one round trip ([`Tx::write_parts`]).

use sqlx::types::Json;

use super::args::{to_u64, Arg, Array, Row};
use super::tx::Tx;

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
            counts[i] = to_u64(row.get::<i64>(format!("c{i}").as_str())?) as usize;
        }
        Ok(counts)
    }
}
