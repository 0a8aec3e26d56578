//! The log, the source of truth: reading it ([`read`]), appending to it ([`append`]) and the
//! idempotency keys that remember which positions a command appended ([`keys`]).
//!
//! Nothing updates or deletes an event. Positions are global, contiguous and commit-ordered:
//! appends are serialised on the `log_head` row on PostgreSQL (taken by
//! `crate::backend::Db::begin_write`) and by the single writer on SQLite.

pub(crate) mod append;
pub(crate) mod keys;
pub(crate) mod read;

/// The channel appends notify on PostgreSQL; the payload is the new head position.
pub(crate) const NOTIFY_CHANNEL: &str = "galley_events";
