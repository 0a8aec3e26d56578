//! Phase 1 of a batch, in memory: read what the batch needs (stream tails, slug holders) and
//! decide every command in queue order against the state the earlier ones left.

use std::collections::{BTreeSet, HashMap};

use galley_domain::{
    decide, evolve, Action, Article, ArticleId, DomainError, Event, SCHEMA_VERSION,
};
use uuid::Uuid;

use crate::backend::dialect::to_micros;
use crate::backend::{args, Arg, Tx};
use crate::error::StoreError;
use crate::log::keys::{fingerprint, LoggedKey};
use crate::log::read::{decode_event, EVENT_COLUMNS};
use crate::model::PendingCommand;
use crate::model::{ArticleRecord, StoredEvent};
use crate::projections::{changes_content, new_content, Before};

/// A command of the batch with its clock truncated (see [`to_micros`]) and, when it carries
/// an idempotency key, its fingerprint. Made by the caller's task before the command queues
/// (see `super::group`), so the writer, which runs one batch at a time, does not hash.
pub(super) struct Prepared {
    pub(super) pending: PendingCommand,
    /// Empty without an idempotency key: it is only ever compared under one.
    pub(super) fingerprint: String,
}

impl Prepared {
    pub(super) fn new(mut pending: PendingCommand) -> Prepared {
        pending.command.now = to_micros(pending.command.now);
        let fingerprint = match pending.idempotency_key {
            Some(_) => fingerprint(&pending.command),
            None => String::new(),
        };
        Prepared {
            pending,
            fingerprint,
        }
    }
}

/// What the plan decided for one command.
pub(super) enum Verdict {
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
pub(super) struct Snapshot {
    pub(super) record: Option<ArticleRecord>,
}

/// One article the batch touches.
pub(super) struct Slot {
    /// Its state now, in the batch.
    pub(super) now: Article,
    /// A command of the batch appended to it.
    pub(super) changed: bool,
    /// Its content changed in the batch.
    pub(super) content_changed: bool,
}

impl Slot {
    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            record: ArticleRecord::of(&self.now),
        }
    }
}

/// The outcome of phase 1.
pub(super) struct Plan {
    pub(super) verdicts: Vec<Verdict>,
    pub(super) slots: HashMap<ArticleId, Slot>,
    /// What the tables held for each article the batch changed, before it.
    pub(super) before: HashMap<ArticleId, Before>,
    /// The head after the batch.
    pub(super) head: u64,
}

/// Every command of the batch decided against its article as committed, before the log's
/// other reads: the slugs they would claim, and their events for [`plan`] to reuse.
pub(super) struct Early {
    /// The slugs the commands would claim: a guess (a command after another one on the same
    /// article may claim another slug) that lets one query find the holders of nearly every
    /// slug [`plan`] will check. A slug the article already holds is no claim ([`plan`] checks
    /// only a changed slug), so a batch of revisions that keep their slugs reads no holders.
    pub(super) slugs: BTreeSet<String>,
    /// Each command's decision, by batch index: [`plan`] takes it when no earlier command of
    /// the batch changed the article, which is then still as committed, instead of deciding
    /// again.
    decided: Vec<Option<Result<Vec<Event>, DomainError>>>,
}

/// Decides every command of the batch against its article as committed (see [`Early`]).
pub(super) fn decide_early(batch: &[Prepared], start: &HashMap<ArticleId, Article>) -> Early {
    let none = Article::default();
    let mut slugs = BTreeSet::new();
    let mut decided = Vec::with_capacity(batch.len());
    for p in batch {
        let command = &p.pending.command;
        let article = start.get(&command.article_id).unwrap_or(&none);
        let events = decide(article, command.clone());
        if let Ok(events) = &events {
            let held = article.content().and_then(|c| c.slug.as_ref());
            let claim = events
                .iter()
                .rev()
                .find_map(|e| new_content(&e.data))
                .and_then(|content| content.slug.as_ref())
                .filter(|s| held != Some(*s));
            if let Some(slug) = claim {
                slugs.insert(slug.as_str().to_owned());
            }
        }
        decided.push(Some(events));
    }
    Early { slugs, decided }
}

/// Phase 1: decides every command in order, in memory, each against the state the earlier
/// ones left. `start` holds every article of the batch as committed; `holders` the holder
/// before the batch of the slugs looked up so far (`None`: free); a slug not among them is
/// looked up on the spot. `early` has each command decided against `start` (see [`Early`]).
pub(super) async fn plan(
    tx: &mut Tx,
    batch: &[Prepared],
    start: HashMap<ArticleId, Article>,
    logged: &HashMap<String, LoggedKey>,
    mut holders: HashMap<String, Option<ArticleId>>,
    mut early: Early,
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

        let early = early.decided.get_mut(i).and_then(Option::take);
        let decided = match early {
            Some(decided) if !slot.changed => decided,
            _ => decide(&slot.now, command.clone()),
        };
        let new_events = match decided {
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

/// The articles after their stream's tail: for each (article, article as of some committed
/// version), the events after that version, all in one query.
pub(super) async fn read_tails(
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
    let join = tx.events_after_each_stream();
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
pub(super) fn same_article_for_retried_creates(
    batch: &mut [Prepared],
    logged: &HashMap<String, LoggedKey>,
) {
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

/// Who holds each of these slugs (`None`: nobody).
pub(super) async fn read_holders(
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
