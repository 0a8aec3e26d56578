//! The one table of API error codes (DESIGN.md §6) and the mapping of every lower layer's error
//! onto it.
//!
//! The domain's refusals and the store's own errors are safe to show and keep their message.
//! Internal errors (a failed database, corrupt data) are masked: the caller gets a fixed message
//! and the request id, and the cause is logged with that id.

use async_graphql::ErrorExtensions;
use galley_domain::{DomainError, Version};
use galley_storage::StoreError;

/// The stable `extensions.code` values of the API. Clients branch on these strings, so they
/// never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No token, an unknown token or a revoked one.
    Unauthenticated,
    /// The caller lacks the role the operation needs.
    Forbidden,
    /// The article (or other record) does not exist.
    NotFound,
    /// The expected version is not the current one (`currentVersion` says which is).
    Conflict,
    /// The command is not allowed in the article's status.
    InvalidTransition,
    /// An argument is invalid (`field` names it).
    ValidationFailed,
    /// The slug belongs to another article.
    SlugTaken,
    /// The article is under embargo.
    Embargoed,
    /// A reviewer tried to approve their own article.
    SelfApproval,
    /// The idempotency key was used before for a different command.
    IdempotencyKeyReused,
    /// Too many requests for this token.
    RateLimited,
    /// The request itself is malformed or exceeds a limit.
    BadRequest,
    /// Something failed inside the service; the cause is in the log.
    InternalServerError,
    /// The database is unreachable or did not answer in time; nothing was done. Answered with
    /// HTTP 503 and Retry-After on every path; retry then (with the same idempotency key).
    ServiceUnavailable,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::InvalidTransition,
        ErrorCode::ValidationFailed,
        ErrorCode::SlugTaken,
        ErrorCode::Embargoed,
        ErrorCode::SelfApproval,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::RateLimited,
        ErrorCode::BadRequest,
        ErrorCode::InternalServerError,
        ErrorCode::ServiceUnavailable,
    ];

    /// The code as it appears in `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::InvalidTransition => "INVALID_TRANSITION",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::SlugTaken => "SLUG_TAKEN",
            ErrorCode::Embargoed => "EMBARGOED",
            ErrorCode::SelfApproval => "SELF_APPROVAL",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// Parses a code as it appears in `extensions.code`. Lower layers' errors are not parsed:
    /// `From<DomainError>` and `From<StoreError>` match on their variants.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// An error an API operation returns. Build it from a lower layer's error with `From`, or with
/// one of the constructors; it becomes a GraphQL error with `extensions.code` (and
/// `currentVersion`, `field`, `requestId` where they apply).
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    field: Option<String>,
    current_version: Option<Version>,
    /// The unmasked cause of an internal error; logged, never shown.
    cause: Option<String>,
}

impl ApiError {
    /// An error with a code and a message that is safe to show.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            field: None,
            current_version: None,
            cause: None,
        }
    }

    /// A VALIDATION_FAILED error on an argument.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let field = field.into();
        let message = format!("{field} {}", message.into());
        ApiError {
            field: Some(field),
            ..ApiError::new(ErrorCode::ValidationFailed, message)
        }
    }

    /// A CONFLICT error reporting the current version (of a record that is not an article,
    /// whose conflicts the domain reports).
    pub fn conflict(message: impl Into<String>, current: Version) -> ApiError {
        ApiError {
            current_version: Some(current),
            ..ApiError::new(ErrorCode::Conflict, message)
        }
    }

    /// A FORBIDDEN error.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// An internal error: the cause is logged, the caller sees a fixed message.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError {
            cause: Some(cause.to_string()),
            ..ApiError::new(ErrorCode::InternalServerError, "internal server error")
        }
    }

    /// SERVICE_UNAVAILABLE: the database cannot be reached. The cause is logged here (inside
    /// the request's span, which names the request id); the caller is told to retry.
    pub fn unavailable(cause: impl std::fmt::Display) -> ApiError {
        tracing::warn!(cause = %cause, "database unavailable");
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            "the database is unavailable; nothing was done, retry shortly",
        )
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message shown to the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Turns the error into a GraphQL error. Internal errors are logged here, with the request
    /// id, and the id is added to the error so an operator can find the log line.
    pub fn into_graphql(self, request_id: Option<&str>) -> async_graphql::Error {
        if let Some(cause) = &self.cause {
            tracing::error!(request_id = request_id.unwrap_or("-"), cause = %cause, "internal error");
        }
        let ApiError {
            code,
            message,
            field,
            current_version,
            cause,
        } = self;
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            if let Some(field) = &field {
                ext.set("field", field.as_str());
            }
            if let Some(v) = current_version {
                ext.set("currentVersion", v.0);
            }
            if cause.is_some() || code == ErrorCode::InternalServerError {
                if let Some(id) = request_id {
                    ext.set("requestId", id);
                }
            }
        })
    }

    /// The error as a JSON object of a GraphQL response's `errors` list, for responses made
    /// outside the executor (authentication, rate limits, malformed requests).
    pub fn to_json(&self, request_id: Option<&str>) -> serde_json::Value {
        let mut ext = serde_json::Map::new();
        ext.insert("code".into(), self.code.as_str().into());
        if let Some(field) = &self.field {
            ext.insert("field".into(), field.as_str().into());
        }
        if let Some(v) = self.current_version {
            ext.insert("currentVersion".into(), v.0.into());
        }
        if self.code == ErrorCode::InternalServerError {
            if let Some(id) = request_id {
                ext.insert("requestId".into(), id.into());
            }
        }
        serde_json::json!({ "message": self.message, "extensions": ext })
    }
}

impl From<DomainError> for ApiError {
    /// Every refusal of the domain has exactly one code; a new variant fails to compile here
    /// until it is given one.
    fn from(e: DomainError) -> Self {
        let code = match &e {
            DomainError::Conflict { .. } => ErrorCode::Conflict,
            DomainError::Forbidden { .. } => ErrorCode::Forbidden,
            DomainError::NotFound => ErrorCode::NotFound,
            DomainError::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            DomainError::Validation { .. } => ErrorCode::ValidationFailed,
            DomainError::Embargoed { .. } => ErrorCode::Embargoed,
            DomainError::SelfApproval => ErrorCode::SelfApproval,
        };
        let mut err = ApiError::new(code, e.to_string());
        match e {
            DomainError::Conflict { current, .. } => err.current_version = Some(current),
            DomainError::Validation { field, .. } => err.field = Some(field),
            _ => {}
        }
        err
    }
}

impl From<StoreError> for ApiError {
    /// Every store error has one answer; a new variant fails to compile here until it is
    /// given one.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => ApiError::from(d),
            StoreError::NotFound => ApiError::new(ErrorCode::NotFound, e.to_string()),
            StoreError::SlugTaken { .. } => ApiError::new(ErrorCode::SlugTaken, e.to_string()),
            StoreError::IdempotencyKeyReused => {
                ApiError::new(ErrorCode::IdempotencyKeyReused, e.to_string())
            }
            StoreError::Invalid { field, message } => ApiError {
                field: Some(field.clone()),
                ..ApiError::new(ErrorCode::BadRequest, format!("{field} {message}"))
            },
            StoreError::BatchFailed { .. } | StoreError::Closed => ApiError::unavailable(&e),
            StoreError::Backend(_) if e.is_unavailable() => ApiError::unavailable(&e),
            StoreError::Backend(_) | StoreError::Corrupt(_) | StoreError::Migrate(_) => {
                ApiError::internal(&e)
            }
        }
    }
}

impl ApiError {
    /// A store error shared by a DataLoader: unavailable stays unavailable, anything else is
    /// internal.
    pub fn from_shared(e: std::sync::Arc<StoreError>) -> ApiError {
        if e.is_unavailable() {
            ApiError::unavailable(&e)
        } else {
            ApiError::internal(&e)
        }
    }
}

/// Resolvers return `async_graphql::Result`; the request id of an internal error is added by
/// the transport (HTTP or WebSocket), which knows it, and the log line carries it through the
/// request's tracing span.
impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.into_graphql(None)
    }
}

/// The result type of resolvers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn a_conflict_carries_the_current_version() {
        let err = ApiError::from(StoreError::Domain(DomainError::Conflict {
            expected: Version(1),
            current: Version(3),
        }));
        assert_eq!(err.code(), ErrorCode::Conflict);
        assert_eq!(err.to_json(None)["extensions"]["currentVersion"], 3);
    }

    /// The lower layers' own `code()` strings (used in their logs and tests) agree with the
    /// API's mapping for every variant.
    #[test]
    fn every_lower_layer_error_gets_the_code_its_layer_names() {
        use galley_domain::{Role, Status};
        let domain = [
            DomainError::Conflict {
                expected: Version(1),
                current: Version(2),
            },
            DomainError::Forbidden {
                command: "approve",
                required: vec![Role::Editor],
            },
            DomainError::NotFound,
            DomainError::InvalidTransition {
                command: "publish",
                status: Status::Draft,
                detail: None,
            },
            DomainError::validation("title", "is empty"),
            DomainError::Embargoed {
                until: chrono::Utc::now(),
            },
            DomainError::SelfApproval,
        ];
        for e in domain {
            let expected = e.code();
            assert_eq!(ApiError::from(e).code().as_str(), expected);
        }
        let store = [
            StoreError::NotFound,
            StoreError::SlugTaken { slug: "s".into() },
            StoreError::IdempotencyKeyReused,
            StoreError::Invalid {
                field: "after".into(),
                message: "is not a cursor".into(),
            },
            StoreError::BatchFailed { reason: "x".into() },
            StoreError::Closed,
            StoreError::Corrupt("x".into()),
        ];
        for e in store {
            let expected = e.code().unwrap_or("INTERNAL_SERVER_ERROR");
            assert_eq!(ApiError::from(e).code().as_str(), expected);
        }
    }

    #[test]
    fn an_internal_error_is_masked_and_names_the_request() {
        let err = ApiError::from(StoreError::Corrupt("secret table broke".into()));
        let json = err.to_json(Some("req-1"));
        assert_eq!(json["extensions"]["code"], "INTERNAL_SERVER_ERROR");
        assert_eq!(json["extensions"]["requestId"], "req-1");
        assert!(!json.to_string().contains("secret"));
    }
}
