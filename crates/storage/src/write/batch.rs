//! One batch of commands, one transaction, a near-constant number of round trips.
//!
//! Appends are serialised (the `log_head` row lock; SQLite's single writer), so everything a
//! batch does between taking the lock and committing is the append rate's limit. Running each
//! command on its own (savepoint, stream read, slug check, a dozen single-row statements,
//! read-back) cost about twelve round trips per command. A batch now runs in two phases:
//!
//! 1. **Decide, in memory.** Under the lock, the batch reads what it needs in a few queries
//!    for the whole batch: the articles' stream tails (none at all when the head is the one
//!    this store last committed, since the cached aggregates are then current; see
//!    [`super::aggregates::Aggregates`]), the idempotency keys it uses and the holders of the slugs
//!    its new contents claim. Then every command, in queue order, is decided against the
//!    state the earlier ones left, with its own expected version; its events get the next
//!    positions. A refused command (conflict, domain refusal, taken slug, reused key) is
//!    simply left out of what is written: nothing was written for it, so no savepoint is
//!    needed and nothing of it can leak into the others.
//! 2. **Write, set-based.** One multi-row statement per table for the whole batch
//!    (`crate::log::append` and `crate::projections::Rows`; on PostgreSQL sent as two
//!    statements in all), each article's row written
//!    once with the state the batch left. The articles an outcome reports are built in memory
//!    from the same state that was written (in debug builds, checked against the rows read
//!    back), so there is no read-back either.
//!
//! Then the head moves once, the before-commit hook runs, and the transaction commits once;
//! if anything fails before or at the commit, no command of the batch is acknowledged. The
//! committed events go to the feed's shared tail (`Feed::committed`), so live subscribers of
//! this process get them without a read of the log. On
//! PostgreSQL a batch of revisions that keep their slugs and tags costs three round trips,
//! however many commands it holds: `BEGIN` with the head under lock (one simple-protocol
//! message, see `crate::backend` `PgTx`; sent beside the previous batch's `COMMIT` when
//! commands were waiting, see [`Begun`]), one write that also moves the head and calls
//! `pg_notify`, and `COMMIT`. A batch that claims new slugs adds a holders query, and one
//! that creates articles, changes slugs or tags, or opens review cycles a second write.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use galley_domain::{Article, ArticleId};

use super::aggregates::Aggregates;
use super::plan::{
    decide_early, plan, read_holders, read_tails, same_article_for_retried_creates, Plan, Prepared,
    Snapshot, Verdict,
};
use crate::backend::{BackendKind, Db, Tx};
use crate::error::StoreError;
use crate::feed::Feed;
use crate::log::append::LogRows;
use crate::log::keys;
use crate::model::{ArticleRecord, CommandOutcome, StoredEvent};
use crate::projections::Rows;

/// What a [`BeforeCommitHook`] decides.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitDecision {
    /// Go on and commit.
    Commit,
    /// Roll the transaction back, as a crash before commit would.
    Abort,
}

/// A test hook run inside every append transaction after its events are written and before it
/// commits, with the events about to commit. The contract suite uses it to hold a writer's
/// transaction open (out-of-order commits) and to abort transactions mid-way. `None` in
/// production.
#[doc(hidden)]
pub type BeforeCommitHook =
    Arc<dyn Fn(Vec<StoredEvent>) -> BoxFuture<'static, CommitDecision> + Send + Sync>;

/// What every batch of one store uses.
pub(crate) struct Batches {
    db: Db,
    /// Rung after every commit.
    feed: Arc<Feed>,
    /// See [`BeforeCommitHook`].
    hook: RwLock<Option<BeforeCommitHook>>,
    /// Append transactions committed by this store (grouped or not), so tests can tell that
    /// concurrent commands were grouped without measuring time.
    commits: AtomicU64,
    /// Transactions begun beside the previous batch's commit (see [`Begun`]), for tests.
    begun_ahead: AtomicU64,
    /// Recently written articles as committed (see [`Aggregates`]).
    aggregates: Aggregates,
    /// Held for a whole batch, from before its transaction begins until the aggregates are
    /// updated after its commit, so that batches of one store (the writer task's, or
    /// concurrent callers' with grouping off) update [`Aggregates`] in commit order. They are
    /// serialised by the log lock anyway.
    batch_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("commits", &self.commits)
            .finish_non_exhaustive()
    }
}

impl Batches {
    pub(crate) fn new(db: Db, feed: Arc<Feed>) -> Batches {
        Batches {
            db,
            feed,
            hook: RwLock::new(None),
            commits: AtomicU64::new(0),
            begun_ahead: AtomicU64::new(0),
            aggregates: Aggregates::default(),
            batch_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn hook(&self) -> Option<BeforeCommitHook> {
        self.hook.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Installs (or removes) the [`BeforeCommitHook`].
    pub(crate) fn set_hook(&self, hook: Option<BeforeCommitHook>) {
        *self.hook.write().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    /// Append transactions committed.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Transactions begun beside the previous batch's commit.
    pub(crate) fn begun_ahead(&self) -> u64 {
        self.begun_ahead.load(Ordering::Relaxed)
    }

    /// A batch in one transaction, each command answered (see `Store::execute_batch`); a
    /// failure of the whole batch fails every command.
    pub(crate) async fn execute(
        &self,
        batch: Vec<Prepared>,
    ) -> Vec<Result<CommandOutcome, StoreError>> {
        self.execute_in(batch, &mut None, || false).await
    }

    /// [`Batches::execute`] for the writer task, with the slot of a transaction begun ahead
    /// (see [`Begun`]): the batch takes the one it holds, if any, and when `more` says another
    /// batch is already waiting as this one commits, it leaves the next batch's there.
    pub(crate) async fn execute_in(
        &self,
        batch: Vec<Prepared>,
        ahead: &mut Option<Begun>,
        more: impl Fn() -> bool,
    ) -> Vec<Result<CommandOutcome, StoreError>> {
        let n = batch.len();
        match try_batch(self, batch, ahead, more).await {
            Ok(results) => results,
            Err(e) => {
                let message = e.to_string();
                let mut out = Vec::with_capacity(n);
                out.push(Err(e));
                while out.len() < n {
                    out.push(Err(StoreError::BatchFailed {
                        reason: message.clone(),
                    }));
                }
                out.truncate(n);
                out
            }
        }
    }
}

/// An append transaction begun, with the log locked, while the batch before it committed.
///
/// On PostgreSQL every batch waits for the one before it, and its first round trip (`BEGIN`
/// and the lock) used to start only after the previous `COMMIT` had returned. When commands
/// are already waiting as a batch commits, the writer sends the next `BEGIN … FOR UPDATE` on
/// another connection beside the `COMMIT`: PostgreSQL makes it wait for the lock, so it
/// returns the head as the commit left it, and the next batch starts with its transaction
/// open. Nothing is decided before that batch runs (it still waits for this one's outcome
/// under the batch lock). A transaction begun for a batch that does not come (its callers
/// went away, the store closes) is rolled back at once, so the lock is never held idle.
#[derive(Debug)]
pub(crate) struct Begun {
    task: tokio::task::JoinHandle<Result<(Tx, u64), StoreError>>,
}

impl Begun {
    /// The transaction and the head it read under the lock.
    async fn open(self) -> Result<(Tx, u64), StoreError> {
        self.task.await.unwrap_or_else(|e| {
            Err(StoreError::BatchFailed {
                reason: format!("beginning the append transaction failed: {e}"),
            })
        })
    }

    /// Rolls back the transaction the slot holds, if any, releasing the log lock.
    pub(crate) async fn abandon(ahead: &mut Option<Begun>) {
        let Some(begun) = ahead.take() else { return };
        if let Ok((tx, _)) = begun.open().await {
            if let Err(e) = tx.rollback().await {
                tracing::debug!(error = %e, "rolling back an unused append transaction failed");
            }
        }
    }
}

/// The article an outcome reports, as the row holds it.
fn as_stored(snapshot: &Snapshot, tx: &Tx) -> Option<ArticleRecord> {
    let mut r = snapshot.record.clone()?;
    for t in [
        &mut r.embargo_until,
        &mut r.scheduled_for,
        &mut r.first_submitted_at,
        &mut r.submitted_at,
        &mut r.first_published_at,
        &mut r.last_published_at,
    ]
    .into_iter()
    .flatten()
    {
        *t = tx.as_kept(*t);
    }
    r.created_at = tx.as_kept(r.created_at);
    r.updated_at = tx.as_kept(r.updated_at);
    Some(r)
}

/// The body of [`crate::Store::execute_batch`]: `Err` fails every command of the batch.
async fn try_batch(
    w: &Batches,
    mut batch: Vec<Prepared>,
    ahead: &mut Option<Begun>,
    more: impl Fn() -> bool,
) -> Result<Vec<Result<CommandOutcome, StoreError>>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let _serial = w.batch_lock.lock().await;
    let opened = match ahead.take() {
        // Beginning ahead failed (a lost connection, a timeout): the batch begins its own,
        // and meets the error itself only if it lasts.
        Some(begun) => begun
            .open()
            .await
            .inspect_err(|e| tracing::debug!(error = %e, "the transaction begun ahead failed"))
            .ok(),
        None => None,
    };
    let (mut tx, began) = match opened {
        Some(opened) => opened,
        None => w.db.begin_append().await?,
    };

    // Phase 1: read what the batch needs (a few queries for the whole batch), decide.
    let logged = keys::read(
        &mut tx,
        batch
            .iter()
            .filter_map(|p| p.pending.idempotency_key.as_deref())
            .collect(),
    )
    .await?;
    same_article_for_retried_creates(&mut batch, &logged);
    let ids: BTreeSet<ArticleId> = batch.iter().map(|p| p.pending.command.article_id).collect();
    let mut start = HashMap::new();
    let mut stale = Vec::new();
    for id in ids {
        match w.aggregates.take(id, began) {
            Some(cached) if cached.current => {
                start.insert(id, cached.article);
            }
            Some(cached) => stale.push((id, cached.article)),
            None => stale.push((id, Article::default())),
        }
    }
    start.extend(read_tails(&mut tx, stale).await?);
    let early = decide_early(&batch, &start);
    let holders = read_holders(&mut tx, &early.slugs).await?;
    let Plan {
        verdicts,
        slots,
        before,
        head,
    } = plan(&mut tx, &batch, start, &logged, holders, early, began).await?;

    // Phase 2: write what was accepted, one statement per table.
    let mut rows = Rows::default();
    let mut log = LogRows::default();
    let mut appended: Vec<StoredEvent> = Vec::new();
    for (verdict, prepared) in verdicts.iter().zip(&batch) {
        if let Verdict::Append { events, domain, .. } = verdict {
            for (stored, event) in events.iter().zip(domain) {
                log.event(stored);
                rows.event_rows(stored, event);
            }
            if let (Some(key), Some(first), Some(last)) = (
                &prepared.pending.idempotency_key,
                events.first(),
                events.last(),
            ) {
                log.key(
                    key,
                    &prepared.fingerprint,
                    prepared.pending.command.article_id,
                    first,
                    last,
                );
            }
            appended.extend(events.iter().cloned());
        }
    }
    for (id, slot) in slots.iter().filter(|(_, s)| s.changed) {
        let before = before.get(id).cloned().unwrap_or_default();
        rows.article(&slot.now, &before, slot.content_changed)?;
    }
    if !appended.is_empty() {
        log.head(head);
        log.origin(w.feed.origin());
        let log = log.into_parts(&tx);
        rows.flush(&mut tx, log).await?;
    }

    // The answers, built from what was decided and written.
    let mut results: Vec<Result<CommandOutcome, StoreError>> = Vec::with_capacity(verdicts.len());
    for verdict in verdicts {
        let answer = match verdict {
            Verdict::Refused(e) => Err(e),
            Verdict::Append {
                events, article, ..
            } => Ok(CommandOutcome {
                events,
                article: as_stored(&article, &tx).ok_or_else(|| {
                    StoreError::Corrupt("an appended article has no row".to_owned())
                })?,
                replayed: false,
            }),
            Verdict::ReplayInBatch { of, article } => {
                let events = match results.get(of) {
                    Some(Ok(original)) => original.events.clone(),
                    _ => {
                        return Err(StoreError::Corrupt(
                            "a replay of a command that did not append".to_owned(),
                        ))
                    }
                };
                Ok(CommandOutcome {
                    events,
                    article: as_stored(&article, &tx).ok_or(StoreError::NotFound)?,
                    replayed: true,
                })
            }
            Verdict::ReplayLogged {
                first,
                last,
                article,
            } => match as_stored(&article, &tx) {
                Some(record) => Ok(CommandOutcome {
                    events: crate::log::read::read_positions(tx.exec(), first, last).await?,
                    article: record,
                    replayed: true,
                }),
                None => Err(StoreError::NotFound),
            },
        };
        results.push(answer);
    }
    if appended.is_empty() {
        // Refusals and idempotent replays write nothing. The articles are as committed at
        // `began`, which is still the head.
        tx.rollback().await?;
        let articles = slots.into_iter().map(|(id, slot)| (id, slot.now));
        w.aggregates.put(began, began, articles);
        return Ok(results);
    }
    #[cfg(debug_assertions)]
    check_answers(&mut tx, &results).await?;

    // The events as a read of the log would return them, for the feed's tail.
    for event in &mut appended {
        event.recorded_at = tx.as_kept(event.recorded_at);
    }
    if let Some(hook) = w.hook() {
        if hook(appended.clone()).await == CommitDecision::Abort {
            tx.rollback().await?;
            return Err(StoreError::BatchFailed {
                reason: "the transaction was aborted before commit (test hook)".to_owned(),
            });
        }
    }
    // The next batch's `BEGIN` and lock beside this commit (see [`Begun`]), on PostgreSQL
    // only: SQLite's one write connection is free only once the commit returns.
    if w.db.kind() == BackendKind::Postgres && more() {
        let db = w.db.clone();
        w.begun_ahead.fetch_add(1, Ordering::Relaxed);
        *ahead = Some(Begun {
            task: tokio::spawn(async move { db.begin_append().await }),
        });
    }
    let committed = tx.commit().await;
    if let Err(e) = committed {
        // The commit may have happened all the same, and this store's listener leaves its
        // own notifications to the writer: the feed must read the log to find out.
        w.feed.ring();
        return Err(e.into());
    }
    w.commits.fetch_add(1, Ordering::Relaxed);
    w.aggregates.put(
        began,
        head,
        slots.into_iter().map(|(id, slot)| (id, slot.now)),
    );
    w.feed.committed(began, appended);
    Ok(results)
}

/// Debug builds: the article each outcome reports as the batch left it must be the row read
/// back, field for field (the outcomes are built in memory, without a read-back).
#[cfg(debug_assertions)]
async fn check_answers(
    tx: &mut Tx,
    results: &[Result<CommandOutcome, StoreError>],
) -> Result<(), StoreError> {
    let mut last: HashMap<ArticleId, &ArticleRecord> = HashMap::new();
    for outcome in results.iter().flatten() {
        last.insert(outcome.article.id, &outcome.article);
    }
    let ids: Vec<ArticleId> = last.keys().copied().collect();
    for row in crate::read::articles::articles_by_ids(tx.exec(), &ids).await? {
        if last.get(&row.id) != Some(&&row) {
            return Err(StoreError::Corrupt(format!(
                "the article built in memory {:?} differs from its row {row:?}",
                last.get(&row.id)
            )));
        }
    }
    Ok(())
}
