//! The `webhook_endpoints` rows: creation (under the cap), reads, the changes admins make
//! (each naming the version it expects, each with its audit row) and the dispatcher's record
//! of failures.

use chrono::{DateTime, Utc};
use galley_domain::{ArticleId, DomainError, UserId, Version};
use serde_json::json;

use crate::backend::{args, push_arg, to_u64, Db, Exec, Row, Tx};
use crate::error::StoreError;
use crate::webhooks::changes::audit;
use crate::webhooks::{
    invalid, NewWebhookEndpoint, WebhookEndpointChange, WebhookEndpointId, WebhookEndpointRecord,
    WebhookFilter, WebhookSecrets, WebhookState, MAX_WEBHOOK_ENDPOINTS,
};

/// The transaction-scoped advisory lock that serialises endpoint creation on PostgreSQL, so
/// that two admins creating at once cannot pass the cap together ("galleywh").
const PG_CREATE_LOCK_KEY: i64 = 0x6761_6c6c_6579_7768;

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, category, article_id, state, \
     state_reason, state_since, checkpoint, version, failing_since, last_error, last_error_at, \
     last_delivered_at, previous_secret_until, created_at, updated_at";

fn decode(row: &Row) -> Result<WebhookEndpointRecord, StoreError> {
    Ok(WebhookEndpointRecord {
        id: WebhookEndpointId::from_uuid(row.get("id")?),
        url: row.get("url")?,
        description: row.get("description")?,
        filter: WebhookFilter {
            event_types: row.json("event_types")?,
            category: row.get("category")?,
            article_id: row
                .get::<Option<uuid::Uuid>>("article_id")?
                .map(ArticleId::from_uuid),
        },
        state: WebhookState::parse(&row.get::<String>("state")?)?,
        state_reason: row.get("state_reason")?,
        state_since: row.get("state_since")?,
        checkpoint: to_u64(row.get("checkpoint")?),
        version: to_u64(row.get("version")?),
        failing_since: row.get("failing_since")?,
        last_error: row.get("last_error")?,
        last_error_at: row.get("last_error_at")?,
        last_delivered_at: row.get("last_delivered_at")?,
        previous_secret_until: row.get("previous_secret_until")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn filter_json(filter: &WebhookFilter) -> serde_json::Value {
    serde_json::to_value(filter).unwrap_or(serde_json::Value::Null)
}

/// One endpoint.
pub(crate) async fn endpoint(
    mut exec: Exec<'_>,
    id: WebhookEndpointId,
) -> Result<Option<WebhookEndpointRecord>, StoreError> {
    exec.fetch_optional(
        &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"),
        &args![id.as_uuid()],
    )
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}

/// Every endpoint, oldest first.
pub(crate) async fn endpoints(
    mut exec: Exec<'_>,
) -> Result<Vec<WebhookEndpointRecord>, StoreError> {
    exec.fetch_all(
        &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"),
        &[],
    )
    .await?
    .iter()
    .map(decode)
    .collect()
}

/// An endpoint's secrets, for signing; with `active_at`, only while the endpoint is active at
/// that version (a dispatch attempt: a pause, a disabling or any change since the task read
/// the endpoint means no attempt).
pub(crate) async fn secrets(
    mut exec: Exec<'_>,
    id: WebhookEndpointId,
    active_at: Option<u64>,
) -> Result<Option<WebhookSecrets>, StoreError> {
    let mut sql = "SELECT secret, previous_secret, previous_secret_until FROM webhook_endpoints \
                   WHERE id = $1"
        .to_owned();
    let mut args = Vec::from(args![id.as_uuid()]);
    if let Some(version) = active_at {
        sql += &format!(
            " AND state = 'ACTIVE' AND version = {}",
            push_arg(&mut args, version)
        );
    }
    let Some(row) = exec.fetch_optional(&sql, &args).await? else {
        return Ok(None);
    };
    let previous: Option<String> = row.get("previous_secret")?;
    let until: Option<DateTime<Utc>> = row.get("previous_secret_until")?;
    Ok(Some(WebhookSecrets {
        current: row.get("secret")?,
        previous: previous.zip(until),
    }))
}

/// Creates an endpoint, refusing when [`MAX_WEBHOOK_ENDPOINTS`] exist.
pub(crate) async fn create(
    db: &Db,
    new: NewWebhookEndpoint,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<WebhookEndpointRecord, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    tx.lock_until_commit(PG_CREATE_LOCK_KEY).await?;
    let count = tx
        .exec()
        .fetch_one("SELECT COUNT(*) AS n FROM webhook_endpoints", &[])
        .await?
        .get::<i64>("n")?;
    if to_u64(count) >= MAX_WEBHOOK_ENDPOINTS as u64 {
        return Err(invalid(
            "endpoints",
            format!("are at most {MAX_WEBHOOK_ENDPOINTS}; delete one before creating another"),
        ));
    }
    tx.exec()
        .execute(
            "INSERT INTO webhook_endpoints (id, url, description, event_types, category, \
             article_id, state, state_since, secret, checkpoint, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'ACTIVE', $7, $8, $9, 1, $7, $7)",
            &args![
                new.id.as_uuid(),
                new.url.as_str(),
                new.description.as_str(),
                json!(new.filter.event_types),
                new.filter.category.clone(),
                new.filter.article_id.map(|a| a.as_uuid()),
                now,
                new.secret.as_str(),
                new.checkpoint,
            ],
        )
        .await?;
    let detail = json!({
        "url": new.url,
        "description": new.description,
        "filter": filter_json(&new.filter),
        "checkpoint": new.checkpoint,
    });
    audit(tx.exec(), new.id, "Created", detail, actor, now).await?;
    let record = endpoint(tx.exec(), new.id)
        .await?
        .ok_or(StoreError::NotFound)?;
    tx.commit().await?;
    Ok(record)
}

/// The transaction-scoped advisory lock key of changes to one endpoint: 64 bits of a hash of
/// its id (the dispatcher's lease uses another hash, see `lease.rs`).
fn change_lock_key(id: WebhookEndpointId) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"galley webhook endpoint change ")
        .chain_update(id.as_uuid().as_bytes())
        .finalize();
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

/// Reads an endpoint for a change inside `tx` (changes to it wait for one another) and checks
/// the version the change expects.
async fn for_change(
    tx: &mut Tx,
    id: WebhookEndpointId,
    expected: u64,
) -> Result<WebhookEndpointRecord, StoreError> {
    // Changes to one endpoint take turns (on SQLite the write transaction already does), so
    // two admins naming the same version cannot both pass the check.
    tx.lock_until_commit(change_lock_key(id)).await?;
    let record = tx
        .exec()
        .fetch_optional(
            &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"),
            &args![id.as_uuid()],
        )
        .await?
        .as_ref()
        .map(decode)
        .transpose()?
        .ok_or(StoreError::NotFound)?;
    if record.version != expected {
        return Err(StoreError::Domain(DomainError::Conflict {
            expected: Version(expected),
            current: Version(record.version),
        }));
    }
    Ok(record)
}

/// Applies one change to an endpoint at version `expected`, bumps its version and records the
/// change. Refusals: `NotFound`, a conflict carrying the current version, or `Invalid` for a
/// change the endpoint's state does not allow.
pub(crate) async fn change(
    db: &Db,
    id: WebhookEndpointId,
    expected: u64,
    change: WebhookEndpointChange,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<WebhookEndpointRecord, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    let current = for_change(&mut tx, id, expected).await?;
    let key = id.as_uuid();
    let detail = match &change {
        WebhookEndpointChange::Updated {
            url,
            description,
            filter,
        } => {
            tx.exec()
                .execute(
                    "UPDATE webhook_endpoints SET url = COALESCE($2, url), \
                     description = COALESCE($3, description) WHERE id = $1",
                    &args![key, url.clone(), description.clone()],
                )
                .await?;
            if let Some(filter) = filter {
                tx.exec()
                    .execute(
                        "UPDATE webhook_endpoints SET event_types = $2, category = $3, \
                         article_id = $4 WHERE id = $1",
                        &args![
                            key,
                            json!(filter.event_types),
                            filter.category.clone(),
                            filter.article_id.map(|a| a.as_uuid()),
                        ],
                    )
                    .await?;
            }
            let mut detail = serde_json::Map::new();
            if let Some(url) = url {
                detail.insert("url".into(), json!(url));
            }
            if let Some(description) = description {
                detail.insert("description".into(), json!(description));
            }
            if let Some(filter) = filter {
                detail.insert("filter".into(), filter_json(filter));
            }
            serde_json::Value::Object(detail)
        }
        WebhookEndpointChange::Paused { reason } => {
            if current.state != WebhookState::Active {
                return Err(invalid(
                    "id",
                    format!(
                        "names an endpoint that is {}, not ACTIVE",
                        current.state.as_str()
                    ),
                ));
            }
            set_state(&mut tx, id, WebhookState::Paused, reason.as_deref(), now).await?;
            json!({ "reason": reason })
        }
        WebhookEndpointChange::Disabled { reason } => {
            if current.state != WebhookState::Active {
                return Err(invalid(
                    "id",
                    format!(
                        "names an endpoint that is {}, not ACTIVE",
                        current.state.as_str()
                    ),
                ));
            }
            set_state(&mut tx, id, WebhookState::Disabled, Some(reason), now).await?;
            json!({ "reason": reason })
        }
        WebhookEndpointChange::Resumed => {
            if current.state == WebhookState::Active {
                return Err(invalid("id", "names an endpoint that is ACTIVE already"));
            }
            set_state(&mut tx, id, WebhookState::Active, None, now).await?;
            // The failure clock starts again: an endpoint resumed after being disabled gets
            // the whole allowance before it is disabled again.
            tx.exec()
                .execute(
                    "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1",
                    &args![key],
                )
                .await?;
            json!({ "from": current.state.as_str() })
        }
        WebhookEndpointChange::SecretRotated {
            secret,
            previous_until,
        } => {
            tx.exec()
                .execute(
                    "UPDATE webhook_endpoints SET previous_secret = secret, \
                     previous_secret_until = $3, secret = $2 WHERE id = $1",
                    &args![key, secret.as_str(), *previous_until],
                )
                .await?;
            json!({ "previousSecretUntil": previous_until })
        }
        WebhookEndpointChange::Rewound { position } => {
            if *position > current.checkpoint {
                return Err(invalid(
                    "position",
                    format!(
                        "must be at most the endpoint's checkpoint {} (a rewind goes back)",
                        current.checkpoint
                    ),
                ));
            }
            set_checkpoint(&mut tx, id, *position).await?;
            json!({ "position": position, "from": current.checkpoint })
        }
        WebhookEndpointChange::Skipped {
            position,
            checkpoint,
        } => {
            if current.checkpoint != *checkpoint || *position <= *checkpoint {
                return Err(invalid(
                    "position",
                    format!(
                        "is not the delivery the endpoint waits on: its checkpoint is {}",
                        current.checkpoint
                    ),
                ));
            }
            set_checkpoint(&mut tx, id, *position).await?;
            json!({ "position": position })
        }
    };
    tx.exec()
        .execute(
            "UPDATE webhook_endpoints SET version = version + 1, updated_at = $2 WHERE id = $1",
            &args![key, now],
        )
        .await?;
    audit(tx.exec(), id, change.change_type(), detail, actor, now).await?;
    let record = endpoint(tx.exec(), id).await?.ok_or(StoreError::NotFound)?;
    tx.commit().await?;
    Ok(record)
}

async fn set_state(
    tx: &mut Tx,
    id: WebhookEndpointId,
    state: WebhookState,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.exec()
        .execute(
            "UPDATE webhook_endpoints SET state = $2, state_reason = $3, state_since = $4 \
             WHERE id = $1",
            &args![id.as_uuid(), state.as_str(), reason, now],
        )
        .await?;
    Ok(())
}

async fn set_checkpoint(
    tx: &mut Tx,
    id: WebhookEndpointId,
    position: u64,
) -> Result<(), StoreError> {
    tx.exec()
        .execute(
            "UPDATE webhook_endpoints SET checkpoint = $2 WHERE id = $1",
            &args![id.as_uuid(), position],
        )
        .await?;
    Ok(())
}

/// Deletes an endpoint at version `expected` (its attempts go with it; its audit rows stay,
/// with one for the deletion).
pub(crate) async fn delete(
    db: &Db,
    id: WebhookEndpointId,
    expected: u64,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<WebhookEndpointRecord, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    let current = for_change(&mut tx, id, expected).await?;
    tx.exec()
        .execute(
            "DELETE FROM webhook_attempts WHERE endpoint_id = $1",
            &args![id.as_uuid()],
        )
        .await?;
    tx.exec()
        .execute(
            "DELETE FROM webhook_endpoints WHERE id = $1",
            &args![id.as_uuid()],
        )
        .await?;
    audit(
        tx.exec(),
        id,
        "Deleted",
        json!({ "url": current.url, "checkpoint": current.checkpoint }),
        actor,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(current)
}

/// Records a failed attempt on the endpoint: its last error, and the start of its run of
/// failures when it was not failing. Returns since when it has been failing (`None` when
/// the endpoint is gone).
pub(crate) async fn record_failure(
    db: &Db,
    id: WebhookEndpointId,
    error: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    let row = tx
        .exec()
        .fetch_optional(
            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2), \
             last_error = $3, last_error_at = $2, updated_at = $2 WHERE id = $1 \
             RETURNING failing_since",
            &args![id.as_uuid(), now, error],
        )
        .await?;
    tx.commit().await?;
    row.map(|r| r.get::<DateTime<Utc>>("failing_since"))
        .transpose()
        .map_err(StoreError::from)
}
