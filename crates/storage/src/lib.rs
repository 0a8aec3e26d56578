//! Galley's storage: the append-only event log that is the source of truth, the projections
//! the API reads, and the live feed, on SQLite (embedded default) and PostgreSQL.
//!
//! Everything goes through the [`Store`] facade (`store.rs`, the only `impl Store`), and the
//! folders follow a command's flow, each importing only those below it:
//!
//! - `backend/`: the dialect layer (pools, transactions, arguments, rows, set-based
//!   statements) and every difference between PostgreSQL and SQLite;
//! - `log/`: reading the log, appending events, idempotency keys, the head;
//! - `projections/`: every projection's rows, rebuild and verify;
//! - `write/`: the writer: group commit, planning a batch in memory, the batch's transaction
//!   (begin → plan → log → projections → commit → ring the feed), import;
//! - `read/`: article, list, search, time-travel and dashboard reads;
//! - `feed/`: the doorbell and the PostgreSQL listener (it is handed a callback, and knows no
//!   store internals);
//! - `auth/`: users, tokens and their cache, sessions;
//! - `webhooks/`: webhook endpoints, their checkpoints, attempts, the audit of their changes and
//!   the PostgreSQL leases of their dispatch (operational data beside the log, never part of
//!   it).
//!
//! Invariants: nothing updates or deletes an event; positions are global, contiguous and
//! commit-ordered (appends are serialised on the `log_head` row on PostgreSQL and by the
//! single writer on SQLite); every projection row follows from the log, so
//! `rebuild_projections` gives exactly what the live path wrote; the feed's notifications are
//! doorbells, and readers always re-read the log. See ARCHITECTURE-storage.md beside this
//! crate.

mod auth;
mod backend;
mod error;
mod feed;
mod log;
mod model;
mod projections;
mod read;
mod store;
pub mod testing;
mod webhooks;
mod write;

pub use auth::cache::TOKEN_CACHE_TTL;
pub use auth::changes::{check_user_name, UserChange, UserChangeRecord, USER_NAME_MAX_CHARS};
pub use auth::sessions::Credentials;
pub use backend::BackendKind;
pub use error::StoreError;
pub use model::*;
pub use read::dashboard::{
    percentile, BounceCount, Dashboard, DashboardQuery, DayCount, DurationStats,
    OverduePublication, ReviewerFigures, MAX_DASHBOARD_DAYS,
};
pub use read::page::{Page, PageCursor};
pub use read::stages::{StageFigures, StageNow};
pub use store::*;
pub use webhooks::{
    AttemptKind, AttemptOutcome, NewWebhookEndpoint, Progress, WebhookAttempt, WebhookChangeRecord,
    WebhookEndpointChange, WebhookEndpointId, WebhookEndpointRecord, WebhookFilter, WebhookLeases,
    WebhookSecrets, WebhookState, MAX_WEBHOOK_ENDPOINTS, WEBHOOK_ATTEMPTS_KEPT,
};
pub use write::{BeforeCommitHook, CommitDecision, DEFAULT_MAX_BATCH};
