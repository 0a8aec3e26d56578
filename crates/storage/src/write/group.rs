//! Group commit: the queue into one writer task per store, which runs whatever is waiting as
//! one batch (see the module above).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Weak};

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::batch::{Batches, BeforeCommitHook, Begun};
use super::plan::Prepared;
use crate::backend::{is_unique_violation, Db};
use crate::error::StoreError;
use crate::feed::Feed;
use crate::model::{CommandOutcome, PendingCommand};

/// The default most commands per group-commit batch.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// How many commands may wait for the writer before callers wait to queue. Queued commands
/// are bounded by the callers anyway (each waits for its answer); this only caps a burst.
const QUEUE_CAPACITY: usize = 4096;

type Reply = oneshot::Sender<Result<CommandOutcome, StoreError>>;

/// A queued command and where its answer goes.
struct Job {
    prepared: Prepared,
    reply: Reply,
    /// The caller's span: the batch's span is a child of the first caller's and follows from
    /// the others', so a trace shows the commit its command was part of.
    span: tracing::Span,
}

/// The writer of one store: its queue, its task, and what its batches share.
#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// The receiving end, until [`Writer::start`] moves it into the task.
    receiver: Mutex<Option<mpsc::Receiver<Job>>>,
    /// The writer task, awaited on close.
    task: Mutex<Option<JoinHandle<()>>>,
}

/// What the writer task shares with the callers.
#[derive(Debug)]
struct Shared {
    batches: Batches,
    /// Most commands per batch; 1 turns grouping off (each `execute` runs its own
    /// transaction in the caller's task).
    max_batch: usize,
    /// The queue into the writer task: `None` when grouping is off, and taken on close so that
    /// no new command is accepted.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writer {
    pub(crate) fn new(db: Db, feed: Arc<Feed>, max_batch: usize) -> Writer {
        let (queue, receiver) = if max_batch > 1 {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Writer {
            shared: Arc::new(Shared {
                batches: Batches::new(db, feed),
                max_batch,
                queue: Mutex::new(queue),
            }),
            receiver: Mutex::new(receiver),
            task: Mutex::new(None),
        }
    }

    /// Spawns the writer task (when grouping is on). The task holds the writer weakly.
    pub(crate) fn start(&self) {
        if let Some(rx) = lock(&self.receiver).take() {
            let task = tokio::spawn(run(rx, Arc::downgrade(&self.shared), self.shared.max_batch));
            *lock(&self.task) = Some(task);
        }
    }

    /// Accepts no more commands, answers those still queued with an error, and waits for the
    /// batch in flight (if any) to finish.
    pub(crate) async fn close(&self) {
        drop(lock(&self.shared.queue).take());
        let task = lock(&self.task).take();
        if let Some(task) = task {
            // Senders still in callers' hands keep the queue open until they are used; the
            // task answers those commands with an error, so this ends.
            let _ = task.await;
        }
    }

    /// Installs (or removes) the [`BeforeCommitHook`].
    pub(crate) fn set_hook(&self, hook: Option<BeforeCommitHook>) {
        self.shared.batches.set_hook(hook);
    }

    /// Commands waiting for the writer (for tests).
    pub(crate) fn queued(&self) -> usize {
        lock(&self.shared.queue)
            .as_ref()
            .map_or(0, |q| q.max_capacity() - q.capacity())
    }

    /// Append transactions committed (for tests).
    pub(crate) fn commits(&self) -> u64 {
        self.shared.batches.commits()
    }

    /// Append transactions begun beside the previous batch's commit (for tests).
    pub(crate) fn begun_ahead(&self) -> u64 {
        self.shared.batches.begun_ahead()
    }

    /// Runs a batch in one transaction, in an `append_batch` span (see
    /// `Store::execute_batch`).
    pub(crate) async fn execute_batch(
        &self,
        batch: Vec<PendingCommand>,
    ) -> Vec<Result<CommandOutcome, StoreError>> {
        let span = tracing::info_span!("append_batch", size = batch.len());
        let batch = batch.into_iter().map(Prepared::new).collect();
        self.shared.batches.execute(batch).instrument(span).await
    }

    /// Runs one command (through the queue), after the checks that need no article, retrying
    /// up to twice if it lost a race on a unique constraint (which the serialised write path
    /// makes unlikely; a retry then sees the winner's result).
    pub(crate) async fn execute(
        &self,
        pending: PendingCommand,
    ) -> Result<CommandOutcome, StoreError> {
        // Refusals that need no article (roles, sizes) are made here, before the command
        // waits for the shared writer.
        galley_domain::precheck(&pending.command)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.submit(pending.clone()).await;
            match result {
                Err(StoreError::Backend(e)) if is_unique_violation(&e) && attempts < 3 => {
                    tracing::debug!(error = %e, "append lost a race; retrying");
                }
                other => return other,
            }
        }
    }

    /// Runs one command through the queue, or directly when grouping is off.
    async fn submit(&self, pending: PendingCommand) -> Result<CommandOutcome, StoreError> {
        if self.shared.max_batch <= 1 {
            return self
                .execute_batch(vec![pending])
                .await
                .pop()
                .unwrap_or_else(|| Err(StoreError::Corrupt("empty batch result".to_owned())));
        }
        let Some(queue) = lock(&self.shared.queue).clone() else {
            return Err(StoreError::Closed);
        };
        let (reply, answer) = oneshot::channel();
        if queue
            .send(Job {
                prepared: Prepared::new(pending),
                reply,
                span: tracing::Span::current(),
            })
            .await
            .is_err()
        {
            return Err(StoreError::Closed);
        }
        drop(queue);
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::BatchFailed {
                reason: "the group-commit writer stopped before answering".to_owned(),
            })
        })
    }
}

/// The writer task: one batch at a time until the queue closes.
async fn run(mut rx: mpsc::Receiver<Job>, shared: Weak<Shared>, max_batch: usize) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    // The transaction the last batch began for this one (see `Begun`): begun only when
    // commands were already waiting, so the next `recv_many` returns at once.
    let mut ahead: Option<Begun> = None;
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        // A caller that went away before its batch began is skipped: without group commit its
        // transaction would have been rolled back, and nobody waits for the answer.
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.is_empty() {
            Begun::abandon(&mut ahead).await;
            continue;
        }
        let open = shared
            .upgrade()
            .filter(|shared| lock(&shared.queue).is_some());
        let Some(shared) = open else {
            // The store is closing: answer instead of writing.
            Begun::abandon(&mut ahead).await;
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(StoreError::Closed));
            }
            continue;
        };
        let span = tracing::info_span!(parent: &jobs[0].span, "append_batch", size = jobs.len());
        for job in &jobs[1..] {
            span.follows_from(&job.span);
        }
        let (batch, replies): (Vec<Prepared>, Vec<Reply>) =
            jobs.drain(..).map(|job| (job.prepared, job.reply)).unzip();
        let n = batch.len();
        // A panic inside the batch (a bug, or a test hook) must not kill the writer and strand
        // every later caller; the batch's callers get an error instead.
        let more = || !rx.is_empty();
        let results = shared
            .batches
            .execute_in(batch, &mut ahead, more)
            .instrument(span);
        let results = AssertUnwindSafe(results)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                (0..n)
                    .map(|_| {
                        Err(StoreError::BatchFailed {
                            reason: "a command of the batch panicked".to_owned(),
                        })
                    })
                    .collect()
            });
        // Release the writer before answering, so that the last clone's drop is not delayed.
        drop(shared);
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
    Begun::abandon(&mut ahead).await;
}
