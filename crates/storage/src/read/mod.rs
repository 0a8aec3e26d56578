//! The read side: articles, lists and search, time travel, the review queue and the
//! dashboard, all from the projections (and one article's stream for time travel), never by
//! scanning the log.

pub(crate) mod articles;
pub(crate) mod dashboard;
pub(crate) mod history;
pub(crate) mod list_cache;
pub(crate) mod page;
pub(crate) mod rows;
pub(crate) mod search;
pub(crate) mod stages;
