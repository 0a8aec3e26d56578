//! Passwords and console sessions. These are not part of the event log.
//!
//! A password is stored as an Argon2id PHC string the API makes; the store never sees the
//! password itself. A session is stored as the SHA-256 hex hash of the random secret the
//! browser's cookie holds. Session lookups are not cached: a sign-out or a revocation takes
//! effect on the next request, in every replica. Expiry is compared in Rust, not in SQL, so
//! both backends agree whatever text form SQLite keeps timestamps in.

use chrono::{DateTime, Utc};
use galley_domain::UserId;

use crate::db::{args, Exec, Row};
use crate::error::StoreError;
use crate::model::UserRecord;
use crate::store::Store;
use crate::users::{decode_user, user_by_name, USER_COLUMNS};

/// A user with their stored password hash, for signing in.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user.
    pub user: UserRecord,
    /// The Argon2id PHC string, or `None` when no password was set.
    pub password_hash: Option<String>,
}

async fn credentials(mut exec: Exec<'_>, name: &str) -> Result<Option<Credentials>, StoreError> {
    let row: Option<Row> = exec
        .fetch_optional(
            &format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.name = $1"),
            &args![name],
        )
        .await?;
    row.map(|row| {
        Ok(Credentials {
            user: decode_user(&row)?,
            password_hash: row.get("password_hash")?,
        })
    })
    .transpose()
}

impl Store {
    /// Sets (or replaces) the password hash of a user, by name; `NotFound` when there is no
    /// such user. Every session of the user is revoked, so a changed password signs out
    /// whoever held the old one.
    pub async fn set_password_hash(
        &self,
        user_name: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, StoreError> {
        let (mut tx, _) = self.inner.db.begin_write(false).await?;
        let user = user_by_name(tx.exec(), user_name.trim())
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.exec()
            .execute(
                "UPDATE users SET password_hash = $1 WHERE id = $2",
                &args![password_hash, user.id.as_uuid()],
            )
            .await?;
        tx.exec()
            .execute(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                &args![now, user.id.as_uuid()],
            )
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The user named `name` with their password hash, for signing in.
    pub async fn credentials(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        credentials(self.inner.db.reader(), name.trim()).await
    }

    /// Whether any user exists (the console's sign-in page says how to create the first).
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .db
            .reader()
            .fetch_optional("SELECT 1 AS one FROM users LIMIT 1", &[])
            .await?
            .is_some())
    }

    /// Records a new session for a user, valid until `expires_at`.
    pub async fn create_session(
        &self,
        session_hash: &str,
        user: UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (mut tx, _) = self.inner.db.begin_write(false).await?;
        // The user's ended sessions are forgotten here, so the table holds at most the live
        // sessions and those that expired since the last sign-in.
        tx.exec()
            .execute(
                "DELETE FROM sessions WHERE user_id = $1 AND revoked_at IS NOT NULL",
                &args![user.as_uuid()],
            )
            .await?;
        tx.exec()
            .execute(
                "INSERT INTO sessions (session_hash, user_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
                &args![session_hash, user.as_uuid(), now, expires_at],
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user of a session that is neither revoked nor expired at `now`.
    pub async fn user_by_session_hash(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = self
            .inner
            .db
            .reader()
            .fetch_optional(
                &format!(
                    "SELECT {USER_COLUMNS}, s.expires_at FROM sessions s \
                     JOIN users u ON u.id = s.user_id \
                     WHERE s.session_hash = $1 AND s.revoked_at IS NULL"
                ),
                &args![session_hash],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: DateTime<Utc> = row.get("expires_at")?;
        if expires_at <= now {
            return Ok(None);
        }
        decode_user(&row).map(Some)
    }

    /// Ends one session (sign-out); returns whether it was live.
    pub async fn revoke_session(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (mut tx, _) = self.inner.db.begin_write(false).await?;
        let n = tx
            .exec()
            .execute(
                "UPDATE sessions SET revoked_at = $1 WHERE session_hash = $2 AND revoked_at IS NULL",
                &args![now, session_hash],
            )
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Ends every session of a user (by name); returns how many live sessions were revoked.
    pub async fn revoke_sessions(
        &self,
        user_name: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (mut tx, _) = self.inner.db.begin_write(false).await?;
        let user = user_by_name(tx.exec(), user_name.trim())
            .await?
            .ok_or(StoreError::NotFound)?;
        let n = tx
            .exec()
            .execute(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                &args![now, user.id.as_uuid()],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}
