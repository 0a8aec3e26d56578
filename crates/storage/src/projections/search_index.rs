//! The search index follows the log on its own, with a stored checkpoint.
//!
//! Why: writing an article's search document (PostgreSQL's `to_tsvector` and its GIN
//! entries, SQLite's FTS5 rows) was the largest part of an append's database work, and it ran
//! under the log lock, where everything is on the append rate's critical path. The documents
//! are now written by an indexer that follows the log, and the append transaction no longer
//! touches them. Everything else a read needs (the article, its revisions, its history, the
//! other list filters) is still written with the event: only text search may lag.
//!
//! A pass ([`pass`]), in one transaction: take the checkpoint row (the `search` row of
//! `projection_checkpoints`) under lock, read the envelopes of the events after it (at most
//! [`PASS_EVENTS`], without payloads), and write the document of every article whose content
//! one of them changed, once, from the article's current row; then move the checkpoint to the
//! last event read. Several revisions of one article in a pass cost one indexing, and the
//! indexer task waits [`IndexerOptions::delay`] after a doorbell before it starts, so that
//! under a stream of revisions the passes gather many.
//!
//! Correctness:
//! - A document is written from the article's current row, which is at least as new as the
//!   events being indexed, so indexing is idempotent and never goes back in time; when the
//!   checkpoint has reached an event's position, the index holds that event's content or a
//!   newer one.
//! - One pass at a time, in whichever process: on PostgreSQL `FOR UPDATE SKIP LOCKED` on the
//!   checkpoint row (a process that finds it locked leaves the work to the holder, which goes
//!   on until it has caught up with the head it reads after its own commit); on SQLite the
//!   single writer.
//! - A pass that fails or dies (kill -9, a lost connection) rolls back whole: the checkpoint
//!   did not move, and the next pass, in any process, indexes the same events again. The task
//!   also looks again every [`IndexerOptions::recheck`] without a doorbell, for work another
//!   process left when it died.
//! - Rebuild writes every article's document itself and sets the checkpoint to the head
//!   ([`rebuild`]), holding the log lock and the checkpoint's; verify first lets the index
//!   catch up inside its own transaction ([`catch_up_in`]), so that it compares what the
//!   indexer would have written.
//!
//! How far the index has got is public ([`crate::Store::search_index`], the API's
//! `searchIndex`), and the list cache keys text lists by it (see `crate::read::list_cache`).

use std::collections::BTreeSet;
use std::time::Duration;

use galley_domain::ArticleId;
use tokio::sync::watch;

use crate::backend::dialect::LockWait;
use crate::backend::{args, fulltext, placeholders, to_u64, Arg, Db, Exec, Tx};
use crate::error::StoreError;
use crate::feed::bell::Bell;
use crate::model::{ArticleRecord, Position, SearchIndexState};
use crate::read::{articles, search};

/// The most events one pass reads (and so the most documents it writes).
pub(crate) const PASS_EVENTS: u32 = 2_000;

/// The checkpoint row's name.
const NAME: &str = "search";

/// The event types that change an article's current content (see
/// `crate::projections::new_content`), so its document.
const CONTENT_EVENTS: [&str; 3] = ["ArticleCreated", "DraftRevised", "RevisionRestored"];

/// How the indexer task runs.
#[derive(Debug, Clone, Copy)]
pub struct IndexerOptions {
    /// Whether the store runs an indexer task at all. Off, the index moves only through
    /// [`crate::Store::index_search`], a rebuild, or another process's indexer.
    pub enabled: bool,
    /// How long the task waits after a doorbell before a pass, so that a pass gathers the
    /// revisions of that time: the most a search lags behind a quiet log.
    pub delay: Duration,
    /// How often the task looks for work without a doorbell (work another process left).
    pub recheck: Duration,
}

impl Default for IndexerOptions {
    fn default() -> Self {
        IndexerOptions {
            enabled: true,
            delay: Duration::from_millis(50),
            recheck: Duration::from_secs(2),
        }
    }
}

/// What a pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Another process (or task) holds the checkpoint: it does the work.
    Busy,
    /// The checkpoint is now `state.checkpoint`; caught up when it equals `state.head`.
    Done(SearchIndexState),
}

/// The head and the index's checkpoint, read in one statement (one snapshot).
pub(crate) async fn state(mut exec: Exec<'_>) -> Result<SearchIndexState, StoreError> {
    let row = exec
        .fetch_one(
            "SELECT (SELECT position FROM log_head) AS head, \
             (SELECT position FROM projection_checkpoints WHERE name = $1) AS checkpoint",
            &args![NAME],
        )
        .await?;
    Ok(SearchIndexState {
        head: to_u64(row.get::<i64>("head")?),
        checkpoint: to_u64(row.get::<Option<i64>>("checkpoint")?.unwrap_or(0)),
    })
}

/// Takes the checkpoint row: `None` when another transaction holds it and `wait` is
/// [`LockWait::Skip`].
async fn lock(tx: &mut Tx, wait: LockWait) -> Result<Option<Position>, StoreError> {
    let sql = format!(
        "SELECT position FROM projection_checkpoints WHERE name = $1{}",
        tx.lock_clause(wait)
    );
    let row = tx.exec().fetch_optional(&sql, &args![NAME]).await?;
    match (row, wait) {
        (Some(row), _) => Ok(Some(to_u64(row.get::<i64>("position")?))),
        (None, LockWait::Skip) => Ok(None),
        (None, LockWait::Wait) => Err(StoreError::Corrupt(
            "the search index has no checkpoint row".to_owned(),
        )),
    }
}

async fn set(tx: &mut Tx, position: Position) -> Result<(), StoreError> {
    tx.exec()
        .execute(
            "UPDATE projection_checkpoints SET position = $1 WHERE name = $2",
            &args![to_i64(position), NAME],
        )
        .await?;
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// One pass in its own transaction (see the module's documentation).
pub(crate) async fn pass(db: &Db) -> Result<Pass, StoreError> {
    let (mut tx, head) = db.begin_write(false).await?;
    let Some(checkpoint) = lock(&mut tx, LockWait::Skip).await? else {
        tx.rollback().await?;
        return Ok(Pass::Busy);
    };
    if checkpoint >= head {
        tx.rollback().await?;
        return Ok(Pass::Done(SearchIndexState { head, checkpoint }));
    }
    let checkpoint = index_after(&mut tx, checkpoint, head).await?;
    tx.commit().await?;
    Ok(Pass::Done(SearchIndexState { head, checkpoint }))
}

/// Passes until the checkpoint reaches the head read at the start of each, inside `tx`
/// (verify), waiting for another holder of the checkpoint.
pub(crate) async fn catch_up_in(tx: &mut Tx, head: Position) -> Result<(), StoreError> {
    let Some(mut checkpoint) = lock(tx, LockWait::Wait).await? else {
        return Ok(());
    };
    while checkpoint < head {
        checkpoint = index_after(tx, checkpoint, head).await?;
    }
    Ok(())
}

/// Indexes the articles whose content changed in the events after `checkpoint` (at most
/// [`PASS_EVENTS`] of them, none after `head`), moves the checkpoint to the last one read and
/// returns it.
async fn index_after(
    tx: &mut Tx,
    checkpoint: Position,
    head: Position,
) -> Result<Position, StoreError> {
    let rows = tx
        .exec()
        .fetch_all(
            "SELECT position, article_id, event_type FROM events \
             WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3",
            &args![to_i64(checkpoint), to_i64(head), i64::from(PASS_EVENTS)],
        )
        .await?;
    let mut last = checkpoint;
    let mut changed = BTreeSet::new();
    for row in &rows {
        last = to_u64(row.get::<i64>("position")?);
        let kind: String = row.get("event_type")?;
        if CONTENT_EVENTS.contains(&kind.as_str()) {
            changed.insert(ArticleId::from_uuid(row.get("article_id")?));
        }
    }
    if last == checkpoint {
        // Nothing committed after the checkpoint up to `head`: the head was read wrong.
        return Err(StoreError::Corrupt(format!(
            "the log has no event after position {checkpoint} up to its head {head}"
        )));
    }
    let ids: Vec<ArticleId> = changed.into_iter().collect();
    let records = articles::articles_by_ids(tx.exec(), &ids).await?;
    write(tx, &records).await?;
    set(tx, last).await?;
    tracing::debug!(
        after = checkpoint,
        to = last,
        documents = records.len(),
        "search index pass"
    );
    Ok(last)
}

/// Writes the documents of `records` (replacing the ones they had).
async fn write(tx: &mut Tx, records: &[ArticleRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut args = Vec::new();
    let list = placeholders(&mut args, records.iter().map(|r| Arg::from(r.id.as_uuid())));
    let have: BTreeSet<uuid::Uuid> = tx
        .exec()
        .fetch_all(
            &format!("SELECT article_id FROM article_search WHERE article_id IN ({list})"),
            &args,
        )
        .await?
        .iter()
        .map(|r| r.get("article_id"))
        .collect::<Result<_, _>>()?;
    let (mut existing, mut new) = (Vec::new(), Vec::new());
    for r in records {
        let uuid = r.id.as_uuid();
        let (headline, body) = search::document(&r.content);
        let row = Vec::from(args![uuid, headline, body]);
        if have.contains(&uuid) {
            existing.push(row);
        } else {
            new.push(row);
        }
    }
    let parts = fulltext::parts(tx, existing, new);
    tx.write_parts(parts).await?;
    Ok(())
}

/// The rebuild's index: every article's document from its (rebuilt) row, and the checkpoint
/// at `head`. Takes the checkpoint's lock first, waiting for a pass in flight.
pub(crate) async fn rebuild(tx: &mut Tx, head: Position) -> Result<(), StoreError> {
    const PAGE: i64 = 500;
    lock(tx, LockWait::Wait).await?;
    fulltext::clear(tx).await?;
    let mut after: Option<uuid::Uuid> = None;
    loop {
        let ids: Vec<ArticleId> = match after {
            None => {
                tx.exec()
                    .fetch_all("SELECT id FROM articles ORDER BY id LIMIT $1", &args![PAGE])
                    .await?
            }
            Some(a) => {
                tx.exec()
                    .fetch_all(
                        "SELECT id FROM articles WHERE id > $1 ORDER BY id LIMIT $2",
                        &args![a, PAGE],
                    )
                    .await?
            }
        }
        .iter()
        .map(|r| r.get("id").map(ArticleId::from_uuid))
        .collect::<Result<_, _>>()?;
        let Some(last) = ids.last() else { break };
        after = Some(last.as_uuid());
        let records = articles::articles_by_ids(tx.exec(), &ids).await?;
        write(tx, &records).await?;
    }
    set(tx, head).await
}

/// The indexer task of one store: a pass after every doorbell (after [`IndexerOptions::delay`])
/// and every [`IndexerOptions::recheck`], until caught up; stops when the store is dropped or
/// its feed closes.
pub(crate) async fn run(db: Db, mut bell: watch::Receiver<Bell>, options: IndexerOptions) {
    const RETRY_AFTER: Duration = Duration::from_secs(1);
    let closed = |bell: &watch::Receiver<Bell>| bell.borrow().closed;
    loop {
        let rang = tokio::time::timeout(options.recheck, bell.changed()).await;
        if matches!(rang, Ok(Err(_))) || closed(&bell) {
            return;
        }
        if rang.is_ok() {
            tokio::time::sleep(options.delay).await;
        }
        loop {
            match pass(&db).await {
                Ok(Pass::Done(s)) if s.checkpoint < s.head => {}
                Ok(_) => break,
                Err(_) if closed(&bell) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "search indexing failed; trying again");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }
}
