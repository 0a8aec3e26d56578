//! Users and their hashed API tokens. Users are the projection of their own append-only log
//! (`super::changes`); tokens are operational data, never exported nor rebuilt.
//!
//! Every request authenticates, so a token lookup is on every request's path. A successful
//! lookup is kept for [`TOKEN_CACHE_TTL`]; a disabled user's tokens authenticate no one. A
//! revocation, and every user change, empties the cache: at once in the store that made it,
//! and on PostgreSQL in every process, through `NOTIFY galley_tokens` sent in the revoking
//! transaction (delivered at its commit) and heard by the feed's listener, which also empties
//! the cache whenever it reconnects, since notifications may have been missed. On SQLite, a
//! revocation by another process (`galley tokens revoke` beside a running server) takes
//! effect when the entry expires. Unknown tokens are never cached, so a new token works at once.

use chrono::{DateTime, Utc};
use galley_domain::{Role, UserId};

use super::cache::{TokenCache, TOKENS_CHANNEL};
use super::changes::{self, UserChange};
use super::rows::{decode_user, user_by_name, USER_COLUMNS};
use crate::backend::{args, is_unique_violation, Arg, Db};
use crate::error::StoreError;
use crate::model::UserRecord;

fn token_taken(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Invalid {
            field: "token".to_owned(),
            message: "is already in use".to_owned(),
        }
    } else {
        StoreError::Backend(e)
    }
}

pub(crate) async fn create_user(
    db: &Db,
    tokens: &TokenCache,
    id: UserId,
    name: &str,
    roles: &[Role],
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<UserRecord, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    let change = UserChange::UserAdded {
        name: name.to_owned(),
        roles: roles.to_vec(),
    };
    let user = changes::record(&mut tx, id, change, UserId::SYSTEM, now).await?;
    tx.exec()
        .execute(
            "INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)",
            &args![token_hash, id.as_uuid(), now],
        )
        .await
        .map_err(token_taken)?;
    tx.commit().await?;
    tokens.clear();
    Ok(user)
}

pub(crate) async fn add_token(
    db: &Db,
    user_name: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<UserRecord, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    let user = user_by_name(tx.exec(), user_name.trim())
        .await?
        .ok_or(StoreError::NotFound)?;
    tx.exec()
        .execute(
            "INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)",
            &args![token_hash, user.id.as_uuid(), now],
        )
        .await
        .map_err(token_taken)?;
    tx.commit().await?;
    Ok(user)
}

pub(crate) async fn user_by_token_hash(
    db: &Db,
    tokens: &TokenCache,
    token_hash: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let generation = match tokens.get(token_hash) {
        Ok(user) => return Ok(Some(user)),
        Err(generation) => generation,
    };
    let user = db
        .reader()
        .fetch_optional(
            &format!(
                "SELECT {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
                 AND u.disabled_at IS NULL"
            ),
            &args![token_hash],
        )
        .await?
        .as_ref()
        .map(decode_user)
        .transpose()?;
    if let Some(user) = &user {
        tokens.put(token_hash, user, generation);
    }
    Ok(user)
}

pub(crate) async fn users_by_ids(db: &Db, ids: &[UserId]) -> Result<Vec<UserRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let args: Vec<Arg> = ids.iter().map(|i| Arg::from(i.as_uuid())).collect();
    let list = (1..=args.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    db.reader()
        .fetch_all(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id IN ({list}) ORDER BY u.name"),
            &args,
        )
        .await?
        .iter()
        .map(decode_user)
        .collect()
}

pub(crate) async fn users(db: &Db) -> Result<Vec<UserRecord>, StoreError> {
    db.reader()
        .fetch_all(
            &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"),
            &[],
        )
        .await?
        .iter()
        .map(decode_user)
        .collect()
}

pub(crate) async fn revoke_tokens(
    db: &Db,
    tokens: &TokenCache,
    user_name: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    let user = user_by_name(tx.exec(), user_name.trim())
        .await?
        .ok_or(StoreError::NotFound)?;
    let revoked = tx
        .exec()
        .execute(
            "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            &args![now, user.id.as_uuid()],
        )
        .await?;
    // Every process's listener empties its cache when this commits.
    tx.notify(TOKENS_CHANNEL, "").await?;
    tx.commit().await?;
    tokens.clear();
    Ok(revoked)
}
