//! Group commit: one writer task per store gathers concurrent [`Store::execute`] calls into one
//! transaction, so that many commands share one commit (one fsync).
//!
//! Callers queue their command with a oneshot for the reply. The writer takes the first queued
//! command, drains whatever else is already waiting (up to `max_batch`, without lingering),
//! and runs them through [`Store::execute_batch`]: one transaction, each command checked
//! against its own expected version, the accepted ones written set-based, one commit (see
//! [`crate::batch`]). Every caller is answered only after that commit; if the batch fails
//! before or at commit, every caller gets an error and nothing of the batch is visible.
//! Commands in one batch are decided in queue order, so a later command on the same article
//! decides against the state the earlier ones left.
//!
//! The writer holds a pool connection only while a batch runs, and holds the store only
//! weakly: dropping the last [`Store`] clone closes the queue and the task ends.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures::FutureExt;
use galley_domain::{Article, ArticleId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::append::PendingCommand;
use crate::error::StoreError;
use crate::model::CommandOutcome;
use crate::store::{Inner, Store};

/// The default most commands per group-commit batch.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// How many commands may wait for the writer before callers wait to queue. Queued commands
/// are bounded by the callers anyway (each waits for its answer); this only caps a burst.
const QUEUE_CAPACITY: usize = 4096;

type Reply = oneshot::Sender<Result<CommandOutcome, StoreError>>;

/// A queued command and where its answer goes.
struct Job {
    pending: PendingCommand,
    reply: Reply,
    /// The caller's span: the batch's span is a child of the first caller's and follows from
    /// the others', so a trace shows the commit its command was part of.
    span: tracing::Span,
}

/// The group-commit writer of one store.
#[derive(Debug)]
pub(crate) struct Writer {
    /// Most commands per batch; 1 turns grouping off (each `execute` runs its own
    /// transaction in the caller's task, as before group commit).
    max_batch: usize,
    /// The queue into the writer task: `None` when grouping is off, and taken on close so that
    /// no new command is accepted.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    /// The receiving end, until [`Writer::start`] moves it into the task.
    receiver: Mutex<Option<mpsc::Receiver<Job>>>,
    /// The writer task, awaited on close.
    task: Mutex<Option<JoinHandle<()>>>,
    /// Append transactions committed by this store (grouped or not), so tests can tell that
    /// concurrent commands were grouped without measuring time.
    pub(crate) commits: AtomicU64,
    /// Recently written articles as committed, so an append reads only its stream's tail, or
    /// nothing at all when no other process appended since.
    pub(crate) aggregates: Aggregates,
    /// Held by [`Store::execute_batch`] for a whole batch, from before its transaction begins
    /// until the aggregates are updated after its commit, so that batches of one store (the
    /// writer task's, or concurrent callers' with grouping off) update [`Aggregates`] in
    /// commit order. They are serialised by the log lock anyway.
    pub(crate) batch_lock: tokio::sync::Mutex<()>,
}

/// How many articles [`Aggregates`] keeps.
const AGGREGATE_CACHE: usize = 1024;

/// Articles as of a committed version, filled only after a commit: committed events never
/// change, so such an article plus the events after its version is always the whole stream
/// folded, whatever other processes appended since. A miss costs a full replay, nothing more.
///
/// It also knows when the tail is certainly empty: `last_head` is the head this store's last
/// batch committed, and every position in `(clean_since, last_head]` was appended by this
/// store. A batch that finds the head still at `last_head` knows that nobody else appended
/// since, so an entry committed at or after `clean_since` is the article as it is now: no read
/// at all. A batch that finds another head reads the tails and moves `clean_since` to that
/// head when it commits.
#[derive(Debug, Default)]
pub(crate) struct Aggregates(Mutex<Cache>);

#[derive(Debug, Default)]
struct Cache {
    articles: HashMap<ArticleId, (Article, u64)>,
    last_head: Option<u64>,
    clean_since: u64,
}

/// An article the cache has, and whether it is certainly current.
pub(crate) struct Cached {
    pub(crate) article: Article,
    pub(crate) current: bool,
}

impl Aggregates {
    /// Takes the article out (the batch that takes it puts it back when it commits; a batch
    /// that fails leaves a miss, which costs a replay), and says whether it is current at
    /// `head`, the head the batch read under the log lock. Taking rather than cloning spares
    /// copying every revision of a long article for each batch.
    pub(crate) fn take(&self, id: ArticleId, head: u64) -> Option<Cached> {
        let mut cache = lock(&self.0);
        let clean = cache.last_head == Some(head);
        let clean_since = cache.clean_since;
        cache.articles.remove(&id).map(|(article, as_of)| Cached {
            article,
            current: clean && as_of >= clean_since,
        })
    }

    /// Keeps the articles a batch that began at head `began` left, once it has committed at
    /// head `committed` (or rolled back, having written nothing: `committed == began`); they
    /// are current as of that head (the batch held the log lock from reading their tails to
    /// its end).
    pub(crate) fn put(
        &self,
        began: u64,
        committed: u64,
        articles: impl IntoIterator<Item = (ArticleId, Article)>,
    ) {
        let mut cache = lock(&self.0);
        if cache.last_head != Some(began) {
            // Someone else appended up to `began`: only entries from now on are clean.
            cache.clean_since = began;
        }
        cache.last_head = Some(committed);
        for (id, article) in articles {
            if cache.articles.len() >= AGGREGATE_CACHE && !cache.articles.contains_key(&id) {
                // Any entry will do: a miss only costs a replay.
                if let Some(evict) = cache.articles.keys().next().copied() {
                    cache.articles.remove(&evict);
                }
            }
            cache.articles.insert(id, (article, committed));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writer {
    pub(crate) fn new(max_batch: usize) -> Writer {
        let (queue, receiver) = if max_batch > 1 {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Writer {
            max_batch,
            queue: Mutex::new(queue),
            receiver: Mutex::new(receiver),
            task: Mutex::new(None),
            commits: AtomicU64::new(0),
            aggregates: Aggregates::default(),
            batch_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Spawns the writer task (when grouping is on). The task holds the store weakly.
    pub(crate) fn start(inner: &Arc<Inner>) {
        let writer = &inner.writer;
        if let Some(rx) = lock(&writer.receiver).take() {
            let task = tokio::spawn(run(rx, Arc::downgrade(inner), writer.max_batch));
            *lock(&writer.task) = Some(task);
        }
    }

    /// Accepts no more commands, answers those still queued with an error, and waits for the
    /// batch in flight (if any) to finish.
    pub(crate) async fn close(&self) {
        drop(lock(&self.queue).take());
        let task = lock(&self.task).take();
        if let Some(task) = task {
            // Senders still in callers' hands keep the queue open until they are used; the
            // task answers those commands with an error, so this ends.
            let _ = task.await;
        }
    }

    /// Commands waiting for the writer (for tests).
    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue)
            .as_ref()
            .map_or(0, |q| q.max_capacity() - q.capacity())
    }
}

impl Store {
    /// Runs one command through the writer, or directly when grouping is off.
    pub(crate) async fn submit(
        &self,
        pending: PendingCommand,
    ) -> Result<CommandOutcome, StoreError> {
        let writer = &self.inner.writer;
        if writer.max_batch <= 1 {
            return self
                .execute_batch(vec![pending])
                .await
                .pop()
                .unwrap_or_else(|| Err(StoreError::Corrupt("empty batch result".to_owned())));
        }
        let Some(queue) = lock(&writer.queue).clone() else {
            return Err(StoreError::Closed);
        };
        let (reply, answer) = oneshot::channel();
        if queue
            .send(Job {
                pending,
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

    /// Append transactions this store has committed (grouped or not). For tests.
    #[doc(hidden)]
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits.load(Ordering::Relaxed)
    }

    /// Commands waiting in the group-commit queue, not yet taken into a batch. For tests.
    #[doc(hidden)]
    pub fn queued_commands(&self) -> usize {
        self.inner.writer.queued()
    }
}

/// The writer task: one batch at a time until the queue closes.
async fn run(mut rx: mpsc::Receiver<Job>, store: Weak<Inner>, max_batch: usize) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        // A caller that went away before its batch began is skipped: without group commit its
        // transaction would have been rolled back, and nobody waits for the answer.
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let closed = store
            .upgrade()
            .filter(|inner| lock(&inner.writer.queue).is_some());
        let Some(inner) = closed else {
            // The store is closing: answer instead of writing.
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(StoreError::Closed));
            }
            continue;
        };
        let store = Store { inner };
        let span = tracing::info_span!(parent: &jobs[0].span, "append_batch", size = jobs.len());
        for job in &jobs[1..] {
            span.follows_from(&job.span);
        }
        let (batch, replies): (Vec<PendingCommand>, Vec<Reply>) =
            jobs.drain(..).map(|job| (job.pending, job.reply)).unzip();
        let n = batch.len();
        // A panic inside the batch (a bug, or a test hook) must not kill the writer and strand
        // every later caller; the batch's callers get an error instead.
        let results = AssertUnwindSafe(store.execute_batch_in(batch).instrument(span))
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
        // Release the store before answering, so that the last clone's drop is not delayed.
        drop(store);
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}
