//! Pages of article lists, kept per generation of the log head and the search index.
//!
//! Every projection row a list reads (`articles`, `article_tags`, `article_authors`) is written
//! in the transaction that appends the event and moves the head, and `article_search` in the
//! transaction that moves the search index's checkpoint (`crate::projections::search_index`).
//! So while neither moves, the same list query gives the same page. Both only grow, so their
//! sum, the *generation* ([`generation`]), grows whenever either moves and never otherwise. A
//! list first reads the head and the checkpoint (one statement, one snapshot), then serves the
//! page kept for that generation or reads it and keeps it. They are read from the database on
//! every request, never taken from this process's memory, so a write committed anywhere
//! (another replica included) is seen by the next list exactly as without the cache.
//!
//! Why reading the generation first is safe: the page read after it reflects those positions
//! or later ones, never earlier ones, so a page kept under generation `g` is never older than
//! `g`. When a request sees a newer generation, everything kept for the old one is dropped at
//! once.
//!
//! Bounded: at most `capacity` pages (`StoreOptions::list_cache_pages`) of items read without
//! bodies (pages with bodies are never kept), and at most [`MAX_BYTES`] of their text in all,
//! whatever the articles hold; when full, new pages are not kept until the generation moves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::page::Page;
use crate::model::{ArticleColumns, ArticleFilter, ArticleOrder, ArticleRecord, SearchIndexState};

/// The generation of the rows lists read: the head plus the search index's checkpoint (see the
/// module documentation).
pub(crate) fn generation(state: SearchIndexState) -> u64 {
    state.head.saturating_add(state.checkpoint)
}

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

/// The most bytes of kept pages (estimated by [`page_bytes`]) a cache holds.
pub(crate) const MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Default)]
struct Kept {
    generation: u64,
    pages: HashMap<ListKey, Arc<Page<ArticleRecord>>>,
    /// The sum of [`page_bytes`] over `pages`.
    bytes: usize,
}

/// About how much memory a page holds: its records and the text they own.
pub(crate) fn page_bytes(page: &Page<ArticleRecord>) -> usize {
    let record = |a: &ArticleRecord| {
        let c = &a.content;
        std::mem::size_of::<ArticleRecord>()
            + std::mem::size_of::<super::page::PageCursor>()
            + c.headline.len()
            + c.standfirst.len()
            + c.body.len()
            + c.slug.as_ref().map_or(0, |s| s.as_str().len())
            + c.category.as_ref().map_or(0, |s| s.as_str().len())
            + c.language.as_str().len()
            + c.tags
                .iter()
                .map(|t| t.as_str().len() + std::mem::size_of::<galley_domain::Tag>())
                .sum::<usize>()
            + c.byline
                .iter()
                .map(|b| b.len() + std::mem::size_of::<String>())
                .sum::<usize>()
            + (a.authors.len() + a.reviewers.len()) * std::mem::size_of::<galley_domain::UserId>()
            + a.schedule_blocked_reason.as_ref().map_or(0, String::len)
    };
    page.items.iter().map(|(_, a)| record(a)).sum()
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

    /// The page kept for `key` at `generation`, if any. A generation newer than the kept one
    /// drops every page kept for the old one.
    pub(crate) fn get(&self, key: &ListKey, generation: u64) -> Option<Arc<Page<ArticleRecord>>> {
        let mut kept = self.lock();
        if generation > kept.generation {
            kept.generation = generation;
            kept.pages.clear();
            kept.bytes = 0;
            return None;
        }
        if generation < kept.generation {
            return None;
        }
        kept.pages.get(key).cloned()
    }

    /// Keeps `page`, read after the generation was `generation`, unless it has moved since or
    /// the cache is full.
    pub(crate) fn put(&self, key: ListKey, generation: u64, page: Arc<Page<ArticleRecord>>) {
        let bytes = page_bytes(&page);
        let mut kept = self.lock();
        if generation != kept.generation
            || kept.pages.len() >= self.capacity
            || kept.bytes.saturating_add(bytes) > MAX_BYTES
            || kept.pages.contains_key(&key)
        {
            return;
        }
        kept.bytes += bytes;
        kept.pages.insert(key, page);
    }

    /// Drops every kept page (after the projections were rebuilt in place).
    pub(crate) fn clear(&self) {
        let mut kept = self.lock();
        kept.pages.clear();
        kept.bytes = 0;
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

    #[test]
    fn the_cache_keeps_at_most_its_byte_budget() {
        let now = chrono::Utc::now();
        let content = galley_domain::ArticleContent::new(galley_domain::ContentDraft {
            headline: "A headline".to_owned(),
            standfirst: "x".repeat(1000),
            body: "A body.".to_owned(),
            ..galley_domain::ContentDraft::default()
        })
        .unwrap();
        let record = ArticleRecord {
            id: galley_domain::ArticleId::from_uuid(uuid::Uuid::now_v7()),
            version: galley_domain::Version(1),
            status: galley_domain::Status::Draft,
            revision: galley_domain::RevisionNumber(1),
            content,
            live_revision: None,
            approved_revision: None,
            embargo_until: None,
            scheduled_for: None,
            schedule_blocked_reason: None,
            authors: Vec::new(),
            reviewers: Vec::new(),
            created_at: now,
            first_submitted_at: None,
            submitted_at: None,
            first_published_at: None,
            last_published_at: None,
            updated_at: now,
        };
        let cursor = || super::super::page::PageCursor {
            tag: "ud",
            key: super::super::page::SortKey {
                rank: 0.0,
                time: chrono::Utc::now(),
                id: uuid::Uuid::nil(),
            },
        };
        let big = Arc::new(Page {
            items: (0..100).map(|_| (cursor(), record.clone())).collect(),
            has_next_page: false,
        });
        let each = page_bytes(&big);
        assert!(each > 100 * 1000, "{each}");
        let fit = MAX_BYTES / each;
        let cache = ListCache::new(fit + 10);
        assert!(cache.get(&key(1), 1).is_none());
        for first in 1..=(fit as u32 + 5) {
            cache.put(key(first), 1, Arc::clone(&big));
        }
        let kept = (1..=(fit as u32 + 5))
            .filter(|&first| cache.get(&key(first), 1).is_some())
            .count();
        assert_eq!(kept, fit, "as many as fit in the budget");
        assert!(cache.lock().bytes <= MAX_BYTES);
        cache.clear();
        assert_eq!(cache.lock().bytes, 0);
    }
}
