//! The PostgreSQL listener: a task per store that hears the channels it is given and hands
//! each notification, and every moment when notifications may have been missed, to a
//! [`Listener`].

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;

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
