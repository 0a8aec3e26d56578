//! Pages of article lists, kept per log head.
//!
//! Every projection row a list reads (`articles`, `article_tags`, `article_authors`,
//! `article_search`) is written in the transaction that appends the event and moves the head,
//! so while the head stays put, the same list query gives the same page. A list first reads
//! the head (one indexed row), then serves the page kept for that head or reads it and keeps
//! it. The head is read from the database on every request, never taken from this process's
//! memory, so a write committed anywhere (another replica included) is seen by the next list
//! exactly as without the cache.
//!
//! Why reading the head first is safe: the page read after it reflects that head or a later
//! one, never an earlier one, so a page kept under head `h` is never older than `h`. When a
//! request sees a newer head, everything kept for the old one is dropped at once.
//!
//! Bounded: at most `capacity` pages (`StoreOptions::list_cache_pages`), each of at most the largest page size of
//! items read without bodies (pages with bodies are never kept); when full, new pages are not
//! kept until the head moves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::{ArticleColumns, ArticleFilter, ArticleOrder, ArticleRecord, Page, Position};

/// What identifies a list page: every argument of the list query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ListKey {
    filter: ArticleFilter,
    order: ArticleOrder,
    first: u32,
    after: Option<String>,
    columns: ArticleColumns,
}

impl ListKey {
    pub(crate) fn new(
        filter: &ArticleFilter,
        order: ArticleOrder,
        first: u32,
        after: Option<&str>,
        columns: ArticleColumns,
    ) -> ListKey {
        ListKey {
            filter: filter.clone(),
            order,
            first,
            after: after.map(str::to_owned),
            columns,
        }
    }
}

#[derive(Debug, Default)]
struct Kept {
    head: Position,
    pages: HashMap<ListKey, Arc<Page<ArticleRecord>>>,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct ListCache {
    capacity: usize,
    kept: Mutex<Kept>,
}

impl ListCache {
    /// A cache of at most `capacity` pages (0: none kept).
    pub(crate) fn new(capacity: usize) -> ListCache {
        ListCache {
            capacity,
            kept: Mutex::new(Kept::default()),
        }
    }

    /// Whether a page read with `columns` may be kept: only pages without bodies, whose size
    /// the page size and the content limits bound.
    pub(crate) fn keeps(&self, columns: ArticleColumns) -> bool {
        self.capacity > 0 && !columns.covers(ArticleColumns::All)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The page kept for `key` at `head`, if any. A head newer than the kept one drops every
    /// page kept for the old head.
    pub(crate) fn get(&self, key: &ListKey, head: Position) -> Option<Arc<Page<ArticleRecord>>> {
        let mut kept = self.lock();
        if head > kept.head {
            kept.head = head;
            kept.pages.clear();
            return None;
        }
        if head < kept.head {
            return None;
        }
        kept.pages.get(key).cloned()
    }

    /// Keeps `page`, read after the head was `head`, unless the head has moved since or the
    /// cache is full.
    pub(crate) fn put(&self, key: ListKey, head: Position, page: Arc<Page<ArticleRecord>>) {
        let mut kept = self.lock();
        if head != kept.head || kept.pages.len() >= self.capacity {
            return;
        }
        kept.pages.insert(key, page);
    }

    /// Drops every kept page (after the projections were rebuilt in place).
    pub(crate) fn clear(&self) {
        self.lock().pages.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u32) -> ListKey {
        ListKey::new(
            &ArticleFilter::default(),
            ArticleOrder::UpdatedDesc,
            first,
            None,
            ArticleColumns::Summary,
        )
    }

    fn page() -> Arc<Page<ArticleRecord>> {
        Arc::new(Page {
            items: Vec::new(),
            has_next_page: true,
        })
    }

    #[test]
    fn a_page_is_served_only_for_the_head_it_was_read_at() {
        let cache = ListCache::new(2);
        assert!(cache.get(&key(5), 7).is_none(), "nothing kept yet");
        cache.put(key(5), 7, page());
        assert!(cache.get(&key(5), 7).is_some());
        assert!(cache.get(&key(6), 7).is_none(), "another query");
        assert!(cache.get(&key(5), 6).is_none(), "an older head");
        assert!(cache.get(&key(5), 8).is_none(), "a newer head drops it");
        assert!(cache.get(&key(5), 7).is_none(), "and it stays dropped");
        cache.put(key(5), 7, page());
        assert!(
            cache.get(&key(5), 8).is_none(),
            "a page read at an older head is not kept"
        );
    }

    #[test]
    fn the_cache_keeps_at_most_its_capacity_and_never_bodies() {
        let cache = ListCache::new(2);
        assert!(cache.get(&key(1), 1).is_none());
        for first in 1..=3 {
            cache.put(key(first), 1, page());
        }
        assert!(cache.get(&key(1), 1).is_some());
        assert!(cache.get(&key(2), 1).is_some());
        assert!(cache.get(&key(3), 1).is_none(), "full");
        assert!(!cache.keeps(ArticleColumns::All));
        assert!(cache.keeps(ArticleColumns::WithoutBody));
        assert!(!ListCache::new(0).keeps(ArticleColumns::Summary));
    }
}
