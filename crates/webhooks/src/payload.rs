//! The body of a delivery: the Standard Webhooks shape (`type`, `timestamp`, `data`), with
//! the event's envelope in `data` and, for a cache purge, the article as it is when the
//! delivery is prepared.

use galley_storage::{ArticleRecord, StoredEvent};
use serde_json::{json, Value};

/// The article part of a delivery: enough to purge a cache or re-index one page.
fn article(article: &ArticleRecord) -> Value {
    json!({
        "id": article.id.to_string(),
        "slug": article.content.slug.as_ref().map(|s| s.as_str()),
        "status": article.status,
        "liveRevision": article.live_revision.map(|r| r.0),
        "version": article.version.0,
        "category": article.content.category.as_ref().map(|c| c.as_str()),
    })
}

/// The JSON body of the delivery of `event`, with `article` (its article now, when it exists).
pub fn body(event: &StoredEvent, current: Option<&ArticleRecord>) -> Vec<u8> {
    let value = json!({
        "type": event.event_type,
        "timestamp": event.recorded_at,
        "data": {
            "eventId": event.event_id,
            "type": event.event_type,
            "position": event.position,
            "version": event.version.0,
            "articleId": event.article_id.to_string(),
            "actor": event.actor.to_string(),
            "recordedAt": event.recorded_at,
            "schemaVersion": event.schema_version,
            "correlationId": event.correlation_id,
            "causationId": event.causation_id,
            "payload": event.payload,
            "article": current.map(article),
        },
    });
    serde_json::to_vec(&value).unwrap_or_default()
}
