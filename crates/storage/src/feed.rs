//! The live feed's doorbell.
//!
//! A subscriber reads the log from its position, then waits for the doorbell and reads again.
//! The doorbell carries the newest head position this process knows of, but only to decide
//! whether to ring: readers always re-read the log, so a lost, late or duplicated ring can
//! delay an event but never lose, duplicate or reorder one.
//!
//! Appends on this process ring it after commit. On PostgreSQL, a listener task per store also
//! rings it for every `NOTIFY galley_events` (sent by appends of any process, at their commit)
//! and after each reconnection, when notifications may have been missed. The same listener
//! hears `NOTIFY galley_tokens` (a revocation) and empties the token cache (see
//! [`crate::users`]).

use std::time::Duration;

use futures::stream::BoxStream;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::append::NOTIFY_CHANNEL;
use crate::error::StoreError;
use crate::model::{EventFilter, Position, StoredEvent};
use crate::store::Store;

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

/// While the listener was not listening, appends may have committed and tokens been revoked:
/// ring, and forget every cached token lookup.
fn missed(inner: &crate::store::Inner) {
    inner.feed.ring();
    inner.tokens.clear();
}

/// How long the listener waits for a notification before it checks that its connection still
/// answers. A network partition holds packets and closes nothing, so without this check a
/// listener would wait for ever on a dead connection while appends and revocations go unheard.
const LISTENER_HEARTBEAT: Duration = Duration::from_secs(10);

/// The PostgreSQL listener: forwards notifications to the doorbell until the pool closes.
/// `deadline` bounds each of its own statements (LISTEN, the heartbeat).
pub(crate) async fn listen_postgres(
    pool: PgPool,
    feed: std::sync::Weak<crate::store::Inner>,
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
        let listening = tokio::time::timeout(
            deadline,
            listener.listen_all([NOTIFY_CHANNEL, crate::users::TOKENS_CHANNEL]),
        )
        .await;
        if let Err(e) = listening
            .map_err(|_| "no answer in time".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!(error = %e, "feed listener cannot LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let Some(inner) = feed.upgrade() else { return };
        missed(&inner);
        drop(inner);
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
                    let Some(inner) = feed.upgrade() else { return };
                    missed(&inner);
                    break;
                }
            };
            let Some(inner) = feed.upgrade() else { return };
            match received {
                Ok(Some(notification))
                    if notification.channel() == crate::users::TOKENS_CHANNEL =>
                {
                    inner.tokens.clear();
                }
                Ok(Some(notification)) => match notification.payload().parse::<Position>() {
                    Ok(head) => inner.feed.bump(head),
                    Err(_) => inner.feed.ring(),
                },
                // The connection was lost and is re-established (with its LISTEN) by the next
                // call; whatever was notified meanwhile is lost.
                Ok(None) => {
                    tracing::warn!("feed listener lost its connection; reconnecting");
                    missed(&inner);
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "feed listener failed; reconnecting");
                    missed(&inner);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

impl Store {
    pub(crate) fn subscribe_stream(
        &self,
        after: Position,
        filter: EventFilter,
    ) -> BoxStream<'static, Result<StoredEvent, StoreError>> {
        let store = self.clone();
        let mut bell = self.inner.feed.listen();
        Box::pin(async_stream::try_stream! {
            let mut position = after;
            loop {
                // Mark the current ring as seen before reading, so that an append committing
                // during the read rings again and is read on the next turn.
                if bell.borrow_and_update().closed {
                    break;
                }
                let page = store.read_all(position, SUBSCRIBE_PAGE, &filter).await?;
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
}
