//! What admins do with endpoints: create (the url checked against the SSRF policy, the
//! secret made and shown once), update, pause, resume, delete, rotate the secret, rewind,
//! skip the delivery an endpoint is held on, and redeliver one event. Every string is capped
//! and every refusal names its field; the store checks the expected version, records the
//! change, and caps the number of endpoints.

use std::time::Duration;

use chrono::{DateTime, Utc};
use galley_domain::{ArticleId, EventData, UserId};
use galley_storage::{
    AttemptKind, NewWebhookEndpoint, Position, Store, StoreError, WebhookAttempt,
    WebhookEndpointChange, WebhookEndpointId, WebhookEndpointRecord, WebhookFilter,
};
use uuid::Uuid;

use crate::guard::{literal_address, resolve_allowed, ResolveError};
use crate::{matching, payload, signing, WebhookError, Webhooks};

/// Longest url, in bytes.
pub const URL_MAX_BYTES: usize = 2_048;
/// Longest description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 500;
/// Longest reason for a pause, in characters.
pub const REASON_MAX_CHARS: usize = 500;
/// How long a rotated-out secret keeps signing when the admin does not say.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest overlap an admin may ask for.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// An endpoint as an admin describes it.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    /// Where deliveries go.
    pub url: String,
    /// What it is for (empty when absent).
    pub description: Option<String>,
    /// Which events it is sent.
    pub filter: FilterInput,
}

/// What an update changes: the fields given.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    /// A new url.
    pub url: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new filter.
    pub filter: Option<FilterInput>,
}

/// A filter as an admin describes it.
#[derive(Debug, Clone, Default)]
pub struct FilterInput {
    /// Event type names (`ArticlePublished`, …); empty: every type.
    pub event_types: Vec<String>,
    /// Only articles of this category.
    pub category: Option<String>,
    /// Only this article.
    pub article_id: Option<ArticleId>,
}

fn check_description(description: Option<String>) -> Result<String, WebhookError> {
    let description = description.unwrap_or_default().trim().to_owned();
    if description.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(WebhookError::invalid(
            "description",
            format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
        ));
    }
    Ok(description)
}

fn check_reason(reason: Option<String>) -> Result<Option<String>, WebhookError> {
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > REASON_MAX_CHARS)
    {
        return Err(WebhookError::invalid(
            "reason",
            format!("must be at most {REASON_MAX_CHARS} characters"),
        ));
    }
    Ok(reason)
}

/// Checks a filter: known event types (each once), a valid category.
pub fn check_filter(input: FilterInput) -> Result<WebhookFilter, WebhookError> {
    let mut event_types: Vec<String> = Vec::new();
    if input.event_types.len() > EventData::TYPES.len() {
        return Err(WebhookError::invalid(
            "filter.eventTypes",
            format!("must name at most {} types", EventData::TYPES.len()),
        ));
    }
    for name in input.event_types {
        let name = name.trim().to_owned();
        if !EventData::TYPES.contains(&name.as_str()) {
            let shown: String = name.chars().take(64).collect();
            return Err(WebhookError::invalid(
                "filter.eventTypes",
                format!(
                    "names {shown:?}, which is not an event type (one of {})",
                    EventData::TYPES.join(", ")
                ),
            ));
        }
        if !event_types.contains(&name) {
            event_types.push(name);
        }
    }
    let category = match input.category.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(category) => Some(
            galley_domain::Category::parse(category)
                .map_err(|e| WebhookError::invalid("filter.category", e.to_string()))?
                .as_str()
                .to_owned(),
        ),
    };
    Ok(WebhookFilter {
        event_types,
        category,
        article_id: input.article_id,
    })
}

impl Webhooks {
    /// Checks a url: at most [`URL_MAX_BYTES`], `https` (or `http` when the operator allows
    /// it), a host, no user name or password, and every address the host resolves to allowed
    /// by the policy. Returns it as the url parser spells it.
    pub async fn check_url(&self, raw: &str) -> Result<String, WebhookError> {
        let raw = raw.trim();
        if raw.len() > URL_MAX_BYTES {
            return Err(WebhookError::invalid(
                "url",
                format!("must be at most {URL_MAX_BYTES} bytes"),
            ));
        }
        let url = reqwest::Url::parse(raw)
            .map_err(|e| WebhookError::invalid("url", format!("is not a url ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.config().allow_http => {}
            "http" => {
                return Err(WebhookError::invalid(
                    "url",
                    "must be https (the operator has not allowed http: GALLEY_WEBHOOK_ALLOW_HTTP)",
                ))
            }
            other => {
                return Err(WebhookError::invalid(
                    "url",
                    format!("must be https, not {other}"),
                ))
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookError::invalid(
                "url",
                "must not carry a user name or password (the signature authenticates Galley)",
            ));
        }
        if url.fragment().is_some() {
            return Err(WebhookError::invalid("url", "must not have a #fragment"));
        }
        let Some(host) = url.host_str() else {
            return Err(WebhookError::invalid("url", "must name a host"));
        };
        let policy = &self.config().addresses;
        if let Some(address) = literal_address(&url) {
            policy.check(address).map_err(|refused| {
                WebhookError::invalid("url", format!("is refused: {refused}"))
            })?;
        } else {
            let port = url.port_or_known_default().unwrap_or(443);
            let resolved = tokio::time::timeout(
                self.config().connect_timeout,
                resolve_allowed(policy, host, port),
            )
            .await
            .unwrap_or_else(|_| Err(ResolveError::Lookup("no answer in time".to_owned())));
            match resolved {
                Ok(_) => {}
                Err(ResolveError::Refused(refused)) => {
                    return Err(WebhookError::invalid(
                        "url",
                        format!("is refused: its host {host} resolves to {refused}"),
                    ))
                }
                Err(ResolveError::Lookup(e)) => {
                    return Err(WebhookError::invalid(
                        "url",
                        format!("names the host {host}, which does not resolve ({e})"),
                    ))
                }
            }
        }
        Ok(url.to_string())
    }

    /// Creates an endpoint; returns it and its secret, which is never shown again. It starts
    /// after `start_after` (at most the head; the head when absent: only what happens from
    /// now on is delivered).
    pub async fn create(
        &self,
        store: &Store,
        input: EndpointInput,
        start_after: Option<Position>,
        actor: UserId,
    ) -> Result<(WebhookEndpointRecord, String), WebhookError> {
        let url = self.check_url(&input.url).await?;
        let description = check_description(input.description)?;
        let filter = check_filter(input.filter)?;
        let head = store.head().await?;
        let checkpoint = match start_after {
            None => head,
            Some(p) if p <= head => p,
            Some(_) => {
                return Err(WebhookError::invalid(
                    "startAfter",
                    format!("must be at most the log's head {head}"),
                ))
            }
        };
        let secret = signing::new_secret();
        let record = store
            .create_webhook_endpoint(
                NewWebhookEndpoint {
                    id: WebhookEndpointId::from_uuid(Uuid::now_v7()),
                    url,
                    description,
                    filter,
                    secret: secret.clone(),
                    checkpoint,
                },
                actor,
                Utc::now(),
            )
            .await?;
        self.endpoints_changed();
        Ok((record, secret))
    }

    async fn change(
        &self,
        store: &Store,
        id: WebhookEndpointId,
        expected: u64,
        change: WebhookEndpointChange,
        actor: UserId,
    ) -> Result<WebhookEndpointRecord, WebhookError> {
        let record = store
            .change_webhook_endpoint(id, expected, change, actor, Utc::now())
            .await?;
        self.endpoints_changed();
        Ok(record)
    }

    /// Changes the url, description or filter (the ones given).
    pub async fn update(
        &self,
        store: &Store,
        id: WebhookEndpointId,
        expected: u64,
        patch: EndpointPatch,
        actor: UserId,
    ) -> Result<WebhookEndpointRecord, WebhookError> {
        let EndpointPatch {
            url,
            description,
            filter,
        } = patch;
        let url = match url {
            Some(url) => Some(self.check_url(&url).await?),
            None => None,
        };
        let description = description
            .map(|d| check_description(Some(d)))
            .transpose()?;
        let filter = filter.map(check_filter).transpose()?;
        let change = WebhookEndpointChange::Updated {
            url,
            description,
            filter,
        };
        self.change(store, id, expected, change, actor).await
    }

    /// Pauses an ACTIVE endpoint.
    pub async fn pause(
        &self,
        store: &Store,
        id: WebhookEndpointId,
        expected: u64,
        reason: Option<String>,
        actor: UserId,
    ) -> Result<WebhookEndpointRecord, WebhookError> {
        let reason = check_reason(reason)?;
        let change = WebhookEndpointChange::Paused { reason };
        self.change(store, id, expected, change, actor).await
    }

    /// Resumes a PAUSED or DISABLED endpoint; its failure clock starts again.
    pub async fn resume(
        &self,
        store: &Store,
        id: WebhookEndpointId,
        expected: u64,
        actor: UserId,
    ) -> Result<WebhookEndpointRecord, WebhookError> {
        let change = WebhookEndpointChange::Resumed;
        self.change(store, id, expected, change, actor).await
    }

    /// Deletes an endpoint (its audit stays).
    pub async fn delete(
        &self,
        store: &Store,
        id: WebhookEndpointId,
        expected: u64,
        actor: UserId,
    ) -> Result<WebhookEndpointRecord, WebhookError> {
        let record = store
            .delete_webhook_endpoint(id, expected, actor, Utc::now())
            .await?;
        self.endpoints_changed();
        Ok(record)
    }

    /// Gives the endpoint a new secret, returned here and never again; the old one keeps
    /// signing (a second signature) for `overlap` ([`DEFAULT_OVERLAP`] when absent, at most
    /// [`MAX_OVERLAP`]; zero ends it at once).
    pub async fn rotate_secret(
        &self,
        store: &Store,
        id: WebhookEndpointId,
        expected: u64,
        overlap: Option<Duration>,
        actor: UserId,
    ) -> Result<(WebhookEndpointRecord, String), WebhookError> {
        let overlap = overlap.unwrap_or(DEFAULT_OVERLAP);
        if overlap > MAX_OVERLAP {
            return Err(WebhookError::invalid(
                "overlapSeconds",
                format!("must be at most {}", MAX_OVERLAP.as_secs()),
            ));
        }
        let previous_until = overlap_end(Utc::now(), overlap);
        let secret = signing::new_secret();
        let change = WebhookEndpointChange::SecretRotated {
            secret: secret.clone(),
            previous_until,
        };
        let record = self.change(store, id, expected, change, actor).await?;
        Ok((record, secret))
    }

    /// Moves the checkpoint back to `position` (at most the checkpoint): every matching event
    /// after it is delivered again, with the same `webhook-id`s.
    pub async fn rewind(
        &self,
        store: &Store,
        id: WebhookEndpointId,
        expected: u64,
        position: Position,
        actor: UserId,
    ) -> Result<WebhookEndpointRecord, WebhookError> {
        let change = WebhookEndpointChange::Rewound { position };
        self.change(store, id, expected, change, actor).await
    }

    /// Gives up the delivery the endpoint is held on, which must be the event at
    /// `position`: the endpoint moves on to the next one.
    pub async fn skip(
        &self,
        store: &Store,
        id: WebhookEndpointId,
        expected: u64,
        position: Position,
        actor: UserId,
    ) -> Result<WebhookEndpointRecord, WebhookError> {
        let endpoint = store
            .webhook_endpoint(id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let next = matching::next_match(store, &endpoint.filter, endpoint.checkpoint).await?;
        match next {
            Some((event, _)) if event.position == position => {}
            Some((event, _)) => {
                return Err(WebhookError::invalid(
                    "position",
                    format!(
                        "is not the delivery the endpoint waits on: that is position {}",
                        event.position
                    ),
                ))
            }
            None => {
                return Err(WebhookError::invalid(
                    "position",
                    "is not the delivery the endpoint waits on: it waits on none",
                ))
            }
        }
        let change = WebhookEndpointChange::Skipped {
            position,
            checkpoint: endpoint.checkpoint,
        };
        self.change(store, id, expected, change, actor).await
    }

    /// Delivers the event at `position` to the endpoint once more, now, out of band (the
    /// checkpoint does not move), and records the attempt: what the receiver answered.
    pub async fn redeliver(
        &self,
        store: &Store,
        id: WebhookEndpointId,
        position: Position,
        actor: UserId,
    ) -> Result<WebhookAttempt, WebhookError> {
        let endpoint = store
            .webhook_endpoint(id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let Some((event, article)) = matching::event_at(store, position).await? else {
            return Err(WebhookError::invalid(
                "position",
                "names no event of the log",
            ));
        };
        if !matching::matches(&endpoint.filter, &event, article.as_ref()) {
            return Err(WebhookError::invalid(
                "position",
                "names an event the endpoint's filter does not match",
            ));
        }
        let secrets = store
            .webhook_secrets(id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let webhook_id = signing::webhook_id(id, event.event_id);
        let body = payload::body(&event, article.as_ref());
        let now = Utc::now();
        let attempted = self
            .sender()
            .attempt(&endpoint.url, &secrets, &webhook_id, &body, now)
            .await;
        crate::dispatcher::count(&attempted);
        let attempt = WebhookAttempt {
            endpoint_id: id,
            position,
            event_id: event.event_id,
            attempt: 1,
            kind: AttemptKind::Redelivery,
            outcome: attempted.outcome,
            status: attempted.status,
            latency_ms: u64::try_from(attempted.latency.as_millis()).unwrap_or(u64::MAX),
            error: attempted.error.clone(),
            response_excerpt: attempted.excerpt.clone(),
            attempted_at: now,
        };
        store.record_webhook_attempt(&attempt).await?;
        store
            .record_webhook_change(
                id,
                "Redelivered",
                serde_json::json!({
                    "position": position,
                    "eventId": event.event_id,
                    "outcome": attempted.outcome.as_str(),
                }),
                actor,
                now,
            )
            .await?;
        Ok(attempt)
    }
}

/// When a secret rotated out at `now` with `overlap` stops signing.
pub fn overlap_end(now: DateTime<Utc>, overlap: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(overlap)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WebhookConfig;

    fn webhooks(allow_http: bool) -> Webhooks {
        Webhooks::new(WebhookConfig {
            allow_http,
            ..WebhookConfig::default()
        })
    }

    #[tokio::test]
    async fn urls_that_could_reach_inside_are_refused() {
        let hooks = webhooks(true);
        for (url, expect) in [
            ("http://127.0.0.1:8080/hook", "loopback"),
            ("https://10.0.0.5/hook", "private"),
            ("https://169.254.169.254/latest/meta-data", "metadata"),
            ("https://[::1]/hook", "loopback"),
            ("https://[::ffff:192.168.0.1]/hook", "private"),
            ("https://localhost/hook", "loopback"),
            ("ftp://example.org/hook", "must be https"),
            ("https://user:pw@example.org/hook", "user name"),
            ("not a url", "is not a url"),
        ] {
            match hooks.check_url(url).await {
                Err(WebhookError::Invalid { field, message }) => {
                    assert_eq!(field, "url");
                    assert!(message.contains(expect), "{url}: {message}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        let long = format!("https://example.org/{}", "a".repeat(URL_MAX_BYTES));
        assert!(hooks.check_url(&long).await.is_err());
    }

    #[tokio::test]
    async fn http_needs_the_operators_permission() {
        let strict = Webhooks::new(WebhookConfig {
            addresses: crate::AddressPolicy {
                allow: vec!["127.0.0.1/32".parse().unwrap()],
            },
            ..WebhookConfig::default()
        });
        let refused = strict
            .check_url("http://127.0.0.1:9/hook")
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("must be https"), "{refused}");
        assert_eq!(
            strict.check_url("https://127.0.0.1:9/hook").await.unwrap(),
            "https://127.0.0.1:9/hook"
        );
    }

    #[test]
    fn a_filter_names_known_types_once_and_a_valid_category() {
        let filter = check_filter(FilterInput {
            event_types: vec!["ArticlePublished".into(), " ArticlePublished".into()],
            category: Some(" News ".into()),
            article_id: None,
        })
        .unwrap();
        assert_eq!(filter.event_types, vec!["ArticlePublished".to_owned()]);
        assert_eq!(filter.category.as_deref(), Some("News"));
        let unknown = check_filter(FilterInput {
            event_types: vec!["ArticleDeleted".into()],
            ..FilterInput::default()
        })
        .unwrap_err();
        assert!(
            unknown.to_string().contains("not an event type"),
            "{unknown}"
        );
        let long = check_filter(FilterInput {
            category: Some("c".repeat(500)),
            ..FilterInput::default()
        })
        .unwrap_err();
        assert!(long.to_string().starts_with("filter.category"), "{long}");
    }

    #[test]
    fn descriptions_and_reasons_are_capped() {
        assert!(check_description(Some("d".repeat(DESCRIPTION_MAX_CHARS))).is_ok());
        assert!(check_description(Some("d".repeat(DESCRIPTION_MAX_CHARS + 1))).is_err());
        assert_eq!(check_reason(Some("  ".into())).unwrap(), None);
        assert!(check_reason(Some("r".repeat(REASON_MAX_CHARS + 1))).is_err());
    }
}
