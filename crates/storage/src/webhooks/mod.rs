//! Webhook endpoints, their checkpoints, delivery attempts and the audit of their changes
//! (migration 0009). Operational data beside the log, never part of it: nothing here is
//! rebuilt, verified or exported, and the log never holds a secret.
//!
//! An endpoint follows the log from its checkpoint as an asynchronous reader does: the
//! dispatcher (crate galley-webhooks) reads the events after it, delivers the ones matching the
//! endpoint's filter in position order, and moves the checkpoint with a compare-and-set, so an
//! admin's rewind or skip made meanwhile is never overwritten. Changes made by admins (and the
//! dispatcher's disabling of an endpoint) name the version they expect, bump it, and write one
//! audit row in the same transaction. Secrets are read only by [`secrets`], for signing; no
//! record, audit row or error carries one.
//!
//! On PostgreSQL exactly one process dispatches an endpoint: it holds a session advisory lock
//! per endpoint on a connection of its own ([`lease`]), which PostgreSQL releases when that
//! connection ends, however the process died.

mod attempts;
mod changes;
mod endpoints;
pub(crate) mod lease;

use chrono::{DateTime, Utc};
use galley_domain::{ArticleId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::Position;

pub(crate) use attempts::{attempts, record_attempt};
pub(crate) use changes::{changes, record_change};
pub(crate) use endpoints::{change, create, delete, endpoint, endpoints, record_failure, secrets};
pub use lease::WebhookLeases;

/// Most endpoints that may exist at once: each is dispatched by its own task and followed by a
/// lag gauge, so their number bounds both.
pub const MAX_WEBHOOK_ENDPOINTS: usize = 100;

/// How many attempts are kept per endpoint (older ones are deleted as new ones are recorded).
pub const WEBHOOK_ATTEMPTS_KEPT: u32 = 100;

/// An endpoint's id (UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WebhookEndpointId(Uuid);

impl WebhookEndpointId {
    /// Wraps a UUID.
    pub const fn from_uuid(id: Uuid) -> Self {
        WebhookEndpointId(id)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for WebhookEndpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether an endpoint is dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebhookState {
    /// Deliveries follow the log.
    Active,
    /// An admin paused it: nothing is delivered until it is resumed.
    Paused,
    /// The dispatcher disabled it after deliveries failed for too long: nothing is delivered
    /// until an admin resumes it.
    Disabled,
}

impl WebhookState {
    /// The stored (and GraphQL) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookState::Active => "ACTIVE",
            WebhookState::Paused => "PAUSED",
            WebhookState::Disabled => "DISABLED",
        }
    }

    fn parse(s: &str) -> Result<WebhookState, crate::StoreError> {
        match s {
            "ACTIVE" => Ok(WebhookState::Active),
            "PAUSED" => Ok(WebhookState::Paused),
            "DISABLED" => Ok(WebhookState::Disabled),
            other => Err(crate::StoreError::Corrupt(format!(
                "webhook endpoint state {other:?}"
            ))),
        }
    }
}

/// Which events an endpoint is sent. Every part that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookFilter {
    /// Only these event types; empty: every type.
    pub event_types: Vec<String>,
    /// Only events of articles whose current category is this one (compared without regard
    /// to case).
    pub category: Option<String>,
    /// Only this article's events.
    pub article_id: Option<ArticleId>,
}

/// An endpoint to create. The caller has validated every field and made the secret.
#[derive(Clone)]
pub struct NewWebhookEndpoint {
    /// Its id.
    pub id: WebhookEndpointId,
    /// Where deliveries go.
    pub url: String,
    /// What it is for, for people.
    pub description: String,
    /// Which events it is sent.
    pub filter: WebhookFilter,
    /// The signing secret (`whsec_…`).
    pub secret: String,
    /// The position it starts after (the head, usually; 0 replays the whole log).
    pub checkpoint: Position,
}

impl std::fmt::Debug for NewWebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("filter", &self.filter)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

/// An endpoint as stored, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpointRecord {
    /// Its id.
    pub id: WebhookEndpointId,
    /// Where deliveries go.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// Which events it is sent.
    pub filter: WebhookFilter,
    /// Whether it is dispatched.
    pub state: WebhookState,
    /// Why it is paused or disabled.
    pub state_reason: Option<String>,
    /// Since when it is in its state.
    pub state_since: DateTime<Utc>,
    /// The last position it is done with.
    pub checkpoint: Position,
    /// The number of changes made to it; every change names the version it expects.
    pub version: u64,
    /// Since when deliveries have failed without a success in between.
    pub failing_since: Option<DateTime<Utc>>,
    /// The last failure, for people.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// The last successful delivery.
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Until when the secret replaced by the last rotation still signs deliveries.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed (its dispatcher's progress included).
    pub updated_at: DateTime<Utc>,
}

/// An endpoint's signing secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecrets {
    /// The current secret.
    pub current: String,
    /// The secret the last rotation replaced, and until when it still signs.
    pub previous: Option<(String, DateTime<Utc>)>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecrets(…)")
    }
}

/// A change to an endpoint, made by an admin (or, for `Disabled`, by the dispatcher). Each is
/// one audit row; none carries a secret into it.
#[derive(Clone)]
pub enum WebhookEndpointChange {
    /// New url, description or filter (the ones given).
    Updated {
        /// The new url.
        url: Option<String>,
        /// The new description.
        description: Option<String>,
        /// The new filter.
        filter: Option<WebhookFilter>,
    },
    /// Paused (only an ACTIVE endpoint).
    Paused {
        /// Why, for people.
        reason: Option<String>,
    },
    /// Resumed (a PAUSED or DISABLED one); its failure clock starts again.
    Resumed,
    /// Disabled by the dispatcher (only an ACTIVE endpoint).
    Disabled {
        /// Why.
        reason: String,
    },
    /// A new secret; the old one still signs until `previous_until`.
    SecretRotated {
        /// The new secret.
        secret: String,
        /// Until when the replaced one signs too.
        previous_until: DateTime<Utc>,
    },
    /// The checkpoint moved back to `position` (at most the current checkpoint): what
    /// follows is delivered again.
    Rewound {
        /// The new checkpoint.
        position: Position,
    },
    /// The delivery the endpoint is held on, at `position`, is given up: the checkpoint moves
    /// to it, provided it is still `checkpoint` (the caller checked that no matching event
    /// lies between).
    Skipped {
        /// The position skipped (the new checkpoint).
        position: Position,
        /// The checkpoint the caller saw.
        checkpoint: Position,
    },
}

impl std::fmt::Debug for WebhookEndpointChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.change_type())
    }
}

impl WebhookEndpointChange {
    /// The audit row's `change_type`.
    pub fn change_type(&self) -> &'static str {
        match self {
            WebhookEndpointChange::Updated { .. } => "Updated",
            WebhookEndpointChange::Paused { .. } => "Paused",
            WebhookEndpointChange::Resumed => "Resumed",
            WebhookEndpointChange::Disabled { .. } => "Disabled",
            WebhookEndpointChange::SecretRotated { .. } => "SecretRotated",
            WebhookEndpointChange::Rewound { .. } => "Rewound",
            WebhookEndpointChange::Skipped { .. } => "Skipped",
        }
    }
}

/// One recorded change to an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookChangeRecord {
    /// Its number, in the order changes were recorded.
    pub id: u64,
    /// The endpoint (which may since have been deleted).
    pub endpoint_id: WebhookEndpointId,
    /// Created, Updated, Paused, Resumed, Disabled, SecretRotated, Rewound, Skipped,
    /// Redelivered or Deleted.
    pub change_type: String,
    /// What changed, as JSON; never a secret.
    pub detail: serde_json::Value,
    /// Who (the system id for the dispatcher).
    pub actor: UserId,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

/// How an attempt came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// The dispatcher, following the log.
    Dispatch,
    /// An admin's redelivery of one event.
    Redelivery,
}

impl AttemptKind {
    fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Dispatch => "DISPATCH",
            AttemptKind::Redelivery => "REDELIVERY",
        }
    }
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// A network error, a timeout, 408, 429 or 5xx: the delivery is tried again.
    Retrying,
    /// Any other answer: the delivery failed for good.
    Failed,
}

impl AttemptOutcome {
    /// The stored (and GraphQL) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "DELIVERED",
            AttemptOutcome::Retrying => "RETRYING",
            AttemptOutcome::Failed => "FAILED",
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    /// The endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// The event's position.
    pub position: Position,
    /// The event's id.
    pub event_id: Uuid,
    /// 1, 2, 3 … within one delivery.
    pub attempt: u32,
    /// Dispatch or redelivery.
    pub kind: AttemptKind,
    /// What became of it.
    pub outcome: AttemptOutcome,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// From sending the request to the end of the answer (or the failure).
    pub latency_ms: u64,
    /// Why it failed, for people.
    pub error: Option<String>,
    /// The first bytes of the answer.
    pub response_excerpt: Option<String>,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
}

/// How the dispatcher moves an endpoint's checkpoint (see [`WebhookLeases::advance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Past events that do not match the filter.
    Passed,
    /// Past an event delivered: the endpoint is no longer failing.
    Delivered {
        /// When.
        at: DateTime<Utc>,
    },
    /// Past an event whose delivery failed for good (a 4xx answer).
    Failed {
        /// When.
        at: DateTime<Utc>,
        /// Why, for people.
        error: String,
    },
}

/// The `StoreError::Invalid` of a refused change.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> crate::StoreError {
    crate::StoreError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}
