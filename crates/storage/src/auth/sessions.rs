//! Passwords and console sessions. These are not part of the event log.
//!
//! A password is stored as an Argon2id PHC string the API makes; the store never sees the
//! password itself. A session is stored as the SHA-256 hex hash of the random secret the
//! browser's cookie holds. Session lookups are not cached: a sign-out or a revocation takes
//! effect on the next request, in every replica. Expiry is compared in Rust, not in SQL, so
//! both backends agree whatever text form SQLite keeps timestamps in.

use chrono::{DateTime, Utc};
use galley_domain::UserId;

use super::rows::{decode_user, user_by_name, USER_COLUMNS};
use crate::backend::{args, Db, Exec, Row};
use crate::error::StoreError;
use crate::model::UserRecord;

/// A user with their stored password hash, for signing in.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user.
    pub user: UserRecord,
    /// The Argon2id PHC string, or `None` when no password was set.
    pub password_hash: Option<String>,
}

async fn credentials_in(mut exec: Exec<'_>, name: &str) -> Result<Option<Credentials>, StoreError> {
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

/// See [`crate::Store::set_password_hash`].
pub(crate) async fn set_password_hash(
    db: &Db,
    user_name: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<UserRecord, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
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

/// See [`crate::Store::credentials`].
pub(crate) async fn credentials(db: &Db, name: &str) -> Result<Option<Credentials>, StoreError> {
    credentials_in(db.reader(), name.trim()).await
}

/// See [`crate::Store::has_users`].
pub(crate) async fn has_users(db: &Db) -> Result<bool, StoreError> {
    Ok(db
        .reader()
        .fetch_optional("SELECT 1 AS one FROM users LIMIT 1", &[])
        .await?
        .is_some())
}

/// See [`crate::Store::create_session`].
pub(crate) async fn create_session(
    db: &Db,
    session_hash: &str,
    user: UserId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
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

/// See [`crate::Store::user_by_session_hash`].
pub(crate) async fn user_by_session_hash(
    db: &Db,
    session_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<UserRecord>, StoreError> {
    let row = db
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

/// See [`crate::Store::revoke_session`].
pub(crate) async fn revoke_session(
    db: &Db,
    session_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
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

/// See [`crate::Store::revoke_sessions`].
pub(crate) async fn revoke_sessions(
    db: &Db,
    user_name: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
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
