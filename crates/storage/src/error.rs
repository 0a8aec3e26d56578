//! The storage error type.

use galley_domain::{DomainError, Version};

/// Why a storage operation failed. `Domain` carries the domain's refusal unchanged (a stale
/// expected version is the domain's [`DomainError::Conflict`]); the others are the store's own.
/// `Corrupt`, `Migrate` and a `Backend` error that is not [`StoreError::is_unavailable`] are
/// internal errors that the API masks. The API maps each variant to its code by matching on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The domain refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The article (or other record) does not exist.
    #[error("not found")]
    NotFound,
    /// The slug belongs to another article.
    #[error("the slug {slug:?} is taken by another article")]
    SlugTaken {
        /// The slug.
        slug: String,
    },
    /// The idempotency key was used before with a different command.
    #[error("the idempotency key was already used for a different command")]
    IdempotencyKeyReused,
    /// The input is invalid in a way only the store can tell (a malformed cursor, say).
    #[error("{field} {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The group-commit batch this command was part of failed as a whole (another command's
    /// database error, a panic, the writer stopping, a commit aborted): nothing of the batch was
    /// written, so the caller may retry.
    #[error("the batch this command was part of failed: {reason}")]
    BatchFailed {
        /// Why, for the log.
        reason: String,
    },
    /// The store is closed (the service is shutting down): nothing was written.
    #[error("the store is closed (shutting down)")]
    Closed,
    /// Stored data could not be read back (an unknown event type, a bad row).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The database failed. The message names the cause in plain words (a lost connection,
    /// a deadline, a pool with no free connection), for the log.
    #[error("database error: {}", describe(.0))]
    Backend(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<galley_domain::UpcastError> for StoreError {
    fn from(e: galley_domain::UpcastError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// A database error in words an operator can act on. sqlx's own messages for a dropped
/// connection ("encountered unexpected or invalid data", "error communicating with database")
/// do not say what happened.
fn describe(e: &sqlx::Error) -> String {
    use std::io::ErrorKind;
    match e {
        sqlx::Error::Io(io) => match io.kind() {
            ErrorKind::TimedOut => format!("no answer from the database in time ({io})"),
            ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::InvalidData
            | ErrorKind::NotConnected => {
                format!("the connection to the database was lost ({io})")
            }
            ErrorKind::ConnectionRefused => format!("the database refused the connection ({io})"),
            _ => format!("cannot reach the database ({io})"),
        },
        sqlx::Error::PoolTimedOut => "no database connection could be had within the acquire \
             timeout (the database is unreachable, or every connection is busy)"
            .to_owned(),
        sqlx::Error::PoolClosed => "the connection pool is closed (shutting down)".to_owned(),
        sqlx::Error::Protocol(m) => {
            format!("the connection to the database was lost (unexpected data: {m})")
        }
        other => other.to_string(),
    }
}

/// Whether a database error means the database cannot be reached or did not answer in time,
/// as opposed to a statement it refused: the caller may retry once it is back.
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLite: busy or locked past the busy timeout (5, 6 and their extended codes).
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            } else {
                // PostgreSQL: connection exceptions (08…), shutting down or not accepting
                // connections (57P0…), statement_timeout (57014), too many connections.
                code.starts_with("08")
                    || code.starts_with("57P0")
                    || code == "57014"
                    || code == "53300"
            }
        }
        _ => false,
    }
}

impl StoreError {
    /// Whether the database is unreachable or did not answer within its deadline: a lost or
    /// stalled connection, no pool connection in time. Nothing was acknowledged; the caller
    /// may retry (the API answers SERVICE_UNAVAILABLE with Retry-After).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Backend(e) => unavailable(e),
            StoreError::BatchFailed { .. } | StoreError::Closed => true,
            StoreError::Domain(_)
            | StoreError::NotFound
            | StoreError::SlugTaken { .. }
            | StoreError::IdempotencyKeyReused
            | StoreError::Invalid { .. }
            | StoreError::Corrupt(_)
            | StoreError::Migrate(_) => false,
        }
    }

    /// The API error code this error is answered with, or `None` for internal errors the API
    /// masks. For logs and tests: the API itself matches on the variants (galley-api's
    /// `error.rs`), and a test there checks that both agree.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            StoreError::Domain(e) => Some(e.code()),
            StoreError::NotFound => Some("NOT_FOUND"),
            StoreError::SlugTaken { .. } => Some("SLUG_TAKEN"),
            StoreError::IdempotencyKeyReused => Some("IDEMPOTENCY_KEY_REUSED"),
            StoreError::Invalid { .. } => Some("BAD_REQUEST"),
            e if e.is_unavailable() => Some("SERVICE_UNAVAILABLE"),
            StoreError::BatchFailed { .. }
            | StoreError::Closed
            | StoreError::Corrupt(_)
            | StoreError::Backend(_)
            | StoreError::Migrate(_) => None,
        }
    }

    /// The current version carried by a conflict.
    pub fn current_version(&self) -> Option<Version> {
        match self {
            StoreError::Domain(DomainError::Conflict { current, .. }) => Some(*current),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> StoreError {
        StoreError::Backend(sqlx::Error::Io(std::io::Error::from(kind)))
    }

    #[test]
    fn a_lost_connection_is_named_as_one_and_is_unavailable() {
        for kind in [
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::InvalidData,
        ] {
            let e = io(kind);
            assert!(e.is_unavailable());
            assert_eq!(e.code(), Some("SERVICE_UNAVAILABLE"));
            assert!(
                e.to_string()
                    .contains("the connection to the database was lost"),
                "{e}"
            );
        }
        let pool = StoreError::Backend(sqlx::Error::PoolTimedOut);
        assert!(pool.is_unavailable());
        assert!(pool.to_string().contains("acquire timeout"), "{pool}");
        assert!(!StoreError::Backend(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
    }

    #[test]
    fn a_failed_batch_and_a_closed_store_are_their_own_variants_and_retryable() {
        let batch = StoreError::BatchFailed {
            reason: "the batch this command was part of panicked".into(),
        };
        assert!(batch.is_unavailable());
        assert_eq!(batch.code(), Some("SERVICE_UNAVAILABLE"));
        assert!(batch.to_string().contains("panicked"), "{batch}");
        assert!(StoreError::Closed.is_unavailable());
        assert!(StoreError::Closed.to_string().contains("closed"));
    }
}
