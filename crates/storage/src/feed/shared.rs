//! One log read per commit per process, shared by every subscriber.
//!
//! A reader task per store (started by the first subscription) waits for the doorbell and
//! reads the log after the last position it has seen, unfiltered, into a tail of the newest
//! events ([`TAIL_EVENTS`] at most, contiguous). Subscribers wait for the tail to move and take
//! what matches their filter from memory, so 500 subscribers cost one query per commit, not
//! 500. The events this store's own writer commits are handed to the tail at commit
//! ([`Feed::committed`]) when the tail ends where the commit began, so on a single replica the
//! reader reads nothing at all: it reads only what other processes commit (rung by their
//! notifications), after an unconditional ring, and to catch up. A subscriber the tail does
//! not cover (its position is older than the tail's oldest
//! event: a catch-up from an earlier position, or one that fell behind) reads the log itself
//! with its own filter, exactly as every subscriber did before, until the tail covers it.
//!
//! The tail holds positions `(base, last]` with no hole (the log has none, and the reader
//! appends pages in position order), so "covered" is `base <= position <= last`, and taking
//! every event after `position` from it can neither skip nor repeat one. A failed shared read
//! uncovers everyone until the next one succeeds: subscribers then read the log themselves
//! and see its error, as before.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::stream::BoxStream;
use tokio::sync::watch;

use super::bell::{Bell, Doorbell};
use crate::backend::Db;
use crate::error::StoreError;
use crate::log;
use crate::model::{EventFilter, Position, StoredEvent};

/// How many events a query reads (the shared reader's and a subscriber's own).
const READ_PAGE: u32 = 500;

/// The most events the shared tail keeps.
pub(crate) const TAIL_EVENTS: usize = 2_048;

/// How long the shared reader waits after a failed read before it tries again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The live feed of one store: its doorbell and the shared tail of the log.
#[derive(Debug)]
pub(crate) struct Feed {
    bell: Doorbell,
    shared: Arc<Shared>,
    db: Db,
    /// Names this store in its appends' notifications (see [`Feed::notified`]).
    origin: String,
}

#[derive(Debug)]
struct Shared {
    tail: Mutex<Tail>,
    /// Changes whenever the tail moves (or the feed closes).
    moved: watch::Sender<()>,
    /// Whether the reader task runs.
    started: std::sync::Once,
    capacity: usize,
    /// Log queries made for subscribers: the shared reader's and their own.
    reads: AtomicU64,
}

/// The newest events, contiguous, oldest first.
#[derive(Debug, Default)]
struct Tail {
    events: VecDeque<StoredEvent>,
    /// The position after which `events` start (the tail covers `(base, last]`).
    base: Position,
    /// `None` until the reader has read the head once, and after a failed read.
    last: Option<Position>,
}

impl Tail {
    /// What follows `position` and matches `filter`, and the position now covered; `None`
    /// when the tail does not cover `position`.
    fn after(
        &self,
        position: Position,
        filter: &EventFilter,
    ) -> Option<(Vec<StoredEvent>, Position)> {
        let last = self.last?;
        if position < self.base || position > last {
            return None;
        }
        let skip = (position - self.base) as usize;
        let events = self
            .events
            .iter()
            .skip(skip)
            .filter(|e| filter.matches(e))
            .cloned()
            .collect();
        Some((events, last))
    }

    /// Appends the events of `page` after the last one held (a page may overlap what the
    /// writer put in meanwhile: those are skipped, so the tail stays contiguous).
    fn push(&mut self, page: Vec<StoredEvent>, capacity: usize) {
        let last = self.last.unwrap_or(self.base);
        for event in page.into_iter().filter(|e| e.position > last) {
            self.events.push_back(event);
        }
        while self.events.len() > capacity {
            if let Some(old) = self.events.pop_front() {
                self.base = old.position;
            }
        }
        if let Some(newest) = self.events.back() {
            self.last = Some(newest.position);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Feed {
    /// A feed over `db` whose shared tail keeps at most `capacity` events (0: no tail, every
    /// subscriber reads the log itself).
    pub(crate) fn new(db: Db, capacity: usize) -> Feed {
        Feed {
            bell: Doorbell::new(),
            shared: Arc::new(Shared {
                tail: Mutex::new(Tail::default()),
                moved: watch::Sender::new(()),
                started: std::sync::Once::new(),
                capacity,
                reads: AtomicU64::new(0),
            }),
            db,
            origin: uuid::Uuid::now_v7().simple().to_string(),
        }
    }

    /// What names this store's appends in their notifications.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// A notification of an append (`<head>` or `<head> <origin>`) from the PostgreSQL
    /// listener. This store's own are left to its writer, which hands their events to the
    /// tail and rings after the commit (the notification may arrive first, and a read for it
    /// would find the tail already behind); any other rings for its head, and one that does
    /// not parse rings unconditionally.
    pub(crate) fn notified(&self, payload: &str) {
        let (head, origin) = match payload.split_once(' ') {
            Some((head, origin)) => (head, Some(origin)),
            None => (payload, None),
        };
        match head.parse::<Position>() {
            Ok(_) if origin == Some(self.origin.as_str()) => {}
            Ok(head) => self.bell.bump(head),
            Err(_) => self.bell.ring(),
        }
    }

    /// Rings for a head that is newer than any seen so far.
    pub(crate) fn bump(&self, head: Position) {
        self.bell.bump(head);
    }

    /// This store's writer committed `events`, the log's positions after `began` (the head
    /// its transaction found under the log lock) up to the new head, and then rings. When
    /// the tail ends at `began`, nothing can lie between, so the events join the tail and the
    /// shared reader has nothing to read for this commit; otherwise (the reader is behind, has
    /// read them already, or has not started) the reader reads the log as for any ring.
    pub(crate) fn committed(&self, began: Position, events: Vec<StoredEvent>) {
        let Some(head) = events.last().map(|e| e.position) else {
            return;
        };
        if self.shared.capacity > 0 {
            let contiguous = events
                .iter()
                .zip(began + 1..)
                .all(|(e, expected)| e.position == expected);
            let mut tail = lock(&self.shared.tail);
            if contiguous && tail.last == Some(began) {
                tail.push(events, self.shared.capacity);
                drop(tail);
                self.shared.moved.send_replace(());
            }
        }
        self.bell.bump(head);
    }

    /// The doorbell, for a task that follows the log on its own (the search indexer).
    pub(crate) fn listen(&self) -> watch::Receiver<Bell> {
        self.bell.listen()
    }

    /// Rings unconditionally, for when appends may have been missed.
    pub(crate) fn ring(&self) {
        self.bell.ring();
    }

    /// Ends every subscription.
    pub(crate) fn close(&self) {
        self.bell.close();
        self.shared.moved.send_replace(());
    }

    /// Log queries made for subscribers so far.
    pub(crate) fn reads(&self) -> u64 {
        self.shared.reads.load(Ordering::Relaxed)
    }

    /// Starts the shared reader, once (inside a runtime: called from a stream's body).
    fn start_reader(&self) {
        if self.shared.capacity == 0 {
            return;
        }
        self.shared.started.call_once(|| {
            tokio::spawn(read_tail(
                self.db.clone(),
                self.bell.listen(),
                Arc::downgrade(&self.shared),
            ));
        });
    }

    /// Every event after `after` that matches the filter, exactly once and in position order:
    /// the catch-up from the log, then live (see `Store::subscribe`).
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        after: Position,
        filter: EventFilter,
    ) -> BoxStream<'static, Result<StoredEvent, StoreError>> {
        let feed = self.clone();
        let mut moved = self.shared.moved.subscribe();
        let mut bell = self.bell.listen();
        Box::pin(async_stream::try_stream! {
            feed.start_reader();
            let mut position = after;
            loop {
                // Mark the current state as seen before looking, so that whatever moves
                // during the look wakes this subscriber again.
                moved.borrow_and_update();
                if bell.borrow_and_update().closed {
                    break;
                }
                let covered = lock(&feed.shared.tail).after(position, &filter);
                if let Some((events, last)) = covered {
                    for event in events {
                        yield event;
                    }
                    position = last;
                    if moved.changed().await.is_err() {
                        break;
                    }
                    continue;
                }
                // Not covered: read the log itself. Whatever the tail's reader has seen
                // committed before this read is in its result, so the position may move to
                // there even when nothing matches.
                let seen = lock(&feed.shared.tail).last;
                feed.shared.reads.fetch_add(1, Ordering::Relaxed);
                let page = log::read::read_all(feed.db.reader(), position, READ_PAGE, &filter).await?;
                let full = page.len() == READ_PAGE as usize;
                for event in page {
                    position = event.position;
                    yield event;
                }
                if full {
                    continue;
                }
                if let Some(seen) = seen {
                    position = position.max(seen);
                }
                if feed.shared.capacity == 0 || seen.is_none() {
                    // No tail to follow (yet): wait for the doorbell, as subscribers always
                    // did, or for the tail to start.
                    tokio::select! {
                        rung = bell.changed() => if rung.is_err() { break },
                        moved = moved.changed() => if moved.is_err() { break },
                    }
                }
            }
        })
    }
}

/// The shared reader: after every ring, the log after the tail's last position, into the
/// tail; nothing when the tail already holds the head the bell carries (this store's own
/// commits, see [`Feed::committed`]) and the ring was not unconditional.
async fn read_tail(db: Db, mut bell: watch::Receiver<Bell>, shared: Weak<Shared>) {
    let mut rings = None;
    loop {
        let rung = *bell.borrow_and_update();
        let Some(state) = shared.upgrade() else {
            return;
        };
        if rung.closed {
            state.moved.send_replace(());
            return;
        }
        let last = lock(&state.tail).last;
        if rings == Some(rung.rings) && last.is_some_and(|last| last >= rung.head) {
            drop(state);
            if bell.changed().await.is_err() {
                return;
            }
            continue;
        }
        rings = Some(rung.rings);
        let read = match last {
            // First the head, so that the tail starts at the present, not at the beginning.
            None => log::read::head(db.reader()).await.map(Err),
            Some(after) => {
                state.reads.fetch_add(1, Ordering::Relaxed);
                log::read::read_all(db.reader(), after, READ_PAGE, &EventFilter::default())
                    .await
                    .map(Ok)
            }
        };
        let full = match read {
            Ok(Err(head)) => {
                let mut tail = lock(&state.tail);
                tail.events.clear();
                tail.base = head;
                tail.last = Some(head);
                // Read at once what may have committed since.
                true
            }
            Ok(Ok(page)) => {
                let full = page.len() == READ_PAGE as usize;
                lock(&state.tail).push(page, state.capacity);
                full
            }
            Err(e) => {
                tracing::warn!(error = %e, "the feed's shared read failed; retrying");
                // Uncover everyone: subscribers read the log themselves (and see the error)
                // until a read succeeds again from a fresh head.
                *lock(&state.tail) = Tail::default();
                state.moved.send_replace(());
                drop(state);
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        state.moved.send_replace(());
        drop(state);
        if full {
            continue;
        }
        if bell.changed().await.is_err() {
            return;
        }
    }
}
