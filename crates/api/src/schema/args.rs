//! How resolvers read their arguments: ids, times, page sizes and cursors are checked here,
//! and every refusal is VALIDATION_FAILED naming the argument. A leaf: it knows the context,
//! no object type.

use async_graphql::{Context, ID};
use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult};
use crate::schema::context::ContextExt;

/// Parses an `ID` argument into a domain id, naming the argument on failure.
pub(crate) fn parse_id<T: std::str::FromStr>(field: &str, id: &ID) -> ApiResult<T> {
    id.parse::<T>()
        .map_err(|_| ApiError::validation(field, "is not a valid id"))
}

/// The earliest time an argument may name: nothing in the log is older than the Unix epoch.
pub(crate) const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// The latest time an argument may name (9999-12-31T23:59:59Z): far enough for any embargo or
/// schedule, and far from the end of the calendar, so date arithmetic on it cannot overflow.
pub(crate) fn latest() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Checks that a time argument lies between 1970-01-01 and 9999-12-31, naming it on failure.
pub(crate) fn check_time(field: &str, t: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    if t < EARLIEST || t > latest() {
        return Err(ApiError::validation(
            field,
            "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        ));
    }
    Ok(t)
}

/// Checks a page size against the configured cap.
pub(crate) fn page_size(ctx: &Context<'_>, first: Option<i32>) -> ApiResult<u32> {
    let limits = ctx.limits();
    let first = first.unwrap_or(limits.default_page_size as i32);
    if first < 0 || first as u32 > limits.max_page_size {
        return Err(ApiError::validation(
            "first",
            format!("must be between 0 and {}", limits.max_page_size),
        ));
    }
    Ok(first as u32)
}

/// Parses a numeric cursor (a position or a version).
pub(crate) fn parse_cursor(after: Option<&str>) -> ApiResult<Option<u64>> {
    after
        .map(|a| {
            a.parse::<u64>()
                .map_err(|_| ApiError::validation("after", "is not a valid cursor"))
        })
        .transpose()
}

/// The complexity of a list field: its children's, once per item of a page of `first` (20 when
/// absent). Named by the `complexity` attribute of every paginated field.
pub(crate) fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let items = usize::try_from(first.unwrap_or(20).max(1)).unwrap_or(1);
    items
        .saturating_mul(child_complexity)
        .min(u32::MAX as usize)
}
