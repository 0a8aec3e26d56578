//! What clients send: the input objects and the orders of lists, with the conversions into
//! the domain's and the store's terms.

use async_graphql::{Enum, InputObject, ID};
use chrono::{DateTime, Utc};
use galley_domain::{ArticleId, ContentDraft, UserId};
use galley_storage::EventFilter;

use crate::error::ApiResult;
use crate::schema::args::parse_id;
use crate::schema::enums::GqlStatus;

/// The content of one revision, as a client sends it. Absent fields are empty; the slug is
/// derived from the headline when absent, the language is "en" when absent.
#[derive(InputObject, Debug, Clone, Default)]
pub struct ContentInput {
    /// The headline; required to submit.
    #[graphql(default)]
    pub headline: String,
    /// The dek or summary under the headline.
    #[graphql(default)]
    pub standfirst: String,
    /// The body, CommonMark Markdown.
    #[graphql(default)]
    pub body: String,
    /// ASCII, lowercase, hyphens; derived from the headline when absent.
    pub slug: Option<String>,
    /// The desk or section.
    pub category: Option<String>,
    /// Subject tags, ordered; duplicates are dropped.
    #[graphql(default)]
    pub tags: Vec<String>,
    /// The authors' display names.
    #[graphql(default)]
    pub byline: Vec<String>,
    /// BCP 47 language tag; "en" when absent.
    pub language: Option<String>,
}

impl From<ContentInput> for ContentDraft {
    fn from(c: ContentInput) -> Self {
        ContentDraft {
            headline: c.headline,
            standfirst: c.standfirst,
            body: c.body,
            slug: c.slug,
            category: c.category,
            tags: c.tags,
            byline: c.byline,
            language: c.language,
        }
    }
}

/// Filters for the article list. Absent fields match everything.
#[derive(InputObject, Debug, Clone, Default)]
pub struct ArticleFilterInput {
    /// Full-text search over headline, standfirst, body and tags, as far as the index has
    /// got (`searchIndex`: a revision is found a moment after it is saved).
    pub text: Option<String>,
    /// Only these statuses.
    #[graphql(default)]
    pub status: Vec<GqlStatus>,
    /// Only this category.
    pub category: Option<String>,
    /// Only articles carrying this tag.
    pub tag: Option<String>,
    /// Only articles this user created or revised.
    pub author: Option<ID>,
    /// Only articles updated at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
}

/// The order of the article list.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum ArticleOrderBy {
    /// Most recently updated first.
    #[default]
    UpdatedDesc,
    /// Least recently updated first.
    UpdatedAsc,
    /// Most recently created first.
    CreatedDesc,
    /// Best text match first (most recently updated first without a text filter).
    Relevance,
}

/// Filters for the global event feed. Absent fields match everything.
#[derive(InputObject, Debug, Clone, Default)]
pub struct EventFilterInput {
    /// Only this article's events.
    pub article_id: Option<ID>,
    /// Only these event types ("ArticlePublished", …).
    #[graphql(default)]
    pub types: Vec<String>,
    /// Only events caused by this user.
    pub actor: Option<ID>,
}

impl EventFilterInput {
    /// The store's filter.
    pub fn to_filter(&self) -> ApiResult<EventFilter> {
        Ok(EventFilter {
            article_id: self
                .article_id
                .as_ref()
                .map(|id| parse_id::<ArticleId>("filter.articleId", id))
                .transpose()?,
            event_types: self.types.clone(),
            actor: self
                .actor
                .as_ref()
                .map(|id| parse_id::<UserId>("filter.actor", id))
                .transpose()?,
        })
    }
}

/// The order of an article's history.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum HistoryOrder {
    /// Oldest first.
    #[default]
    OldestFirst,
    /// Newest first.
    NewestFirst,
}
