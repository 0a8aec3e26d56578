//! The one error type of the domain: every refusal a command can meet.

use chrono::{DateTime, Utc};

use crate::kinds::{Role, Status, Version};

/// Why the domain refused a command. Each variant maps to exactly one stable API error code
/// (see [`DomainError::code`]); every message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The command expected another stream version than the current one. Nothing was written.
    #[error("expected version {expected} but the article is at version {current}")]
    Conflict {
        /// The version the command named.
        expected: Version,
        /// The article's current version.
        current: Version,
    },
    /// The actor lacks every role that may issue this command. An empty `required` means no
    /// user may issue it: only the system actor (the scheduler) does.
    #[error("{}", forbidden_message(.command, .required))]
    Forbidden {
        /// The command refused.
        command: &'static str,
        /// The roles that may issue it.
        required: Vec<Role>,
    },
    /// The article does not exist. (Creating an article that exists is a [`Self::Conflict`].)
    #[error("article not found")]
    NotFound,
    /// The command is not allowed in the article's current state.
    #[error("cannot {command} an article that is {status}{}", detail_suffix(.detail))]
    InvalidTransition {
        /// The command refused.
        command: &'static str,
        /// The article's status.
        status: Status,
        /// More about why, when the status alone does not say it.
        detail: Option<String>,
    },
    /// A field of the command is invalid.
    #[error("{field} {message}")]
    Validation {
        /// The field, as named in the API (camelCase).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The article is under embargo until the given time and may not be published before.
    #[error("the article is embargoed until {until}")]
    Embargoed {
        /// When the embargo ends.
        until: DateTime<Utc>,
    },
    /// A reviewer tried to approve an article they wrote or revised (four eyes).
    #[error("a reviewer who authored or revised the article cannot approve it")]
    SelfApproval,
}

fn forbidden_message(command: &str, required: &[Role]) -> String {
    if required.is_empty() {
        return format!("{command} is issued only by the system (the scheduler)");
    }
    let roles = required
        .iter()
        .map(Role::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    format!("{command} requires one of the roles {roles}")
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

impl DomainError {
    /// A validation error on `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> DomainError {
        DomainError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable API error code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Conflict { .. } => "CONFLICT",
            DomainError::Forbidden { .. } => "FORBIDDEN",
            DomainError::NotFound => "NOT_FOUND",
            DomainError::InvalidTransition { .. } => "INVALID_TRANSITION",
            DomainError::Validation { .. } => "VALIDATION_FAILED",
            DomainError::Embargoed { .. } => "EMBARGOED",
            DomainError::SelfApproval => "SELF_APPROVAL",
        }
    }
}
