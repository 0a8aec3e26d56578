//! The aggregate cache: articles as of a committed version, so that a batch reads only its
//! streams' tails, or nothing at all when no other process appended since.

use std::collections::HashMap;
use std::sync::Mutex;

use galley_domain::{Article, ArticleId};

/// How many articles [`Aggregates`] keeps.
const AGGREGATE_CACHE: usize = 1024;

/// Articles as of a committed version, filled only after a commit: committed events never
/// change, so such an article plus the events after its version is always the whole stream
/// folded, whatever other processes appended since. A miss costs a full replay, nothing more.
///
/// It also knows when the tail is certainly empty: `last_head` is the head this store's last
/// batch committed, and every position in `(clean_since, last_head]` was appended by this
/// store. A batch that finds the head still at `last_head` knows that nobody else appended
/// since, so an entry committed at or after `clean_since` is the article as it is now: no read
/// at all. A batch that finds another head reads the tails and moves `clean_since` to that
/// head when it commits.
#[derive(Debug, Default)]
pub(crate) struct Aggregates(Mutex<Cache>);

#[derive(Debug, Default)]
struct Cache {
    articles: HashMap<ArticleId, (Article, u64)>,
    last_head: Option<u64>,
    clean_since: u64,
}

/// An article the cache has, and whether it is certainly current.
pub(crate) struct Cached {
    pub(crate) article: Article,
    pub(crate) current: bool,
}

impl Aggregates {
    /// Takes the article out (the batch that takes it puts it back when it commits; a batch
    /// that fails leaves a miss, which costs a replay), and says whether it is current at
    /// `head`, the head the batch read under the log lock. Taking rather than cloning spares
    /// copying every revision of a long article for each batch.
    pub(crate) fn take(&self, id: ArticleId, head: u64) -> Option<Cached> {
        let mut cache = lock(&self.0);
        let clean = cache.last_head == Some(head);
        let clean_since = cache.clean_since;
        cache.articles.remove(&id).map(|(article, as_of)| Cached {
            article,
            current: clean && as_of >= clean_since,
        })
    }

    /// Keeps the articles a batch that began at head `began` left, once it has committed at
    /// head `committed` (or rolled back, having written nothing: `committed == began`); they
    /// are current as of that head (the batch held the log lock from reading their tails to
    /// its end).
    pub(crate) fn put(
        &self,
        began: u64,
        committed: u64,
        articles: impl IntoIterator<Item = (ArticleId, Article)>,
    ) {
        let mut cache = lock(&self.0);
        if cache.last_head != Some(began) {
            // Someone else appended up to `began`: only entries from now on are clean.
            cache.clean_since = began;
        }
        cache.last_head = Some(committed);
        for (id, article) in articles {
            if cache.articles.len() >= AGGREGATE_CACHE && !cache.articles.contains_key(&id) {
                // Any entry will do: a miss only costs a replay.
                if let Some(evict) = cache.articles.keys().next().copied() {
                    cache.articles.remove(&evict);
                }
            }
            cache.articles.insert(id, (article, committed));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
