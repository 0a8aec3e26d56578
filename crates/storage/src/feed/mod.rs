//! The live feed's doorbell.
//!
//! A subscriber reads the log from its position, then waits for the doorbell and reads again.
//! The doorbell carries the newest head position this process knows of, but only to decide
//! whether to ring: readers always re-read the log, so a lost, late or duplicated ring can
//! delay an event but never lose, duplicate or reorder one.
//!
//! Appends on this process ring it after commit. On PostgreSQL, a listener task per store
//! ([`listen_postgres`]) hears the channels it is given (`NOTIFY galley_events`, sent by
//! appends of any process at their commit, and the token revocations' channel) and hands each
//! notification, and every moment when notifications may have been missed (a reconnection), to
//! a [`Listener`]: the store, which rings the doorbell and empties its token cache. The feed
//! knows nothing of what the store does with them.

use std::time::Duration;

use futures::stream::BoxStream;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::backend::Db;
use crate::error::StoreError;
use crate::log;
use crate::model::{EventFilter, Position, StoredEvent};

/// How many events a subscriber reads per query.
const SUBSCRIBE_PAGE: u32 = 500;

/// What the doorbell carries.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bell {
    /// The newest head this process has seen committed.
    head: Position,
    /// Set when the store closes; subscribers end.
    closed: bool,
}

/// The doorbell itself.
#[derive(Debug)]
pub(crate) struct Feed {
    bell: watch::Sender<Bell>,
}

impl Feed {
    pub(crate) fn new() -> Feed {
        Feed {
            bell: watch::Sender::new(Bell::default()),
        }
    }

    /// Rings for a head that is newer than any seen so far.
    pub(crate) fn bump(&self, head: Position) {
        self.bell.send_if_modified(|bell| {
            if head > bell.head {
                bell.head = head;
                true
            } else {
                false
            }
        });
    }

    /// Rings unconditionally, for when appends may have been missed.
    pub(crate) fn ring(&self) {
        self.bell.send_modify(|_| {});
    }

    pub(crate) fn close(&self) {
        self.bell.send_modify(|bell| bell.closed = true);
    }

    fn listen(&self) -> watch::Receiver<Bell> {
        self.bell.subscribe()
    }
}

/// What the PostgreSQL listener tells: each notification, and when some may have been missed.
pub(crate) trait Listener: Send + Sync + 'static {
    /// A notification on one of the channels listened to.
    fn notified(&self, channel: &str, payload: &str);
    /// While the listener was not listening (starting, reconnecting), notifications may have
    /// been sent and lost.
    fn missed(&self);
}

/// How long the listener waits for a notification before it checks that its connection still
/// answers. A network partition holds packets and closes nothing, so without this check a
/// listener would wait for ever on a dead connection while appends and revocations go unheard.
const LISTENER_HEARTBEAT: Duration = Duration::from_secs(10);

/// The PostgreSQL listener: forwards notifications to the doorbell until the pool closes.
/// `deadline` bounds each of its own statements (LISTEN, the heartbeat).
pub(crate) async fn listen_postgres(
    pool: PgPool,
    channels: Vec<&'static str>,
    target: std::sync::Weak<dyn Listener>,
    deadline: Duration,
) {
    loop {
        if pool.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "feed listener cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let listening =
            tokio::time::timeout(deadline, listener.listen_all(channels.iter().copied())).await;
        if let Err(e) = listening
            .map_err(|_| "no answer in time".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!(error = %e, "feed listener cannot LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let Some(to) = target.upgrade() else { return };
        to.missed();
        drop(to);
        loop {
            let received = match tokio::time::timeout(LISTENER_HEARTBEAT, listener.try_recv()).await
            {
                Ok(received) => received,
                Err(_) => {
                    let ping = tokio::time::timeout(
                        deadline,
                        sqlx::Executor::execute(&mut listener, "SELECT 1"),
                    )
                    .await;
                    if matches!(ping, Ok(Ok(_))) {
                        continue;
                    }
                    tracing::warn!("feed listener's connection does not answer; reconnecting");
                    let Some(to) = target.upgrade() else { return };
                    to.missed();
                    break;
                }
            };
            let Some(to) = target.upgrade() else { return };
            match received {
                Ok(Some(notification)) => {
                    to.notified(notification.channel(), notification.payload());
                }
                // The connection was lost and is re-established (with its LISTEN) by the next
                // call; whatever was notified meanwhile is lost.
                Ok(None) => {
                    tracing::warn!("feed listener lost its connection; reconnecting");
                    to.missed();
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "feed listener failed; reconnecting");
                    to.missed();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

/// Every event after `after` that matches the filter, exactly once and in position order:
/// the catch-up from the log, then a re-read at every ring (see `Store::subscribe`).
pub(crate) fn subscribe(
    feed: &Feed,
    db: Db,
    after: Position,
    filter: EventFilter,
) -> BoxStream<'static, Result<StoredEvent, StoreError>> {
    let mut bell = feed.listen();
    Box::pin(async_stream::try_stream! {
        let mut position = after;
        loop {
            // Mark the current ring as seen before reading, so that an append committing
            // during the read rings again and is read on the next turn.
            if bell.borrow_and_update().closed {
                break;
            }
            let page = log::read::read_all(db.reader(), position, SUBSCRIBE_PAGE, &filter).await?;
            let full = page.len() == SUBSCRIBE_PAGE as usize;
            for event in page {
                position = event.position;
                yield event;
            }
            if full {
                continue;
            }
            if bell.changed().await.is_err() {
                break;
            }
        }
    })
}
