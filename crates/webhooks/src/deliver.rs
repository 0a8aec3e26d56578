//! One attempt at delivering one event: the signed POST, its bounded answer, and what the
//! answer means for the delivery.
//!
//! The HTTP client follows no redirect, uses no proxy, resolves through the SSRF guard,
//! gives up after the connect and total timeouts, and reads at most [`EXCERPT_BYTES`] of an
//! answer (the rest is never read: the connection is dropped). 2xx is delivered; a network
//! error, a timeout, 408, 429 and 5xx are retried; any other answer (a 3xx not followed, a
//! 4xx) fails the delivery for good.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use galley_storage::{AttemptOutcome, WebhookSecrets};

use crate::config::WebhookConfig;
use crate::guard::{AddressPolicy, AddressRefused, GuardedResolver};
use crate::signing::signature_header;

/// How much of an answer is read and kept as its excerpt.
pub const EXCERPT_BYTES: usize = 1024;

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted {
    /// Delivered, retrying or failed.
    pub outcome: AttemptOutcome,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// From sending to the end of the excerpt, or to the failure.
    pub latency: Duration,
    /// Why it did not succeed, for people.
    pub error: Option<String>,
    /// The first [`EXCERPT_BYTES`] of the answer, as text.
    pub excerpt: Option<String>,
}

/// The HTTP client deliveries go through.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    client: Result<reqwest::Client, String>,
    policy: Arc<AddressPolicy>,
}

impl Sender {
    pub(crate) fn new(config: &WebhookConfig) -> Sender {
        let policy = Arc::new(config.addresses.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("Galley-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .build()
            .map_err(|e| format!("the HTTP client cannot be built: {e}"));
        if let Err(e) = &client {
            tracing::error!(error = %e, "webhook deliveries will fail");
        }
        Sender { client, policy }
    }

    /// Posts `body` to `url`, signed with `secrets` (the previous secret too while `now` is
    /// before its end), as delivery `id`.
    pub(crate) async fn attempt(
        &self,
        url: &str,
        secrets: &WebhookSecrets,
        id: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Attempted {
        let start = Instant::now();
        let failed = |outcome, error: String| Attempted {
            outcome,
            status: None,
            latency: start.elapsed(),
            error: Some(error),
            excerpt: None,
        };
        let client = match &self.client {
            Ok(client) => client,
            Err(e) => return failed(AttemptOutcome::Retrying, e.clone()),
        };
        let parsed = match reqwest::Url::parse(url) {
            Ok(parsed) => parsed,
            Err(e) => return failed(AttemptOutcome::Failed, format!("the url is invalid: {e}")),
        };
        // A url naming an address is not resolved, so the resolver's check never sees it.
        let literal = crate::guard::literal_address(&parsed);
        if let Some(address) = literal {
            if let Err(refused) = self.policy.check(address) {
                return failed(AttemptOutcome::Retrying, format!("refused: {refused}"));
            }
        }
        let timestamp = now.timestamp();
        let previous = secrets
            .previous
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(secret, _)| secret.as_str());
        let Some(signature) = signature_header(&secrets.current, previous, id, timestamp, body)
        else {
            return failed(
                AttemptOutcome::Retrying,
                "the endpoint's secret is not base64".to_owned(),
            );
        };
        let request = client
            .post(parsed)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return failed(AttemptOutcome::Retrying, describe(&e)),
        };
        let status = response.status().as_u16();
        let mut excerpt = Vec::new();
        let mut read_error = None;
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(describe(&e));
                    break;
                }
            }
        }
        drop(response);
        excerpt.truncate(EXCERPT_BYTES);
        let excerpt = String::from_utf8_lossy(&excerpt).into_owned();
        let outcome = classify(status);
        let error = match outcome {
            AttemptOutcome::Delivered => None,
            _ => Some(match read_error {
                Some(e) => format!("HTTP {status}; then {e}"),
                None => format!("HTTP {status}"),
            }),
        };
        Attempted {
            outcome,
            status: Some(status),
            latency: start.elapsed(),
            error,
            excerpt: (!excerpt.is_empty()).then_some(excerpt),
        }
    }
}

/// What an answer means: 2xx delivered; 408, 429 and 5xx retried; anything else failed.
pub fn classify(status: u16) -> AttemptOutcome {
    match status {
        200..=299 => AttemptOutcome::Delivered,
        408 | 429 | 500..=599 => AttemptOutcome::Retrying,
        _ => AttemptOutcome::Failed,
    }
}

/// A client error in words, naming a refusal of the SSRF guard as such.
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<AddressRefused>() {
            return format!("refused: {refused}");
        }
        if let Some(crate::guard::ResolveError::Refused(refused)) =
            cause.downcast_ref::<crate::guard::ResolveError>()
        {
            return format!("refused: {refused}");
        }
        source = cause.source();
    }
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_the_issue_says() {
        for status in [200, 201, 202, 204, 299] {
            assert_eq!(classify(status), AttemptOutcome::Delivered, "{status}");
        }
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(classify(status), AttemptOutcome::Retrying, "{status}");
        }
        for status in [301, 302, 307, 400, 401, 403, 404, 410, 413, 422] {
            assert_eq!(classify(status), AttemptOutcome::Failed, "{status}");
        }
    }
}
