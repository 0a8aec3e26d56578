//! Which process dispatches which endpoint.
//!
//! On PostgreSQL a process dispatches an endpoint only while it holds the session advisory
//! lock of that endpoint (`pg_try_advisory_lock`) on its lease connection: one connection per
//! process, taken out of the pool, holding the locks of every endpoint the process
//! dispatches. PostgreSQL releases a session's locks when the session ends, so when a process
//! dies (killed, crashed, cut off: the server's TCP keepalive ends the session) another one
//! takes its locks at its next try. The dispatcher moves checkpoints through the same
//! connection ([`WebhookLeases::advance`]): a process whose connection is gone cannot move
//! one, and learns at once that its leases are lost. On SQLite the one process dispatches, and
//! a lease only keeps two tasks of that process off the same endpoint.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::backend::args;
use crate::backend::Db;
use crate::error::StoreError;
use crate::webhooks::{Progress, WebhookEndpointId};

/// The leases of one process. Cheap to clone.
#[derive(Clone)]
pub struct WebhookLeases {
    inner: Arc<Inner>,
}

struct Inner {
    /// The store's database, for checkpoint moves outside a lease (SQLite).
    db: Db,
    /// On PostgreSQL: the pool the lease connection is taken from, and the deadline of
    /// each call on it.
    pg: Option<(PgPool, Duration)>,
    /// The lease connection, while it works; `None` before the first lease and after a
    /// failure (every lease is then lost).
    conn: tokio::sync::Mutex<Option<PgConnection>>,
    /// The endpoints whose lock this process holds.
    held: Mutex<HashSet<WebhookEndpointId>>,
}

impl std::fmt::Debug for WebhookLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookLeases")
            .field("postgres", &self.inner.pg.is_some())
            .finish_non_exhaustive()
    }
}

/// The advisory lock key of an endpoint: 64 bits of a hash of its id, so that the keys of
/// different endpoints (and of the other locks Galley takes) do not meet.
fn lock_key(id: WebhookEndpointId) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"galley webhook endpoint ")
        .chain_update(id.as_uuid().as_bytes())
        .finalize();
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

/// Positions are `u64` in Rust and `BIGINT` in SQL.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn overran(deadline: Duration) -> StoreError {
    StoreError::Backend(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the lease connection did not answer within {} ms",
            deadline.as_millis()
        ),
    )))
}

impl WebhookLeases {
    pub(crate) fn new(db: Db) -> WebhookLeases {
        let pg = db.pg_pool().map(|pool| (pool.clone(), db.deadline()));
        WebhookLeases {
            inner: Arc::new(Inner {
                db,
                pg,
                conn: tokio::sync::Mutex::new(None),
                held: Mutex::new(HashSet::new()),
            }),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<WebhookEndpointId>> {
        self.inner.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this process holds the endpoint's lease.
    pub fn holds(&self, id: WebhookEndpointId) -> bool {
        self.held().contains(&id)
    }

    /// Runs `call` on the lease connection (connecting first when there is none). When the
    /// call fails the connection is dropped and every lease with it: PostgreSQL releases the
    /// locks when the session ends.
    async fn on_conn<T>(
        &self,
        call: impl for<'c> FnOnce(
            &'c mut PgConnection,
        ) -> futures::future::BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        let Some((pool, deadline)) = &self.inner.pg else {
            return Err(StoreError::Corrupt(
                "the lease connection exists on PostgreSQL only".to_owned(),
            ));
        };
        let mut guard = self.inner.conn.lock().await;
        if guard.is_none() {
            let conn = tokio::time::timeout(*deadline, pool.acquire())
                .await
                .map_err(|_| overran(*deadline))??;
            // Out of the pool for good: the locks belong to this session, which must never
            // serve another caller nor be closed by the pool's idle timeout.
            *guard = Some(conn.detach());
            self.held().clear();
        }
        let Some(conn) = guard.as_mut() else {
            unreachable!("connected above")
        };
        let result = match tokio::time::timeout(*deadline, call(conn)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => StoreError::Backend(e),
            Err(_) => overran(*deadline),
        };
        // Whatever failed, the session's state is unknown: end it, and with it every lock.
        *guard = None;
        self.held().clear();
        Err(result)
    }

    /// Takes the endpoint's lease if no process holds it; `true` when this process holds it
    /// now.
    pub async fn try_acquire(&self, id: WebhookEndpointId) -> Result<bool, StoreError> {
        if self.holds(id) {
            return Ok(true);
        }
        if self.inner.pg.is_none() {
            self.held().insert(id);
            return Ok(true);
        }
        let key = lock_key(id);
        let taken = self
            .on_conn(move |conn| {
                Box::pin(async move {
                    let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                        .bind(key)
                        .fetch_one(conn)
                        .await?;
                    Ok(taken)
                })
            })
            .await?;
        if taken {
            self.held().insert(id);
        }
        Ok(taken)
    }

    /// Gives the endpoint's lease up (another process may take it at once).
    pub async fn release(&self, id: WebhookEndpointId) -> Result<(), StoreError> {
        if !self.held().remove(&id) || self.inner.pg.is_none() {
            return Ok(());
        }
        let key = lock_key(id);
        self.on_conn(move |conn| {
            Box::pin(async move {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(key)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Checks that the lease connection still answers (a partition closes nothing); on
    /// failure every lease is lost. Without a connection (no lease held) it does nothing.
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        if self.inner.pg.is_none() || self.inner.conn.lock().await.is_none() {
            return Ok(());
        }
        self.on_conn(|conn| {
            Box::pin(async move {
                sqlx::query("SELECT 1").execute(conn).await?;
                Ok(())
            })
        })
        .await
    }

    /// Gives every lease up by ending the lease connection.
    pub async fn release_all(&self) {
        let conn = self.inner.conn.lock().await.take();
        self.held().clear();
        if let Some(conn) = conn {
            let _ = sqlx::Connection::close(conn).await;
        }
    }

    /// Moves the checkpoint of an endpoint whose lease this process holds from `from` to
    /// `to`, and records what happened: `false` when the checkpoint is no longer `from` (an
    /// admin rewound or skipped meanwhile, or the endpoint is gone), so nothing moved and the
    /// caller reads the endpoint again. On PostgreSQL the update runs on the lease connection:
    /// a process that lost it moves nothing.
    pub async fn advance(
        &self,
        id: WebhookEndpointId,
        from: u64,
        to: u64,
        progress: Progress,
    ) -> Result<bool, StoreError> {
        if !self.holds(id) {
            return Ok(false);
        }
        let (delivered, failed, error): (Option<DateTime<Utc>>, Option<DateTime<Utc>>, _) =
            match progress {
                Progress::Passed => (None, None, None),
                Progress::Delivered { at } => (Some(at), None, None),
                Progress::Failed { at, error } => (None, Some(at), Some(error)),
            };
        // A delivery ends the endpoint's run of failures; a failure for good starts one (or
        // goes on with it) and is the endpoint's last error.
        const SQL: &str = "UPDATE webhook_endpoints SET checkpoint = $3, \
             last_delivered_at = COALESCE($4, last_delivered_at), \
             failing_since = CASE WHEN $4 IS NOT NULL THEN NULL \
                 ELSE COALESCE(failing_since, $5) END, \
             last_error = COALESCE($6, last_error), \
             last_error_at = COALESCE($5, last_error_at), \
             updated_at = COALESCE($4, $5, updated_at) \
             WHERE id = $1 AND checkpoint = $2";
        if self.inner.pg.is_none() {
            let (mut tx, _) = self.inner.db.begin_write(false).await?;
            let moved = tx
                .exec()
                .execute(
                    SQL,
                    &args![id.as_uuid(), from, to, delivered, failed, error],
                )
                .await?;
            tx.commit().await?;
            return Ok(moved == 1);
        }
        let (uuid, from, to) = (id.as_uuid(), to_i64(from), to_i64(to));
        let moved = self
            .on_conn(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(SQL)
                        .bind(uuid)
                        .bind(from)
                        .bind(to)
                        .bind(delivered)
                        .bind(failed)
                        .bind(error)
                        .execute(conn)
                        .await?;
                    Ok(done.rows_affected())
                })
            })
            .await?;
        Ok(moved == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_distinct_stable_lock_keys() {
        let a = WebhookEndpointId::from_uuid(uuid::Uuid::from_u128(1));
        let b = WebhookEndpointId::from_uuid(uuid::Uuid::from_u128(2));
        assert_eq!(lock_key(a), lock_key(a));
        assert_ne!(lock_key(a), lock_key(b));
    }
}
