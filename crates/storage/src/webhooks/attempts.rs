//! Delivery attempts: the newest [`WEBHOOK_ATTEMPTS_KEPT`] of each endpoint, for people to
//! see what the receiver answered.

use crate::backend::{args, to_u64, Db, Exec, Row};
use crate::error::StoreError;
use crate::webhooks::{
    AttemptKind, AttemptOutcome, WebhookAttempt, WebhookEndpointId, WEBHOOK_ATTEMPTS_KEPT,
};

/// Records an attempt and forgets the endpoint's attempts older than the newest
/// [`WEBHOOK_ATTEMPTS_KEPT`]. An attempt for an endpoint deleted meanwhile is dropped.
pub(crate) async fn record_attempt(db: &Db, attempt: &WebhookAttempt) -> Result<(), StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    let key = attempt.endpoint_id.as_uuid();
    tx.exec()
        .execute(
            "INSERT INTO webhook_attempts (endpoint_id, position, event_id, attempt, kind, \
             outcome, status, latency_ms, error, response_excerpt, attempted_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)",
            &args![
                key,
                attempt.position,
                attempt.event_id,
                i64::from(attempt.attempt),
                attempt.kind.as_str(),
                attempt.outcome.as_str(),
                attempt.status.map(i64::from),
                attempt.latency_ms,
                attempt.error.clone(),
                attempt.response_excerpt.clone(),
                attempt.attempted_at,
            ],
        )
        .await?;
    tx.exec()
        .execute(
            "DELETE FROM webhook_attempts WHERE endpoint_id = $1 AND id <= \
             (SELECT id FROM webhook_attempts WHERE endpoint_id = $1 \
              ORDER BY id DESC LIMIT 1 OFFSET $2)",
            &args![key, u64::from(WEBHOOK_ATTEMPTS_KEPT)],
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

fn decode(row: &Row) -> Result<WebhookAttempt, StoreError> {
    let kind = match row.get::<String>("kind")?.as_str() {
        "DISPATCH" => AttemptKind::Dispatch,
        "REDELIVERY" => AttemptKind::Redelivery,
        other => {
            return Err(StoreError::Corrupt(format!(
                "webhook attempt kind {other:?}"
            )))
        }
    };
    let outcome = match row.get::<String>("outcome")?.as_str() {
        "DELIVERED" => AttemptOutcome::Delivered,
        "RETRYING" => AttemptOutcome::Retrying,
        "FAILED" => AttemptOutcome::Failed,
        other => {
            return Err(StoreError::Corrupt(format!(
                "webhook attempt outcome {other:?}"
            )))
        }
    };
    Ok(WebhookAttempt {
        endpoint_id: WebhookEndpointId::from_uuid(row.get("endpoint_id")?),
        position: to_u64(row.get("position")?),
        event_id: row.get("event_id")?,
        attempt: u32::try_from(row.get::<i64>("attempt")?).unwrap_or(u32::MAX),
        kind,
        outcome,
        status: row
            .get::<Option<i64>>("status")?
            .and_then(|s| u16::try_from(s).ok()),
        latency_ms: to_u64(row.get("latency_ms")?),
        error: row.get("error")?,
        response_excerpt: row.get("response_excerpt")?,
        attempted_at: row.get("attempted_at")?,
    })
}

/// An endpoint's newest `limit` attempts, newest first.
pub(crate) async fn attempts(
    mut exec: Exec<'_>,
    id: WebhookEndpointId,
    limit: u32,
) -> Result<Vec<WebhookAttempt>, StoreError> {
    exec.fetch_all(
        "SELECT endpoint_id, position, event_id, attempt, kind, outcome, status, latency_ms, \
         error, response_excerpt, attempted_at FROM webhook_attempts WHERE endpoint_id = $1 \
         ORDER BY id DESC LIMIT $2",
        &args![id.as_uuid(), u64::from(limit)],
    )
    .await?
    .iter()
    .map(decode)
    .collect()
}
