//! An article's past: time travel (`asOf`), the difference between two revisions (`diff`) and
//! the body rendered as safe HTML (`bodyHtml`). The `Article` and `Revision` objects expose
//! these through thin resolvers that call the functions here.

use std::collections::HashSet;
use std::sync::LazyLock;

use async_graphql::{Context, Enum, SimpleObject, ID};
use chrono::{DateTime, Utc};
use galley_domain::{ArticleId, RevisionNumber, Version};
use galley_storage::{ArticleRecord, AsOf};

use crate::error::{ApiError, ApiResult};
use crate::schema::context::ContextExt;
use crate::schema::diff::{self, ChangeKind};
use crate::schema::types::{ContentView, GqlStatus};

/// The sanitiser every rendered body goes through: ammonia's defaults (no `script` or
/// `style`, no event-handler or `style` attributes, an allow-list of tags and attributes),
/// links and images only with absolute http, https and mailto URLs (relative and
/// protocol-relative ones such as `//evil.example` are dropped: a body is shown on pages whose
/// origin it cannot know), and `rel="noopener noreferrer"` on every link.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"));
    builder
});

/// Renders CommonMark (with tables and strikethrough) to HTML and sanitises it. Raw HTML in
/// the Markdown is passed to the sanitiser like the rest, so `<script>` or `onerror=` never
/// reach a reader.
pub fn body_html(markdown: &str) -> String {
    let options =
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH;
    let parser = pulldown_cmark::Parser::new_ext(markdown, options);
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    SANITIZER.clean(&html).to_string()
}

/// An article exactly as it was at a point of its history.
#[derive(SimpleObject, Debug, Clone)]
pub struct ArticleSnapshot {
    /// The article's id.
    pub id: ID,
    /// The stream version the snapshot is taken right after.
    pub version: u64,
    /// The working revision then.
    pub revision_number: u32,
    /// The status then.
    pub status: GqlStatus,
    /// The working revision's content then.
    pub content: ContentView,
    /// The working body then, rendered as sanitised HTML.
    pub body_html: String,
    /// The revision readers saw then, if any.
    pub live_revision: Option<u32>,
    /// The revision approved last, as of then.
    pub approved_revision: Option<u32>,
    /// The embargo then, if any.
    pub embargo_until: Option<DateTime<Utc>>,
    /// The scheduled publication then, if any.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Why the due scheduled publication could not happen, as of then (PublicationBlocked).
    pub schedule_blocked_reason: Option<String>,
    /// Ids of the reviewers assigned by then.
    pub reviewer_ids: Vec<ID>,
    /// Ids of the users who had created or revised it by then.
    pub author_ids: Vec<ID>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was first submitted, as of then.
    pub first_submitted_at: Option<DateTime<Utc>>,
    /// When it was first published, as of then.
    pub first_published_at: Option<DateTime<Utc>>,
    /// When it was last published, as of then.
    pub last_published_at: Option<DateTime<Utc>>,
    /// The time of the snapshot's last event.
    pub updated_at: DateTime<Utc>,
}

impl From<ArticleRecord> for ArticleSnapshot {
    fn from(a: ArticleRecord) -> Self {
        ArticleSnapshot {
            id: ID(a.id.to_string()),
            version: a.version.0,
            revision_number: a.revision.0,
            status: a.status.into(),
            body_html: body_html(&a.content.body),
            content: ContentView::from(&a.content),
            live_revision: a.live_revision.map(|r| r.0),
            approved_revision: a.approved_revision.map(|r| r.0),
            embargo_until: a.embargo_until,
            scheduled_for: a.scheduled_for,
            schedule_blocked_reason: a.schedule_blocked_reason.clone(),
            reviewer_ids: a.reviewers.iter().map(|u| ID(u.to_string())).collect(),
            author_ids: a.authors.iter().map(|u| ID(u.to_string())).collect(),
            created_at: a.created_at,
            first_submitted_at: a.first_submitted_at,
            first_published_at: a.first_published_at,
            last_published_at: a.last_published_at,
            updated_at: a.updated_at,
        }
    }
}

/// `asOf(version, at)`: exactly one of the two.
pub(crate) async fn as_of(
    ctx: &Context<'_>,
    id: ArticleId,
    version: Option<u64>,
    at: Option<DateTime<Utc>>,
) -> ApiResult<Option<ArticleSnapshot>> {
    let point = match (version, at) {
        (Some(v), None) => AsOf::Version(Version(v)),
        (None, Some(t)) => AsOf::Time(crate::schema::types::check_time("at", t)?),
        _ => {
            return Err(ApiError::validation(
                "version",
                "or at must be given, and not both",
            ))
        }
    };
    let record = ctx.store().article_as_of(id, point).await?;
    Ok(record.map(ArticleSnapshot::from))
}

/// What happened to a run of body text.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DiffChangeKind {
    /// In both revisions.
    Equal,
    /// Only in the newer revision.
    Insert,
    /// Only in the older revision.
    Delete,
}

/// A content field that differs between two revisions.
#[derive(SimpleObject, Debug, Clone)]
pub struct FieldChange {
    /// headline, standfirst, slug, category, byline (names joined with ", ") or language.
    pub field: String,
    /// The older value.
    pub before: Option<String>,
    /// The newer value.
    pub after: Option<String>,
}

/// A run of body text with the same fate.
#[derive(SimpleObject, Debug, Clone)]
pub struct DiffSegment {
    /// What happened to it.
    pub kind: DiffChangeKind,
    /// The text.
    pub text: String,
}

/// A group of nearby body changes with some context. Positions count tokens: words and the
/// whitespace runs between them, from 0.
#[derive(SimpleObject, Debug, Clone)]
pub struct DiffHunk {
    /// First token in the older body.
    pub old_start: u64,
    /// Tokens of the older body covered.
    pub old_length: u64,
    /// First token in the newer body.
    pub new_start: u64,
    /// Tokens of the newer body covered.
    pub new_length: u64,
    /// The hunk's text, run by run.
    pub segments: Vec<DiffSegment>,
    /// The hunk in `git diff --word-diff` style: `[-removed-]{+added+}`.
    pub inline: String,
}

/// The word-level difference between two bodies.
#[derive(SimpleObject, Debug, Clone)]
pub struct BodyDiff {
    /// Whether the body changed at all.
    pub changed: bool,
    /// Words only in the newer body.
    pub words_added: u64,
    /// Words only in the older body.
    pub words_removed: u64,
    /// The changes, grouped into hunks.
    pub hunks: Vec<DiffHunk>,
    /// The classic line-based unified diff of the two bodies (empty when equal).
    pub unified: String,
}

/// The difference between two revisions of an article.
#[derive(SimpleObject, Debug, Clone)]
pub struct RevisionDiff {
    /// The older revision compared.
    pub from: u32,
    /// The newer revision compared.
    pub to: u32,
    /// Content fields that changed.
    pub changed_fields: Vec<FieldChange>,
    /// Tags added in `to`.
    pub tags_added: Vec<String>,
    /// Tags removed in `to`.
    pub tags_removed: Vec<String>,
    /// The body, word by word.
    pub body: BodyDiff,
}

/// `diff(from, to)` between two revisions of an article.
pub(crate) async fn diff(
    ctx: &Context<'_>,
    id: ArticleId,
    from: u32,
    to: u32,
) -> ApiResult<RevisionDiff> {
    let store = ctx.store();
    let old = store
        .revision(id, RevisionNumber(from))
        .await?
        .ok_or_else(|| ApiError::validation("from", format!("revision {from} does not exist")))?;
    let new = store
        .revision(id, RevisionNumber(to))
        .await?
        .ok_or_else(|| ApiError::validation("to", format!("revision {to} does not exist")))?;
    let d = diff::diff_revisions(
        &old.content,
        &new.content,
        &format!("revision {from}"),
        &format!("revision {to}"),
    );
    Ok(RevisionDiff {
        from,
        to,
        changed_fields: d
            .fields
            .into_iter()
            .map(|f| FieldChange {
                field: f.field.to_owned(),
                before: f.before,
                after: f.after,
            })
            .collect(),
        tags_added: d.tags_added,
        tags_removed: d.tags_removed,
        body: BodyDiff {
            changed: d.body_changed,
            words_added: d.words_added as u64,
            words_removed: d.words_removed as u64,
            hunks: d
                .hunks
                .into_iter()
                .map(|h| DiffHunk {
                    old_start: h.old_start as u64,
                    old_length: h.old_len as u64,
                    new_start: h.new_start as u64,
                    new_length: h.new_len as u64,
                    segments: h
                        .segments
                        .into_iter()
                        .map(|s| DiffSegment {
                            kind: match s.kind {
                                ChangeKind::Equal => DiffChangeKind::Equal,
                                ChangeKind::Insert => DiffChangeKind::Insert,
                                ChangeKind::Delete => DiffChangeKind::Delete,
                            },
                            text: s.text,
                        })
                        .collect(),
                    inline: h.inline,
                })
                .collect(),
            unified: d.unified,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_scripts_handlers_and_bad_links_are_removed() {
        let html = body_html(
            "Hello *world*\n\n> quoted\n\n[site](https://example.org) [bad](javascript:alert(1))\n\n\
             <script>alert(1)</script><img src=x onerror=\"alert(1)\"><a href=\"#\" onclick=\"x()\">a</a>",
        );
        assert!(html.contains("<em>world</em>"), "{html}");
        assert!(html.contains("<blockquote>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.org" rel="noopener noreferrer">site</a>"#),
            "{html}"
        );
        for bad in ["<script", "alert(1)</", "onerror", "onclick", "javascript:"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }
}
