//! Reading events and projections back into the records of [`crate::model`].

use chrono::{DateTime, Utc};
use galley_domain::{
    ArticleContent, ArticleId, Category, CommentId, EventData, Language, RevisionNumber, Slug,
    Status, Tag, UserId, Version, SCHEMA_VERSION,
};
use sqlx::types::Json;
use uuid::Uuid;

use crate::db::{args, to_u64, Arg, Exec, Row};
use crate::error::StoreError;
use crate::model::{
    ArticleFilter, ArticleOrder, ArticleRecord, CommentRecord, EventFilter, Page, Position,
    RevisionRecord, StoredEvent,
};
use crate::store::{Direction, DueArticle};

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

/// The columns of `articles`, in the order [`decode_article`] reads them.
pub(crate) const ARTICLE_COLUMNS: &str = "id, version, status, revision, headline, standfirst, \
     body, slug, category, tags, byline, language, live_revision, approved_revision, \
     embargo_until, scheduled_for, schedule_blocked_reason, authors, reviewers, created_at, \
     first_submitted_at, submitted_at, first_published_at, last_published_at, updated_at";

fn revision_number(v: i64) -> Result<RevisionNumber, StoreError> {
    u32::try_from(v)
        .map(RevisionNumber)
        .map_err(|_| StoreError::Corrupt(format!("revision number {v} out of range")))
}

fn corrupt(e: galley_domain::DomainError) -> StoreError {
    StoreError::Corrupt(format!("stored content is invalid: {e}"))
}

/// Reads the content columns shared by `articles` and `article_revisions`.
fn decode_content(row: &Row) -> Result<ArticleContent, StoreError> {
    let slug: Option<String> = row.get("slug")?;
    let category: Option<String> = row.get("category")?;
    let tags: Vec<String> = row.json("tags")?;
    let language: String = row.get("language")?;
    Ok(ArticleContent {
        headline: row.get("headline")?,
        standfirst: row.get("standfirst")?,
        body: row.get("body")?,
        slug: slug
            .as_deref()
            .map(Slug::parse)
            .transpose()
            .map_err(corrupt)?,
        category: category
            .as_deref()
            .map(Category::parse)
            .transpose()
            .map_err(corrupt)?,
        tags: tags
            .iter()
            .map(|t| Tag::parse(t))
            .collect::<Result<_, _>>()
            .map_err(corrupt)?,
        byline: row.json("byline")?,
        language: Language::parse(&language).map_err(corrupt)?,
    })
}

pub(crate) fn decode_article(row: &Row) -> Result<ArticleRecord, StoreError> {
    let status: String = row.get("status")?;
    let users = |column: &str| -> Result<Vec<UserId>, StoreError> {
        Ok(row
            .json::<Vec<Uuid>>(column)?
            .into_iter()
            .map(UserId::from_uuid)
            .collect())
    };
    Ok(ArticleRecord {
        id: ArticleId::from_uuid(row.get("id")?),
        version: Version(to_u64(row.get("version")?)),
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?,
        revision: revision_number(row.get("revision")?)?,
        content: decode_content(row)?,
        live_revision: row
            .get::<Option<i64>>("live_revision")?
            .map(revision_number)
            .transpose()?,
        approved_revision: row
            .get::<Option<i64>>("approved_revision")?
            .map(revision_number)
            .transpose()?,
        embargo_until: row.get("embargo_until")?,
        scheduled_for: row.get("scheduled_for")?,
        schedule_blocked_reason: row.get("schedule_blocked_reason")?,
        authors: users("authors")?,
        reviewers: users("reviewers")?,
        created_at: row.get("created_at")?,
        first_submitted_at: row.get("first_submitted_at")?,
        submitted_at: row.get("submitted_at")?,
        first_published_at: row.get("first_published_at")?,
        last_published_at: row.get("last_published_at")?,
        updated_at: row.get("updated_at")?,
    })
}

pub(crate) const REVISION_COLUMNS: &str = "article_id, revision, headline, standfirst, body, \
     slug, category, tags, byline, language, author, created_at, restored_from";

pub(crate) fn decode_revision(row: &Row) -> Result<RevisionRecord, StoreError> {
    Ok(RevisionRecord {
        article_id: ArticleId::from_uuid(row.get("article_id")?),
        revision: revision_number(row.get("revision")?)?,
        content: decode_content(row)?,
        author: UserId::from_uuid(row.get("author")?),
        created_at: row.get("created_at")?,
        restored_from: row
            .get::<Option<i64>>("restored_from")?
            .map(revision_number)
            .transpose()?,
    })
}

pub(crate) const COMMENT_COLUMNS: &str = "id, article_id, revision, author, body, created_at";

pub(crate) fn decode_comment(row: &Row) -> Result<CommentRecord, StoreError> {
    Ok(CommentRecord {
        id: CommentId::from_uuid(row.get("id")?),
        article_id: ArticleId::from_uuid(row.get("article_id")?),
        revision: revision_number(row.get("revision")?)?,
        author: UserId::from_uuid(row.get("author")?),
        body: row.get("body")?,
        created_at: row.get("created_at")?,
    })
}

/// Appends `$n` placeholders for `values` to `args` and returns them comma-separated.
fn placeholders(args: &mut Vec<Arg>, values: impl IntoIterator<Item = Arg>) -> String {
    let mut out = Vec::new();
    for v in values {
        args.push(v);
        out.push(format!("${}", args.len()));
    }
    out.join(", ")
}

/// Adds one argument and returns its placeholder.
fn push(args: &mut Vec<Arg>, v: impl Into<Arg>) -> String {
    args.push(v.into());
    format!("${}", args.len())
}

/// One stream's events (see [`crate::Store::read_stream`]).
pub(crate) async fn read_stream(
    mut exec: Exec<'_>,
    id: ArticleId,
    direction: Direction,
    cursor: Option<Version>,
    limit: u32,
    types: &[String],
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut args = Vec::from(args![id.as_uuid()]);
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE article_id = $1");
    match direction {
        Direction::Forward => {
            let from = cursor.unwrap_or(Version::NONE).0;
            sql += &format!(" AND version > {}", push(&mut args, from));
        }
        Direction::Backward => {
            if let Some(c) = cursor {
                sql += &format!(" AND version < {}", push(&mut args, c.0));
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
    sql += &format!(" LIMIT {}", push(&mut args, i64::from(limit)));
    exec.fetch_all(&sql, &args)
        .await?
        .iter()
        .map(decode_event)
        .collect()
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
        sql += &format!(" AND article_id = {}", push(&mut args, a.as_uuid()));
    }
    if let Some(a) = filter.actor {
        sql += &format!(" AND actor = {}", push(&mut args, a.as_uuid()));
    }
    if !filter.event_types.is_empty() {
        let list = placeholders(
            &mut args,
            filter.event_types.iter().map(|t| Arg::from(t.as_str())),
        );
        sql += &format!(" AND event_type IN ({list})");
    }
    sql += &format!(
        " ORDER BY position ASC LIMIT {}",
        push(&mut args, i64::from(limit))
    );
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
    let cols = ARTICLE_COLUMNS
        .split(", ")
        .map(|c| format!("a.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
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

/// The sort key of a list item, encoded in its cursor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SortKey {
    /// The search score, lower is better (only for `Relevance` with a text filter; 0
    /// otherwise). Kept exactly (Rust prints an `f64` so that it parses back to itself).
    pub(crate) rank: f64,
    pub(crate) time: DateTime<Utc>,
    pub(crate) id: Uuid,
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

fn encode_cursor(order: ArticleOrder, key: &SortKey) -> String {
    encode_tagged(order_tag(order), key)
}

fn decode_cursor(order: ArticleOrder, cursor: &str) -> Result<SortKey, StoreError> {
    decode_tagged(order_tag(order), cursor)
}

/// A cursor of the list named by `tag` (another list refuses it).
pub(crate) fn encode_tagged(tag: &str, key: &SortKey) -> String {
    let raw = format!(
        "{}|{}|{}|{}",
        tag,
        key.rank,
        key.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        key.id
    );
    hex::encode(raw)
}

/// Reads a cursor of the list named by `tag`.
pub(crate) fn decode_tagged(expected: &str, cursor: &str) -> Result<SortKey, StoreError> {
    let invalid = || StoreError::Invalid {
        field: "after".to_owned(),
        message: "is not a cursor of this list".to_owned(),
    };
    let raw = hex::decode(cursor).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let parts: Vec<&str> = raw.split('|').collect();
    let [tag, rank, time, id] = parts.as_slice() else {
        return Err(invalid());
    };
    if *tag != expected {
        return Err(invalid());
    }
    Ok(SortKey {
        rank: rank.parse().map_err(|_| invalid())?,
        time: DateTime::parse_from_rfc3339(time)
            .map_err(|_| invalid())?
            .with_timezone(&Utc),
        id: id.parse().map_err(|_| invalid())?,
    })
}

pub(crate) async fn list_articles(
    mut exec: Exec<'_>,
    filter: &ArticleFilter,
    order: ArticleOrder,
    first: u32,
    after: Option<&str>,
) -> Result<Page<ArticleRecord>, StoreError> {
    let mut args: Vec<Arg> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    // A constant rank unless ordering by relevance; DOUBLE PRECISION so both backends decode
    // an f64.
    let mut rank_sql = "0".to_owned();
    // Full-text search (see crate::search): the matching articles and their scores.
    let mut with_sql = String::new();
    let mut join_sql = "";
    let text = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(text) = text {
        let terms = crate::search::query_terms(text);
        if terms.is_empty() {
            // Nothing searchable is left ("%%%"): nothing matches.
            return Ok(Page {
                items: Vec::new(),
                has_next_page: false,
            });
        }
        with_sql = format!(
            "WITH {} ",
            crate::search::hits_cte(&exec, &mut args, &terms)
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
        conditions.push(format!("a.category = {}", push(&mut args, c.as_str())));
    }
    if let Some(t) = &filter.tag {
        let p = push(&mut args, t.trim().to_lowercase());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM article_tags t WHERE t.article_id = a.id AND t.tag_key = {p})"
        ));
    }
    if let Some(u) = filter.author {
        let p = push(&mut args, u.as_uuid());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM article_authors w WHERE w.article_id = a.id AND w.user_id = {p})"
        ));
    }
    if let Some(t) = filter.updated_since {
        conditions.push(format!("a.updated_at >= {}", push(&mut args, t)));
    }
    let (time_col, desc) = match order {
        ArticleOrder::UpdatedDesc | ArticleOrder::Relevance => ("updated_at", true),
        ArticleOrder::UpdatedAsc => ("updated_at", false),
        ArticleOrder::CreatedDesc => ("created_at", true),
    };
    if let Some(cursor) = after {
        let key = decode_cursor(order, cursor)?;
        let cmp = if desc { "<" } else { ">" };
        let r = push(&mut args, key.rank);
        let t = push(&mut args, key.time);
        let i = push(&mut args, key.id);
        conditions.push(format!(
            "(({rank_sql}) > {r} OR (({rank_sql}) = {r} AND (a.{time_col} {cmp} {t} \
             OR (a.{time_col} = {t} AND a.id {cmp} {i}))))"
        ));
    }
    let cols = ARTICLE_COLUMNS
        .split(", ")
        .map(|c| format!("a.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let dir = if desc { "DESC" } else { "ASC" };
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = push(&mut args, i64::from(first) + 1);
    let sql = format!(
        "{with_sql}SELECT {cols}, CAST(({rank_sql}) AS DOUBLE PRECISION) AS sort_rank \
         FROM articles a{join_sql} {where_sql} \
         ORDER BY sort_rank ASC, a.{time_col} {dir}, a.id {dir} LIMIT {limit}"
    );
    let rows = exec.fetch_all(&sql, &args).await?;
    let has_next_page = rows.len() > first as usize;
    let mut items = Vec::with_capacity(rows.len().min(first as usize));
    for row in rows.iter().take(first as usize) {
        let record = decode_article(row)?;
        let key = SortKey {
            rank: row.get::<f64>("sort_rank")?,
            time: if time_col == "created_at" {
                record.created_at
            } else {
                record.updated_at
            },
            id: record.id.as_uuid(),
        };
        items.push((encode_cursor(order, &key), record));
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
        sql += &format!(" AND revision = {}", push(&mut args, i64::from(n.0)));
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
        sql += &format!(" AND revision = {}", push(&mut args, i64::from(n.0)));
    }
    sql += " ORDER BY position";
    exec.fetch_all(&sql, &args)
        .await?
        .iter()
        .map(decode_comment)
        .collect()
}

pub(crate) async fn head(mut exec: Exec<'_>) -> Result<Position, StoreError> {
    let row = exec.fetch_one("SELECT position FROM log_head", &[]).await?;
    Ok(to_u64(row.get("position")?))
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
            id: Uuid::now_v7(),
        };
        let cursor = encode_cursor(ArticleOrder::UpdatedAsc, &key);
        assert_eq!(
            decode_cursor(ArticleOrder::UpdatedAsc, &cursor).unwrap(),
            key
        );
        assert!(decode_cursor(ArticleOrder::UpdatedDesc, &cursor).is_err());
        assert!(decode_cursor(ArticleOrder::UpdatedAsc, "not hex").is_err());
    }
}
