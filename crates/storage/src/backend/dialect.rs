//! What PostgreSQL and SQLite do differently, named by what the caller wants done.
//!
//! SQLite is one process's embedded file: its single writer already serialises everything
//! (so advisory locks are not needed) and no other process listens (so notifications are not
//! sent). PostgreSQL is shared by replicas: locks and `NOTIFY` are how they coordinate.

use chrono::{DateTime, TimeDelta, TimeZone, Timelike, Utc};

use super::args::{args, Arg};
use super::sets::Part;
use super::tx::Tx;
use crate::error::StoreError;

/// PostgreSQL keeps microseconds. Truncating a command's clock once, before it is used,
/// makes what a command returns identical to what is read back later, on both backends.
pub(crate) fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// How a transaction waits for a row another one has locked ([`Tx::lock_clause`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockWait {
    /// Wait for it.
    Wait,
    /// Leave it out of the result instead.
    Skip,
}

impl Tx {
    /// What to put after a `SELECT` to lock the rows it reads for the rest of the transaction:
    /// `FOR UPDATE` (with `SKIP LOCKED` under [`LockWait::Skip`]) on PostgreSQL; nothing on
    /// SQLite, whose write transaction is the single writer's and so holds every row.
    pub(crate) fn lock_clause(&self, wait: LockWait) -> &'static str {
        match (self.is_pg(), wait) {
            (true, LockWait::Wait) => " FOR UPDATE",
            (true, LockWait::Skip) => " FOR UPDATE SKIP LOCKED",
            (false, _) => "",
        }
    }

    /// Notifies every PostgreSQL listener of `channel` at commit (never before); nothing on
    /// SQLite, where this process is the only one and is told directly.
    pub(crate) async fn notify(&mut self, channel: &str, payload: &str) -> Result<(), StoreError> {
        if self.is_pg() {
            self.exec()
                .execute("SELECT pg_notify($1, $2)", &args![channel, payload])
                .await?;
        }
        Ok(())
    }

    /// [`Tx::notify`] as a part of a group of set-based statements (see
    /// [`Tx::write_parts`]), so that it costs no round trip of its own; `None` on SQLite.
    pub(crate) fn notify_part(&self, channel: &str, payload: &str) -> Option<Part> {
        if !self.is_pg() {
            return None;
        }
        // A `WITH` query that only reads runs if the statement reads it: counting its rows
        // does.
        let row: Vec<Arg> = args![channel, payload].into();
        let mut notify = Part::new(
            &[("channel", "text"), ("payload", "text")],
            vec![row],
            |u| format!("SELECT pg_notify(u.channel, u.payload) FROM {u}"),
        );
        notify.returning = true;
        Some(notify)
    }

    /// Takes a PostgreSQL advisory lock held until this transaction ends, serialising
    /// writers of other processes on `key`; on SQLite the write transaction already excludes
    /// every other writer.
    pub(crate) async fn lock_until_commit(&mut self, key: i64) -> Result<(), StoreError> {
        if self.is_pg() {
            self.exec()
                .execute("SELECT pg_advisory_xact_lock($1)", &args![key])
                .await?;
        }
        Ok(())
    }

    /// The time as this database keeps it and reads it back. PostgreSQL keeps microseconds
    /// since 2000-01-01, truncated toward zero (sqlx sends them so); SQLite keeps the text
    /// sqlx writes, to the nanosecond. An article built in memory must equal its row.
    pub(crate) fn as_kept(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if !self.is_pg() {
            return t;
        }
        let epoch = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        match (t - epoch).num_microseconds() {
            Some(us) => epoch + TimeDelta::microseconds(us),
            None => t,
        }
    }

    /// The join of a relation `u (stream, known)` to the `events` of each stream after the
    /// version `known`, as `e`.
    ///
    /// On PostgreSQL each stream must be an index range scan on (article_id, version): a plain
    /// join, or a LATERAL subquery the planner flattens into one, is planned as a hash join
    /// over the whole log once streams are long on average. `OFFSET 0` keeps the subquery
    /// from being flattened, so it runs once per stream. SQLite has no LATERAL and looks each
    /// stream up in the index anyway.
    pub(crate) fn events_after_each_stream(&self) -> &'static str {
        if self.is_pg() {
            "CROSS JOIN LATERAL (SELECT * FROM events WHERE article_id = u.stream \
             AND version > u.known OFFSET 0) e"
        } else {
            "JOIN events e ON e.article_id = u.stream AND e.version > u.known"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_truncated_to_microseconds() {
        let t = DateTime::parse_from_rfc3339("2026-01-10T12:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            to_micros(t).to_rfc3339(),
            "2026-01-10T12:00:00.123456+00:00"
        );
    }
}
