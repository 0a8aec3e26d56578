//! Galley's webhooks: telling other systems what happened, from the log, in order, nothing
//! lost.
//!
//! Each endpoint (stored by galley-storage) has a checkpoint in the log. The [`dispatcher`]
//! reads the events after it, posts each one the endpoint's filter matches, in position order,
//! signed as the Standard Webhooks specification says ([`signing`]), and moves the checkpoint
//! only once the delivery is done, so deliveries are at least once and a receiver drops
//! duplicates by their `webhook-id`, which is the same on every attempt. A delivery that keeps
//! failing is retried with backoff ([`retry`]) and holds the endpoint's later deliveries; an
//! endpoint failing for too long is disabled. On PostgreSQL exactly one process dispatches an
//! endpoint (a session advisory lock, taken over when its holder dies); on SQLite the one
//! process does. The SSRF guard ([`guard`]) keeps deliveries out of the operator's network
//! unless the operator's allow-list lets them in.
//!
//! [`Webhooks`] is the handle the API and the dispatcher share: the operator's
//! [`WebhookConfig`], the HTTP client, the admin operations ([`admin`]) and the signal that an
//! endpoint changed. Invariants: the log is only read here, never written; a secret leaves the
//! store only to sign, and once to the admin who created or rotated it; no delivery reaches an
//! address the policy refuses.

pub mod admin;
pub mod config;
pub mod deliver;
pub mod dispatcher;
pub mod guard;
mod matching;
pub mod payload;
pub mod retry;
pub mod signing;

use std::sync::Arc;

use galley_storage::StoreError;
use tokio::sync::watch;

pub use admin::{EndpointInput, EndpointPatch, FilterInput};
pub use config::WebhookConfig;
pub use guard::AddressPolicy;

/// Why a webhook operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// An argument is invalid (`field` names it): a url the policy refuses, a string too
    /// long, an unknown event type, a position that does not fit.
    #[error("{field} {message}")]
    Invalid {
        /// The argument.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WebhookError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> WebhookError {
        WebhookError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// The webhooks of one server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: WebhookConfig,
    sender: deliver::Sender,
    /// Bumped whenever an admin changes an endpoint through this process, so this
    /// process's dispatcher acts at once (other processes notice at their next scan).
    changed: watch::Sender<u64>,
}

impl Webhooks {
    /// The webhooks of a server configured with `config`.
    pub fn new(config: WebhookConfig) -> Webhooks {
        Webhooks {
            inner: Arc::new(Inner {
                sender: deliver::Sender::new(&config),
                config,
                changed: watch::Sender::new(0),
            }),
        }
    }

    /// The operator's settings.
    pub fn config(&self) -> &WebhookConfig {
        &self.inner.config
    }

    pub(crate) fn sender(&self) -> &deliver::Sender {
        &self.inner.sender
    }

    /// Tells this process's dispatcher that an endpoint changed.
    pub fn endpoints_changed(&self) {
        self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }
}
