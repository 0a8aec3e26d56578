//! Idempotency keys: which positions a command with a key appended, so that a retry returns
//! the original outcome. Keys belong to their user and are pruned after the retention period.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use galley_domain::{Action, ArticleId, Command, UserId};
use sha2::{Digest, Sha256};

use crate::backend::{args, to_u64, Arg, Db, Tx};
use crate::error::StoreError;

/// Idempotency keys belong to the user who sent them: the same key from two users names two
/// commands. The store keeps the key under the user's id.
pub(crate) fn scoped(user: UserId, key: &str) -> String {
    format!("{user}/{key}")
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

/// An idempotency key recorded by an earlier batch.
#[derive(Debug, Clone)]
pub(crate) struct LoggedKey {
    /// The fingerprint of the command that used it.
    pub(crate) fingerprint: String,
    /// The article that command appended to.
    pub(crate) article_id: ArticleId,
    /// The first and last positions it appended.
    pub(crate) first: u64,
    pub(crate) last: u64,
}

/// Which of these keys earlier batches recorded.
pub(crate) async fn read(
    tx: &mut Tx,
    keys: BTreeSet<&str>,
) -> Result<HashMap<String, LoggedKey>, StoreError> {
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

/// Forgets the keys recorded before `before`, in batches (see [`crate::Store::prune_idempotency_keys`]).
pub(crate) async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut removed = 0;
    loop {
        let (mut tx, _) = db.begin_write(false).await?;
        let n = tx
            .exec()
            .execute(
                "DELETE FROM idempotency_keys WHERE key IN \
                 (SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT 1000)",
                &args![before],
            )
            .await?;
        tx.commit().await?;
        removed += n;
        if n < 1000 {
            return Ok(removed);
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
}
