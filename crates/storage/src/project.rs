//! Projections: the tables the API reads, written from events.
//!
//! The live path and `rebuild` share every function here, so a rebuild writes exactly what the
//! live path wrote. The `articles` row (with its `slugs`, `article_tags` and `article_authors`
//! rows) is a function of the aggregate state that [`galley_domain::evolve`] folds from the
//! events; `article_revisions` and `review_comments` rows are functions of single events.

use std::collections::{BTreeMap, HashMap};

use galley_domain::{
    evolve, Article, ArticleContent, ArticleId, Event, EventData, Language, UserId,
};

use crate::db::{args, to_u64, Exec, Tx};
use crate::error::StoreError;
use crate::model::StoredEvent;
use crate::read::{
    self, decode_article, decode_comment, decode_revision, ARTICLE_COLUMNS, COMMENT_COLUMNS,
    EVENT_COLUMNS, REVISION_COLUMNS,
};
use crate::store::ProjectionDiff;

/// Every projection table, in the order a rebuild clears them.
const PROJECTION_TABLES: [&str; 6] = [
    "articles",
    "article_revisions",
    "review_comments",
    "slugs",
    "article_tags",
    "article_authors",
];

/// How many events a rebuild reads per page (and reports progress after).
const REBUILD_PAGE: u32 = 2_000;

/// Whether an event changes the article's current content (and so its slug and tags).
pub(crate) fn changes_content(data: &EventData) -> bool {
    matches!(
        data,
        EventData::ArticleCreated { .. }
            | EventData::DraftRevised { .. }
            | EventData::RevisionRestored { .. }
    )
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn content_args(c: &ArticleContent) -> [crate::db::Arg; 8] {
    args![
        c.headline.as_str(),
        c.standfirst.as_str(),
        c.body.as_str(),
        c.slug.as_ref().map(|s| s.as_str()),
        c.category.as_ref().map(|s| s.as_str()),
        json(&c.tags),
        json(&c.byline),
        c.language.as_str(),
    ]
}

/// Frees the slug an article holds, so that another article may take it within the same
/// transaction (used by rebuild before it writes a page of articles).
pub(crate) async fn release_slug(mut exec: Exec<'_>, id: ArticleId) -> Result<(), StoreError> {
    exec.execute(
        "DELETE FROM slugs WHERE article_id = $1",
        &args![id.as_uuid()],
    )
    .await?;
    Ok(())
}

/// Checks that no other article holds the slug of `article`'s current revision.
pub(crate) async fn check_slug(mut exec: Exec<'_>, article: &Article) -> Result<(), StoreError> {
    let (Some(id), Some(slug)) = (article.id, article.content().and_then(|c| c.slug.as_ref()))
    else {
        return Ok(());
    };
    let holder = exec
        .fetch_optional(
            "SELECT article_id FROM slugs WHERE slug = $1",
            &args![slug.as_str()],
        )
        .await?;
    if let Some(row) = holder {
        if row.get::<uuid::Uuid>("article_id")? != id.as_uuid() {
            return Err(StoreError::SlugTaken {
                slug: slug.as_str().to_owned(),
            });
        }
    }
    Ok(())
}

/// Writes the `articles` row of `article`, and, when its content changed, its slug, tags and
/// authors. Fails with `SlugTaken` when another article's current revision holds the slug.
pub(crate) async fn write_article(
    tx: &mut Tx,
    article: &Article,
    content_changed: bool,
) -> Result<(), StoreError> {
    let (Some(id), Some(content)) = (article.id, article.content()) else {
        return Err(StoreError::Corrupt(
            "an event stream does not start with ArticleCreated".to_owned(),
        ));
    };
    let mut a = Vec::from(args![
        id.as_uuid(),
        article.version.0,
        article.status.as_str(),
        i64::from(article.revision().0),
    ]);
    a.extend(content_args(content));
    a.extend(args![
        article.live_revision.map(|r| i64::from(r.0)),
        article.approval.as_ref().map(|x| i64::from(x.revision.0)),
        article.embargo_until,
        article.scheduled_for,
        json(&article.authors),
        json(&article.reviewers),
        article.created_at,
        article.first_submitted_at,
        article.submitted_at,
        article.first_published_at,
        article.last_published_at,
        article.updated_at,
    ]);
    tx.exec()
        .execute(
            "INSERT INTO articles (id, version, status, revision, headline, standfirst, body, \
             slug, category, tags, byline, language, live_revision, approved_revision, \
             embargo_until, scheduled_for, authors, reviewers, created_at, first_submitted_at, \
             submitted_at, first_published_at, last_published_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23, $24) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
             status = excluded.status, revision = excluded.revision, \
             headline = excluded.headline, standfirst = excluded.standfirst, \
             body = excluded.body, slug = excluded.slug, category = excluded.category, \
             tags = excluded.tags, byline = excluded.byline, language = excluded.language, \
             live_revision = excluded.live_revision, \
             approved_revision = excluded.approved_revision, \
             embargo_until = excluded.embargo_until, scheduled_for = excluded.scheduled_for, \
             schedule_blocked_reason = CASE WHEN excluded.status = 'SCHEDULED' \
                 THEN articles.schedule_blocked_reason ELSE NULL END, \
             authors = excluded.authors, reviewers = excluded.reviewers, \
             created_at = excluded.created_at, \
             first_submitted_at = excluded.first_submitted_at, \
             submitted_at = excluded.submitted_at, \
             first_published_at = excluded.first_published_at, \
             last_published_at = excluded.last_published_at, updated_at = excluded.updated_at",
            &a,
        )
        .await?;
    if !content_changed {
        return Ok(());
    }
    check_slug(tx.exec(), article).await?;
    crate::search::write(tx, id, content).await?;
    let id_arg = id.as_uuid();
    release_slug(tx.exec(), id).await?;
    if let Some(slug) = &content.slug {
        tx.exec()
            .execute(
                "INSERT INTO slugs (slug, article_id) VALUES ($1, $2)",
                &args![slug.as_str(), id_arg],
            )
            .await?;
    }
    tx.exec()
        .execute(
            "DELETE FROM article_tags WHERE article_id = $1",
            &args![id_arg],
        )
        .await?;
    let mut keys: Vec<String> = content
        .tags
        .iter()
        .map(|t| t.as_str().to_lowercase())
        .collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        tx.exec()
            .execute(
                "INSERT INTO article_tags (article_id, tag_key) VALUES ($1, $2)",
                &args![id_arg, key],
            )
            .await?;
    }
    for author in &article.authors {
        tx.exec()
            .execute(
                "INSERT INTO article_authors (article_id, user_id) VALUES ($1, $2) \
                 ON CONFLICT (article_id, user_id) DO NOTHING",
                &args![id_arg, author.as_uuid()],
            )
            .await?;
    }
    Ok(())
}

/// Writes the rows that single events add: revisions and review comments here, review
/// cycles, publications and assigned reviewers in [`crate::insights`].
pub(crate) async fn write_event_rows(
    mut exec: Exec<'_>,
    stored: &StoredEvent,
    event: &Event,
) -> Result<(), StoreError> {
    crate::insights::write_event_rows(exec.reborrow(), stored, event).await?;
    let id = stored.article_id.as_uuid();
    let (revision, content, restored_from) = match &event.data {
        EventData::ArticleCreated {
            revision, content, ..
        }
        | EventData::DraftRevised { revision, content } => (revision, content, None),
        EventData::RevisionRestored {
            revision,
            from,
            content,
        } => (revision, content, Some(i64::from(from.0))),
        EventData::ReviewCommentAdded {
            comment_id,
            revision,
            body,
        } => {
            exec.execute(
                "INSERT INTO review_comments (id, article_id, revision, author, body, \
                 created_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &args![
                    comment_id.as_uuid(),
                    id,
                    i64::from(revision.0),
                    event.actor.as_uuid(),
                    body.as_str(),
                    event.at,
                    stored.position,
                ],
            )
            .await?;
            return Ok(());
        }
        _ => return Ok(()),
    };
    let mut a = Vec::from(args![id, i64::from(revision.0)]);
    a.extend(content_args(content));
    a.extend(args![event.actor.as_uuid(), event.at, restored_from]);
    exec.execute(
        "INSERT INTO article_revisions (article_id, revision, headline, standfirst, body, slug, \
         category, tags, byline, language, author, created_at, restored_from) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &a,
    )
    .await?;
    Ok(())
}

/// Inserts one event row, envelope as columns.
pub(crate) async fn insert_event(mut exec: Exec<'_>, e: &StoredEvent) -> Result<(), StoreError> {
    exec.execute(
        &format!(
            "INSERT INTO events ({EVENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ),
        &args![
            e.position,
            e.event_id,
            e.article_id.as_uuid(),
            e.version.0,
            e.event_type.as_str(),
            i64::from(e.schema_version),
            e.payload.clone(),
            e.actor.as_uuid(),
            e.correlation_id,
            e.causation_id,
            e.request_id.clone(),
            e.recorded_at,
        ],
    )
    .await?;
    Ok(())
}

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
/// rebuild (over the whole log) and by import (over the imported events).
#[derive(Debug, Default)]
pub(crate) struct Projector {
    /// The state of every article seen so far, with old revisions' content dropped.
    articles: HashMap<ArticleId, Article>,
    /// Articles touched since the last flush, and whether their content changed.
    dirty: BTreeMap<ArticleId, bool>,
}

impl Projector {
    /// Applies one event (already in the log) to the per-event tables and to the in-memory
    /// state; the `articles` row is written by [`Projector::flush`].
    pub(crate) async fn apply(
        &mut self,
        tx: &mut Tx,
        stored: &StoredEvent,
    ) -> Result<(), StoreError> {
        let event = stored.event()?;
        if let std::collections::hash_map::Entry::Vacant(slot) =
            self.articles.entry(stored.article_id)
        {
            // Import into a database that already holds part of this stream: start from it.
            let before = read::read_stream(
                tx.exec(),
                stored.article_id,
                crate::store::Direction::Forward,
                None,
                u32::MAX,
                &[],
            )
            .await?
            .into_iter()
            .filter(|e| e.position < stored.position)
            .map(|e| e.event())
            .collect::<Result<Vec<_>, _>>()?;
            slot.insert(Article::replay(&before));
        }
        let slot = self.articles.entry(stored.article_id).or_default();
        if slot.version.next() != stored.version {
            return Err(StoreError::Corrupt(format!(
                "article {} jumps from version {} to {}",
                stored.article_id, slot.version, stored.version
            )));
        }
        *slot = evolve(std::mem::take(slot), &event);
        let changed = changes_content(&event.data);
        if changed && slot.revisions.len() >= 2 {
            let i = slot.revisions.len() - 2;
            slot.revisions[i] = forgotten_revision();
        }
        *self.dirty.entry(stored.article_id).or_insert(false) |= changed;
        write_event_rows(tx.exec(), stored, &event).await
    }

    /// Writes the `articles` rows of every article touched since the last flush.
    pub(crate) async fn flush(&mut self, tx: &mut Tx) -> Result<(), StoreError> {
        let dirty = std::mem::take(&mut self.dirty);
        // Free the slugs first: within a page an article may have taken a slug that another
        // article of the same page gave up.
        for (id, changed) in &dirty {
            if *changed {
                release_slug(tx.exec(), *id).await?;
            }
        }
        for (id, changed) in dirty {
            if let Some(article) = self.articles.get(&id) {
                write_article(tx, article, changed).await?;
            }
        }
        Ok(())
    }
}

/// Clears every projection and replays the whole log into it, inside `tx`.
pub(crate) async fn rebuild(tx: &mut Tx) -> Result<u64, StoreError> {
    for table in PROJECTION_TABLES.iter().chain(&crate::insights::TABLES) {
        tx.exec()
            .execute(&format!("DELETE FROM {table}"), &[])
            .await?;
    }
    crate::search::clear(tx).await?;
    let mut projector = Projector::default();
    let mut after = 0;
    let mut replayed = 0u64;
    loop {
        let page = read::read_all(tx.exec(), after, REBUILD_PAGE, &Default::default()).await?;
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
    tracing::info!(events = replayed, "projections rebuilt");
    Ok(replayed)
}

/// Every projection row, keyed by (table, key), rendered as text for comparison.
pub(crate) async fn dump(tx: &mut Tx) -> Result<BTreeMap<(String, String), String>, StoreError> {
    let mut out = BTreeMap::new();
    let mut put = |table: &str, key: String, value: String| {
        out.insert((table.to_owned(), key), value);
    };
    for row in tx
        .exec()
        .fetch_all(&format!("SELECT {ARTICLE_COLUMNS} FROM articles"), &[])
        .await?
    {
        let mut a = decode_article(&row)?;
        // Written by the scheduler, not derived from the log.
        a.schedule_blocked_reason = None;
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
    crate::insights::dump(tx, &mut out).await?;
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
pub(crate) fn diff(
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
