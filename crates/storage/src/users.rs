//! Users and their hashed API tokens. These are not part of the event log.
//!
//! Every request authenticates, so a token lookup is on every request's path. A successful
//! lookup is kept for [`TOKEN_CACHE_TTL`] (a user's name and roles never change; only tokens
//! are added and revoked). A revocation empties the cache: at once in the store that made it,
//! and on PostgreSQL in every process, through `NOTIFY galley_tokens` sent in the revoking
//! transaction (delivered at its commit) and heard by the feed's listener, which also empties
//! the cache whenever it reconnects, since notifications may have been missed. On SQLite, a
//! revocation by another process (`galley tokens revoke` beside a running server) takes
//! effect when the entry expires. Unknown tokens are never cached, so a new token works at once.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use galley_domain::{Role, UserId};

use crate::db::{args, is_unique_violation, Arg, Exec, Row};
use crate::error::StoreError;
use crate::model::UserRecord;
use crate::store::Store;

pub(crate) const USER_COLUMNS: &str = "u.id, u.name, u.roles, u.created_at";

/// How long a successful token lookup is reused by default.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Most cached lookups; a full cache is emptied (it refills with the tokens in use).
const TOKEN_CACHE_MAX: usize = 10_000;

/// The channel revocations notify on PostgreSQL.
pub(crate) const TOKENS_CHANNEL: &str = "galley_tokens";

/// Recent successful token lookups, by token hash.
#[derive(Debug)]
pub(crate) struct TokenCache {
    ttl: Duration,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    entries: HashMap<String, (UserRecord, Instant)>,
    /// Bumped by every [`TokenCache::clear`], so that a lookup that raced a revocation does
    /// not put back what the revocation removed.
    generation: u64,
}

impl TokenCache {
    pub(crate) fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            state: Mutex::new(CacheState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached user, or the generation to hand to [`TokenCache::put`] after a lookup.
    fn get(&self, token_hash: &str) -> Result<UserRecord, u64> {
        let state = self.lock();
        match state.entries.get(token_hash) {
            Some((user, at)) if at.elapsed() < self.ttl => Ok(user.clone()),
            _ => Err(state.generation),
        }
    }

    fn put(&self, token_hash: &str, user: &UserRecord, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= TOKEN_CACHE_MAX {
            state.entries.clear();
        }
        state
            .entries
            .insert(token_hash.to_owned(), (user.clone(), Instant::now()));
    }

    /// Forgets every lookup (a token was revoked, or revocations may have been missed).
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
    }
}

pub(crate) fn decode_user(row: &Row) -> Result<UserRecord, StoreError> {
    let roles: Vec<String> = row.json("roles")?;
    Ok(UserRecord {
        id: UserId::from_uuid(row.get("id")?),
        name: row.get("name")?,
        roles: roles
            .iter()
            .map(|r| Role::from_str(r))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Corrupt(format!("stored role: {e}")))?,
        created_at: row.get("created_at")?,
    })
}

fn name_taken(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Invalid {
            field: "name".to_owned(),
            message: "is taken by another user".to_owned(),
        }
    } else {
        StoreError::Backend(e)
    }
}

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

pub(crate) async fn user_by_name(
    mut exec: Exec<'_>,
    name: &str,
) -> Result<Option<UserRecord>, StoreError> {
    exec.fetch_optional(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1"),
        &args![name],
    )
    .await?
    .as_ref()
    .map(decode_user)
    .transpose()
}

impl Store {
    pub(crate) async fn create_user_impl(
        &self,
        id: UserId,
        name: &str,
        roles: &[Role],
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid {
                field: "name".to_owned(),
                message: "must not be empty".to_owned(),
            });
        }
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        let role_names: Vec<&str> = roles.iter().map(Role::as_str).collect();
        let (mut tx, _) = self.inner.db.begin_write(false).await?;
        tx.exec()
            .execute(
                "INSERT INTO users (id, name, roles, created_at) VALUES ($1, $2, $3, $4)",
                &args![id.as_uuid(), name, serde_json::json!(role_names), now],
            )
            .await
            .map_err(name_taken)?;
        tx.exec()
            .execute(
                "INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)",
                &args![token_hash, id.as_uuid(), now],
            )
            .await
            .map_err(token_taken)?;
        let user = user_by_name(tx.exec(), name)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(user)
    }

    pub(crate) async fn add_token_impl(
        &self,
        user_name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, StoreError> {
        let (mut tx, _) = self.inner.db.begin_write(false).await?;
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

    pub(crate) async fn user_by_token_hash_impl(
        &self,
        token_hash: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let generation = match self.inner.tokens.get(token_hash) {
            Ok(user) => return Ok(Some(user)),
            Err(generation) => generation,
        };
        let user = self
            .inner
            .db
            .reader()
            .fetch_optional(
                &format!(
                    "SELECT {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
                     WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
                ),
                &args![token_hash],
            )
            .await?
            .as_ref()
            .map(decode_user)
            .transpose()?;
        if let Some(user) = &user {
            self.inner.tokens.put(token_hash, user, generation);
        }
        Ok(user)
    }

    pub(crate) async fn users_by_ids_impl(
        &self,
        ids: &[UserId],
    ) -> Result<Vec<UserRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args: Vec<Arg> = ids.iter().map(|i| Arg::from(i.as_uuid())).collect();
        let list = (1..=args.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.inner
            .db
            .reader()
            .fetch_all(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.id IN ({list}) ORDER BY u.name"
                ),
                &args,
            )
            .await?
            .iter()
            .map(decode_user)
            .collect()
    }

    pub(crate) async fn users_impl(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.inner
            .db
            .reader()
            .fetch_all(
                &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"),
                &[],
            )
            .await?
            .iter()
            .map(decode_user)
            .collect()
    }

    pub(crate) async fn revoke_tokens_impl(
        &self,
        user_name: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (mut tx, _) = self.inner.db.begin_write(false).await?;
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
        if tx.is_pg() {
            // Every process's listener empties its cache when this commits.
            tx.exec()
                .execute("SELECT pg_notify($1, '')", &args![TOKENS_CHANNEL])
                .await?;
        }
        tx.commit().await?;
        self.inner.tokens.clear();
        Ok(revoked)
    }
}
