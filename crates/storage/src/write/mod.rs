//! The write path: commands in, events and projections out, one transaction per batch.
//!
//! A command goes `Store::execute` → [`Writer::execute`] (the checks that need no article,
//! then the group-commit queue) → a batch ([`batch`]): begin (the log lock) → plan, in memory
//! ([`plan`]: read the tails, decide) → the log's rows (`crate::log::append`) and the
//! projections' rows (`crate::projections::Rows`), written set-based → the before-commit hook
//! → commit → ring the feed. Every caller is answered only after that commit; if the batch
//! fails before or at commit, every caller gets an error and nothing of the batch is visible.
//!
//! Group commit: one writer task per store gathers concurrent commands into one batch, so that
//! many commands share one commit (one fsync). Callers queue their command with a oneshot for
//! the reply. The task takes the first queued command, drains whatever else is already
//! waiting (up to `max_batch`, without lingering) and runs them as one batch. Commands in one
//! batch are decided in queue order, so a later command on the same article decides against
//! the state the earlier ones left.
//!
//! The task holds a pool connection only while a batch runs, and holds the writer's state
//! only weakly: dropping the last `Store` clone closes the queue and the task ends.

mod aggregates;
mod batch;
mod group;
mod import;
mod plan;

pub use batch::{BeforeCommitHook, CommitDecision};
pub(crate) use group::Writer;
pub use group::DEFAULT_MAX_BATCH;
pub(crate) use import::import_events;
