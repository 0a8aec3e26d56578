//! The projection tables' columns and their decoding into the records of [`crate::model`].

use std::sync::LazyLock;

use galley_domain::{
    ArticleContent, ArticleId, Category, CommentId, Language, RevisionNumber, Slug, Status, Tag,
    UserId, Version,
};

use uuid::Uuid;

use crate::backend::{to_u64, Row};
use crate::error::StoreError;
use crate::model::{ArticleColumns, ArticleRecord, CommentRecord, RevisionRecord};

/// The columns of `articles`, in the order [`decode_article`] reads them.
pub(crate) const ARTICLE_COLUMNS: &str = "id, version, status, revision, headline, standfirst, \
     body, slug, category, tags, byline, language, live_revision, approved_revision, \
     embargo_until, scheduled_for, schedule_blocked_reason, authors, reviewers, created_at, \
     first_submitted_at, submitted_at, first_published_at, last_published_at, updated_at";

/// The columns of `articles` that [`ArticleColumns::Summary`] leaves out, with the variant
/// that first reads each.
const OMITTED: [(&str, ArticleColumns); 5] = [
    ("body", ArticleColumns::All),
    ("tags", ArticleColumns::WithoutBody),
    ("byline", ArticleColumns::WithoutBody),
    ("authors", ArticleColumns::WithoutBody),
    ("reviewers", ArticleColumns::WithoutBody),
];

/// Whether `columns` reads `column`.
fn reads(columns: ArticleColumns, column: &str) -> bool {
    OMITTED
        .iter()
        .find(|(c, _)| *c == column)
        .is_none_or(|(_, from)| columns.covers(*from))
}

/// The select list of `articles` under the alias `a` (lists join and filter on it), with only
/// the columns `columns` reads; [`decode_article_columns`] decodes it. Each list is built once.
pub(crate) fn aliased_article_columns(columns: ArticleColumns) -> &'static str {
    fn build(columns: ArticleColumns) -> String {
        ARTICLE_COLUMNS
            .split(", ")
            .filter(|c| reads(columns, c))
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    static ALL: LazyLock<String> = LazyLock::new(|| build(ArticleColumns::All));
    static WITHOUT_BODY: LazyLock<String> = LazyLock::new(|| build(ArticleColumns::WithoutBody));
    static SUMMARY: LazyLock<String> = LazyLock::new(|| build(ArticleColumns::Summary));
    match columns {
        ArticleColumns::All => &ALL,
        ArticleColumns::WithoutBody => &WITHOUT_BODY,
        ArticleColumns::Summary => &SUMMARY,
    }
}

fn revision_number(v: i64) -> Result<RevisionNumber, StoreError> {
    u32::try_from(v)
        .map(RevisionNumber)
        .map_err(|_| StoreError::Corrupt(format!("revision number {v} out of range")))
}

fn corrupt(e: galley_domain::DomainError) -> StoreError {
    StoreError::Corrupt(format!("stored content is invalid: {e}"))
}

/// Reads the content columns shared by `articles` and `article_revisions`: those `columns`
/// reads, the others left empty.
fn decode_content(row: &Row, columns: ArticleColumns) -> Result<ArticleContent, StoreError> {
    let slug: Option<String> = row.get("slug")?;
    let category: Option<String> = row.get("category")?;
    let tags: Vec<String> = if reads(columns, "tags") {
        row.json("tags")?
    } else {
        Vec::new()
    };
    let language: String = row.get("language")?;
    Ok(ArticleContent {
        headline: row.get("headline")?,
        standfirst: row.get("standfirst")?,
        body: if reads(columns, "body") {
            row.get("body")?
        } else {
            String::new()
        },
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
        byline: if reads(columns, "byline") {
            row.json("byline")?
        } else {
            Vec::new()
        },
        language: Language::parse(&language).map_err(corrupt)?,
    })
}

/// Decodes a whole `articles` row ([`ARTICLE_COLUMNS`]).
pub(crate) fn decode_article(row: &Row) -> Result<ArticleRecord, StoreError> {
    decode_article_columns(row, ArticleColumns::All)
}

/// Decodes an `articles` row of [`aliased_article_columns`]`(columns)`: the columns it leaves
/// out are empty in the record.
pub(crate) fn decode_article_columns(
    row: &Row,
    columns: ArticleColumns,
) -> Result<ArticleRecord, StoreError> {
    let status: String = row.get("status")?;
    let users = |column: &str| -> Result<Vec<UserId>, StoreError> {
        if !reads(columns, column) {
            return Ok(Vec::new());
        }
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
        content: decode_content(row, columns)?,
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
        content: decode_content(row, ArticleColumns::All)?,
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
