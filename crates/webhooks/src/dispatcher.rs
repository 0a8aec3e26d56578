//! The dispatcher: one supervisor per process, and one task per endpoint it holds the lease
//! of.
//!
//! ```text
//! supervisor ─every scan_interval, or at once when an admin changes an endpoint here─▶
//!     heartbeat of the lease connection ─▶ list endpoints (lag gauges) ─▶ for each ACTIVE one
//!     not dispatched here: try its lease ─▶ taken: spawn its task
//! endpoint task ─loop─▶ read the endpoint (gone, not ACTIVE, lease lost: stop)
//!     ─▶ read a page after its checkpoint ─▶ deliver each matching event in order:
//!        attempt ─▶ record it ─▶ 2xx: move the checkpoint past it
//!                              ─▶ 4xx: record the failure, move past it (the endpoint moves on)
//!                              ─▶ network error, timeout, 408, 429, 5xx: wait (backoff with
//!                                 full jitter) and attempt again; later events wait; failing
//!                                 longer than disable_after disables the endpoint
//!     ─▶ caught up: wait for the log's doorbell, an admin's change, or scan_interval
//! ```
//!
//! The checkpoint moves by compare-and-set: when an admin rewinds or skips meanwhile, the
//! move fails and the task reads the endpoint again, dropping the delivery it held. A task
//! waiting to retry reads its endpoint every `scan_interval`, so a pause, skip or rewind made
//! through another replica takes effect within it. A delivery interrupted by shutdown, a lost
//! lease or a crash is made again by the next holder, with the same `webhook-id`: at least
//! once, never out of order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use galley_domain::UserId;
use galley_storage::{
    ArticleRecord, AttemptKind, AttemptOutcome, EventFilter, Position, Progress, Store, StoreError,
    StoredEvent, WebhookAttempt, WebhookEndpointChange, WebhookEndpointId, WebhookEndpointRecord,
    WebhookLeases, WebhookState,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::deliver::Attempted;
use crate::{matching, payload, retry, signing, Webhooks};

/// Starts the dispatcher of this process; it stops when `shutdown` becomes true, having given
/// up its leases.
pub fn spawn(webhooks: Webhooks, store: Store, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(supervise(webhooks, store, shutdown))
}

/// Resolves once `shutdown` holds true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow()
}

/// What every endpoint task shares.
struct Ctx {
    webhooks: Webhooks,
    store: Store,
    leases: WebhookLeases,
    /// The newest position this process has seen committed: the endpoint tasks' doorbell.
    head: watch::Receiver<Position>,
    shutdown: watch::Receiver<bool>,
}

/// Counts an attempt in the metrics.
pub(crate) fn count(attempted: &Attempted) {
    let outcome = match attempted.outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retrying => "retrying",
        AttemptOutcome::Failed => "failed",
    };
    metrics::counter!("galley_webhook_deliveries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("galley_webhook_delivery_duration_seconds", "outcome" => outcome)
        .record(attempted.latency.as_secs_f64());
}

async fn supervise(webhooks: Webhooks, store: Store, mut shutdown: watch::Receiver<bool>) {
    let (head_tx, head) = watch::channel(0);
    let doorbell = tokio::spawn(follow_head(store.clone(), head_tx, shutdown.clone()));
    let leases = store.webhook_leases();
    let ctx = Arc::new(Ctx {
        webhooks: webhooks.clone(),
        store: store.clone(),
        leases: leases.clone(),
        head,
        shutdown: shutdown.clone(),
    });
    let scan_interval = webhooks
        .config()
        .scan_interval
        .max(Duration::from_millis(10));
    let mut changes = webhooks.changes();
    let mut tasks: HashMap<WebhookEndpointId, JoinHandle<()>> = HashMap::new();
    let mut gauged: HashSet<WebhookEndpointId> = HashSet::new();
    loop {
        if stopping(&shutdown) {
            break;
        }
        changes.borrow_and_update();
        tasks.retain(|_, task| !task.is_finished());
        if let Err(e) = leases.heartbeat().await {
            tracing::warn!(error = %e, "the webhook lease connection failed; its endpoints will be taken again");
        }
        if let Err(e) = take_endpoints(&ctx, &mut tasks, &mut gauged).await {
            tracing::warn!(error = %e, "webhook dispatcher cannot read its endpoints; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(scan_interval) => {}
            _ = changes.changed() => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    for (_, task) in tasks {
        let _ = task.await;
    }
    leases.release_all().await;
    doorbell.abort();
    tracing::debug!("webhook dispatcher stopped");
}

/// Sets the lag gauges and starts a task for every ACTIVE endpoint whose lease this process
/// can take.
async fn take_endpoints(
    ctx: &Arc<Ctx>,
    tasks: &mut HashMap<WebhookEndpointId, JoinHandle<()>>,
    gauged: &mut HashSet<WebhookEndpointId>,
) -> Result<(), StoreError> {
    let endpoints = ctx.store.webhook_endpoints().await?;
    let head = ctx.store.head().await?;
    let present: HashSet<_> = endpoints.iter().map(|e| e.id).collect();
    for gone in gauged.difference(&present) {
        metrics::gauge!("galley_webhook_lag_events", "endpoint" => gone.to_string()).set(0.0);
    }
    gauged.clone_from(&present);
    for endpoint in endpoints {
        metrics::gauge!("galley_webhook_lag_events", "endpoint" => endpoint.id.to_string())
            .set(head.saturating_sub(endpoint.checkpoint) as f64);
        if endpoint.state != WebhookState::Active || tasks.contains_key(&endpoint.id) {
            continue;
        }
        if ctx.leases.try_acquire(endpoint.id).await? {
            tracing::info!(endpoint = %endpoint.id, checkpoint = endpoint.checkpoint, "dispatching webhook endpoint");
            let task = tokio::spawn(run_endpoint(ctx.clone(), endpoint.id));
            tasks.insert(endpoint.id, task);
        }
    }
    Ok(())
}

/// Rings the endpoint tasks' doorbell with every position this process sees committed (on
/// PostgreSQL, by any process).
async fn follow_head(
    store: Store,
    head: watch::Sender<Position>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut after = None;
    loop {
        let start = match after {
            Some(position) => Ok(position),
            None => store.head().await,
        };
        if let Ok(position) = start {
            after = Some(position);
            let mut feed = store.subscribe(position, EventFilter::default());
            loop {
                tokio::select! {
                    next = feed.next() => match next {
                        Some(Ok(event)) => {
                            after = Some(event.position);
                            head.send_replace(event.position);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "webhook doorbell lost the feed; resubscribing");
                            break;
                        }
                        None => return,
                    },
                    _ = stopped(&mut shutdown) => return,
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// An endpoint's task: follows it while this process holds its lease, then gives the lease
/// up.
async fn run_endpoint(ctx: Arc<Ctx>, id: WebhookEndpointId) {
    if let Err(e) = follow(&ctx, id).await {
        tracing::warn!(endpoint = %id, error = %e, "webhook endpoint's dispatch stopped; it will be taken again");
    }
    if let Err(e) = ctx.leases.release(id).await {
        tracing::warn!(endpoint = %id, error = %e, "cannot release a webhook lease");
    }
}

/// How a delivery ended for the task.
enum Next {
    /// The checkpoint moved past the event: go on with the next one.
    MovedOn,
    /// Something changed (the endpoint, its checkpoint, the lease, shutdown): read it again.
    Reread,
}

async fn follow(ctx: &Ctx, id: WebhookEndpointId) -> Result<(), StoreError> {
    let mut head = ctx.head.clone();
    let mut changes = ctx.webhooks.changes();
    let mut shutdown = ctx.shutdown.clone();
    let scan_interval = ctx
        .webhooks
        .config()
        .scan_interval
        .max(Duration::from_millis(10));
    loop {
        if stopping(&shutdown) || !ctx.leases.holds(id) {
            return Ok(());
        }
        // Marked as seen before reading, so that an append or a change made during the read
        // wakes the wait below.
        head.borrow_and_update();
        changes.borrow_and_update();
        let Some(endpoint) = ctx.store.webhook_endpoint(id).await? else {
            return Ok(());
        };
        if endpoint.state != WebhookState::Active {
            return Ok(());
        }
        let scan = matching::scan(&ctx.store, &endpoint.filter, endpoint.checkpoint).await?;
        let mut checkpoint = endpoint.checkpoint;
        let mut reread = false;
        for (event, article) in &scan.matching {
            match deliver(ctx, &endpoint, checkpoint, event, article.as_ref()).await? {
                Next::MovedOn => checkpoint = event.position,
                Next::Reread => {
                    reread = true;
                    break;
                }
            }
        }
        if reread {
            continue;
        }
        if scan.scanned_to > checkpoint
            && !ctx
                .leases
                .advance(id, checkpoint, scan.scanned_to, Progress::Passed)
                .await?
        {
            continue;
        }
        if !scan.caught_up {
            continue;
        }
        tokio::select! {
            _ = head.changed() => {}
            _ = changes.changed() => {}
            _ = tokio::time::sleep(scan_interval) => {}
            _ = stopped(&mut shutdown) => return Ok(()),
        }
    }
}

/// Delivers one event, retrying until it is delivered or fails for good, or until something
/// changes underneath.
async fn deliver(
    ctx: &Ctx,
    endpoint: &WebhookEndpointRecord,
    checkpoint: Position,
    event: &StoredEvent,
    article: Option<&ArticleRecord>,
) -> Result<Next, StoreError> {
    let id = endpoint.id;
    let config = ctx.webhooks.config();
    let webhook_id = signing::webhook_id(id, event.event_id);
    let body = payload::body(event, article);
    let mut shutdown = ctx.shutdown.clone();
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        if stopping(&shutdown) || !ctx.leases.holds(id) {
            return Ok(Next::Reread);
        }
        // None when the endpoint was paused, disabled or changed since the task read it.
        let Some(secrets) = ctx
            .store
            .webhook_dispatch_secrets(id, endpoint.version)
            .await?
        else {
            return Ok(Next::Reread);
        };
        let now = Utc::now();
        let attempted = tokio::select! {
            attempted = ctx.webhooks.sender().attempt(&endpoint.url, &secrets, &webhook_id, &body, now) => attempted,
            // The next holder delivers it again, with the same id.
            _ = stopped(&mut shutdown) => return Ok(Next::Reread),
        };
        count(&attempted);
        let record = WebhookAttempt {
            endpoint_id: id,
            position: event.position,
            event_id: event.event_id,
            attempt,
            kind: AttemptKind::Dispatch,
            outcome: attempted.outcome,
            status: attempted.status,
            latency_ms: u64::try_from(attempted.latency.as_millis()).unwrap_or(u64::MAX),
            error: attempted.error.clone(),
            response_excerpt: attempted.excerpt.clone(),
            attempted_at: now,
        };
        ctx.store.record_webhook_attempt(&record).await?;
        let error = attempted.error.clone().unwrap_or_default();
        match attempted.outcome {
            AttemptOutcome::Delivered => {
                let progress = Progress::Delivered { at: Utc::now() };
                let moved = ctx
                    .leases
                    .advance(id, checkpoint, event.position, progress)
                    .await?;
                return Ok(if moved { Next::MovedOn } else { Next::Reread });
            }
            AttemptOutcome::Failed => {
                tracing::warn!(endpoint = %id, position = event.position, error = %error, "webhook delivery failed for good; moving on");
                let progress = Progress::Failed {
                    at: Utc::now(),
                    error: error.clone(),
                };
                let moved = ctx
                    .leases
                    .advance(id, checkpoint, event.position, progress)
                    .await?;
                if !moved {
                    return Ok(Next::Reread);
                }
                let since = ctx
                    .store
                    .webhook_endpoint(id)
                    .await?
                    .and_then(|e| e.failing_since);
                if disable_if_due(ctx, endpoint, since, &error).await? {
                    return Ok(Next::Reread);
                }
                return Ok(Next::MovedOn);
            }
            AttemptOutcome::Retrying => {
                tracing::info!(endpoint = %id, position = event.position, attempt, error = %error, "webhook delivery failed; retrying");
                let since = ctx.store.record_webhook_failure(id, &error, now).await?;
                if since.is_none() || disable_if_due(ctx, endpoint, since, &error).await? {
                    return Ok(Next::Reread);
                }
                let wait = retry::backoff(attempt, config.retry_base, config.retry_cap);
                if !wait_unchanged(ctx, endpoint, checkpoint, wait).await? {
                    return Ok(Next::Reread);
                }
            }
        }
    }
}

/// Disables the endpoint when it has been failing since `since` for at least the configured
/// time; `true` when it did (or when the endpoint changed meanwhile).
async fn disable_if_due(
    ctx: &Ctx,
    endpoint: &WebhookEndpointRecord,
    since: Option<chrono::DateTime<Utc>>,
    error: &str,
) -> Result<bool, StoreError> {
    let Some(since) = since else {
        return Ok(false);
    };
    let limit = ctx.webhooks.config().disable_after;
    let now = Utc::now();
    let failing_for = (now - since).to_std().unwrap_or_default();
    if failing_for < limit {
        return Ok(false);
    }
    let reason = format!(
        "deliveries have failed since {} ({} s, the limit being {} s); the last error: {error}",
        since.to_rfc3339(),
        failing_for.as_secs(),
        limit.as_secs()
    );
    let change = WebhookEndpointChange::Disabled { reason };
    match ctx
        .store
        .change_webhook_endpoint(endpoint.id, endpoint.version, change, UserId::SYSTEM, now)
        .await
    {
        Ok(_) => {
            metrics::counter!("galley_webhook_endpoints_disabled_total").increment(1);
            tracing::warn!(endpoint = %endpoint.id, "webhook endpoint disabled after failing for too long");
            Ok(true)
        }
        // An admin changed it meanwhile: read it again.
        Err(StoreError::Domain(_) | StoreError::Invalid { .. } | StoreError::NotFound) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Waits `wait` before the next attempt, reading the endpoint again every scan interval and
/// at every change made through this process; `false` as soon as it changed (its version or
/// state, or its checkpoint from `checkpoint`), or on shutdown.
async fn wait_unchanged(
    ctx: &Ctx,
    endpoint: &WebhookEndpointRecord,
    checkpoint: Position,
    wait: Duration,
) -> Result<bool, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    let scan_interval = ctx
        .webhooks
        .config()
        .scan_interval
        .max(Duration::from_millis(10));
    let mut changes = ctx.webhooks.changes();
    let mut shutdown = ctx.shutdown.clone();
    loop {
        changes.borrow_and_update();
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(true);
        }
        let nap = (deadline - now).min(scan_interval);
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = changes.changed() => {}
            _ = stopped(&mut shutdown) => return Ok(false),
        }
        let Some(current) = ctx.store.webhook_endpoint(endpoint.id).await? else {
            return Ok(false);
        };
        if current.version != endpoint.version
            || current.checkpoint != checkpoint
            || current.state != WebhookState::Active
        {
            return Ok(false);
        }
    }
}
