//! Articles, their revisions and comments, lists and the scheduler's due articles, read from
//! the projections.

use chrono::{DateTime, Utc};
use galley_domain::{ArticleId, RevisionNumber, Version};

use super::page::{Page, PageCursor, SortKey};
use super::rows::{
    aliased_article_columns, decode_article, decode_article_columns, decode_comment,
    decode_revision, ARTICLE_COLUMNS, COMMENT_COLUMNS, REVISION_COLUMNS,
};
use crate::backend::{args, placeholders, push_arg, to_u64, Arg, Exec};
use crate::error::StoreError;
use crate::model::{
    ArticleColumns, ArticleFilter, ArticleOrder, ArticleRecord, CommentRecord, DueArticle,
    RevisionRecord,
};

pub(crate) async fn article(
    mut exec: Exec<'_>,
    id: ArticleId,
) -> Result<Option<ArticleRecord>, StoreError> {
    exec.fetch_optional(
        &format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = $1"),
        &args![id.as_uuid()],
    )
    .await?
    .as_ref()
    .map(decode_article)
    .transpose()
}

pub(crate) async fn articles_by_ids(
    mut exec: Exec<'_>,
    ids: &[ArticleId],
) -> Result<Vec<ArticleRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = Vec::new();
    let list = placeholders(&mut args, ids.iter().map(|i| Arg::from(i.as_uuid())));
    exec.fetch_all(
        &format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE id IN ({list})"),
        &args,
    )
    .await?
    .iter()
    .map(decode_article)
    .collect()
}

pub(crate) async fn article_by_slug(
    mut exec: Exec<'_>,
    slug: &str,
) -> Result<Option<ArticleRecord>, StoreError> {
    let cols = aliased_article_columns(ArticleColumns::All);
    exec.fetch_optional(
        &format!(
            "SELECT {cols} FROM slugs s JOIN articles a ON a.id = s.article_id WHERE s.slug = $1"
        ),
        &args![slug],
    )
    .await?
    .as_ref()
    .map(decode_article)
    .transpose()
}

/// A cursor names its order, so a cursor of one order is refused by another.
fn order_tag(order: ArticleOrder) -> &'static str {
    match order {
        ArticleOrder::UpdatedDesc => "ud",
        ArticleOrder::UpdatedAsc => "ua",
        ArticleOrder::CreatedDesc => "cd",
        ArticleOrder::Relevance => "rv",
    }
}

fn cursor(order: ArticleOrder, key: SortKey) -> PageCursor {
    PageCursor {
        tag: order_tag(order),
        key,
    }
}

fn decode_cursor(order: ArticleOrder, cursor: &str) -> Result<SortKey, StoreError> {
    PageCursor::decode(order_tag(order), cursor)
}

pub(crate) async fn list_articles(
    mut exec: Exec<'_>,
    filter: &ArticleFilter,
    order: ArticleOrder,
    first: u32,
    after: Option<&str>,
    columns: ArticleColumns,
) -> Result<Page<ArticleRecord>, StoreError> {
    let mut args: Vec<Arg> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    // A constant rank unless ordering by relevance; DOUBLE PRECISION so both backends decode
    // an f64.
    let mut rank_sql = "0".to_owned();
    // Full-text search (see crate::read::search): the matching articles and their scores.
    let mut with_sql = String::new();
    let mut join_sql = "";
    let text = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(text) = text {
        let terms = super::search::query_terms(text);
        if terms.is_empty() {
            // Nothing searchable is left ("%%%"): nothing matches.
            return Ok(Page {
                items: Vec::new(),
                has_next_page: false,
            });
        }
        with_sql = format!(
            "WITH {} ",
            crate::backend::fulltext::hits_cte(&exec, &mut args, &terms)
        );
        join_sql = " JOIN hits h ON h.id = a.id";
        if order == ArticleOrder::Relevance {
            rank_sql = "h.score".to_owned();
        }
    }
    if !filter.status.is_empty() {
        let list = placeholders(
            &mut args,
            filter.status.iter().map(|s| Arg::from(s.as_str())),
        );
        conditions.push(format!("a.status IN ({list})"));
    }
    if let Some(c) = &filter.category {
        conditions.push(format!("a.category = {}", push_arg(&mut args, c.as_str())));
    }
    if let Some(t) = &filter.tag {
        let p = push_arg(&mut args, t.trim().to_lowercase());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM article_tags t WHERE t.article_id = a.id AND t.tag_key = {p})"
        ));
    }
    if let Some(u) = filter.author {
        let p = push_arg(&mut args, u.as_uuid());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM article_authors w WHERE w.article_id = a.id AND w.user_id = {p})"
        ));
    }
    if let Some(t) = filter.updated_since {
        conditions.push(format!("a.updated_at >= {}", push_arg(&mut args, t)));
    }
    let (time_col, desc) = match order {
        ArticleOrder::UpdatedDesc | ArticleOrder::Relevance => ("updated_at", true),
        ArticleOrder::UpdatedAsc => ("updated_at", false),
        ArticleOrder::CreatedDesc => ("created_at", true),
    };
    if let Some(cursor) = after {
        let key = decode_cursor(order, cursor)?;
        let cmp = if desc { "<" } else { ">" };
        let r = push_arg(&mut args, key.rank);
        let t = push_arg(&mut args, key.time);
        let i = push_arg(&mut args, key.id);
        conditions.push(format!(
            "(({rank_sql}) > {r} OR (({rank_sql}) = {r} AND (a.{time_col} {cmp} {t} \
             OR (a.{time_col} = {t} AND a.id {cmp} {i}))))"
        ));
    }
    let cols = aliased_article_columns(columns);
    let dir = if desc { "DESC" } else { "ASC" };
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = push_arg(&mut args, i64::from(first) + 1);
    let sql = format!(
        "{with_sql}SELECT {cols}, CAST(({rank_sql}) AS DOUBLE PRECISION) AS sort_rank \
         FROM articles a{join_sql} {where_sql} \
         ORDER BY sort_rank ASC, a.{time_col} {dir}, a.id {dir} LIMIT {limit}"
    );
    let rows = exec.fetch_all(&sql, &args).await?;
    let has_next_page = rows.len() > first as usize;
    let mut items = Vec::with_capacity(rows.len().min(first as usize));
    for row in rows.iter().take(first as usize) {
        let record = decode_article_columns(row, columns)?;
        let key = SortKey {
            rank: row.get::<f64>("sort_rank")?,
            time: if time_col == "created_at" {
                record.created_at
            } else {
                record.updated_at
            },
            id: record.id.as_uuid(),
        };
        items.push((cursor(order, key), record));
    }
    Ok(Page {
        items,
        has_next_page,
    })
}

pub(crate) async fn revisions(
    mut exec: Exec<'_>,
    id: ArticleId,
    n: Option<RevisionNumber>,
) -> Result<Vec<RevisionRecord>, StoreError> {
    let mut args = Vec::from(args![id.as_uuid()]);
    let mut sql = format!("SELECT {REVISION_COLUMNS} FROM article_revisions WHERE article_id = $1");
    if let Some(n) = n {
        sql += &format!(" AND revision = {}", push_arg(&mut args, i64::from(n.0)));
    }
    sql += " ORDER BY revision";
    exec.fetch_all(&sql, &args)
        .await?
        .iter()
        .map(decode_revision)
        .collect()
}

pub(crate) async fn comments(
    mut exec: Exec<'_>,
    id: ArticleId,
    revision: Option<RevisionNumber>,
) -> Result<Vec<CommentRecord>, StoreError> {
    let mut args = Vec::from(args![id.as_uuid()]);
    let mut sql = format!("SELECT {COMMENT_COLUMNS} FROM review_comments WHERE article_id = $1");
    if let Some(n) = revision {
        sql += &format!(" AND revision = {}", push_arg(&mut args, i64::from(n.0)));
    }
    sql += " ORDER BY position";
    exec.fetch_all(&sql, &args)
        .await?
        .iter()
        .map(decode_comment)
        .collect()
}

pub(crate) async fn due_articles(
    mut exec: Exec<'_>,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<DueArticle>, StoreError> {
    exec.fetch_all(
        "SELECT id, version, scheduled_for FROM articles \
         WHERE status = 'SCHEDULED' AND scheduled_for <= $1 \
         ORDER BY scheduled_for, id LIMIT $2",
        &args![now, i64::from(limit)],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(DueArticle {
            id: ArticleId::from_uuid(row.get("id")?),
            version: Version(to_u64(row.get("version")?)),
            scheduled_for: row.get("scheduled_for")?,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_only_in_its_own_order() {
        let key = SortKey {
            rank: -1.25e-7,
            time: Utc::now(),
            id: uuid::Uuid::now_v7(),
        };
        let cursor = cursor(ArticleOrder::UpdatedAsc, key.clone()).to_string();
        assert_eq!(
            decode_cursor(ArticleOrder::UpdatedAsc, &cursor).unwrap(),
            key
        );
        assert!(decode_cursor(ArticleOrder::UpdatedDesc, &cursor).is_err());
        assert!(decode_cursor(ArticleOrder::UpdatedAsc, "not hex").is_err());
    }
}
