//! One batch of commands, one transaction, a near-constant number of round trips.
//!
//! Appends are serialised (the `log_head` row lock; SQLite's single writer), so everything a
//! batch does between taking the lock and committing is the append rate's limit. Running each
//! command on its own (savepoint, stream read, slug check, a dozen single-row statements,
//! read-back) cost about twelve round trips per command. A batch now runs in two phases:
//!
//! 1. **Decide, in memory.** Under the lock, the batch reads what it needs in a few queries
//!    for the whole batch: the articles' stream tails (none at all when the head is the one
//!    this store last committed, since the cached aggregates are then current; see
//!    [`crate::group::Aggregates`]), the idempotency keys it uses and the holders of the slugs
//!    its new contents claim. Then every command, in queue order, is decided against the
//!    state the earlier ones left, with its own expected version; its events get the next
//!    positions. A refused command (conflict, domain refusal, taken slug, reused key) is
//!    simply left out of what is written: nothing was written for it, so no savepoint is
//!    needed and nothing of it can leak into the others.
//! 2. **Write, set-based.** One multi-row statement per table for the whole batch
//!    ([`Rows`]; on PostgreSQL sent as two statements in all), each article's row written
//!    once with the state the batch left. The articles an outcome reports are built in memory
//!    from the same state that was written (in debug builds, checked against the rows read
//!    back), so there is no read-back either.
//!
//! Then the head moves once, the before-commit hook runs, and the transaction commits once;
//! if anything fails before or at the commit, no command of the batch is acknowledged. On
//! PostgreSQL a batch of revisions that keep their slugs and tags costs three round trips,
//! however many commands it holds: `BEGIN` with the head under lock (one simple-protocol
//! message, see [`crate::db::PgTx`]), one write that also moves the head and calls
//! `pg_notify`, and `COMMIT`. A batch that claims new slugs adds a holders query, and one
//! that creates articles, changes slugs or tags, or opens review cycles a second write.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use galley_domain::{decide, evolve, Action, Article, ArticleId, Event, SCHEMA_VERSION};
use uuid::Uuid;

use crate::append::{fingerprint, to_micros, PendingCommand};
use crate::db::{args, to_u64, Arg, Tx};
use crate::error::StoreError;
use crate::insights::record;
use crate::model::{ArticleRecord, CommandOutcome, StoredEvent};
use crate::read::{self, decode_event, EVENT_COLUMNS};
use crate::rows::{changes_content, new_content, Before, Rows};
use crate::store::{CommitDecision, Store};

/// A command of the batch with its clock truncated (see [`to_micros`]) and its fingerprint.
struct Prepared {
    pending: PendingCommand,
    fingerprint: String,
}

/// An idempotency key recorded by an earlier batch.
struct LoggedKey {
    fingerprint: String,
    article_id: ArticleId,
    first: u64,
    last: u64,
}

/// What the plan decided for one command.
enum Verdict {
    /// It appends these events (with the domain events they carry).
    Append {
        events: Vec<StoredEvent>,
        domain: Vec<Event>,
        article: Snapshot,
    },
    /// A retry of the earlier command of this batch at that index.
    ReplayInBatch {
        of: usize,
        article: Snapshot,
    },
    /// A retry of a command of an earlier batch, which appended these positions.
    ReplayLogged {
        first: u64,
        last: u64,
        article: Snapshot,
    },
    Refused(StoreError),
}

/// The article an outcome reports: as the command left it (or found it, for a replay).
struct Snapshot {
    record: Option<ArticleRecord>,
}

/// One article the batch touches.
struct Slot {
    /// Its state now, in the batch.
    now: Article,
    /// A command of the batch appended to it.
    changed: bool,
    /// Its content changed in the batch.
    content_changed: bool,
}

impl Slot {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            record: record(&self.now),
        }
    }
}

/// The outcome of phase 1.
struct Plan {
    verdicts: Vec<Verdict>,
    slots: HashMap<ArticleId, Slot>,
    /// What the tables held for each article the batch changed, before it.
    before: HashMap<ArticleId, Before>,
    /// The head after the batch.
    head: u64,
}

/// The slugs the batch's commands would claim, each decided against the article as committed:
/// a guess (a command after another one on the same article may claim another slug) that
/// lets one query find the holders of nearly every slug [`plan`] will check. A slug the
/// article already holds is no claim ([`plan`] checks only a changed slug), so a batch of
/// revisions that keep their slugs reads no holders at all.
fn claimed_slugs(batch: &[Prepared], start: &HashMap<ArticleId, Article>) -> BTreeSet<String> {
    let none = Article::default();
    batch
        .iter()
        .filter_map(|p| {
            let command = &p.pending.command;
            let article = start.get(&command.article_id).unwrap_or(&none);
            let events = decide(article, command.clone()).ok()?;
            let content = events.iter().rev().find_map(|e| new_content(&e.data))?;
            let held = article.content().and_then(|c| c.slug.as_ref());
            content
                .slug
                .as_ref()
                .filter(|s| held != Some(*s))
                .map(|s| s.as_str().to_owned())
        })
        .collect()
}

/// Phase 1: decides every command in order, in memory, each against the state the earlier
/// ones left. `start` holds every article of the batch as committed; `holders` the holder
/// before the batch of the slugs looked up so far (`None`: free); a slug not among them is
/// looked up on the spot.
async fn plan(
    tx: &mut Tx,
    batch: &[Prepared],
    start: HashMap<ArticleId, Article>,
    logged: &HashMap<String, LoggedKey>,
    mut holders: HashMap<String, Option<ArticleId>>,
    head: u64,
) -> Result<Plan, StoreError> {
    let mut slots: HashMap<ArticleId, Slot> = start
        .into_iter()
        .map(|(id, now)| {
            let slot = Slot {
                now,
                changed: false,
                content_changed: false,
            };
            (id, slot)
        })
        .collect();
    let mut before: HashMap<ArticleId, Before> = HashMap::new();
    // Slugs taken or given up by earlier commands of the batch, over `holders`.
    let mut claims: HashMap<String, Option<ArticleId>> = HashMap::new();
    // Keys used by earlier commands of the batch that appended.
    let mut batch_keys: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut position = head;
    let mut verdicts = Vec::with_capacity(batch.len());
    for (i, prepared) in batch.iter().enumerate() {
        let PendingCommand {
            command,
            metadata,
            idempotency_key,
        } = &prepared.pending;
        let id = command.article_id;
        let slot = slots.entry(id).or_insert_with(|| Slot {
            now: Article::default(),
            changed: false,
            content_changed: false,
        });

        // A retry returns the original result and writes nothing; the same key with another
        // command is refused. Keys of refused commands were never recorded, so stay free.
        if let Some(key) = idempotency_key {
            if let Some((fingerprint, of)) = batch_keys.get(key.as_str()) {
                verdicts.push(if *fingerprint == prepared.fingerprint {
                    Verdict::ReplayInBatch {
                        of: *of,
                        article: slot.snapshot(),
                    }
                } else {
                    Verdict::Refused(StoreError::IdempotencyKeyReused)
                });
                continue;
            }
            if let Some(earlier) = logged.get(key) {
                verdicts.push(if earlier.fingerprint != prepared.fingerprint {
                    Verdict::Refused(StoreError::IdempotencyKeyReused)
                } else if !slot.now.exists() {
                    Verdict::Refused(StoreError::NotFound)
                } else {
                    Verdict::ReplayLogged {
                        first: earlier.first,
                        last: earlier.last,
                        article: slot.snapshot(),
                    }
                });
                continue;
            }
        }

        let new_events = match decide(&slot.now, command.clone()) {
            Ok(events) if events.is_empty() => {
                verdicts.push(Verdict::Refused(StoreError::Corrupt(
                    "the domain accepted a command without events".to_owned(),
                )));
                continue;
            }
            Ok(events) => events,
            Err(e) => {
                verdicts.push(Verdict::Refused(e.into()));
                continue;
            }
        };

        // SLUG_TAKEN: no other article may hold the slug of the new current revision, as of
        // this point of the batch.
        let content = new_events.iter().rev().find_map(|e| new_content(&e.data));
        if let Some(content) = content {
            let old = slot
                .now
                .content()
                .and_then(|c| c.slug.as_ref())
                .map(|s| s.as_str().to_owned());
            let new = content.slug.as_ref().map(|s| s.as_str().to_owned());
            if let Some(slug) = new.as_ref().filter(|s| old.as_ref() != Some(*s)) {
                let holder = match claims.get(slug) {
                    Some(holder) => *holder,
                    None => {
                        if !holders.contains_key(slug) {
                            let one = BTreeSet::from([slug.clone()]);
                            holders.extend(read_holders(tx, &one).await?);
                        }
                        holders.get(slug).copied().flatten()
                    }
                };
                if holder.is_some_and(|h| h != id) {
                    verdicts.push(Verdict::Refused(StoreError::SlugTaken {
                        slug: slug.clone(),
                    }));
                    continue;
                }
            }
            if old != new {
                if let Some(old) = old {
                    claims.insert(old, None);
                }
                if let Some(new) = new {
                    claims.insert(new, Some(id));
                }
            }
        }

        // Accepted: fold the events into the article (in place: no copy of its revisions)
        // and give them the next positions.
        before.entry(id).or_insert_with(|| Before::of(&slot.now));
        let correlation_id = metadata.correlation_id.unwrap_or_else(Uuid::now_v7);
        let mut article = std::mem::take(&mut slot.now);
        let mut stored = Vec::with_capacity(new_events.len());
        for event in &new_events {
            article = evolve(article, event);
            slot.content_changed |= changes_content(&event.data);
            position += 1;
            stored.push(StoredEvent {
                event_id: Uuid::now_v7(),
                article_id: id,
                version: article.version,
                position,
                event_type: event.data.event_type().to_owned(),
                schema_version: SCHEMA_VERSION,
                payload: event.data.payload(),
                actor: event.actor,
                correlation_id,
                causation_id: metadata.causation_id,
                request_id: metadata.request_id.clone(),
                recorded_at: event.at,
            });
        }
        slot.now = article;
        slot.changed = true;
        if let Some(key) = idempotency_key {
            batch_keys.insert(key, (&prepared.fingerprint, i));
        }
        verdicts.push(Verdict::Append {
            events: stored,
            domain: new_events,
            article: slot.snapshot(),
        });
    }
    Ok(Plan {
        verdicts,
        slots,
        before,
        head: position,
    })
}

/// What PostgreSQL keeps of a time: sqlx sends microseconds since 2000-01-01, truncated
/// toward zero. An article built in memory must equal the row read back.
fn pg_time(t: DateTime<Utc>) -> DateTime<Utc> {
    let epoch = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    match (t - epoch).num_microseconds() {
        Some(us) => epoch + TimeDelta::microseconds(us),
        None => t,
    }
}

/// The article an outcome reports, as the row holds it.
fn as_stored(snapshot: &Snapshot, pg: bool) -> Option<ArticleRecord> {
    let mut r = snapshot.record.clone()?;
    if pg {
        for t in [
            &mut r.embargo_until,
            &mut r.scheduled_for,
            &mut r.first_submitted_at,
            &mut r.submitted_at,
            &mut r.first_published_at,
            &mut r.last_published_at,
        ]
        .into_iter()
        .flatten()
        {
            *t = pg_time(*t);
        }
        r.created_at = pg_time(r.created_at);
        r.updated_at = pg_time(r.updated_at);
    }
    Some(r)
}

impl Store {
    /// The body of [`Store::execute_batch`]: `Err` fails every command of the batch.
    pub(crate) async fn try_batch(
        &self,
        batch: Vec<PendingCommand>,
    ) -> Result<Vec<Result<CommandOutcome, StoreError>>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch: Vec<Prepared> = batch
            .into_iter()
            .map(|mut pending| {
                pending.command.now = to_micros(pending.command.now);
                let fingerprint = fingerprint(&pending.command);
                Prepared {
                    pending,
                    fingerprint,
                }
            })
            .collect();
        let writer = &self.inner.writer;
        let _serial = writer.batch_lock.lock().await;
        let (mut tx, began) = self.inner.db.begin_write(true).await?;

        // Phase 1: read what the batch needs (a few queries for the whole batch), decide.
        let logged = read_keys(&mut tx, &batch).await?;
        same_article_for_retried_creates(&mut batch, &logged);
        let ids: BTreeSet<ArticleId> = batch.iter().map(|p| p.pending.command.article_id).collect();
        let mut start = HashMap::new();
        let mut stale = Vec::new();
        for id in ids {
            match writer.aggregates.take(id, began) {
                Some(cached) if cached.current => {
                    start.insert(id, cached.article);
                }
                Some(cached) => stale.push((id, cached.article)),
                None => stale.push((id, Article::default())),
            }
        }
        start.extend(read_tails(&mut tx, stale).await?);
        let holders = read_holders(&mut tx, &claimed_slugs(&batch, &start)).await?;
        let Plan {
            verdicts,
            slots,
            before,
            head,
        } = plan(&mut tx, &batch, start, &logged, holders, began).await?;
        let pg = tx.is_pg();

        // Phase 2: write what was accepted, one statement per table.
        let mut rows = Rows::default();
        let mut appended: Vec<StoredEvent> = Vec::new();
        for (verdict, prepared) in verdicts.iter().zip(&batch) {
            if let Verdict::Append { events, domain, .. } = verdict {
                for (stored, event) in events.iter().zip(domain) {
                    rows.event(stored);
                    rows.event_rows(stored, event);
                }
                if let (Some(key), Some(first), Some(last)) = (
                    &prepared.pending.idempotency_key,
                    events.first(),
                    events.last(),
                ) {
                    rows.key(
                        key,
                        &prepared.fingerprint,
                        prepared.pending.command.article_id,
                        first,
                        last,
                    );
                }
                appended.extend(events.iter().cloned());
            }
        }
        for (id, slot) in slots.iter().filter(|(_, s)| s.changed) {
            let before = before.get(id).cloned().unwrap_or_default();
            rows.article(&slot.now, &before, slot.content_changed)?;
        }
        if !appended.is_empty() {
            rows.head(head);
            rows.flush(&mut tx).await?;
        }

        // The answers, built from what was decided and written.
        let mut results: Vec<Result<CommandOutcome, StoreError>> =
            Vec::with_capacity(verdicts.len());
        for verdict in verdicts {
            let answer = match verdict {
                Verdict::Refused(e) => Err(e),
                Verdict::Append {
                    events, article, ..
                } => Ok(CommandOutcome {
                    events,
                    article: as_stored(&article, pg).ok_or_else(|| {
                        StoreError::Corrupt("an appended article has no row".to_owned())
                    })?,
                    replayed: false,
                }),
                Verdict::ReplayInBatch { of, article } => {
                    let events = match results.get(of) {
                        Some(Ok(original)) => original.events.clone(),
                        _ => {
                            return Err(StoreError::Corrupt(
                                "a replay of a command that did not append".to_owned(),
                            ))
                        }
                    };
                    Ok(CommandOutcome {
                        events,
                        article: as_stored(&article, pg).ok_or(StoreError::NotFound)?,
                        replayed: true,
                    })
                }
                Verdict::ReplayLogged {
                    first,
                    last,
                    article,
                } => match as_stored(&article, pg) {
                    Some(record) => Ok(CommandOutcome {
                        events: read::read_positions(tx.exec(), first, last).await?,
                        article: record,
                        replayed: true,
                    }),
                    None => Err(StoreError::NotFound),
                },
            };
            results.push(answer);
        }
        if appended.is_empty() {
            // Refusals and idempotent replays write nothing. The articles are as committed at
            // `began`, which is still the head.
            tx.rollback().await?;
            let articles = slots.into_iter().map(|(id, slot)| (id, slot.now));
            writer.aggregates.put(began, began, articles);
            return Ok(results);
        }
        #[cfg(debug_assertions)]
        check_answers(&mut tx, &results).await?;

        if let Some(hook) = self.before_commit_hook() {
            if hook(appended).await == CommitDecision::Abort {
                tx.rollback().await?;
                return Err(StoreError::BatchFailed {
                    reason: "the transaction was aborted before commit (test hook)".to_owned(),
                });
            }
        }
        tx.commit().await?;
        writer
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        writer.aggregates.put(
            began,
            head,
            slots.into_iter().map(|(id, slot)| (id, slot.now)),
        );
        self.inner.feed.bump(head);
        Ok(results)
    }
}

/// The articles after their stream's tail: for each (article, article as of some committed
/// version), the events after that version, all in one query.
async fn read_tails(
    tx: &mut Tx,
    known: Vec<(ArticleId, Article)>,
) -> Result<HashMap<ArticleId, Article>, StoreError> {
    let rows = known
        .iter()
        .map(|(id, a)| Vec::from(args![id.as_uuid(), a.version.0]))
        .collect();
    let columns = EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("e.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    // On PostgreSQL each stream must be an index range scan on (article_id, version): a plain
    // join, or a LATERAL subquery the planner flattens into one, is planned as a hash join
    // over the whole log once streams are long on average. `OFFSET 0` keeps the subquery
    // from being flattened, so it runs once per stream. SQLite has no LATERAL and looks each
    // stream up in the index anyway.
    let join = if tx.is_pg() {
        "CROSS JOIN LATERAL (SELECT * FROM events WHERE article_id = u.stream \
         AND version > u.known OFFSET 0) e"
    } else {
        "JOIN events e ON e.article_id = u.stream AND e.version > u.known"
    };
    let tail = tx
        .rows(&[("stream", "uuid"), ("known", "bigint")], rows, &[], |u| {
            // Not `ORDER BY e.position`: SQLite would then walk the whole log in position
            // order rather than look each stream up. Sorted here instead.
            format!("SELECT {columns} FROM {u} {join}")
        })
        .await?;
    let mut tail = tail
        .iter()
        .map(decode_event)
        .collect::<Result<Vec<_>, _>>()?;
    tail.sort_by_key(|e| e.position);
    let mut articles: HashMap<ArticleId, Article> = known.into_iter().collect();
    for stored in tail {
        let article = articles.entry(stored.article_id).or_default();
        *article = evolve(std::mem::take(article), &stored.event()?);
    }
    Ok(articles)
}

/// A create's id is fresh for every attempt (a UUIDv7 the caller made), and its fingerprint
/// leaves the id out. A retry of a create (same user, same key, same fingerprint) is pointed
/// at the article the first attempt created, an earlier batch's or this one's, so that the plan
/// treats it as the replay it is.
fn same_article_for_retried_creates(batch: &mut [Prepared], logged: &HashMap<String, LoggedKey>) {
    let mut first: HashMap<String, (String, ArticleId)> = HashMap::new();
    for prepared in batch.iter_mut() {
        let Some(key) = prepared.pending.idempotency_key.clone() else {
            continue;
        };
        if !matches!(
            prepared.pending.command.action,
            Action::CreateArticle { .. }
        ) {
            continue;
        }
        let earlier = logged
            .get(&key)
            .map(|k| (k.fingerprint.clone(), k.article_id))
            .or_else(|| first.get(&key).cloned());
        match earlier {
            Some((fingerprint, id)) if fingerprint == prepared.fingerprint => {
                prepared.pending.command.article_id = id;
            }
            Some(_) => {}
            None => {
                first.insert(
                    key,
                    (
                        prepared.fingerprint.clone(),
                        prepared.pending.command.article_id,
                    ),
                );
            }
        }
    }
}

/// The idempotency keys of the batch that earlier batches recorded.
async fn read_keys(
    tx: &mut Tx,
    batch: &[Prepared],
) -> Result<HashMap<String, LoggedKey>, StoreError> {
    let keys: BTreeSet<&str> = batch
        .iter()
        .filter_map(|p| p.pending.idempotency_key.as_deref())
        .collect();
    let rows = keys.into_iter().map(|k| vec![Arg::from(k)]).collect();
    let found = tx
        .rows(&[("k", "text")], rows, &[], |u| {
            format!(
                "SELECT key, fingerprint, article_id, first_position, last_position \
                 FROM idempotency_keys \
                 WHERE key IN (SELECT k FROM {u})"
            )
        })
        .await?;
    found
        .iter()
        .map(|row| {
            Ok((
                row.get("key")?,
                LoggedKey {
                    fingerprint: row.get("fingerprint")?,
                    article_id: ArticleId::from_uuid(row.get("article_id")?),
                    first: to_u64(row.get("first_position")?),
                    last: to_u64(row.get("last_position")?),
                },
            ))
        })
        .collect()
}

/// Who holds each of these slugs (`None`: nobody).
async fn read_holders(
    tx: &mut Tx,
    slugs: &BTreeSet<String>,
) -> Result<HashMap<String, Option<ArticleId>>, StoreError> {
    let mut holders: HashMap<String, Option<ArticleId>> =
        slugs.iter().map(|s| (s.clone(), None)).collect();
    let rows = slugs.iter().map(|s| vec![Arg::from(s.as_str())]).collect();
    let found = tx
        .rows(&[("s", "text")], rows, &[], |u| {
            format!("SELECT slug, article_id FROM slugs WHERE slug IN (SELECT s FROM {u})")
        })
        .await?;
    for row in &found {
        holders.insert(
            row.get("slug")?,
            Some(ArticleId::from_uuid(row.get("article_id")?)),
        );
    }
    Ok(holders)
}

/// Debug builds: the article each outcome reports as the batch left it must be the row read
/// back, field for field (the outcomes are built in memory, without a read-back).
#[cfg(debug_assertions)]
async fn check_answers(
    tx: &mut Tx,
    results: &[Result<CommandOutcome, StoreError>],
) -> Result<(), StoreError> {
    let mut last: HashMap<ArticleId, &ArticleRecord> = HashMap::new();
    for outcome in results.iter().flatten() {
        last.insert(outcome.article.id, &outcome.article);
    }
    let ids: Vec<ArticleId> = last.keys().copied().collect();
    for row in read::articles_by_ids(tx.exec(), &ids).await? {
        if last.get(&row.id) != Some(&&row) {
            return Err(StoreError::Corrupt(format!(
                "the article built in memory {:?} differs from its row {row:?}",
                last.get(&row.id)
            )));
        }
    }
    Ok(())
}
