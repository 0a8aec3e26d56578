//! Time travel: an article as it was at a version or a time, replayed from its own stream.

use galley_domain::{Article, ArticleId};

use crate::backend::{args, to_u64, Db};
use crate::error::StoreError;
use crate::log;
use crate::model::{ArticleRecord, AsOf, Direction, StoredEvent};

/// See [`crate::Store::article_as_of`].
pub(crate) async fn article_as_of(
    db: &Db,
    id: ArticleId,
    at: AsOf,
) -> Result<Option<ArticleRecord>, StoreError> {
    let version = match at {
        AsOf::Version(v) => v.0,
        AsOf::Time(t) => {
            let row = db
                .reader()
                .fetch_one(
                    "SELECT MAX(version) AS version FROM events \
                     WHERE article_id = $1 AND recorded_at <= $2",
                    &args![id.as_uuid(), t],
                )
                .await?;
            row.get::<Option<i64>>("version")?.map(to_u64).unwrap_or(0)
        }
    };
    if version == 0 {
        return Ok(None);
    }
    let limit = u32::try_from(version).unwrap_or(u32::MAX);
    let stream = log::read::read_stream(
        db.reader(),
        id,
        Direction::Forward,
        None,
        limit,
        &[],
        log::read::Payloads::With,
    )
    .await?;
    if (stream.len() as u64) < version {
        return Ok(None);
    }
    let events = stream
        .iter()
        .map(StoredEvent::event)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ArticleRecord::of(&Article::replay(&events)))
}
