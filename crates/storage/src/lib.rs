//! Galley's storage: the append-only event log that is the source of truth, the projections
//! the API reads, and the live feed, on SQLite (embedded default) and PostgreSQL.
//!
//! Everything goes through the [`Store`] facade. A command runs in one transaction: the
//! article's events are read, [`galley_domain::decide`] is asked, the new events are appended
//! with the next global positions, the projections are updated, and the transaction commits
//! before the feed is woken. Invariants: nothing updates or deletes an event; positions are
//! global, contiguous and commit-ordered (appends are serialised on the `log_head` row on
//! PostgreSQL and by the single writer on SQLite); every projection row follows from the log,
//! so `rebuild_projections` gives
//! exactly what the live path wrote; the feed's notifications are doorbells, and readers
//! always re-read the log. See ARCHITECTURE-storage.md beside this crate.

mod append;
mod batch;
mod db;
mod error;
mod feed;
mod group;
mod insights;
mod model;
mod project;
mod read;
mod rows;
mod search;
mod sessions;
mod stages;
mod store;
pub mod testing;
mod user_changes;
mod users;
mod webhooks;

pub use append::PendingCommand;
pub use error::StoreError;
pub use group::DEFAULT_MAX_BATCH;
pub use insights::{
    percentile, AsOf, BounceCount, Dashboard, DashboardQuery, DayCount, DurationStats,
    OverduePublication, ReviewerFigures, MAX_DASHBOARD_DAYS,
};
pub use model::*;
pub use sessions::Credentials;
pub use stages::{StageFigures, StageNow};
pub use store::*;
pub use user_changes::{check_user_name, UserChange, UserChangeRecord, USER_NAME_MAX_CHARS};
pub use users::TOKEN_CACHE_TTL;
pub use webhooks::{
    AttemptKind, AttemptOutcome, NewWebhookEndpoint, Progress, WebhookAttempt, WebhookChangeRecord,
    WebhookEndpointChange, WebhookEndpointId, WebhookEndpointRecord, WebhookFilter, WebhookLeases,
    WebhookSecrets, WebhookState, MAX_WEBHOOK_ENDPOINTS, WEBHOOK_ATTEMPTS_KEPT,
};
