//! Durations as the dashboard shows them: seconds, and the count and percentiles of a set of
//! durations, shared by the dashboard's figures and its time in stage. A leaf.

use async_graphql::SimpleObject;
use chrono::TimeDelta;
use galley_storage::DurationStats;

/// A duration in seconds, to the microsecond (to the second beyond what microseconds hold).
pub(crate) fn seconds(d: TimeDelta) -> f64 {
    d.num_microseconds()
        .map(|us| us as f64 / 1e6)
        .unwrap_or(d.num_seconds() as f64)
}

/// Count and nearest-rank percentiles of a set of durations, in seconds.
#[derive(SimpleObject, Debug, Clone)]
pub struct DurationFigures {
    /// How many durations.
    pub count: u64,
    /// The median (nearest rank), in seconds; null when there are none.
    pub p50_seconds: Option<f64>,
    /// The 90th percentile (nearest rank), in seconds; null when there are none.
    pub p90_seconds: Option<f64>,
}

impl From<DurationStats> for DurationFigures {
    fn from(s: DurationStats) -> Self {
        DurationFigures {
            count: s.count,
            p50_seconds: s.p50.map(seconds),
            p90_seconds: s.p90.map(seconds),
        }
    }
}
