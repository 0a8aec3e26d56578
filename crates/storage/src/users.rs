//! Users and their hashed API tokens. These are not part of the event log.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use galley_domain::{Role, UserId};

use crate::db::{args, is_unique_violation, Arg, Exec, Row};
use crate::error::StoreError;
use crate::model::UserRecord;
use crate::store::Store;

const USER_COLUMNS: &str = "u.id, u.name, u.roles, u.created_at";

fn decode_user(row: &Row) -> Result<UserRecord, StoreError> {
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

async fn user_by_name(mut exec: Exec<'_>, name: &str) -> Result<Option<UserRecord>, StoreError> {
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
        self.inner
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
            .transpose()
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
        tx.commit().await?;
        Ok(revoked)
    }
}
