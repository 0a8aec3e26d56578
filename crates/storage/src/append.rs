//! The write path: commands in, events and projections out, one transaction per batch.
//!
//! [`Store::execute_batch`] is the unit of work: it opens one write transaction (which on
//! PostgreSQL takes the `log_head` row lock, on SQLite the database's write lock), runs every
//! command of the batch against its own expected version inside a savepoint, so that a
//! refused command leaves the others untouched, advances the head once, and commits.
//! [`Store::execute`] is a batch of one; a group-commit writer can hand it many.

use chrono::{DateTime, Timelike, Utc};
use std::collections::HashMap;

use galley_domain::{decide, evolve, Article, ArticleId, Command, SCHEMA_VERSION};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::{args, is_unique_violation, to_u64, Tx};
use crate::error::StoreError;
use crate::model::{CommandOutcome, Metadata, StoredEvent};
use crate::project::{changes_content, insert_event, write_article, write_event_rows};
use crate::read;
use crate::store::{CommitDecision, Direction, Store};

/// The channel appends notify on PostgreSQL; the payload is the new head position.
pub(crate) const NOTIFY_CHANNEL: &str = "galley_events";

/// One command waiting to be appended: the unit a group-commit writer gathers.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCommand {
    /// The command.
    pub command: Command,
    /// Tracing metadata for its events.
    pub metadata: Metadata,
    /// The idempotency key the client sent, if any.
    pub idempotency_key: Option<String>,
}

/// PostgreSQL keeps microseconds. Truncating the command's clock once, before `decide`,
/// makes the events a command returns identical to the events read back later.
fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// What makes two commands "the same command" for idempotency: the article, the expected
/// version, the action and who acts. The clock and the request metadata are not part of it,
/// since a retry arrives later and with another request id.
pub(crate) fn fingerprint(command: &Command) -> String {
    let canonical = serde_json::json!({
        "articleId": command.article_id,
        "expectedVersion": command.expected_version,
        "action": command.action,
        "actor": command.actor.user,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

impl Store {
    /// Runs a batch of commands in one transaction: each is checked against its own expected
    /// version and either appends all its events or none, without affecting the others; the
    /// transaction commits once and every result is answered after the commit. If the commit
    /// itself fails, every command of the batch fails and nothing of it is visible.
    ///
    /// The group-commit writer runs concurrent [`Store::execute`] calls through it; with
    /// grouping off, `execute` runs it with a batch of one.
    #[tracing::instrument(level = "debug", name = "append_batch", skip_all, fields(size = batch.len()))]
    pub async fn execute_batch(
        &self,
        batch: Vec<PendingCommand>,
    ) -> Vec<Result<CommandOutcome, StoreError>> {
        let n = batch.len();
        match self.try_batch(batch).await {
            Ok(results) => results,
            Err(e) => {
                let message = e.to_string();
                let mut out = Vec::with_capacity(n);
                out.push(Err(e));
                while out.len() < n {
                    out.push(Err(StoreError::Backend(sqlx::Error::Protocol(format!(
                        "the batch this command was part of failed: {message}"
                    )))));
                }
                out.truncate(n);
                out
            }
        }
    }

    /// Runs one command (through the group-commit writer), retrying once if it lost a race on a unique constraint (which the
    /// serialised write path makes unlikely; the retry then sees the winner's result).
    pub(crate) async fn execute_one(
        &self,
        pending: PendingCommand,
    ) -> Result<CommandOutcome, StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.submit(pending.clone()).await;
            match result {
                Err(StoreError::Backend(e)) if is_unique_violation(&e) && attempts < 3 => {
                    tracing::debug!(error = %e, "append lost a race; retrying");
                }
                other => return other,
            }
        }
    }

    async fn try_batch(
        &self,
        batch: Vec<PendingCommand>,
    ) -> Result<Vec<Result<CommandOutcome, StoreError>>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (mut tx, mut head) = self.inner.db.begin_write(true).await?;
        let savepoints = batch.len() > 1;
        let mut results = Vec::with_capacity(batch.len());
        let mut appended: Vec<StoredEvent> = Vec::new();
        // Aggregates this batch has changed; they become cacheable only once it commits.
        let mut changed: HashMap<ArticleId, Article> = HashMap::new();
        for pending in batch {
            if savepoints {
                tx.exec().execute("SAVEPOINT galley_command", &[]).await?;
            }
            let id = pending.command.article_id;
            let known = match changed.get(&id) {
                Some(article) => Some(article.clone()),
                None => self.inner.writer.aggregates.get(id),
            };
            let result = append_one(&mut tx, head, pending, known).await;
            let result = result.map(|(outcome, article)| {
                if let Some(article) = article {
                    changed.insert(id, article);
                }
                outcome
            });
            if savepoints {
                if result.is_err() {
                    tx.exec()
                        .execute("ROLLBACK TO SAVEPOINT galley_command", &[])
                        .await?;
                }
                tx.exec()
                    .execute("RELEASE SAVEPOINT galley_command", &[])
                    .await?;
            }
            if let Ok(outcome) = &result {
                if !outcome.replayed {
                    if let Some(last) = outcome.events.last() {
                        head = last.position;
                    }
                    appended.extend(outcome.events.iter().cloned());
                }
            }
            results.push(result);
        }
        if appended.is_empty() {
            // Refusals and idempotent replays write nothing.
            tx.rollback().await?;
            return Ok(results);
        }
        tx.exec()
            .execute("UPDATE log_head SET position = $1", &args![head])
            .await?;
        if tx.is_pg() {
            // Delivered to every listener at commit, never before; a doorbell only.
            tx.exec()
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &args![NOTIFY_CHANNEL, head.to_string()],
                )
                .await?;
        }
        if let Some(hook) = self.before_commit_hook() {
            if hook(appended).await == CommitDecision::Abort {
                tx.rollback().await?;
                return Err(StoreError::Backend(sqlx::Error::Protocol(
                    "the transaction was aborted before commit (test hook)".to_owned(),
                )));
            }
        }
        tx.commit().await?;
        self.inner
            .writer
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.writer.aggregates.put(changed);
        self.inner.feed.bump(head);
        Ok(results)
    }
}

/// Runs one command inside the open transaction, whose head is `head`. `known` is the article
/// as of some committed (or earlier in this transaction) version, if the store has it; only the
/// events after it are read. Returns the outcome and, when it appended, the article after it.
async fn append_one(
    tx: &mut Tx,
    head: u64,
    pending: PendingCommand,
    known: Option<Article>,
) -> Result<(CommandOutcome, Option<Article>), StoreError> {
    let PendingCommand {
        mut command,
        metadata,
        idempotency_key,
    } = pending;
    command.now = to_micros(command.now);
    let article_id = command.article_id;
    let fingerprint = fingerprint(&command);

    if let Some(key) = &idempotency_key {
        let earlier = tx
            .exec()
            .fetch_optional(
                "SELECT fingerprint, first_position, last_position FROM idempotency_keys \
                 WHERE key = $1",
                &args![key.as_str()],
            )
            .await?;
        if let Some(row) = earlier {
            if row.get::<String>("fingerprint")? != fingerprint {
                return Err(StoreError::IdempotencyKeyReused);
            }
            let first = to_u64(row.get("first_position")?);
            let last = to_u64(row.get("last_position")?);
            let events = read::read_positions(tx.exec(), first, last).await?;
            let article = read::article(tx.exec(), article_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            return Ok((
                CommandOutcome {
                    events,
                    article,
                    replayed: true,
                },
                None,
            ));
        }
    }

    // Only the stream's tail after the known version: committed events never change, so the
    // known article plus the tail is the whole stream folded (under the log lock, the tail is
    // everything another process appended meanwhile).
    let mut article = known.unwrap_or_default();
    let tail = read::read_stream(
        tx.exec(),
        article_id,
        Direction::Forward,
        Some(article.version),
        u32::MAX,
        &[],
    )
    .await?;
    for stored in &tail {
        article = evolve(article, &stored.event()?);
    }
    let new_events = decide(&article, command)?;

    let correlation_id = metadata.correlation_id.unwrap_or_else(Uuid::now_v7);
    let mut stored = Vec::with_capacity(new_events.len());
    let mut content_changed = false;
    for (offset, event) in (1..).zip(&new_events) {
        article = evolve(article, event);
        content_changed |= changes_content(&event.data);
        stored.push(StoredEvent {
            event_id: Uuid::now_v7(),
            article_id,
            version: article.version,
            position: head + offset,
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
    if stored.is_empty() {
        return Err(StoreError::Corrupt(
            "the domain accepted a command without events".to_owned(),
        ));
    }

    // The articles row first: it fails with SlugTaken before any event is written.
    write_article(tx, &article, content_changed).await?;
    for (s, e) in stored.iter().zip(&new_events) {
        insert_event(tx.exec(), s).await?;
        write_event_rows(tx.exec(), s, e).await?;
    }
    if let (Some(key), Some(first), Some(last)) = (&idempotency_key, stored.first(), stored.last())
    {
        tx.exec()
            .execute(
                "INSERT INTO idempotency_keys (key, fingerprint, article_id, first_position, \
                 last_position, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &args![
                    key.as_str(),
                    fingerprint,
                    article_id.as_uuid(),
                    first.position,
                    last.position,
                    first.recorded_at,
                ],
            )
            .await?;
    }
    let record = read::article(tx.exec(), article_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("the article row was not written".to_owned()))?;
    Ok((
        CommandOutcome {
            events: stored,
            article: record,
            replayed: false,
        },
        Some(article),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use galley_domain::{Action, Actor, ArticleId, Role, UserId, Version};

    fn command(user: Uuid, version: u64) -> Command {
        Command {
            article_id: ArticleId::from_uuid(Uuid::nil()),
            expected_version: Version(version),
            actor: Actor::user(UserId::from_uuid(user), [Role::Editor]),
            now: Utc::now(),
            action: Action::SubmitForReview,
        }
    }

    #[test]
    fn a_retry_later_with_other_roles_has_the_same_fingerprint() {
        let user = Uuid::now_v7();
        let first = command(user, 3);
        let mut retry = command(user, 3);
        retry.now = first.now + chrono::Duration::minutes(5);
        retry.actor.roles.push(Role::Reviewer);
        assert_eq!(fingerprint(&first), fingerprint(&retry));
        assert_eq!(fingerprint(&first).len(), 64);
    }

    #[test]
    fn another_version_or_user_changes_the_fingerprint() {
        let user = Uuid::now_v7();
        let base = fingerprint(&command(user, 3));
        assert_ne!(base, fingerprint(&command(user, 4)));
        assert_ne!(base, fingerprint(&command(Uuid::now_v7(), 3)));
    }

    #[test]
    fn the_clock_is_truncated_to_microseconds() {
        let t = DateTime::parse_from_rfc3339("2026-01-10T12:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            to_micros(t).to_rfc3339(),
            "2026-01-10T12:00:00.123456+00:00"
        );
    }
}
