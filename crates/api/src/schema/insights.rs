//! The review queue and the dashboard figures, as GraphQL objects over the store's
//! projections (galley-storage's `read::dashboard` module defines each figure).

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use galley_domain::UserId;
use galley_storage::{DashboardQuery, MAX_DASHBOARD_DAYS};

use crate::error::{ApiError, ApiResult};
use crate::schema::args::{check_time, page_size, parse_id, EARLIEST};
use crate::schema::article::{article_connection, page_columns, Article, ArticleConnection};
use crate::schema::context::ContextExt;
use crate::schema::durations::{seconds, DurationFigures};
use crate::schema::enums::GqlStatus;
use crate::schema::stages::{time_in_stage, TimeInStage};
use crate::schema::users::{load_user, User};

/// The window of a dashboard when `from` is not given.
const DEFAULT_WINDOW_DAYS: i64 = 30;

/// `reviewQueue(reviewer, first, after)`: the caller's queue unless another reviewer is
/// named, a page at a time like `articles`.
pub(crate) async fn review_queue(
    ctx: &Context<'_>,
    reviewer: Option<ID>,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<ArticleConnection> {
    let me = ctx.principal()?.user.id;
    let reviewer = match reviewer {
        Some(id) => parse_id::<UserId>("reviewer", &id)?,
        None => me,
    };
    let first = page_size(ctx, first)?;
    let columns = page_columns(ctx);
    let page = ctx
        .store()
        .review_queue(reviewer, first, after.as_deref(), columns)
        .await?;
    Ok(article_connection(after.is_some(), page, columns))
}

/// `dashboard(from, to, category)`.
pub(crate) async fn dashboard(
    ctx: &Context<'_>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    category: Option<String>,
) -> ApiResult<Dashboard> {
    ctx.principal()?;
    let now = Utc::now();
    let to = check_time("to", to.unwrap_or(now))?;
    let from = match from {
        Some(from) => check_time("from", from)?,
        None => to
            .checked_sub_signed(TimeDelta::days(DEFAULT_WINDOW_DAYS))
            .unwrap_or(EARLIEST)
            .max(EARLIEST),
    };
    if to <= from {
        return Err(ApiError::validation("to", "must be after from"));
    }
    if to - from > TimeDelta::days(MAX_DASHBOARD_DAYS) {
        return Err(ApiError::validation(
            "to",
            format!("must be at most {MAX_DASHBOARD_DAYS} days after from"),
        ));
    }
    let category = category
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let figures = ctx
        .store()
        .dashboard(&DashboardQuery {
            from,
            to,
            category: category.clone(),
            now,
        })
        .await?;
    Ok(Dashboard {
        from,
        to,
        category,
        figures,
    })
}

/// Articles in one status.
#[derive(SimpleObject, Debug, Clone)]
pub struct StatusCount {
    /// The status.
    pub status: GqlStatus,
    /// How many articles are in it now.
    pub count: u64,
}

/// Publications on one day.
#[derive(SimpleObject, Debug, Clone)]
pub struct PublishedOnDay {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Publications (ArticlePublished events) that day.
    pub count: u64,
}

/// How many articles were sent back how many times.
#[derive(SimpleObject, Debug, Clone)]
pub struct BounceBacks {
    /// Changes requested of one article in the window.
    pub changes_requested: u64,
    /// Articles with that many.
    pub articles: u64,
}

/// One reviewer's decisions in the window.
#[derive(Debug, Clone)]
pub struct ReviewerFigures(galley_storage::ReviewerFigures);

/// One reviewer's figures over the dashboard's days: reviews done and how long they took.
#[Object]
impl ReviewerFigures {
    /// The reviewer's id.
    async fn reviewer_id(&self) -> ID {
        ID(self.0.reviewer.to_string())
    }
    /// The reviewer.
    async fn reviewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.reviewer).await?)
    }
    /// Revisions approved.
    async fn approvals(&self) -> u64 {
        self.0.approvals
    }
    /// Revisions sent back.
    async fn changes_requested(&self) -> u64 {
        self.0.changes_requested
    }
    /// Median time from submission to this reviewer's decision (nearest rank), in seconds.
    async fn median_turnaround_seconds(&self) -> Option<f64> {
        self.0.median_turnaround.map(seconds)
    }
}

/// A scheduled publication whose time has passed without it going live.
#[derive(Debug, Clone)]
pub struct OverduePublication(galley_storage::OverduePublication);

/// An article whose scheduled publication time has passed without it being published.
#[Object]
impl OverduePublication {
    /// The article's id.
    async fn article_id(&self) -> ID {
        ID(self.0.article_id.to_string())
    }
    /// The article.
    async fn article(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Article>> {
        Ok(ctx
            .loaders()
            .articles
            .load_one(self.0.article_id)
            .await
            .map_err(ApiError::from_shared)?
            .map(Article::from))
    }
    /// Its headline.
    async fn headline(&self) -> &str {
        &self.0.headline
    }
    /// When it was due.
    async fn scheduled_for(&self) -> DateTime<Utc> {
        self.0.scheduled_for
    }
    /// Why the scheduler could not publish it (such as an embargo or a stale approval), once
    /// it has tried.
    async fn blocked_reason(&self) -> Option<&str> {
        self.0.blocked_reason.as_deref()
    }
}

/// Figures for dashboards. Window figures count what happened in `[from, to)`; statuses and
/// overdue publications are as of now. With a category, only articles whose current category
/// it is count.
#[derive(Debug, Clone)]
pub struct Dashboard {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    category: Option<String>,
    figures: galley_storage::Dashboard,
}

/// Editors' figures over a range of days: output, bounce-backs, reviewers and overdue work.
#[Object]
impl Dashboard {
    /// Start of the window (inclusive).
    async fn from(&self) -> DateTime<Utc> {
        self.from
    }
    /// End of the window (exclusive).
    async fn to(&self) -> DateTime<Utc> {
        self.to
    }
    /// The category the figures are limited to, if any.
    async fn category(&self) -> Option<&str> {
        self.category.as_deref()
    }
    /// Articles per status now, every status listed.
    async fn status_counts(&self) -> Vec<StatusCount> {
        self.figures
            .status_counts
            .iter()
            .map(|(status, count)| StatusCount {
                status: (*status).into(),
                count: *count,
            })
            .collect()
    }
    /// Publications per UTC day, every day of the window listed.
    async fn published_per_day(&self) -> Vec<PublishedOnDay> {
        self.figures
            .published_per_day
            .iter()
            .map(|d| PublishedOnDay {
                day: d.day,
                count: d.count,
            })
            .collect()
    }
    /// How long articles sit in each review stage now, and the time the stage visits that
    /// ended in the window took.
    async fn time_in_stage(&self, ctx: &Context<'_>) -> async_graphql::Result<TimeInStage> {
        Ok(time_in_stage(ctx, self.from, self.to, self.category.clone()).await?)
    }
    /// First submission → first publication, over articles first published in the window.
    async fn time_to_first_publish(&self) -> DurationFigures {
        self.figures.time_to_first_publish.into()
    }
    /// Submission → approval or changes requested, over decisions made in the window.
    async fn review_turnaround(&self) -> DurationFigures {
        self.figures.review_turnaround.into()
    }
    /// Over articles with a review decision in the window: how many were sent back 0, 1, 2 …
    /// times in it (only counts that occur).
    async fn bounce_backs(&self) -> Vec<BounceBacks> {
        self.figures
            .bounce_backs
            .iter()
            .map(|b| BounceBacks {
                changes_requested: b.changes_requested,
                articles: b.articles,
            })
            .collect()
    }
    /// Per reviewer, over decisions made in the window.
    async fn reviewers(&self) -> Vec<ReviewerFigures> {
        self.figures
            .reviewers
            .iter()
            .copied()
            .map(ReviewerFigures)
            .collect()
    }
    /// Scheduled publications due and not published, oldest due first, with the reason the
    /// scheduler gave.
    async fn overdue(&self) -> Vec<OverduePublication> {
        self.figures
            .overdue
            .iter()
            .cloned()
            .map(OverduePublication)
            .collect()
    }
}
