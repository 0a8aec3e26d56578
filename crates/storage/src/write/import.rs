//! Import: events exactly as exported (ids, versions, positions, envelopes kept), appended to
//! the log and projected, a page at a time, in one transaction.

use crate::backend::Db;
use crate::error::StoreError;
use crate::model::{Position, StoredEvent};
use crate::projections::Projector;

/// How many imported events are written per set-based flush.
const IMPORT_PAGE: u64 = 2_000;

/// Appends and projects `events`, which must continue the log exactly; returns the new head
/// (see `Store::import_events`).
pub(crate) async fn import_events(db: &Db, events: &[StoredEvent]) -> Result<Position, StoreError> {
    let (mut tx, mut head) = db.begin_write(true).await?;
    let mut projector = Projector::default();
    for event in events {
        if event.position != head + 1 {
            return Err(StoreError::Invalid {
                field: "position".to_owned(),
                message: format!(
                    "event {} has position {} but the log continues at {}",
                    event.event_id,
                    event.position,
                    head + 1
                ),
            });
        }
        // Read through the upcaster first: an event this build cannot read is refused.
        event.event()?;
        projector.insert(event);
        projector.apply(&mut tx, event).await?;
        head = event.position;
        if head % IMPORT_PAGE == 0 {
            projector.flush(&mut tx).await?;
        }
    }
    // The head moves, and on PostgreSQL the listeners are notified, with the last page.
    projector.head(head);
    projector.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(head)
}
