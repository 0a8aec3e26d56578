//! The read side that reviewers and dashboards live in: the review queue and the dashboard
//! figures.
//!
//! Nothing here scans the log. The queue and the dashboard read projections that the append
//! transaction keeps up to date: `article_reviewers`, `review_cycles` and `publications`,
//! written by `crate::projections::Rows` from single events on the live path and on rebuild
//! alike, and the `articles` row.
//!
//! Percentiles use the nearest-rank method, computed in Rust over the durations the database
//! returns (so both backends give identical figures): the p-th percentile of n sorted values
//! is the value at rank ⌈p·n/100⌉ (1-based). The median is the 50th percentile.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use galley_domain::{ArticleId, Status, UserId};

use super::page::{Page, PageCursor, SortKey};
use super::rows::{aliased_article_columns, decode_article_columns};
use crate::backend::{args, to_u64, Arg, Db};
use crate::error::StoreError;
use crate::model::{ArticleColumns, ArticleRecord};

/// The longest dashboard window, in days.
pub const MAX_DASHBOARD_DAYS: i64 = 366;

/// The tag of review-queue cursors (bucket: 0 assigned to the reviewer, 1 to no one;
/// submission time; id).
const QUEUE_CURSOR: &str = "rq";

/// At most this many overdue publications are listed.
const MAX_OVERDUE: i64 = 100;

/// The nearest-rank percentile `p` (1 to 100) of ascending `sorted` values.
pub fn percentile<T: Copy>(sorted: &[T], p: u32) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = (p.clamp(1, 100) as usize * n).div_ceil(100);
    sorted.get(rank.max(1) - 1).copied()
}

/// Count and nearest-rank p50 / p90 of a set of durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurationStats {
    /// How many durations.
    pub count: u64,
    /// The median (nearest rank), if any.
    pub p50: Option<TimeDelta>,
    /// The 90th percentile (nearest rank), if any.
    pub p90: Option<TimeDelta>,
}

impl DurationStats {
    pub(crate) fn of(mut values: Vec<TimeDelta>) -> DurationStats {
        values.sort();
        DurationStats {
            count: values.len() as u64,
            p50: percentile(&values, 50),
            p90: percentile(&values, 90),
        }
    }
}

/// What the dashboard is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardQuery {
    /// Start of the window (inclusive).
    pub from: DateTime<Utc>,
    /// End of the window (exclusive).
    pub to: DateTime<Utc>,
    /// Only articles whose current category is this one.
    pub category: Option<String>,
    /// The clock, for "overdue".
    pub now: DateTime<Utc>,
}

impl DashboardQuery {
    /// The window rules every dashboard figure shares: `to` after `from`, at most
    /// [`MAX_DASHBOARD_DAYS`] apart (the API checks them first, with the arguments' names).
    pub(crate) fn check_window(&self) -> Result<(), StoreError> {
        if self.to <= self.from {
            return Err(StoreError::Invalid {
                field: "to".to_owned(),
                message: "must be after from".to_owned(),
            });
        }
        if self.to - self.from > TimeDelta::days(MAX_DASHBOARD_DAYS) {
            return Err(StoreError::Invalid {
                field: "to".to_owned(),
                message: format!("the window may span at most {MAX_DASHBOARD_DAYS} days"),
            });
        }
        Ok(())
    }
}

/// Publications on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    /// The day (UTC).
    pub day: NaiveDate,
    /// ArticlePublished events that day.
    pub count: u64,
}

/// How many articles were sent back how many times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BounceCount {
    /// Changes requested of one article in the window.
    pub changes_requested: u64,
    /// Articles with that many.
    pub articles: u64,
}

/// One reviewer's decisions in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewerFigures {
    /// The reviewer.
    pub reviewer: UserId,
    /// Approvals.
    pub approvals: u64,
    /// Changes requested.
    pub changes_requested: u64,
    /// Median time from submission to this reviewer's decision (nearest rank).
    pub median_turnaround: Option<TimeDelta>,
}

/// A scheduled publication whose time has passed without it going live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverduePublication {
    /// The article.
    pub article_id: ArticleId,
    /// Its headline.
    pub headline: String,
    /// When it was due.
    pub scheduled_for: DateTime<Utc>,
    /// Why the scheduler could not publish it, once it has tried.
    pub blocked_reason: Option<String>,
}

/// The dashboard figures. Window figures count what happened in `[from, to)`; statuses and
/// overdue publications are as of now.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// Articles per status now (every status, zeros included).
    pub status_counts: Vec<(Status, u64)>,
    /// Publications per UTC day, every day of the window (zeros included).
    pub published_per_day: Vec<DayCount>,
    /// First submission → first publication, over articles first published in the window.
    pub time_to_first_publish: DurationStats,
    /// Submission → approval or changes requested, over decisions made in the window.
    pub review_turnaround: DurationStats,
    /// Over articles with a review decision in the window: how many had 0, 1, 2 … changes
    /// requested in it (only counts that occur).
    pub bounce_backs: Vec<BounceCount>,
    /// Per reviewer, over decisions made in the window, by reviewer id.
    pub reviewers: Vec<ReviewerFigures>,
    /// Scheduled publications due at or before now and not published, oldest due first.
    pub overdue: Vec<OverduePublication>,
}

/// `AND a.category = $n` when a category is asked for.
pub(crate) fn category_condition(args: &mut Vec<Arg>, category: Option<&str>) -> String {
    match category {
        Some(c) => {
            args.push(Arg::from(c));
            format!(" AND a.category = ${}", args.len())
        }
        None => String::new(),
    }
}

/// See [`crate::Store::review_queue`].
pub(crate) async fn review_queue(
    db: &Db,
    reviewer: UserId,
    first: u32,
    after: Option<&str>,
    columns: ArticleColumns,
) -> Result<Page<ArticleRecord>, StoreError> {
    let cols = aliased_article_columns(columns);
    let mine = "EXISTS (SELECT 1 FROM article_reviewers r \
                WHERE r.article_id = a.id AND r.user_id = $1)";
    let bucket = format!("CAST(CASE WHEN {mine} THEN 0 ELSE 1 END AS BIGINT)");
    let mut args = Vec::from(args![reviewer.as_uuid(), i64::from(first) + 1]);
    let mut after_sql = String::new();
    if let Some(cursor) = after {
        let key = PageCursor::decode(QUEUE_CURSOR, cursor)?;
        args.extend(args![key.rank as i64, key.time, key.id]);
        after_sql = format!(
            " AND (({bucket}) > $3 OR (({bucket}) = $3 AND (a.submitted_at > $4 \
             OR (a.submitted_at = $4 AND a.id > $5))))"
        );
    }
    let sql = format!(
        "SELECT {cols}, {bucket} AS bucket FROM articles a WHERE a.status = 'IN_REVIEW' \
         AND ({mine} OR NOT EXISTS (SELECT 1 FROM article_reviewers r \
         WHERE r.article_id = a.id)){after_sql} \
         ORDER BY bucket, a.submitted_at, a.id LIMIT $2"
    );
    let rows = db.reader().fetch_all(&sql, &args).await?;
    let has_next_page = rows.len() > first as usize;
    let mut items = Vec::with_capacity(rows.len().min(first as usize));
    for row in rows.iter().take(first as usize) {
        let record = decode_article_columns(row, columns)?;
        let key = SortKey {
            rank: row.get::<i64>("bucket")? as f64,
            time: record.submitted_at.unwrap_or(record.updated_at),
            id: record.id.as_uuid(),
        };
        items.push((
            PageCursor {
                tag: QUEUE_CURSOR,
                key,
            },
            record,
        ));
    }
    Ok(Page {
        items,
        has_next_page,
    })
}

/// See [`crate::Store::dashboard`].
pub(crate) async fn dashboard(db: &Db, q: &DashboardQuery) -> Result<Dashboard, StoreError> {
    q.check_window()?;
    let category = q.category.as_deref();
    let db = &db;

    // Counts by status now.
    let mut args = Vec::new();
    let cond = category_condition(&mut args, category);
    let mut counts: HashMap<Status, u64> = HashMap::new();
    for row in db
        .reader()
        .fetch_all(
            &format!(
                "SELECT a.status, COUNT(*) AS n FROM articles a WHERE 1 = 1{cond} \
                 GROUP BY a.status"
            ),
            &args,
        )
        .await?
    {
        let status: String = row.get("status")?;
        let status = Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?;
        counts.insert(status, to_u64(row.get("n")?));
    }
    let status_counts = Status::ALL
        .iter()
        .map(|s| (*s, counts.get(s).copied().unwrap_or(0)))
        .collect();

    // Publications per day.
    let mut args = Vec::from(args![q.from, q.to]);
    let cond = category_condition(&mut args, category);
    let mut per_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    // The window spans at most MAX_DASHBOARD_DAYS (checked above), and `iter_days` ends at
    // the calendar's last day, so this is bounded whatever the window.
    let last =
        q.to.checked_sub_signed(TimeDelta::microseconds(1))
            .unwrap_or(q.to)
            .date_naive();
    for day in q.from.date_naive().iter_days().take_while(|d| *d <= last) {
        per_day.insert(day, 0);
    }
    for row in db
        .reader()
        .fetch_all(
            &format!(
                "SELECT p.published_at FROM publications p \
                 JOIN articles a ON a.id = p.article_id \
                 WHERE p.published_at >= $1 AND p.published_at < $2{cond}"
            ),
            &args,
        )
        .await?
    {
        let at: DateTime<Utc> = row.get("published_at")?;
        *per_day.entry(at.date_naive()).or_insert(0) += 1;
    }
    let published_per_day = per_day
        .into_iter()
        .map(|(day, count)| DayCount { day, count })
        .collect();

    // Time to first publish.
    let mut args = Vec::from(args![q.from, q.to]);
    let cond = category_condition(&mut args, category);
    let mut first_publish = Vec::new();
    for row in db
        .reader()
        .fetch_all(
            &format!(
                "SELECT a.first_submitted_at, a.first_published_at FROM articles a \
                 WHERE a.first_published_at >= $1 AND a.first_published_at < $2 \
                 AND a.first_submitted_at IS NOT NULL{cond}"
            ),
            &args,
        )
        .await?
    {
        let submitted: DateTime<Utc> = row.get("first_submitted_at")?;
        let published: DateTime<Utc> = row.get("first_published_at")?;
        first_publish.push(published - submitted);
    }

    // Review decisions: turnaround, bounce-backs, reviewers.
    let mut args = Vec::from(args![q.from, q.to]);
    let cond = category_condition(&mut args, category);
    let mut turnaround = Vec::new();
    let mut bounces: HashMap<uuid::Uuid, u64> = HashMap::new();
    let mut by_reviewer: BTreeMap<UserId, (u64, u64, Vec<TimeDelta>)> = BTreeMap::new();
    for row in db
        .reader()
        .fetch_all(
            &format!(
                "SELECT c.article_id, c.submitted_at, c.decided_at, c.decided_by, c.outcome \
                 FROM review_cycles c JOIN articles a ON a.id = c.article_id \
                 WHERE c.decided_at >= $1 AND c.decided_at < $2 \
                 AND c.outcome IN ('APPROVED', 'CHANGES_REQUESTED'){cond}"
            ),
            &args,
        )
        .await?
    {
        let article: uuid::Uuid = row.get("article_id")?;
        let submitted: DateTime<Utc> = row.get("submitted_at")?;
        let decided: DateTime<Utc> = row.get("decided_at")?;
        let reviewer = UserId::from_uuid(row.get("decided_by")?);
        let approved = row.get::<String>("outcome")? == "APPROVED";
        let took = decided - submitted;
        turnaround.push(took);
        let sent_back = bounces.entry(article).or_insert(0);
        let figures = by_reviewer.entry(reviewer).or_default();
        if approved {
            figures.0 += 1;
        } else {
            figures.1 += 1;
            *sent_back += 1;
        }
        figures.2.push(took);
    }
    let mut histogram: BTreeMap<u64, u64> = BTreeMap::new();
    for n in bounces.into_values() {
        *histogram.entry(n).or_insert(0) += 1;
    }
    let bounce_backs = histogram
        .into_iter()
        .map(|(changes_requested, articles)| BounceCount {
            changes_requested,
            articles,
        })
        .collect();
    let reviewers = by_reviewer
        .into_iter()
        .map(|(reviewer, (approvals, changes_requested, mut took))| {
            took.sort();
            ReviewerFigures {
                reviewer,
                approvals,
                changes_requested,
                median_turnaround: percentile(&took, 50),
            }
        })
        .collect();

    // Overdue scheduled publications.
    let mut args = Vec::from(args![q.now, MAX_OVERDUE]);
    let cond = category_condition(&mut args, category);
    let overdue = db
        .reader()
        .fetch_all(
            &format!(
                "SELECT a.id, a.headline, a.scheduled_for, a.schedule_blocked_reason \
                 FROM articles a WHERE a.status = 'SCHEDULED' AND a.scheduled_for <= $1{cond} \
                 ORDER BY a.scheduled_for, a.id LIMIT $2"
            ),
            &args,
        )
        .await?
        .iter()
        .map(|row| {
            Ok(OverduePublication {
                article_id: ArticleId::from_uuid(row.get("id")?),
                headline: row.get("headline")?,
                scheduled_for: row.get("scheduled_for")?,
                blocked_reason: row.get("schedule_blocked_reason")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

    Ok(Dashboard {
        status_counts,
        published_per_day,
        time_to_first_publish: DurationStats::of(first_publish),
        review_turnaround: DurationStats::of(turnaround),
        bounce_backs,
        reviewers,
        overdue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [15, 20, 35, 40, 50];
        assert_eq!(percentile(&v, 50), Some(35));
        assert_eq!(percentile(&v, 90), Some(50));
        assert_eq!(percentile(&v, 30), Some(20));
        assert_eq!(percentile(&v, 100), Some(50));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile::<i64>(&[], 50), None);
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 90), Some(9));
    }
}
