//! The read side: articles, the global event feed and users.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use galley_domain::{ArticleId, Role, UserId};
use galley_storage::{ArticleFilter, ArticleOrder, EventFilter};

use crate::error::ApiError;
use crate::schema::args::{page_size, parse_cursor, parse_id};
use crate::schema::article::{
    article_connection, page_columns, Article, ArticleConnection, Event, EventConnection,
};
use crate::schema::context::ContextExt;
use crate::schema::inputs::{ArticleFilterInput, ArticleOrderBy, EventFilterInput};
use crate::schema::insights::{self, Dashboard};
use crate::schema::markdown;
use crate::schema::users::{load_user, User};

/// How far full-text search has indexed the log.
#[derive(SimpleObject, Debug, Clone)]
pub struct SearchIndex {
    /// The position of the last event indexed: a text search finds the content of every
    /// event up to here (or a newer content of the same article).
    pub checkpoint: u64,
    /// The log's head, read with the checkpoint.
    pub head: u64,
    /// How many events the index is behind: `head - checkpoint`.
    pub lag: u64,
}

/// The root of every read.
#[derive(Debug, Default)]
pub struct Query;

/// Reads: articles and their history, the review queue, the event log and the dashboard.
/// Every field needs a token. (Merged with the webhook reads into the schema's `Query`.)
#[Object(name = "ArticleQuery")]
impl Query {
    /// One article by id; null when there is none.
    async fn article(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's id.")] id: ID,
    ) -> async_graphql::Result<Option<Article>> {
        ctx.principal()?;
        let id: ArticleId = parse_id("id", &id)?;
        Ok(ctx
            .store()
            .article(id)
            .await
            .map_err(ApiError::from)?
            .map(Article::from))
    }

    /// The article whose current revision has this slug; null when there is none.
    async fn article_by_slug(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article's slug (its URL name, derived from the headline).")]
        slug: String,
    ) -> async_graphql::Result<Option<Article>> {
        ctx.principal()?;
        Ok(ctx
            .store()
            .article_by_slug(&slug)
            .await
            .map_err(ApiError::from)?
            .map(Article::from))
    }

    /// Articles, filtered and ordered, a page at a time (`first` is capped).
    #[graphql(complexity = "crate::schema::args::page_complexity(first, child_complexity)")]
    async fn articles(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Only the articles that match: status, category, tag, author, text; all when absent."
        )]
        filter: Option<ArticleFilterInput>,
        #[graphql(
            desc = "How many items to return (at most the server's largest page size; the default page size when absent)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Return the items after this cursor (from a previous page's pageInfo.endCursor); from the start when absent."
        )]
        after: Option<String>,
        #[graphql(
            default,
            desc = "The order: newest first by default; RELEVANCE ranks by the text filter."
        )]
        order_by: ArticleOrderBy,
    ) -> async_graphql::Result<ArticleConnection> {
        ctx.principal()?;
        let first = page_size(ctx, first)?;
        let filter = filter.unwrap_or_default();
        let store_filter = ArticleFilter {
            text: filter.text.filter(|t| !t.trim().is_empty()),
            status: filter.status.into_iter().map(Into::into).collect(),
            category: filter.category,
            tag: filter.tag,
            author: filter
                .author
                .as_ref()
                .map(|a| parse_id::<UserId>("filter.author", a))
                .transpose()?,
            updated_since: filter.updated_since,
        };
        let order = match order_by {
            ArticleOrderBy::UpdatedDesc => ArticleOrder::UpdatedDesc,
            ArticleOrderBy::UpdatedAsc => ArticleOrder::UpdatedAsc,
            ArticleOrderBy::CreatedDesc => ArticleOrder::CreatedDesc,
            ArticleOrderBy::Relevance => ArticleOrder::Relevance,
        };
        let columns = page_columns(ctx);
        let page = ctx
            .store()
            .list_articles(&store_filter, order, first, after.as_deref(), columns)
            .await
            .map_err(ApiError::from)?;
        Ok(article_connection(after.is_some(), page, columns))
    }

    /// The global event log in position order. The cursor is the event's position; pass the
    /// last one seen as `after` to continue (or to the `events` subscription).
    #[graphql(complexity = "crate::schema::args::page_complexity(first, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Return the events after this cursor (an edge's cursor or pageInfo.endCursor); from the start of the log when absent."
        )]
        after: Option<String>,
        #[graphql(
            desc = "How many items to return (at most the server's largest page size; the default page size when absent)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only the events that match: an article, event types, an actor; every event when absent."
        )]
        filter: Option<EventFilterInput>,
    ) -> async_graphql::Result<EventConnection> {
        ctx.principal()?;
        let first = page_size(ctx, first)?;
        let after_position = parse_cursor(after.as_deref())?.unwrap_or(0);
        let filter = match filter {
            Some(f) => f.to_filter()?,
            None => EventFilter::default(),
        };
        let mut events = ctx
            .store()
            .read_all(after_position, first.saturating_add(1), &filter)
            .await
            .map_err(ApiError::from)?;
        let has_next = events.len() > first as usize;
        events.truncate(first as usize);
        let mut connection = Connection::new(after_position > 0, has_next);
        connection.edges.extend(
            events
                .into_iter()
                .map(|e| Edge::new(e.position.to_string(), Event::from(e))),
        );
        Ok(connection)
    }

    /// Articles in review for a reviewer (the caller unless `reviewer` is given): those
    /// assigned to them first, then those assigned to no one, oldest submission first, a page
    /// at a time (`first` is capped; pass a cursor as `after` to continue).
    #[graphql(complexity = "crate::schema::args::page_complexity(first, child_complexity)")]
    async fn review_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose queue: this reviewer's id; the caller's own when absent.")]
        reviewer: Option<ID>,
        #[graphql(
            desc = "How many items to return (at most the server's largest page size; the default page size when absent)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "A cursor from an earlier page's edges or pageInfo.endCursor, to continue after it."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<ArticleConnection> {
        Ok(insights::review_queue(ctx, reviewer, first, after).await?)
    }

    /// Dashboard figures for the window `[from, to)` (default: the 30 days up to now; at most
    /// 366 days), optionally for one category.
    async fn dashboard(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The start of the range; 30 days before to when absent.")] from: Option<
            DateTime<Utc>,
        >,
        #[graphql(desc = "The end of the range, after from; now when absent.")] to: Option<
            DateTime<Utc>,
        >,
        #[graphql(desc = "Only articles of this category; every category when absent.")]
        category: Option<String>,
    ) -> async_graphql::Result<Dashboard> {
        Ok(insights::dashboard(ctx, from, to, category).await?)
    }

    /// Markdown rendered as the sanitised HTML `bodyHtml` would give, for previewing a body
    /// before it is saved (the console's write view).
    async fn preview_markdown(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "CommonMark Markdown, as an article body holds it.")] markdown: String,
    ) -> async_graphql::Result<String> {
        ctx.principal()?;
        Ok(markdown::body_html(&markdown))
    }

    /// The highest committed position of the log (0 when it is empty).
    async fn head(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        ctx.principal()?;
        Ok(ctx.store().head().await.map_err(ApiError::from)?)
    }

    /// How far full-text search has indexed the log. Text search (`articles(filter: {text})`)
    /// follows the log on its own, a moment behind it: it finds a revision once `checkpoint`
    /// has reached the position of the revision's event. Everything else an article shows is
    /// current as soon as its mutation answers.
    async fn search_index(&self, ctx: &Context<'_>) -> async_graphql::Result<SearchIndex> {
        ctx.principal()?;
        let state = ctx.store().search_index().await.map_err(ApiError::from)?;
        Ok(SearchIndex {
            checkpoint: state.checkpoint,
            head: state.head,
            lag: state.lag(),
        })
    }

    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(User(ctx.principal()?.user.clone()))
    }

    /// Every user, by name (ADMIN).
    async fn users(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        ctx.principal()?.require(Role::Admin, "users")?;
        let users = ctx.store().users().await.map_err(ApiError::from)?;
        Ok(users.into_iter().map(User).collect())
    }

    /// One user by id; null for an unknown id or the system.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's id.")] id: ID,
    ) -> async_graphql::Result<Option<User>> {
        ctx.principal()?;
        let id: UserId = parse_id("id", &id)?;
        Ok(load_user(ctx, id).await?)
    }
}
