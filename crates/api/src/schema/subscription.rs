//! Live feeds: the global log and one article's stream, each a catch-up from a position
//! followed by live events, in position order, each exactly once.

use async_graphql::{Context, Subscription, ID};
use futures::stream::{BoxStream, StreamExt};
use galley_domain::ArticleId;
use galley_storage::{EventFilter, Position, Store};

use crate::error::ApiError;
use crate::schema::args::parse_id;
use crate::schema::article::Event;
use crate::schema::context::ContextExt;
use crate::schema::inputs::EventFilterInput;

/// The root of every subscription.
#[derive(Debug, Default)]
pub struct Subscription;

/// Subscribes from `after` (or from the head when absent) and turns store errors into one
/// GraphQL error that ends the stream.
async fn feed(
    store: &Store,
    after: Option<u64>,
    filter: EventFilter,
) -> Result<BoxStream<'static, async_graphql::Result<Event>>, ApiError> {
    let after: Position = match after {
        Some(a) => a,
        None => store.head().await?,
    };
    let mut inner = store.subscribe(after, filter);
    let stream = async_stream::stream! {
        while let Some(item) = inner.next().await {
            match item {
                Ok(event) => {
                    let lag = (chrono::Utc::now() - event.recorded_at)
                        .to_std()
                        .unwrap_or_default();
                    metrics::histogram!("galley_feed_lag_seconds").record(lag.as_secs_f64());
                    metrics::counter!("galley_feed_events_delivered_total").increment(1);
                    yield Ok(Event::from(event));
                }
                Err(e) => {
                    yield Err(ApiError::from(e).into());
                    break;
                }
            }
        }
    };
    Ok(stream.boxed())
}

/// Live feeds over WebSocket (graphql-transport-ws at /graphql/ws): events as they commit.
#[Subscription]
impl Subscription {
    /// Every event of the log after position `after` that matches the filter: first the
    /// catch-up, then live. Without `after`, only events appended from now on.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Replay the log's events after this position first, then follow live; only events appended from now on when absent."
        )]
        after: Option<u64>,
        #[graphql(
            desc = "Only the events that match: an article, event types, an actor; every event when absent."
        )]
        filter: Option<EventFilterInput>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Event>>> {
        ctx.principal()?;
        let filter = match filter {
            Some(f) => f.to_filter()?,
            None => EventFilter::default(),
        };
        Ok(feed(ctx.store(), after, filter).await?)
    }

    /// One article's events after global position `after` (from its first event when absent),
    /// then live.
    async fn article_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The article whose events to follow.")] article_id: ID,
        #[graphql(
            desc = "Replay the article's events after this log position first, then follow live; from its first event when absent."
        )]
        after: Option<u64>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Event>>> {
        ctx.principal()?;
        let id: ArticleId = parse_id("articleId", &article_id)?;
        let filter = EventFilter {
            article_id: Some(id),
            ..EventFilter::default()
        };
        Ok(feed(ctx.store(), Some(after.unwrap_or(0)), filter).await?)
    }
}
