//! One revision and what is attached to it: the `Revision` object, review comments, and the
//! public corrections a re-publication of a revision carried.

use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};
use galley_domain::{ArticleId, EventData, UserId};
use galley_storage::{CommentRecord, Direction, RevisionRecord};

use crate::error::{ApiError, ApiResult};
use crate::schema::context::ContextExt;
use crate::schema::users::{load_user, User};
use crate::schema::view::{ContentFields, ContentView};

/// One revision of an article's content.
#[derive(Debug, Clone)]
pub struct Revision(pub RevisionRecord);

impl Revision {
    fn fields(&self) -> ContentFields<'_> {
        ContentFields(&self.0.content)
    }
}

/// One submitted revision of an article: its content and the review it got.
#[Object]
impl Revision {
    /// The revision number, from 1.
    async fn number(&self) -> u32 {
        self.0.revision.0
    }
    /// Its content.
    async fn content(&self) -> ContentView {
        self.fields().object()
    }
    /// The headline.
    async fn headline(&self) -> &str {
        self.fields().headline()
    }
    /// The dek or summary under the headline.
    async fn standfirst(&self) -> &str {
        self.fields().standfirst()
    }
    /// The body, CommonMark Markdown.
    async fn body(&self) -> &str {
        self.fields().body()
    }
    /// The URL name.
    async fn slug(&self) -> Option<&str> {
        self.fields().slug()
    }
    /// The body rendered from Markdown as sanitised HTML (no scripts, no event handlers, only
    /// http, https and mailto links, each with rel="noopener noreferrer").
    async fn body_html(&self) -> String {
        self.fields().body_html()
    }
    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.author).await?)
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The revision whose content this one restored, if it is a restore.
    async fn restored_from(&self) -> Option<u32> {
        self.0.restored_from.map(|r| r.0)
    }
}

/// A review comment, attached to one revision.
#[derive(Debug, Clone)]
pub struct Comment(pub CommentRecord);

/// A review comment, attached to one revision.
#[Object]
impl Comment {
    /// The comment's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The revision commented on.
    async fn revision(&self) -> u32 {
        self.0.revision.0
    }
    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.author).await?)
    }
    /// The text.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A public correction: the note a re-publication carried.
#[derive(Debug, Clone)]
pub struct Correction {
    note: String,
    revision: u32,
    previous_live: Option<u32>,
    version: u64,
    published_at: DateTime<Utc>,
    actor: UserId,
}

/// A public correction: the note a re-publication carried, the revision it put live and the
/// one it replaced, when and by whom.
#[Object]
impl Correction {
    /// The public correction note.
    async fn note(&self) -> &str {
        &self.note
    }
    /// The revision the correcting publication put live.
    async fn revision(&self) -> u32 {
        self.revision
    }
    /// The revision it replaced, if one was live.
    async fn previous_live(&self) -> Option<u32> {
        self.previous_live
    }
    /// The stream version of the `ArticlePublished` event.
    async fn version(&self) -> u64 {
        self.version
    }
    /// When it went live.
    async fn published_at(&self) -> DateTime<Utc> {
        self.published_at
    }
    /// Who published it (the system id for the scheduler).
    async fn actor(&self) -> ID {
        ID(self.actor.to_string())
    }
    /// The publishing user; null for the scheduler or an unknown id.
    async fn actor_user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.actor).await?)
    }
}

/// An article's public corrections, oldest first: read from its `ArticlePublished` events,
/// those that carried a correction note.
pub(crate) async fn corrections(
    ctx: &Context<'_>,
    article: ArticleId,
) -> ApiResult<Vec<Correction>> {
    let published = ctx
        .store()
        .read_stream(
            article,
            Direction::Forward,
            None,
            u32::MAX,
            &["ArticlePublished".to_owned()],
        )
        .await?;
    let mut out = Vec::new();
    for stored in published {
        let event = stored.event().map_err(ApiError::internal)?;
        if let EventData::ArticlePublished {
            revision,
            previous_live,
            correction: Some(note),
            ..
        } = event.data
        {
            out.push(Correction {
                note,
                revision: revision.0,
                previous_live: previous_live.map(|r| r.0),
                version: stored.version.0,
                published_at: stored.recorded_at,
                actor: stored.actor,
            });
        }
    }
    Ok(out)
}
