//! Reading the log: one stream, the global log after a position, one command's positions,
//! the head.

use galley_domain::{ArticleId, EventData, UserId, Version, SCHEMA_VERSION};
use sqlx::types::Json;

use crate::backend::{args, placeholders, push_arg, to_u64, Arg, Exec, Row};
use crate::error::StoreError;
use crate::model::{Direction, EventFilter, Position, StoredEvent};

/// The envelope columns of `events`, in the order [`decode_event`] reads them.
pub(crate) const EVENT_COLUMNS: &str = "position, event_id, article_id, version, event_type, \
     schema_version, payload, actor, correlation_id, causation_id, request_id, recorded_at";

/// Reads an event row through the upcaster: the payload returned is always in the current
/// schema, whatever schema version it was stored with.
pub(crate) fn decode_event(row: &Row) -> Result<StoredEvent, StoreError> {
    let event_type: String = row.get("event_type")?;
    let stored_schema = u32::try_from(row.get::<i64>("schema_version")?)
        .map_err(|_| StoreError::Corrupt("schema version out of range".to_owned()))?;
    let Json(payload) = row.get::<Json<serde_json::Value>>("payload")?;
    let data = EventData::from_stored(&event_type, stored_schema, payload)?;
    Ok(StoredEvent {
        event_id: row.get("event_id")?,
        article_id: ArticleId::from_uuid(row.get("article_id")?),
        version: Version(to_u64(row.get("version")?)),
        position: to_u64(row.get("position")?),
        event_type: data.event_type().to_owned(),
        schema_version: SCHEMA_VERSION,
        payload: data.payload(),
        actor: UserId::from_uuid(row.get("actor")?),
        correlation_id: row.get("correlation_id")?,
        causation_id: row.get("causation_id")?,
        request_id: row.get("request_id")?,
        recorded_at: row.get("recorded_at")?,
    })
}

/// The columns of [`EVENT_COLUMNS`] but the payload, for [`decode_envelope`].
const ENVELOPE_COLUMNS: &str = "position, event_id, article_id, version, event_type, \
     schema_version, actor, correlation_id, causation_id, request_id, recorded_at";

/// Reads an event row of [`ENVELOPE_COLUMNS`]: the envelope alone, its payload `Null` (never
/// read, nor upcast: a stored type string is never renamed, so the type is the row's).
fn decode_envelope(row: &Row) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        event_id: row.get("event_id")?,
        article_id: ArticleId::from_uuid(row.get("article_id")?),
        version: Version(to_u64(row.get("version")?)),
        position: to_u64(row.get("position")?),
        event_type: row.get("event_type")?,
        schema_version: SCHEMA_VERSION,
        payload: serde_json::Value::Null,
        actor: UserId::from_uuid(row.get("actor")?),
        correlation_id: row.get("correlation_id")?,
        causation_id: row.get("causation_id")?,
        request_id: row.get("request_id")?,
        recorded_at: row.get("recorded_at")?,
    })
}

/// Decodes one event row.
type Decode = fn(&Row) -> Result<StoredEvent, StoreError>;

/// Whether a read of events takes their payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payloads {
    /// Whole events, payloads upcast.
    With,
    /// Envelopes only, each payload `Null` (see [`decode_envelope`]).
    Without,
}

/// One stream's events, whole or as envelopes (see [`crate::Store::read_stream`] and
/// [`crate::Store::read_stream_envelopes`]).
pub(crate) async fn read_stream(
    mut exec: Exec<'_>,
    id: ArticleId,
    direction: Direction,
    cursor: Option<Version>,
    limit: u32,
    types: &[String],
    payloads: Payloads,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut args = Vec::from(args![id.as_uuid()]);
    let (columns, decode): (_, Decode) = match payloads {
        Payloads::With => (EVENT_COLUMNS, decode_event),
        Payloads::Without => (ENVELOPE_COLUMNS, decode_envelope),
    };
    let mut sql = format!("SELECT {columns} FROM events WHERE article_id = $1");
    match direction {
        Direction::Forward => {
            let from = cursor.unwrap_or(Version::NONE).0;
            sql += &format!(" AND version > {}", push_arg(&mut args, from));
        }
        Direction::Backward => {
            if let Some(c) = cursor {
                sql += &format!(" AND version < {}", push_arg(&mut args, c.0));
            }
        }
    }
    if !types.is_empty() {
        let list = placeholders(&mut args, types.iter().map(|t| Arg::from(t.as_str())));
        sql += &format!(" AND event_type IN ({list})");
    }
    sql += match direction {
        Direction::Forward => " ORDER BY version ASC",
        Direction::Backward => " ORDER BY version DESC",
    };
    sql += &page_limit(limit);
    exec.fetch_all(&sql, &args)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// A page read's `LIMIT`, written into the statement rather than bound, as the article lists
/// write theirs (`read/articles.rs`): PostgreSQL may plan a prepared statement once for all
/// values, and with a bound limit that plan cannot know that a page wants a few rows
/// (docs/BENCHMARKS.md, growth). A number cannot inject anything, and pages come in a few
/// sizes, so the statement cache holds them all.
fn page_limit(limit: u32) -> String {
    format!(" LIMIT {limit}")
}

/// The global log after a position (see [`crate::Store::read_all`]).
pub(crate) async fn read_all(
    mut exec: Exec<'_>,
    after: Position,
    limit: u32,
    filter: &EventFilter,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut args = Vec::from(args![after]);
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE position > $1");
    if let Some(a) = filter.article_id {
        sql += &format!(" AND article_id = {}", push_arg(&mut args, a.as_uuid()));
    }
    if let Some(a) = filter.actor {
        sql += &format!(" AND actor = {}", push_arg(&mut args, a.as_uuid()));
    }
    if !filter.event_types.is_empty() {
        let list = placeholders(
            &mut args,
            filter.event_types.iter().map(|t| Arg::from(t.as_str())),
        );
        sql += &format!(" AND event_type IN ({list})");
    }
    sql += " ORDER BY position ASC";
    sql += &page_limit(limit);
    exec.fetch_all(&sql, &args)
        .await?
        .iter()
        .map(decode_event)
        .collect()
}

/// The events at positions `first..=last` (one command's events).
pub(crate) async fn read_positions(
    mut exec: Exec<'_>,
    first: Position,
    last: Position,
) -> Result<Vec<StoredEvent>, StoreError> {
    exec.fetch_all(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position >= $1 AND position <= $2 \
             ORDER BY position"
        ),
        &args![first, last],
    )
    .await?
    .iter()
    .map(decode_event)
    .collect()
}

/// The highest committed position (0 for an empty log).
pub(crate) async fn head(mut exec: Exec<'_>) -> Result<Position, StoreError> {
    let row = exec.fetch_one("SELECT position FROM log_head", &[]).await?;
    Ok(to_u64(row.get("position")?))
}
