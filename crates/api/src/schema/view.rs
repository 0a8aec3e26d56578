//! The one view of an article: its record and its content, each field converted one way for
//! every object that shows it. `Article` (the article now) and `ArticleSnapshot` (the article
//! at a point of its history) are both objects over the store's `ArticleRecord` and read it
//! through [`ArticleFields`]; they, `Revision` and the `Content` object read content through
//! [`ContentFields`]. The objects keep their own field lists and descriptions (a snapshot's
//! say "then"); what a field's value is, is written here once.

use async_graphql::{Object, ID};
use chrono::{DateTime, Utc};
use galley_domain::ArticleContent;
use galley_storage::ArticleRecord;

use crate::schema::enums::GqlStatus;
use crate::schema::markdown;

/// The one view of an article record: each field as the API answers it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArticleFields<'a>(pub(crate) &'a ArticleRecord);

impl<'a> ArticleFields<'a> {
    pub(crate) fn id(self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The stream version.
    pub(crate) fn version(self) -> u64 {
        self.0.version.0
    }

    /// The number of the working revision.
    pub(crate) fn revision_number(self) -> u32 {
        self.0.revision.0
    }

    pub(crate) fn status(self) -> GqlStatus {
        self.0.status.into()
    }

    pub(crate) fn live_revision(self) -> Option<u32> {
        self.0.live_revision.map(|r| r.0)
    }

    pub(crate) fn approved_revision(self) -> Option<u32> {
        self.0.approved_revision.map(|r| r.0)
    }

    /// The working revision's content.
    pub(crate) fn content(self) -> ContentFields<'a> {
        ContentFields(&self.0.content)
    }

    pub(crate) fn embargo_until(self) -> Option<DateTime<Utc>> {
        self.0.embargo_until
    }

    pub(crate) fn scheduled_for(self) -> Option<DateTime<Utc>> {
        self.0.scheduled_for
    }

    pub(crate) fn schedule_blocked_reason(self) -> Option<&'a str> {
        self.0.schedule_blocked_reason.as_deref()
    }

    pub(crate) fn created_at(self) -> DateTime<Utc> {
        self.0.created_at
    }

    pub(crate) fn first_submitted_at(self) -> Option<DateTime<Utc>> {
        self.0.first_submitted_at
    }

    pub(crate) fn first_published_at(self) -> Option<DateTime<Utc>> {
        self.0.first_published_at
    }

    pub(crate) fn last_published_at(self) -> Option<DateTime<Utc>> {
        self.0.last_published_at
    }

    /// The time of the last event.
    pub(crate) fn updated_at(self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// The one view of a revision's content: each content field as the API answers it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContentFields<'a>(pub(crate) &'a ArticleContent);

impl<'a> ContentFields<'a> {
    pub(crate) fn headline(self) -> &'a str {
        &self.0.headline
    }

    pub(crate) fn standfirst(self) -> &'a str {
        &self.0.standfirst
    }

    pub(crate) fn body(self) -> &'a str {
        &self.0.body
    }

    /// The body rendered from Markdown as sanitised HTML.
    pub(crate) fn body_html(self) -> String {
        markdown::body_html(&self.0.body)
    }

    pub(crate) fn slug(self) -> Option<&'a str> {
        self.0.slug.as_ref().map(|s| s.as_str())
    }

    pub(crate) fn category(self) -> Option<&'a str> {
        self.0.category.as_ref().map(|c| c.as_str())
    }

    pub(crate) fn tags(self) -> Vec<&'a str> {
        self.0.tags.iter().map(|t| t.as_str()).collect()
    }

    pub(crate) fn byline(self) -> &'a [String] {
        &self.0.byline
    }

    pub(crate) fn language(self) -> &'a str {
        self.0.language.as_str()
    }

    /// The `Content` object of these fields.
    pub(crate) fn object(self) -> ContentView {
        ContentView(self.0.clone())
    }
}

/// The `Content` object: a revision's content fields, owned.
#[derive(Debug, Clone)]
pub struct ContentView(ArticleContent);

/// The content fields of a revision.
#[Object(name = "Content")]
impl ContentView {
    /// The headline.
    async fn headline(&self) -> &str {
        ContentFields(&self.0).headline()
    }
    /// The dek or summary under the headline.
    async fn standfirst(&self) -> &str {
        ContentFields(&self.0).standfirst()
    }
    /// The body, CommonMark Markdown.
    async fn body(&self) -> &str {
        ContentFields(&self.0).body()
    }
    /// The URL name.
    async fn slug(&self) -> Option<&str> {
        ContentFields(&self.0).slug()
    }
    /// The desk or section.
    async fn category(&self) -> Option<&str> {
        ContentFields(&self.0).category()
    }
    /// Subject tags.
    async fn tags(&self) -> Vec<&str> {
        ContentFields(&self.0).tags()
    }
    /// The authors' display names.
    async fn byline(&self) -> &[String] {
        ContentFields(&self.0).byline()
    }
    /// BCP 47 language tag.
    async fn language(&self) -> &str {
        ContentFields(&self.0).language()
    }
}
