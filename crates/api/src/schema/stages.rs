//! `Dashboard.timeInStage`: how long articles sit in each review stage now, and the median
//! time the stage visits that ended in the window took (galley-storage's `read::stages`
//! module defines each figure).

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use galley_storage::{DashboardQuery, StageFigures, StageNow};

use crate::error::{ApiError, ApiResult};
use crate::schema::article::Article;
use crate::schema::context::ContextExt;
use crate::schema::durations::{seconds, DurationFigures};

/// The figures of the dashboard's window and category, as of now.
pub(crate) async fn time_in_stage(
    ctx: &Context<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    category: Option<String>,
) -> ApiResult<TimeInStage> {
    let now = Utc::now();
    let figures = ctx
        .store()
        .time_in_stage(&DashboardQuery {
            from,
            to,
            category,
            now,
        })
        .await?;
    Ok(TimeInStage { now, figures })
}

/// Time in stage: each review stage now, and over the window.
#[derive(Debug, Clone)]
pub struct TimeInStage {
    now: DateTime<Utc>,
    figures: StageFigures,
}

/// Time in stage: the oldest article in each review stage now, and the median and 90th
/// percentile time spent in each stage over the dashboard's window.
#[Object]
impl TimeInStage {
    /// Articles IN_REVIEW now, aged from their submission.
    async fn in_review_now(&self) -> StageNowFigures {
        StageNowFigures::new(self.figures.in_review_now, self.now)
    }
    /// Articles CHANGES_REQUESTED now, aged from the request.
    async fn changes_requested_now(&self) -> StageNowFigures {
        StageNowFigures::new(self.figures.changes_requested_now, self.now)
    }
    /// Articles APPROVED and not yet scheduled or published now, aged from the approval.
    async fn approved_now(&self) -> StageNowFigures {
        StageNowFigures::new(self.figures.approved_now, self.now)
    }
    /// Submission → decision or withdrawal, over review cycles closed in the window.
    async fn in_review(&self) -> DurationFigures {
        self.figures.in_review.into()
    }
    /// Changes requested → the next submission, over resubmissions in the window.
    async fn changes_requested(&self) -> DurationFigures {
        self.figures.changes_requested.into()
    }
    /// Approval → the publication that followed it without another review, over
    /// publications in the window.
    async fn approved(&self) -> DurationFigures {
        self.figures.approved.into()
    }
}

/// The articles in one stage now.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct StageNowFigures {
    /// How many articles are in the stage.
    pub count: u64,
    /// The id of the article that has been in it longest, if any.
    pub oldest_article_id: Option<ID>,
    /// Since when that article has been in it.
    pub oldest_since: Option<DateTime<Utc>>,
    /// How long that is, in seconds.
    pub oldest_age_seconds: Option<f64>,
}

impl StageNowFigures {
    fn new(stage: StageNow, now: DateTime<Utc>) -> StageNowFigures {
        StageNowFigures {
            count: stage.count,
            oldest_article_id: stage.oldest.map(|(id, _)| ID(id.to_string())),
            oldest_since: stage.oldest.map(|(_, since)| since),
            oldest_age_seconds: stage.oldest.map(|(_, since)| seconds(now - since)),
        }
    }
}

#[async_graphql::ComplexObject]
impl StageNowFigures {
    /// The article that has been in the stage longest.
    async fn oldest(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Article>> {
        let Some(id) = &self.oldest_article_id else {
            return Ok(None);
        };
        let id = id
            .parse()
            .map_err(|_| ApiError::internal("a stored article id does not parse"))?;
        Ok(ctx
            .loaders()
            .articles
            .load_one(id)
            .await
            .map_err(ApiError::internal)?
            .map(Article::from))
    }
}
