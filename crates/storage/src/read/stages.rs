//! Time in stage, for the dashboard: how long articles sit in each review stage now, and how
//! long the stage visits that ended in a window took.
//!
//! The stages are those an editor-in-chief asks about first: in review (from a submission to
//! the decision or withdrawal that closes its cycle), changes requested (from the request to
//! the next submission), and approved but unpublished (from the approval to the publication
//! that followed it without another review). All of it is read from the `articles`,
//! `review_cycles` and `publications` projections, never from the log, so a rebuild gives the
//! same figures. A visit counts in a window when it ended in it; medians are nearest rank, in
//! Rust, as for the other dashboard figures.

use chrono::{DateTime, TimeDelta, Utc};
use galley_domain::ArticleId;

use super::dashboard::{category_condition, DashboardQuery, DurationStats};
use crate::backend::{args, Db};
use crate::error::StoreError;

/// The articles in one stage now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageNow {
    /// How many articles are in the stage.
    pub count: u64,
    /// The one that has been in it longest, and since when.
    pub oldest: Option<(ArticleId, DateTime<Utc>)>,
}

/// Time in stage: the stages now and the visits that ended in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageFigures {
    /// Articles IN_REVIEW now, since their submission.
    pub in_review_now: StageNow,
    /// Articles CHANGES_REQUESTED now, since the request.
    pub changes_requested_now: StageNow,
    /// Articles APPROVED (not scheduled, not published) now, since the approval.
    pub approved_now: StageNow,
    /// Submission → decision or withdrawal, over cycles closed in the window.
    pub in_review: DurationStats,
    /// Changes requested → next submission, over resubmissions in the window.
    pub changes_requested: DurationStats,
    /// Approval → publication without another review, over publications in the window.
    pub approved: DurationStats,
}

/// See [`crate::Store::time_in_stage`].
pub(crate) async fn time_in_stage(db: &Db, q: &DashboardQuery) -> Result<StageFigures, StoreError> {
    q.check_window()?;
    let category = q.category.as_deref();
    Ok(StageFigures {
        in_review_now: stage_now(db, "IN_REVIEW", "a.submitted_at", category).await?,
        changes_requested_now: stage_now(
            db,
            "CHANGES_REQUESTED",
            &last_decision("CHANGES_REQUESTED"),
            category,
        )
        .await?,
        approved_now: stage_now(db, "APPROVED", &last_decision("APPROVED"), category).await?,
        in_review: stage_visits(
            db,
            "SELECT c.submitted_at AS started, c.decided_at AS ended \
                 FROM review_cycles c JOIN articles a ON a.id = c.article_id \
                 WHERE c.decided_at >= $1 AND c.decided_at < $2",
            q,
        )
        .await?,
        changes_requested: stage_visits(
            db,
            "SELECT x.started, x.ended FROM (SELECT c.article_id, \
                 c.decided_at AS started, (SELECT MIN(n.submitted_at) FROM review_cycles n \
                  WHERE n.article_id = c.article_id \
                  AND n.submitted_version > c.submitted_version) AS ended \
                 FROM review_cycles c \
                 WHERE c.outcome = 'CHANGES_REQUESTED' AND c.decided_at < $2) x \
                 JOIN articles a ON a.id = x.article_id \
                 WHERE x.ended >= $1 AND x.ended < $2",
            q,
        )
        .await?,
        approved: stage_visits(
            db,
            "SELECT c.decided_at AS started, p.published_at AS ended \
                 FROM publications p JOIN articles a ON a.id = p.article_id \
                 JOIN review_cycles c ON c.article_id = p.article_id \
                 AND c.outcome = 'APPROVED' AND c.submitted_version = \
                 (SELECT MAX(l.submitted_version) FROM review_cycles l \
                  WHERE l.article_id = p.article_id AND l.submitted_version < p.version) \
                 WHERE p.published_at >= $1 AND p.published_at < $2",
            q,
        )
        .await?,
    })
}

async fn stage_now(
    db: &Db,
    status: &str,
    since: &str,
    category: Option<&str>,
) -> Result<StageNow, StoreError> {
    let mut args = Vec::from(args![status]);
    let cond = category_condition(&mut args, category);
    let row = db
        .reader()
        .fetch_one(
            &format!("SELECT COUNT(*) AS n FROM articles a WHERE a.status = $1{cond}"),
            &args,
        )
        .await?;
    let count = row.get::<i64>("n")?.max(0) as u64;
    if count == 0 {
        return Ok(StageNow::default());
    }
    let rows = db
        .reader()
        .fetch_all(
            &format!(
                "SELECT a.id, COALESCE({since}, a.updated_at) AS since FROM articles a \
                 WHERE a.status = $1{cond} ORDER BY since, a.id LIMIT 1"
            ),
            &args,
        )
        .await?;
    let oldest = match rows.first() {
        Some(row) => Some((
            ArticleId::from_uuid(row.get("id")?),
            row.get::<DateTime<Utc>>("since")?,
        )),
        None => None,
    };
    Ok(StageNow { count, oldest })
}

async fn stage_visits(db: &Db, sql: &str, q: &DashboardQuery) -> Result<DurationStats, StoreError> {
    let mut args = Vec::from(args![q.from, q.to]);
    let cond = category_condition(&mut args, q.category.as_deref());
    let mut took: Vec<TimeDelta> = Vec::new();
    for row in db
        .reader()
        .fetch_all(&format!("{sql}{cond}"), &args)
        .await?
    {
        let started: DateTime<Utc> = row.get("started")?;
        let ended: DateTime<Utc> = row.get("ended")?;
        took.push(ended - started);
    }
    Ok(DurationStats::of(took))
}

/// When the article's last review decision with this outcome was made.
fn last_decision(outcome: &str) -> String {
    format!(
        "(SELECT MAX(c.decided_at) FROM review_cycles c \
         WHERE c.article_id = a.id AND c.outcome = '{outcome}')"
    )
}
