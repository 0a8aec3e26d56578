//! The storage error type.

use galley_domain::{DomainError, Version};

/// Why a storage operation failed. `Domain` carries the domain's refusal unchanged; the others
/// are the store's own. Only `Backend` and `Corrupt` are internal errors that the API masks.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The domain refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Another append won: the stream is at `current`, not at the expected version.
    #[error("expected version {expected} but the stream is at version {current}")]
    Conflict {
        /// The version the append expected.
        expected: Version,
        /// The stream's current version.
        current: Version,
    },
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
    /// Stored data could not be read back (an unknown event type, a bad row).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
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

impl StoreError {
    /// The stable API error code, or `None` for internal errors the API must mask.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            StoreError::Domain(e) => Some(e.code()),
            StoreError::Conflict { .. } => Some("CONFLICT"),
            StoreError::NotFound => Some("NOT_FOUND"),
            StoreError::SlugTaken { .. } => Some("SLUG_TAKEN"),
            StoreError::IdempotencyKeyReused => Some("IDEMPOTENCY_KEY_REUSED"),
            StoreError::Invalid { .. } => Some("BAD_REQUEST"),
            StoreError::Corrupt(_) | StoreError::Backend(_) | StoreError::Migrate(_) => None,
        }
    }

    /// The current version carried by a conflict, from the store or the domain.
    pub fn current_version(&self) -> Option<Version> {
        match self {
            StoreError::Conflict { current, .. }
            | StoreError::Domain(DomainError::Conflict { current, .. }) => Some(*current),
            _ => None,
        }
    }
}
