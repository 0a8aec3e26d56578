//! The write path: commands in, events and projections out, one transaction per batch.
//!
//! [`Store::execute_batch`] is the unit of work: it opens one write transaction (which on
//! PostgreSQL takes the `log_head` row lock, on SQLite the database's write lock), decides
//! every command of the batch against its own expected version, so that a refused command
//! leaves the others untouched, writes what was accepted set-based, advances the head once,
//! and commits (see [`crate::batch`]). [`Store::execute`] is a batch of one; the group-commit
//! writer hands it many.

use chrono::{DateTime, Timelike, Utc};

use galley_domain::{Action, Command, UserId};
use sha2::{Digest, Sha256};
use tracing::Instrument as _;

use crate::db::is_unique_violation;
use crate::error::StoreError;
use crate::model::{CommandOutcome, Metadata};
use crate::store::Store;

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

/// Idempotency keys belong to the user who sent them: the same key from two users names two
/// commands. The store keeps the key under the user's id.
pub(crate) fn scoped_key(user: UserId, key: &str) -> String {
    format!("{user}/{key}")
}

/// PostgreSQL keeps microseconds. Truncating the command's clock once, before `decide`,
/// makes the events a command returns identical to the events read back later.
pub(crate) fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// What makes two commands "the same command" for idempotency: the article, the expected
/// version, the action and who acts. The clock and the request metadata are not part of it,
/// since a retry arrives later and with another request id.
///
/// The ids a command creates are left out: the caller makes a fresh (time-ordered) id for
/// every attempt, so a retry of a create or a comment names another id and is still the same
/// command.
pub(crate) fn fingerprint(command: &Command) -> String {
    let article = match command.action {
        Action::CreateArticle { .. } => None,
        _ => Some(command.article_id),
    };
    let mut action = serde_json::to_value(&command.action).unwrap_or_default();
    if let Action::AddReviewComment { .. } = command.action {
        if let Some(fields) = action.as_object_mut() {
            fields.remove("commentId");
        }
    }
    let canonical = serde_json::json!({
        "articleId": article,
        "expectedVersion": command.expected_version,
        "action": action,
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
    ///
    /// Runs in an `append_batch` span (info), a child of the caller's span.
    pub async fn execute_batch(
        &self,
        batch: Vec<PendingCommand>,
    ) -> Vec<Result<CommandOutcome, StoreError>> {
        let span = tracing::info_span!("append_batch", size = batch.len());
        self.execute_batch_in(batch).instrument(span).await
    }

    /// [`Store::execute_batch`] without its span: the group-commit writer makes its own, a
    /// child of the first command's caller and linked to the others'.
    pub(crate) async fn execute_batch_in(
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
                    out.push(Err(StoreError::BatchFailed {
                        reason: message.clone(),
                    }));
                }
                out.truncate(n);
                out
            }
        }
    }

    /// Runs one command (through the group-commit writer), after the checks that need no
    /// article, retrying up to twice if it lost a race on a unique constraint (which the
    /// serialised write path makes unlikely; a retry then sees the winner's result).
    pub(crate) async fn execute_one(
        &self,
        pending: PendingCommand,
    ) -> Result<CommandOutcome, StoreError> {
        // Refusals that need no article (roles, sizes) are made here, before the command
        // waits for the shared writer.
        galley_domain::precheck(&pending.command)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use galley_domain::{Action, Actor, ArticleId, Role, UserId, Version};
    use uuid::Uuid;

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
