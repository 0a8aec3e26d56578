//! The audit of endpoint changes: one append-only row per change (who, when, what), never a
//! secret. Rows outlive their endpoint.

use chrono::{DateTime, Utc};
use galley_domain::UserId;

use crate::backend::{args, to_u64, Exec, Row};
use crate::error::StoreError;
use crate::webhooks::{WebhookChangeRecord, WebhookEndpointId};

/// Records one change.
pub(crate) async fn audit(
    mut exec: Exec<'_>,
    id: WebhookEndpointId,
    change_type: &str,
    detail: serde_json::Value,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    exec.execute(
        "INSERT INTO webhook_endpoint_changes (endpoint_id, change_type, detail, actor, \
         recorded_at) VALUES ($1, $2, $3, $4, $5)",
        &args![id.as_uuid(), change_type, detail, actor.as_uuid(), now],
    )
    .await?;
    Ok(())
}

fn decode(row: &Row) -> Result<WebhookChangeRecord, StoreError> {
    Ok(WebhookChangeRecord {
        id: to_u64(row.get("id")?),
        endpoint_id: WebhookEndpointId::from_uuid(row.get("endpoint_id")?),
        change_type: row.get("change_type")?,
        detail: row.json("detail")?,
        actor: UserId::from_uuid(row.get("actor")?),
        recorded_at: row.get("recorded_at")?,
    })
}

/// The newest `limit` changes, newest first: of one endpoint, or of every endpoint.
pub(crate) async fn changes(
    mut exec: Exec<'_>,
    endpoint: Option<WebhookEndpointId>,
    limit: u32,
) -> Result<Vec<WebhookChangeRecord>, StoreError> {
    let columns = "id, endpoint_id, change_type, detail, actor, recorded_at";
    let rows = match endpoint {
        Some(id) => {
            exec.fetch_all(
                &format!(
                    "SELECT {columns} FROM webhook_endpoint_changes WHERE endpoint_id = $1 \
                     ORDER BY id DESC LIMIT $2"
                ),
                &args![id.as_uuid(), u64::from(limit)],
            )
            .await?
        }
        None => {
            exec.fetch_all(
                &format!(
                    "SELECT {columns} FROM webhook_endpoint_changes ORDER BY id DESC LIMIT $1"
                ),
                &args![u64::from(limit)],
            )
            .await?
        }
    };
    rows.iter().map(decode).collect()
}

/// Records one change in a transaction of its own (for what changes nothing in the endpoint,
/// such as a redelivery).
pub(crate) async fn record_change(
    db: &crate::backend::Db,
    id: WebhookEndpointId,
    change_type: &str,
    detail: serde_json::Value,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    audit(tx.exec(), id, change_type, detail, actor, now).await?;
    tx.commit().await?;
    Ok(())
}
