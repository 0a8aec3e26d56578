//! Projections: the tables the API reads, written from events.
//!
//! The live path, `rebuild` and import write through the same set-based writer ([`Rows`]),
//! so a rebuild writes exactly what the live path wrote. The `articles` row (with its
//! `slugs`, `article_tags`, `article_authors` and search rows) is a function of the aggregate
//! state that [`galley_domain::evolve`] folds from the events; `article_revisions`,
//! `review_comments` and the review queue's and dashboard's tables ([`insights`]) are
//! functions of single events. [`TABLES`] lists every table a rebuild clears; the users
//! table is rebuilt from its own log (`crate::auth::changes`).

use std::collections::{BTreeMap, HashMap};

use galley_domain::{evolve, Article, ArticleContent, ArticleId, Language, UserId};

mod insights;
mod rows;
pub(crate) mod search_index;

pub(crate) use rows::{changes_content, new_content, Before, Rows};

use crate::auth;
use crate::backend::{to_u64, Db, Tx};
use crate::error::StoreError;
use crate::log::{self, append::LogRows};
use crate::model::{Direction, ProjectionDiff, StoredEvent};
use crate::read::rows::{
    decode_article, decode_comment, decode_revision, ARTICLE_COLUMNS, COMMENT_COLUMNS,
    REVISION_COLUMNS,
};

/// Every projection table of the article log, in the order a rebuild clears them (the search
/// index, whose SQLite half is a virtual table, is rebuilt by [`search_index::rebuild`]).
const TABLES: [&str; 9] = [
    "articles",
    "article_revisions",
    "review_comments",
    "slugs",
    "article_tags",
    "article_authors",
    "article_reviewers",
    "review_cycles",
    "publications",
];

/// How many events a rebuild reads per page (and reports progress after).
const REBUILD_PAGE: u32 = 2_000;

/// A placeholder for revisions a rebuild no longer needs in memory: only the number of
/// revisions and the current one matter to the projection.
fn forgotten_revision() -> ArticleContent {
    ArticleContent {
        headline: String::new(),
        standfirst: String::new(),
        body: String::new(),
        slug: None,
        category: None,
        tags: Vec::new(),
        byline: Vec::new(),
        language: Language::default(),
    }
}

/// Replays events into the projections, as the live path would have written them. Used by
/// rebuild (over the whole log) and by import (over the imported events), a page at a time:
/// [`Projector::apply`] folds events in memory and gathers their rows, [`Projector::flush`]
/// writes the page with the same set-based writer as the live path ([`Rows`]).
#[derive(Debug, Default)]
pub(crate) struct Projector {
    /// The state of every article seen so far, with old revisions' content dropped.
    articles: HashMap<ArticleId, Article>,
    /// Articles touched since the last flush.
    dirty: BTreeMap<ArticleId, Dirty>,
    /// The rows of the events applied since the last flush.
    rows: Rows,
    /// The events to insert into the log with the page (import only).
    log: LogRows,
}

/// What a page did to one article.
#[derive(Debug, Clone)]
struct Dirty {
    /// The article before the page (its rows are in the tables).
    before: Before,
    /// Its content changed.
    content: bool,
}

impl Projector {
    /// Applies one event (already in the log, or in `Rows` for import) to the in-memory
    /// state and gathers its rows; nothing is written before [`Projector::flush`].
    pub(crate) async fn apply(
        &mut self,
        tx: &mut Tx,
        stored: &StoredEvent,
    ) -> Result<(), StoreError> {
        let event = stored.event()?;
        if stored.version.0 > 1 && !self.articles.contains_key(&stored.article_id) {
            // Import into a database that already holds part of this stream: start from it.
            let before = log::read::read_stream(
                tx.exec(),
                stored.article_id,
                Direction::Forward,
                None,
                u32::MAX,
                &[],
                log::read::Payloads::With,
            )
            .await?
            .into_iter()
            .filter(|e| e.position < stored.position)
            .map(|e| e.event())
            .collect::<Result<Vec<_>, _>>()?;
            self.articles
                .insert(stored.article_id, Article::replay(&before));
        }
        let slot = self.articles.entry(stored.article_id).or_default();
        if slot.version.next() != stored.version {
            return Err(StoreError::Corrupt(format!(
                "article {} jumps from version {} to {}",
                stored.article_id, slot.version, stored.version
            )));
        }
        let dirty = self
            .dirty
            .entry(stored.article_id)
            .or_insert_with(|| Dirty {
                before: Before::of(slot),
                content: false,
            });
        *slot = evolve(std::mem::take(slot), &event);
        let changed = changes_content(&event.data);
        if changed && slot.revisions.len() >= 2 {
            let i = slot.revisions.len() - 2;
            slot.revisions[i] = forgotten_revision();
        }
        dirty.content |= changed;
        self.rows.event_rows(stored, &event);
        Ok(())
    }

    /// Gathers an event to insert into the log with the page (import).
    pub(crate) fn insert(&mut self, stored: &StoredEvent) {
        self.log.event(stored);
    }

    /// Moves the log's head with the next flush (import).
    pub(crate) fn head(&mut self, position: u64) {
        self.log.head(position);
    }

    /// Writes the page: the events' rows and the `articles` rows of every article touched.
    pub(crate) async fn flush(&mut self, tx: &mut Tx) -> Result<(), StoreError> {
        let mut rows = std::mem::take(&mut self.rows);
        for (id, dirty) in std::mem::take(&mut self.dirty) {
            if let Some(article) = self.articles.get(&id) {
                rows.article(article, &dirty.before, dirty.content)?;
            }
        }
        let log = std::mem::take(&mut self.log).into_parts(tx);
        rows.flush(tx, log).await
    }
}

/// Rebuilds every projection from the log in one transaction, holding the log lock so that no
/// append runs meanwhile (see `Store::rebuild_projections`).
pub(crate) async fn rebuild_in_place(db: &Db) -> Result<u64, StoreError> {
    let (mut tx, head) = db.begin_write(true).await?;
    let replayed = rebuild(&mut tx, head).await?;
    tx.commit().await?;
    Ok(replayed)
}

/// Every difference between the live projections and a rebuild (see
/// `Store::verify_projections`). The scratch copy is the live tables themselves, rebuilt
/// inside a transaction that is rolled back: the comparison runs the very code a rebuild runs.
/// The transaction holds the write lock, so no append changes the log between the readings.
/// The search index, which follows the log on its own, first catches up inside it (see
/// [`search_index`]): what is compared is what its indexer writes.
pub(crate) async fn verify(db: &Db) -> Result<Vec<ProjectionDiff>, StoreError> {
    let (mut tx, head) = db.begin_write(true).await?;
    search_index::catch_up_in(&mut tx, head).await?;
    let live = dump(&mut tx).await?;
    rebuild(&mut tx, head).await?;
    let rebuilt = dump(&mut tx).await?;
    tx.rollback().await?;
    Ok(diff(&live, &rebuilt))
}

/// Clears every projection and replays the whole log (up to `head`, which the caller's log
/// lock keeps where it is) into it, inside `tx`; then indexes every article for search.
async fn rebuild(tx: &mut Tx, head: u64) -> Result<u64, StoreError> {
    for table in TABLES {
        tx.exec()
            .execute(&format!("DELETE FROM {table}"), &[])
            .await?;
    }
    let mut projector = Projector::default();
    let mut after = 0;
    let mut replayed = 0u64;
    loop {
        let page = log::read::read_all(tx.exec(), after, REBUILD_PAGE, &Default::default()).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            projector.apply(tx, e).await?;
        }
        projector.flush(tx).await?;
        replayed += page.len() as u64;
        tracing::info!(
            events = replayed,
            position = after,
            "rebuilding projections"
        );
    }
    tracing::info!(events = replayed, "indexing every article for search");
    search_index::rebuild(tx, head).await?;
    auth::changes::rebuild(tx).await?;
    tracing::info!(events = replayed, "projections rebuilt");
    Ok(replayed)
}

/// Every projection row, keyed by (table, key), rendered as text for comparison.
async fn dump(tx: &mut Tx) -> Result<BTreeMap<(String, String), String>, StoreError> {
    let mut out = BTreeMap::new();
    let mut put = |table: &str, key: String, value: String| {
        out.insert((table.to_owned(), key), value);
    };
    for row in tx
        .exec()
        .fetch_all(&format!("SELECT {ARTICLE_COLUMNS} FROM articles"), &[])
        .await?
    {
        let a = decode_article(&row)?;
        put("articles", a.id.to_string(), format!("{a:?}"));
    }
    for row in tx
        .exec()
        .fetch_all(
            &format!("SELECT {REVISION_COLUMNS} FROM article_revisions"),
            &[],
        )
        .await?
    {
        let r = decode_revision(&row)?;
        put(
            "article_revisions",
            format!("{}/{}", r.article_id, r.revision),
            format!("{r:?}"),
        );
    }
    for row in tx
        .exec()
        .fetch_all(
            &format!("SELECT {COMMENT_COLUMNS}, position FROM review_comments"),
            &[],
        )
        .await?
    {
        let c = decode_comment(&row)?;
        let position = to_u64(row.get("position")?);
        put(
            "review_comments",
            c.id.to_string(),
            format!("{c:?} at position {position}"),
        );
    }
    for row in tx
        .exec()
        .fetch_all("SELECT slug, article_id FROM slugs", &[])
        .await?
    {
        let slug: String = row.get("slug")?;
        let id: uuid::Uuid = row.get("article_id")?;
        put("slugs", slug, id.to_string());
    }
    for row in tx
        .exec()
        .fetch_all("SELECT article_id, tag_key FROM article_tags", &[])
        .await?
    {
        let id: uuid::Uuid = row.get("article_id")?;
        let tag: String = row.get("tag_key")?;
        put("article_tags", format!("{id}/{tag}"), String::new());
    }
    for row in tx
        .exec()
        .fetch_all("SELECT article_id, user_id FROM article_authors", &[])
        .await?
    {
        let id: uuid::Uuid = row.get("article_id")?;
        let user = UserId::from_uuid(row.get("user_id")?);
        put("article_authors", format!("{id}/{user}"), String::new());
    }
    insights::dump(tx, &mut out).await?;
    auth::changes::dump(tx, &mut out).await?;
    Ok(out)
}

/// The two renderings around their first difference, so a human sees what changed.
fn around_difference(live: &str, rebuilt: &str) -> (String, String) {
    const BEFORE: usize = 80;
    const AFTER: usize = 160;
    let common = live
        .chars()
        .zip(rebuilt.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let start = common.saturating_sub(BEFORE);
    let cut = |s: &str| {
        let mut out: String = s.chars().skip(start).take(BEFORE + AFTER).collect();
        if start > 0 {
            out.insert(0, '…');
        }
        if s.chars().count() > start + BEFORE + AFTER {
            out.push('…');
        }
        out
    };
    (cut(live), cut(rebuilt))
}

/// The differences between live rows and rebuilt rows.
fn diff(
    live: &BTreeMap<(String, String), String>,
    rebuilt: &BTreeMap<(String, String), String>,
) -> Vec<ProjectionDiff> {
    let mut out = Vec::new();
    for ((table, key), value) in live {
        match rebuilt.get(&(table.clone(), key.clone())) {
            None => out.push(ProjectionDiff {
                table: table.clone(),
                key: key.clone(),
                detail: "the live row does not follow from the log (a rebuild has no such row)"
                    .to_owned(),
            }),
            Some(expected) if expected != value => {
                let (live, rebuilt) = around_difference(value, expected);
                out.push(ProjectionDiff {
                    table: table.clone(),
                    key: key.clone(),
                    detail: format!("live row {live} but a rebuild gives {rebuilt}"),
                });
            }
            Some(_) => {}
        }
    }
    for (table, key) in rebuilt.keys() {
        if !live.contains_key(&(table.clone(), key.clone())) {
            out.push(ProjectionDiff {
                table: table.clone(),
                key: key.clone(),
                detail: "the row is missing from the live table".to_owned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(items: &[(&str, &str, &str)]) -> BTreeMap<(String, String), String> {
        items
            .iter()
            .map(|(t, k, v)| ((t.to_string(), k.to_string()), v.to_string()))
            .collect()
    }

    #[test]
    fn diff_reports_changed_missing_and_extra_rows() {
        let live = rows(&[("articles", "a", "headline: Tampered"), ("slugs", "x", "a")]);
        let rebuilt = rows(&[("articles", "a", "headline: Original"), ("slugs", "y", "a")]);
        let diffs = diff(&live, &rebuilt);
        assert_eq!(diffs.len(), 3);
        assert!(diffs[0].detail.contains("Tampered") && diffs[0].detail.contains("Original"));
        assert_eq!(
            (diffs[1].table.as_str(), diffs[1].key.as_str()),
            ("slugs", "x")
        );
        assert!(diffs[2].detail.contains("missing"));
        assert!(diff(&live, &live).is_empty());
    }
}
