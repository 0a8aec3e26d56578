//! Webhook endpoints, for ADMIN only: create, update, pause, resume, delete, rotate the
//! secret; read each endpoint's checkpoint, lag, last error and recent attempts; redeliver one
//! event, skip the delivery an endpoint is held on, rewind it to replay. The work is done by
//! galley-webhooks; this module checks the role, shapes the answers and maps refusals onto
//! the error table.

use std::time::Duration;

use async_graphql::{Context, Enum, InputObject, Json, Object, SimpleObject, ID};
use galley_domain::{ArticleId, DomainError, Role, UserId};
use galley_storage::{
    AttemptKind, AttemptOutcome, StoreError, WebhookAttempt, WebhookChangeRecord,
    WebhookEndpointId, WebhookEndpointRecord, WebhookState,
};
use galley_webhooks::{EndpointInput, EndpointPatch, FilterInput, WebhookError, Webhooks};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::schema::args::{page_complexity, parse_id};
use crate::schema::context::ContextExt;
use crate::schema::users::{load_user, User};

/// Most attempts or changes one list returns.
const MAX_LIST: i32 = 100;

fn webhooks<'a>(ctx: &'a Context<'_>) -> &'a Webhooks {
    ctx.data_unchecked::<Webhooks>()
}

/// The calling ADMIN's id, or FORBIDDEN.
fn admin(ctx: &Context<'_>, what: &str) -> ApiResult<UserId> {
    let principal = ctx.principal()?;
    principal.require(Role::Admin, what)?;
    Ok(principal.user.id)
}

fn endpoint_id(id: &ID) -> ApiResult<WebhookEndpointId> {
    parse_id::<uuid::Uuid>("id", id).map(WebhookEndpointId::from_uuid)
}

fn list_size(first: Option<i32>) -> ApiResult<u32> {
    match first {
        None => Ok(20),
        Some(n) if (1..=MAX_LIST).contains(&n) => Ok(n as u32),
        Some(_) => Err(ApiError::validation(
            "first",
            format!("must be between 1 and {MAX_LIST}"),
        )),
    }
}

/// Every refusal of the webhooks crate or its store on the error table.
fn refused(e: WebhookError) -> ApiError {
    match e {
        WebhookError::Invalid { field, message } => ApiError::validation(field, message),
        WebhookError::Store(StoreError::Invalid { field, message }) if field == "endpoints" => {
            ApiError::new(ErrorCode::BadRequest, format!("{field} {message}"))
        }
        WebhookError::Store(StoreError::Invalid { field, message }) => {
            ApiError::validation(field, message)
        }
        WebhookError::Store(StoreError::NotFound) => {
            ApiError::new(ErrorCode::NotFound, "no such webhook endpoint")
        }
        WebhookError::Store(StoreError::Domain(DomainError::Conflict { expected, current })) => {
            ApiError::conflict(
                format!("expected version {expected} but the endpoint is at version {current}"),
                current,
            )
        }
        WebhookError::Store(other) => ApiError::from(other),
    }
}

/// Whether an endpoint is dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "WebhookState")]
pub enum GqlWebhookState {
    /// Deliveries follow the log.
    Active,
    /// Paused by an admin: nothing is delivered until it is resumed.
    Paused,
    /// Disabled after deliveries failed for longer than the operator allows: nothing is
    /// delivered until an admin resumes it.
    Disabled,
}

impl From<WebhookState> for GqlWebhookState {
    fn from(s: WebhookState) -> Self {
        match s {
            WebhookState::Active => GqlWebhookState::Active,
            WebhookState::Paused => GqlWebhookState::Paused,
            WebhookState::Disabled => GqlWebhookState::Disabled,
        }
    }
}

/// What became of a delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "WebhookAttemptOutcome")]
pub enum GqlAttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// A network error, a timeout, 408, 429 or 5xx: the delivery is tried again, and the
    /// endpoint's later deliveries wait for it.
    Retrying,
    /// Any other answer (a redirect, which is not followed, or a 4xx): the delivery failed
    /// for good and the endpoint moved on; redeliver it once the receiver is fixed.
    Failed,
}

/// How an attempt came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "WebhookAttemptKind")]
pub enum GqlAttemptKind {
    /// The dispatcher, following the log.
    Dispatch,
    /// An admin's redelivery.
    Redelivery,
}

/// Which events an endpoint is sent; every part that is set must match.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "WebhookFilter")]
pub struct GqlWebhookFilter {
    /// Only these event types; empty: every type.
    event_types: Vec<String>,
    /// Only events of articles whose current category is this one (any case).
    category: Option<String>,
    /// Only this article's events.
    article_id: Option<ID>,
}

/// Which events an endpoint is sent.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "WebhookFilterInput")]
pub struct WebhookFilterInput {
    /// Event type names (ArticlePublished, ChangesRequested, …); empty or absent: every type.
    #[graphql(default)]
    event_types: Vec<String>,
    /// Only events of articles whose current category is this one (any case).
    category: Option<String>,
    /// Only this article's events.
    article_id: Option<ID>,
}

impl WebhookFilterInput {
    fn into_input(self) -> ApiResult<FilterInput> {
        let article_id = self
            .article_id
            .as_ref()
            .map(|id| parse_id::<ArticleId>("filter.articleId", id))
            .transpose()?;
        Ok(FilterInput {
            event_types: self.event_types,
            category: self.category,
            article_id,
        })
    }
}

/// A new endpoint.
#[derive(Debug, Clone, InputObject)]
#[graphql(name = "WebhookEndpointInput")]
pub struct WebhookEndpointInput {
    /// Where deliveries are posted: https (or http where the operator allows it), at an
    /// address the operator's policy allows (not loopback, private or link-local unless
    /// allow-listed).
    url: String,
    /// What the endpoint is for, for people (at most 500 characters).
    description: Option<String>,
    /// Which events it is sent (absent: every event).
    filter: Option<WebhookFilterInput>,
}

/// A webhook endpoint: where events go, which ones, and how far it has got.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint(pub(crate) WebhookEndpointRecord);

/// A webhook endpoint: where events go, which ones, and how far it has got.
#[Object]
impl WebhookEndpoint {
    /// Its id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Where deliveries are posted.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// What it is for.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Which events it is sent.
    async fn filter(&self) -> GqlWebhookFilter {
        GqlWebhookFilter {
            event_types: self.0.filter.event_types.clone(),
            category: self.0.filter.category.clone(),
            article_id: self.0.filter.article_id.map(|a| ID(a.to_string())),
        }
    }
    /// Whether it is dispatched.
    async fn state(&self) -> GqlWebhookState {
        self.0.state.into()
    }
    /// Why it is paused or disabled.
    async fn state_reason(&self) -> Option<&str> {
        self.0.state_reason.as_deref()
    }
    /// Since when it is in its state.
    async fn state_since(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.state_since
    }
    /// The number of changes made to it; every change names the version it expects.
    async fn version(&self) -> u64 {
        self.0.version
    }
    /// The position of the last event it is done with (delivered, failed for good, skipped
    /// or not matching its filter).
    async fn checkpoint(&self) -> u64 {
        self.0.checkpoint
    }
    /// How far it is behind: the log's head minus its checkpoint.
    async fn lag(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let head = ctx.store().head().await.map_err(ApiError::from)?;
        Ok(head.saturating_sub(self.0.checkpoint))
    }
    /// Since when its deliveries have failed without a success in between.
    async fn failing_since(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.failing_since
    }
    /// The last failure, for people.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When the last failure happened.
    async fn last_error_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.last_error_at
    }
    /// When the last delivery succeeded.
    async fn last_delivered_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.last_delivered_at
    }
    /// Until when the secret replaced by the last rotation still signs deliveries (a second
    /// signature in webhook-signature).
    async fn previous_secret_until(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.previous_secret_until
    }
    /// When it was created.
    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.updated_at
    }
    /// Its newest delivery attempts, newest first (the newest 100 are kept).
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn attempts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many, 1 to 100 (20 when absent).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<GqlWebhookAttempt>> {
        admin(ctx, "WebhookEndpoint.attempts")?;
        let attempts = ctx
            .store()
            .webhook_attempts(self.0.id, list_size(first)?)
            .await
            .map_err(ApiError::from)?;
        Ok(attempts.into_iter().map(GqlWebhookAttempt).collect())
    }
    /// The recorded changes to it, newest first.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many, 1 to 100 (20 when absent).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<WebhookChange>> {
        admin(ctx, "WebhookEndpoint.changes")?;
        let changes = ctx
            .store()
            .webhook_changes(Some(self.0.id), list_size(first)?)
            .await
            .map_err(ApiError::from)?;
        Ok(changes.into_iter().map(WebhookChange).collect())
    }
}

/// One delivery attempt.
#[derive(Debug, Clone)]
pub struct GqlWebhookAttempt(WebhookAttempt);

/// One delivery attempt.
#[Object(name = "WebhookAttempt")]
impl GqlWebhookAttempt {
    /// The event's position in the log.
    async fn position(&self) -> u64 {
        self.0.position
    }
    /// The event's id.
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    /// The delivery's webhook-id header: the same on every attempt, redelivery and replay of
    /// this event to this endpoint.
    async fn webhook_id(&self) -> String {
        galley_webhooks::signing::webhook_id(self.0.endpoint_id, self.0.event_id)
    }
    /// 1, 2, 3 … within the delivery.
    async fn attempt(&self) -> u32 {
        self.0.attempt
    }
    /// Dispatch or redelivery.
    async fn kind(&self) -> GqlAttemptKind {
        match self.0.kind {
            AttemptKind::Dispatch => GqlAttemptKind::Dispatch,
            AttemptKind::Redelivery => GqlAttemptKind::Redelivery,
        }
    }
    /// What became of it.
    async fn outcome(&self) -> GqlAttemptOutcome {
        match self.0.outcome {
            AttemptOutcome::Delivered => GqlAttemptOutcome::Delivered,
            AttemptOutcome::Retrying => GqlAttemptOutcome::Retrying,
            AttemptOutcome::Failed => GqlAttemptOutcome::Failed,
        }
    }
    /// The HTTP status, when the receiver answered.
    async fn status(&self) -> Option<u16> {
        self.0.status
    }
    /// From sending the request to the end of the answer (or the failure), in milliseconds.
    async fn latency_ms(&self) -> u64 {
        self.0.latency_ms
    }
    /// Why it did not succeed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// The first kilobyte of the answer.
    async fn response_excerpt(&self) -> Option<&str> {
        self.0.response_excerpt.as_deref()
    }
    /// When it was made.
    async fn attempted_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.attempted_at
    }
}

/// One recorded change to an endpoint: who, when, what (never a secret).
#[derive(Debug, Clone)]
pub struct WebhookChange(WebhookChangeRecord);

/// One recorded change to an endpoint: who, when, what (never a secret).
#[Object]
impl WebhookChange {
    /// Its number, in the order changes were recorded.
    async fn id(&self) -> u64 {
        self.0.id
    }
    /// The endpoint (it may since have been deleted).
    async fn endpoint_id(&self) -> ID {
        ID(self.0.endpoint_id.to_string())
    }
    /// Created, Updated, Paused, Resumed, Disabled, SecretRotated, Rewound, Skipped,
    /// Redelivered or Deleted.
    #[graphql(name = "type")]
    async fn change_type(&self) -> &str {
        &self.0.change_type
    }
    /// What changed (the new url, description or filter; a position; a reason).
    async fn detail(&self) -> Json<serde_json::Value> {
        Json(self.0.detail.clone())
    }
    /// Who made it (the system id for the dispatcher).
    async fn actor(&self) -> ID {
        ID(self.0.actor.to_string())
    }
    /// The ADMIN who made it; null for the dispatcher.
    async fn actor_user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.actor).await?)
    }
    /// When.
    async fn recorded_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.recorded_at
    }
}

/// An endpoint with its signing secret, shown this once: on creation and on rotation.
#[derive(Debug, Clone, SimpleObject)]
pub struct WebhookEndpointSecret {
    /// The endpoint.
    endpoint: WebhookEndpoint,
    /// The signing secret (whsec_ + base64 of 32 random bytes). Keep it: it is never shown
    /// again. Receivers verify each delivery with it as the Standard Webhooks specification
    /// says.
    secret: String,
}

/// Webhook reads (ADMIN).
#[derive(Debug, Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Every webhook endpoint, oldest first (ADMIN).
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        admin(ctx, "webhookEndpoints")?;
        let endpoints = ctx
            .store()
            .webhook_endpoints()
            .await
            .map_err(ApiError::from)?;
        Ok(endpoints.into_iter().map(WebhookEndpoint).collect())
    }

    /// One webhook endpoint; null when there is none (ADMIN).
    async fn webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
    ) -> async_graphql::Result<Option<WebhookEndpoint>> {
        admin(ctx, "webhookEndpoint")?;
        let id = endpoint_id(&id)?;
        Ok(ctx
            .store()
            .webhook_endpoint(id)
            .await
            .map_err(ApiError::from)?
            .map(WebhookEndpoint))
    }

    /// Recorded changes to webhook endpoints, newest first, deleted ones' included (ADMIN).
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn webhook_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this endpoint's changes.")] endpoint_id: Option<ID>,
        #[graphql(desc = "How many, 1 to 100 (20 when absent).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<WebhookChange>> {
        admin(ctx, "webhookChanges")?;
        let id = endpoint_id
            .as_ref()
            .map(|id| parse_id::<uuid::Uuid>("endpointId", id).map(WebhookEndpointId::from_uuid))
            .transpose()?;
        let changes = ctx
            .store()
            .webhook_changes(id, list_size(first)?)
            .await
            .map_err(ApiError::from)?;
        Ok(changes.into_iter().map(WebhookChange).collect())
    }
}

/// Webhook changes (ADMIN). Every change but creation and redelivery names the version it
/// expects; another current version is a CONFLICT that reports currentVersion.
#[derive(Debug, Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates an endpoint and returns its signing secret, shown this once (ADMIN). It is
    /// sent the matching events after `startAfter` (the log's head when absent: from now on).
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The url, description and filter.")] endpoint: WebhookEndpointInput,
        #[graphql(
            desc = "The position the endpoint starts after: 0 replays the whole log; at most the head (the head when absent)."
        )]
        start_after: Option<u64>,
    ) -> async_graphql::Result<WebhookEndpointSecret> {
        let actor = admin(ctx, "createWebhookEndpoint")?;
        let input = EndpointInput {
            url: endpoint.url,
            description: endpoint.description,
            filter: endpoint.filter.unwrap_or_default().into_input()?,
        };
        let (record, secret) = webhooks(ctx)
            .create(ctx.store(), input, start_after, actor)
            .await
            .map_err(refused)?;
        Ok(WebhookEndpointSecret {
            endpoint: WebhookEndpoint(record),
            secret,
        })
    }

    /// Changes an endpoint's url, description or filter: the ones given (ADMIN).
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "The endpoint's version this change expects.")] expected_version: u64,
        #[graphql(desc = "A new url (checked as on creation).")] url: Option<String>,
        #[graphql(desc = "A new description.")] description: Option<String>,
        #[graphql(desc = "A new filter, replacing the old one whole.")] filter: Option<
            WebhookFilterInput,
        >,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = admin(ctx, "updateWebhookEndpoint")?;
        let id = endpoint_id(&id)?;
        let patch = EndpointPatch {
            url,
            description,
            filter: filter.map(WebhookFilterInput::into_input).transpose()?,
        };
        let record = webhooks(ctx)
            .update(ctx.store(), id, expected_version, patch, actor)
            .await
            .map_err(refused)?;
        Ok(WebhookEndpoint(record))
    }

    /// Pauses an ACTIVE endpoint: nothing is delivered until it is resumed; then it goes on
    /// from its checkpoint (ADMIN).
    async fn pause_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "The endpoint's version this change expects.")] expected_version: u64,
        #[graphql(desc = "Why, for people (at most 500 characters).")] reason: Option<String>,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = admin(ctx, "pauseWebhookEndpoint")?;
        let id = endpoint_id(&id)?;
        let record = webhooks(ctx)
            .pause(ctx.store(), id, expected_version, reason, actor)
            .await
            .map_err(refused)?;
        Ok(WebhookEndpoint(record))
    }

    /// Resumes a PAUSED or DISABLED endpoint from its checkpoint; its failure clock starts
    /// again (ADMIN).
    async fn resume_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "The endpoint's version this change expects.")] expected_version: u64,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = admin(ctx, "resumeWebhookEndpoint")?;
        let id = endpoint_id(&id)?;
        let record = webhooks(ctx)
            .resume(ctx.store(), id, expected_version, actor)
            .await
            .map_err(refused)?;
        Ok(WebhookEndpoint(record))
    }

    /// Deletes an endpoint and its attempts; its recorded changes stay. Returns it as it was
    /// (ADMIN).
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "The endpoint's version this change expects.")] expected_version: u64,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = admin(ctx, "deleteWebhookEndpoint")?;
        let id = endpoint_id(&id)?;
        let record = webhooks(ctx)
            .delete(ctx.store(), id, expected_version, actor)
            .await
            .map_err(refused)?;
        Ok(WebhookEndpoint(record))
    }

    /// Gives an endpoint a new signing secret, returned this once. The old secret keeps
    /// signing too (a second signature) for the overlap, so receivers can switch (ADMIN).
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "The endpoint's version this change expects.")] expected_version: u64,
        #[graphql(
            desc = "How long the old secret still signs, in seconds: 0 to 604800 (a day when absent)."
        )]
        overlap_seconds: Option<u64>,
    ) -> async_graphql::Result<WebhookEndpointSecret> {
        let actor = admin(ctx, "rotateWebhookSecret")?;
        let id = endpoint_id(&id)?;
        let (record, secret) = webhooks(ctx)
            .rotate_secret(
                ctx.store(),
                id,
                expected_version,
                overlap_seconds.map(Duration::from_secs),
                actor,
            )
            .await
            .map_err(refused)?;
        Ok(WebhookEndpointSecret {
            endpoint: WebhookEndpoint(record),
            secret,
        })
    }

    /// Moves an endpoint's checkpoint back to an earlier position: every matching event after
    /// it is delivered again, in order, with the same webhook-ids (ADMIN).
    async fn rewind_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "The endpoint's version this change expects.")] expected_version: u64,
        #[graphql(desc = "The new checkpoint: at most the current one (0: the whole log).")]
        position: u64,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = admin(ctx, "rewindWebhookEndpoint")?;
        let id = endpoint_id(&id)?;
        let record = webhooks(ctx)
            .rewind(ctx.store(), id, expected_version, position, actor)
            .await
            .map_err(refused)?;
        Ok(WebhookEndpoint(record))
    }

    /// Gives up the delivery an endpoint is held on (the first matching event after its
    /// checkpoint, being retried): the endpoint moves on to the next one (ADMIN).
    async fn skip_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "The endpoint's version this change expects.")] expected_version: u64,
        #[graphql(desc = "The position of the event held on (as its attempts show).")]
        position: u64,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = admin(ctx, "skipWebhookDelivery")?;
        let id = endpoint_id(&id)?;
        let record = webhooks(ctx)
            .skip(ctx.store(), id, expected_version, position, actor)
            .await
            .map_err(refused)?;
        Ok(WebhookEndpoint(record))
    }

    /// Delivers one event to an endpoint once more, now, whatever its checkpoint (which does
    /// not move), and returns the attempt: what the receiver answered (ADMIN).
    async fn redeliver_webhook_event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "The event's position; the endpoint's filter must match it.")]
        position: u64,
    ) -> async_graphql::Result<GqlWebhookAttempt> {
        let actor = admin(ctx, "redeliverWebhookEvent")?;
        let id = endpoint_id(&id)?;
        let attempt = webhooks(ctx)
            .redeliver(ctx.store(), id, position, actor)
            .await
            .map_err(refused)?;
        Ok(GqlWebhookAttempt(attempt))
    }
}
