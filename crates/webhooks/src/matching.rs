//! Which events of the log an endpoint is sent, read a page at a time after its checkpoint.

use std::collections::HashMap;

use galley_storage::{
    ArticleRecord, EventFilter, Position, Store, StoreError, StoredEvent, WebhookFilter,
};

/// How many events a dispatcher reads per query.
pub(crate) const PAGE: u32 = 100;

/// The part of the filter the log's reader applies.
fn event_filter(filter: &WebhookFilter) -> EventFilter {
    EventFilter {
        article_id: filter.article_id,
        event_types: filter.event_types.clone(),
        actor: None,
    }
}

/// Whether the article's current category is the filter's (without regard to case).
fn category_matches(filter: &WebhookFilter, article: Option<&ArticleRecord>) -> bool {
    let Some(wanted) = &filter.category else {
        return true;
    };
    article
        .and_then(|a| a.content.category.as_ref())
        .is_some_and(|c| c.as_str().to_lowercase() == wanted.to_lowercase())
}

/// One page of an endpoint's events after a position.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The events to deliver, in position order, each with its article as it is now.
    pub(crate) matching: Vec<(StoredEvent, Option<ArticleRecord>)>,
    /// Every event up to here was read: once the matching ones are done, the checkpoint
    /// may move here.
    pub(crate) scanned_to: Position,
    /// Whether the page reached the head (it was not full): nothing more is there to read.
    pub(crate) caught_up: bool,
}

/// Reads up to [`PAGE`] events after `after` that pass the log's part of the filter, and
/// keeps those whose article matches the rest.
pub(crate) async fn scan(
    store: &Store,
    filter: &WebhookFilter,
    after: Position,
) -> Result<Scan, StoreError> {
    // The head read first: every event at or below it is visible to the read that follows,
    // so a page that is not full has seen every matching event up to it.
    let head = store.head().await?;
    let events = store.read_all(after, PAGE, &event_filter(filter)).await?;
    let full = events.len() == PAGE as usize;
    let last = events.last().map_or(after, |e| e.position);
    let mut ids: Vec<_> = events.iter().map(|e| e.article_id).collect();
    ids.sort();
    ids.dedup();
    let articles: HashMap<_, _> = store
        .articles_by_ids(&ids)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let matching = events
        .into_iter()
        .filter_map(|event| {
            let article = articles.get(&event.article_id);
            category_matches(filter, article).then(|| (event, article.cloned()))
        })
        .collect();
    let scanned_to = if full { last } else { last.max(head) };
    Ok(Scan {
        matching,
        scanned_to: scanned_to.max(after),
        caught_up: !full,
    })
}

/// The first event after `after` that the endpoint is sent, if any.
pub(crate) async fn next_match(
    store: &Store,
    filter: &WebhookFilter,
    mut after: Position,
) -> Result<Option<(StoredEvent, Option<ArticleRecord>)>, StoreError> {
    loop {
        let scan = scan(store, filter, after).await?;
        if let Some(first) = scan.matching.into_iter().next() {
            return Ok(Some(first));
        }
        if scan.scanned_to <= after {
            return Ok(None);
        }
        let head = store.head().await?;
        if scan.scanned_to >= head {
            return Ok(None);
        }
        after = scan.scanned_to;
    }
}

/// The event at `position` with its article, if there is one.
pub(crate) async fn event_at(
    store: &Store,
    position: Position,
) -> Result<Option<(StoredEvent, Option<ArticleRecord>)>, StoreError> {
    let Some(after) = position.checked_sub(1) else {
        return Ok(None);
    };
    let Some(event) = store
        .read_all(after, 1, &EventFilter::default())
        .await?
        .into_iter()
        .find(|e| e.position == position)
    else {
        return Ok(None);
    };
    let article = store.article(event.article_id).await?;
    Ok(Some((event, article)))
}

/// Whether the endpoint is sent `event` (with its article as it is now).
pub(crate) fn matches(
    filter: &WebhookFilter,
    event: &StoredEvent,
    article: Option<&ArticleRecord>,
) -> bool {
    event_filter(filter).matches(event) && category_matches(filter, article)
}
