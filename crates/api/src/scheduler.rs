//! The scheduler: publishes SCHEDULED articles when they fall due, as the system actor.
//!
//! Exactly-once across replicas follows from the log's expected-version check: every replica
//! may try the same due article with the version it read, one append wins, the others get
//! CONFLICT and move on. A due article that cannot be published (an embargo in force, an
//! approval gone stale) gets a `PublicationBlocked` event with the reason, once per cause (the
//! domain refuses the same cause again, so a blocked article costs no write per tick), and
//! stays visibly overdue; it is retried on every tick, so lifting the embargo lets it go out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use galley_domain::{Action, Actor, Command, DomainError};
use galley_storage::{Metadata, Store, StoreError};
use tokio::sync::watch;
use uuid::Uuid;

/// Most due articles handled per tick.
const BATCH: u32 = 100;

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// Articles this replica published.
    pub published: usize,
    /// Articles another replica (or a concurrent command) got to first.
    pub lost_races: usize,
    /// Articles that could not be published (a `PublicationBlocked` recorded, or the same
    /// cause found recorded already).
    pub blocked: usize,
}

/// Publishes every article due at `now`.
pub async fn tick(store: &Store, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
    let mut report = TickReport::default();
    for due in store.due_articles(now, BATCH).await? {
        let command = Command {
            article_id: due.id,
            expected_version: due.version,
            actor: Actor::system(),
            now,
            action: Action::PublishDue,
        };
        let metadata = Metadata {
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
            request_id: None,
        };
        match store.execute(command, metadata, None).await {
            Ok(outcome)
                if outcome
                    .events
                    .iter()
                    .any(|e| e.event_type == "PublicationBlocked") =>
            {
                report.blocked += 1;
                metrics::counter!("galley_scheduler_blocked_total").increment(1);
                tracing::warn!(
                    article_id = %due.id,
                    reason = outcome.article.schedule_blocked_reason.as_deref().unwrap_or(""),
                    "scheduled article is overdue"
                );
            }
            Ok(_) => {
                report.published += 1;
                metrics::counter!("galley_scheduler_published_total").increment(1);
                tracing::info!(article_id = %due.id, due = %due.scheduled_for, "published scheduled article");
            }
            Err(e) if e.current_version().is_some() => {
                report.lost_races += 1;
                tracing::debug!(article_id = %due.id, "scheduled article handled elsewhere");
            }
            // Blocked for a cause already in the log: nothing to record again.
            Err(StoreError::Domain(
                DomainError::Embargoed { .. } | DomainError::InvalidTransition { .. },
            )) => {
                report.blocked += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// How long idempotency keys are remembered by default: a day, far longer than any client
/// retries a request.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Prunes idempotency keys older than `retention`, every `retention / 4` (at most every
/// minute), until shutdown. Every replica may run it: a prune is an idempotent delete, and it
/// never touches the log.
pub async fn prune_idempotency_keys(
    store: Store,
    retention: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = (retention / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = crate::stopped(&mut shutdown) => break,
        }
        let Some(before) = chrono::TimeDelta::from_std(retention)
            .ok()
            .and_then(|age| Utc::now().checked_sub_signed(age))
        else {
            continue;
        };
        match store.prune_idempotency_keys(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned expired idempotency keys"),
            Err(e) => tracing::warn!(error = %e, "pruning idempotency keys failed"),
        }
    }
}

/// Runs [`tick`] every `interval` until `shutdown` flips to true. Errors are logged and the
/// loop goes on; a database outage must not stop scheduled publishing for good.
pub async fn run(store: Store, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = crate::stopped(&mut shutdown) => break,
        }
        if let Err(e) = tick(&store, Utc::now()).await {
            metrics::counter!("galley_scheduler_errors_total").increment(1);
            tracing::error!(error = %e, "scheduler tick failed");
        }
    }
    tracing::debug!("scheduler stopped");
}
