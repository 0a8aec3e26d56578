//! Pages of keyset-paginated lists and their cursors: an item's sort key, tagged with the list
//! it belongs to, encoded as opaque text only when a response shows it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;

/// The sort key of a list item, encoded in its cursor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SortKey {
    /// The search score, lower is better (only for `Relevance` with a text filter; 0
    /// otherwise). Kept exactly (Rust prints an `f64` so that it parses back to itself).
    pub(crate) rank: f64,
    pub(crate) time: DateTime<Utc>,
    pub(crate) id: Uuid,
}

/// Where an item sits in its keyset-paginated list. Its text (`to_string`) is the opaque
/// cursor a client passes as `after` for the page that follows; it is built only when asked
/// for (a page shows one `endCursor`, rarely fifty).
#[derive(Debug, Clone, PartialEq)]
pub struct PageCursor {
    /// The list it belongs to (another list refuses it).
    pub(crate) tag: &'static str,
    pub(crate) key: SortKey,
}

impl std::fmt::Display for PageCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let raw = format!(
            "{}|{}|{}|{}",
            self.tag,
            self.key.rank,
            self.key
                .time
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            self.key.id
        );
        f.write_str(&hex::encode(raw))
    }
}

impl PageCursor {
    /// Reads the text of a cursor of the list named by `expected`: its sort key, or
    /// `Invalid { field: "after" }` for anything else (another list's cursor included).
    pub(crate) fn decode(expected: &str, cursor: &str) -> Result<SortKey, StoreError> {
        let invalid = || StoreError::Invalid {
            field: "after".to_owned(),
            message: "is not a cursor of this list".to_owned(),
        };
        let raw = hex::decode(cursor).map_err(|_| invalid())?;
        let raw = String::from_utf8(raw).map_err(|_| invalid())?;
        let parts: Vec<&str> = raw.split('|').collect();
        let [tag, rank, time, id] = parts.as_slice() else {
            return Err(invalid());
        };
        if *tag != expected {
            return Err(invalid());
        }
        Ok(SortKey {
            rank: rank.parse().map_err(|_| invalid())?,
            time: DateTime::parse_from_rfc3339(time)
                .map_err(|_| invalid())?
                .with_timezone(&Utc),
            id: id.parse().map_err(|_| invalid())?,
        })
    }
}

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, at most the limit asked for, each with its cursor.
    pub items: Vec<(PageCursor, T)>,
    /// Whether more items follow the last one.
    pub has_next_page: bool,
}
