//! Galley's API: the GraphQL schema and the axum router that serves it over HTTP and WebSocket.
//!
//! This is the only crate that knows GraphQL or HTTP. A request flows through the layers of
//! [`router`] (request id, tracing span, metrics, timeout, body limit), is authenticated by its
//! bearer token, rate-limited per user, checked against the document limits, and executed
//! against [`schema::GalleySchema`], whose mutations turn into domain commands run by the
//! store. The newsroom console ([`console`]) is served by the same router and acts only through
//! that API, with a session cookie and its CSRF token ([`session`]) in place of a bearer token.
//! Invariants: no data is readable without a token or session (only /healthz, /readyz, the
//! sign-in page and the console's assets are public, and /metrics when configured public, or on
//! the separate metrics listener of [`metrics_router`]; /graphiql, when enabled, is a static page
//! that reads nothing); every error leaves with a code from
//! [`error::ErrorCode`], and internal causes are logged, never sent; a mutation never runs from
//! a GET or from a POST that is not JSON.

pub mod access_log;
pub mod auth;
pub mod console;
mod cors;
mod documents;
pub use documents::DOCUMENTS_KEPT;
pub mod error;
mod http;
mod ide;
pub mod metrics;
pub mod scheduler;
pub mod schema;
pub mod session;
pub mod signin_throttle;
pub mod trace_context;
mod ws;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use galley_storage::Store;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ErrorCode};
pub use schema::{build_schema, sdl, GalleySchema};

/// Where the GraphiQL IDE page is served when enabled.
pub const GRAPHIQL_PATH: &str = "/graphiql";

/// The header that carries the request id in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Limits that protect the service from expensive or abusive requests.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest request body, in bytes (413 above it).
    pub body_limit_bytes: usize,
    /// Deepest selection nesting.
    pub max_depth: usize,
    /// Highest complexity; connection fields count `first` times their selection.
    pub max_complexity: usize,
    /// Most aliases in one document.
    pub max_aliases: usize,
    /// Most directives on one field.
    pub max_directives: usize,
    /// Parsed documents kept by their text (see `documents.rs`); 0 parses every request.
    pub documents_kept: usize,
    /// Page size when `first` is absent.
    pub default_page_size: u32,
    /// Largest `first` accepted.
    pub max_page_size: u32,
    /// Longest an HTTP request may take (408 after it).
    pub request_timeout: Duration,
    /// Requests per second per user, refilled continuously; 0 disables the limit.
    pub rate_limit_per_second: u32,
    /// Requests a user may make at once before the refill rate applies.
    pub rate_limit_burst: u32,
    /// How long a WebSocket may wait before sending connection_init (closed with 4408).
    pub ws_init_timeout: Duration,
    /// Whether /metrics answers without a token (for a scraper on a private network). Off by
    /// default: only /healthz and /readyz are public.
    pub public_metrics: bool,
    /// Most WebSocket connections open at once, those still waiting for connection_init
    /// included; an upgrade over it is answered 503 with Retry-After.
    pub max_websockets: usize,
    /// Most operations running on one WebSocket connection; a `subscribe` over it gets an
    /// `error` message (BAD_REQUEST) and the connection stays open.
    pub max_subscriptions_per_connection: usize,
    /// Failed authentications one client address may make at once before it is answered 429
    /// (RATE_LIMITED, Retry-After); 0 turns the throttle off.
    pub auth_failure_burst: u32,
    /// Failed authentications per minute an address earns back.
    pub auth_failures_per_minute: u32,
    /// Most client addresses whose failures are remembered; addresses beyond it share one
    /// budget.
    pub auth_failure_max_addresses: usize,
    /// How long /readyz waits for the database before answering 503.
    pub ready_timeout: Duration,
    /// How long a console session lasts after sign-in.
    pub session_ttl: Duration,
    /// Whether the session cookie is marked `Secure` (set it when served over HTTPS).
    pub secure_cookies: bool,
    /// Throttling of failed console sign-ins.
    pub sign_in: signin_throttle::SignInLimits,
    /// Whether the schema answers introspection (`__schema`, `__type`). On by default.
    pub introspection: bool,
    /// Whether the GraphiQL IDE page is served at [`GRAPHIQL_PATH`]. Off by default here;
    /// `galley serve` turns it on for SQLite unless told otherwise.
    pub graphiql: bool,
    /// Origins (`https://newsroom.example`) whose browser pages may call the API across
    /// origins (CORS). Empty by default: no CORS headers at all.
    pub cors_allowed_origins: Vec<String>,
    /// Webhook delivery: which urls and addresses endpoints may have, timeouts, retries,
    /// when a failing endpoint is disabled, and whether this process dispatches.
    pub webhooks: galley_webhooks::WebhookConfig,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            body_limit_bytes: 1024 * 1024,
            max_depth: 12,
            max_complexity: 10_000,
            max_aliases: 30,
            max_directives: 10,
            documents_kept: documents::DOCUMENTS_KEPT,
            default_page_size: 20,
            max_page_size: 100,
            request_timeout: Duration::from_secs(30),
            rate_limit_per_second: 50,
            rate_limit_burst: 200,
            ws_init_timeout: Duration::from_secs(10),
            public_metrics: false,
            max_websockets: 1024,
            max_subscriptions_per_connection: 100,
            auth_failure_burst: 30,
            auth_failures_per_minute: 60,
            auth_failure_max_addresses: 10_000,
            ready_timeout: Duration::from_secs(2),
            session_ttl: Duration::from_secs(12 * 60 * 60),
            secure_cookies: false,
            sign_in: signin_throttle::SignInLimits::default(),
            introspection: true,
            graphiql: false,
            cors_allowed_origins: Vec::new(),
            webhooks: galley_webhooks::WebhookConfig::default(),
        }
    }
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    schema: GalleySchema,
    /// The same schema with a higher depth limit, for introspection-only documents.
    introspection_schema: GalleySchema,
    /// The same schema validating only what the text alone cannot settle, for queries whose
    /// text has passed full validation (see `http::run`).
    validated_schema: GalleySchema,
    /// The schema's input object types (see `schema::input_object_names`).
    input_objects: Option<std::collections::HashSet<String>>,
    limits: ApiLimits,
    limiter: auth::RateLimiter,
    /// Failed authentications per client address.
    failures: auth::FailureThrottle,
    /// One permit per open WebSocket connection, up to `max_websockets`.
    ws_slots: Arc<tokio::sync::Semaphore>,
    /// Failed console sign-ins, by name and by address.
    sign_in_throttle: signin_throttle::SignInThrottle,
    /// Slots for password hashing (see `console::HASHING_AT_ONCE`).
    hashing: Arc<tokio::sync::Semaphore>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Flips to `true` when the server shuts down, so WebSocket connections (which outlive
    /// the HTTP server's own graceful shutdown) can complete their subscriptions and close.
    shutdown: watch::Receiver<bool>,
    /// One clone per open WebSocket connection; the count tells shutdown when they are gone.
    ws_connections: Arc<()>,
    /// Every name the schema defines (types, fields, arguments): the only values a metric
    /// label taken from a client's document may have.
    schema_names: std::collections::HashSet<String>,
    /// Parsed documents kept by their text (see `documents.rs`).
    documents: documents::Documents,
    /// The webhooks the schema manages and the server's dispatcher delivers.
    webhooks: galley_webhooks::Webhooks,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Resolves once `shutdown` holds `true` (or its sender is gone). The guard `wait_for` returns
/// is dropped here, so callers' futures stay `Send`.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

impl AppState {
    /// The state of one server.
    pub fn new(store: Store, limits: ApiLimits, shutdown: watch::Receiver<bool>) -> AppState {
        let webhooks = galley_webhooks::Webhooks::new(limits.webhooks.clone());
        let schema::Schemas {
            schema,
            introspection: introspection_schema,
            validated: validated_schema,
        } = schema::build_schemas(store.clone(), limits.clone(), webhooks.clone());
        AppState {
            inner: Arc::new(Inner {
                introspection_schema,
                validated_schema,
                input_objects: schema::input_object_names(&schema),
                schema_names: schema.names().into_iter().collect(),
                documents: documents::Documents::new(limits.documents_kept),
                schema,
                limiter: auth::RateLimiter::new(
                    limits.rate_limit_per_second,
                    limits.rate_limit_burst,
                ),
                failures: auth::FailureThrottle::new(
                    limits.auth_failure_burst,
                    limits.auth_failures_per_minute,
                    limits.auth_failure_max_addresses,
                ),
                ws_slots: Arc::new(tokio::sync::Semaphore::new(limits.max_websockets.max(1))),
                sign_in_throttle: signin_throttle::SignInThrottle::new(limits.sign_in),
                hashing: Arc::new(tokio::sync::Semaphore::new(console::HASHING_AT_ONCE)),
                metrics: metrics::prometheus_handle(),
                store,
                limits,
                shutdown,
                ws_connections: Arc::new(()),
                webhooks,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The webhooks (for starting the dispatcher beside the server).
    pub fn webhooks(&self) -> &galley_webhooks::Webhooks {
        &self.inner.webhooks
    }

    /// The schema.
    pub fn schema(&self) -> &GalleySchema {
        &self.inner.schema
    }

    /// The schema that runs a document selecting only introspection fields.
    pub fn introspection_schema(&self) -> &GalleySchema {
        &self.inner.introspection_schema
    }

    /// The schema that runs a query whose text has passed full validation before.
    pub fn validated_schema(&self) -> &GalleySchema {
        &self.inner.validated_schema
    }

    /// Whether `name` is one of the schema's input object types (every name is, when they
    /// could not be listed).
    pub fn is_input_object(&self, name: &str) -> bool {
        self.inner
            .input_objects
            .as_ref()
            .is_none_or(|names| names.contains(name))
    }

    /// The limits.
    pub fn limits(&self) -> &ApiLimits {
        &self.inner.limits
    }

    /// The parsed documents kept by their text.
    pub(crate) fn documents(&self) -> &documents::Documents {
        &self.inner.documents
    }

    /// The `field` label of an operation's metrics: its root field when the schema defines
    /// that name, `-` otherwise, so that the names in a client's (not yet validated) document
    /// cannot grow /metrics without bound.
    pub fn field_label(&self, root_field: &str) -> String {
        if self.inner.schema_names.contains(root_field) {
            root_field.to_owned()
        } else {
            "-".to_owned()
        }
    }

    /// How many WebSocket connections are open.
    pub fn open_websockets(&self) -> usize {
        Arc::strong_count(&self.inner.ws_connections) - 1
    }
}

/// The address of the client a request came from. The server's connection loop puts it in
/// every request's extensions; a router used without it (in-process tests) sees the
/// unspecified address. Forwarded-for headers are not trusted: behind a proxy every client
/// shares the proxy's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or(ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// Makes a UUIDv7 request id when the client sent none.
#[derive(Clone, Copy, Debug, Default)]
struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        uuid::Uuid::now_v7()
            .to_string()
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

/// Longest client-supplied request id kept; a longer one is replaced by a fresh UUIDv7.
const REQUEST_ID_MAX: usize = 128;

/// Drops a client's x-request-id that is too long or not plain visible ASCII, so a fresh one
/// is made: the id is logged and stored in every event's envelope.
async fn drop_unusable_request_id(
    mut req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let unusable = req.headers().get(REQUEST_ID_HEADER).is_some_and(|v| {
        v.len() > REQUEST_ID_MAX || v.is_empty() || !v.as_bytes().iter().all(u8::is_ascii_graphic)
    });
    if unusable {
        req.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(req).await
}

/// The HTTP router: /graphql, /graphql/ws, /healthz, /readyz, /metrics and the console (`/`,
/// `/console…`). Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that
/// failed sign-ins are throttled per client address too.
pub fn router(state: AppState) -> Router {
    let limits = state.limits().clone();
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    let mut routes = Router::new();
    if limits.graphiql {
        routes = routes.route(GRAPHIQL_PATH, get(ide::graphiql));
    }
    let app = routes
        .route("/graphql", get(http::graphql_get).post(http::graphql_post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_endpoint))
        .merge(console::routes())
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(console::security_headers))
                .layer(axum::middleware::from_fn(drop_unusable_request_id))
                .layer(SetRequestIdLayer::new(header.clone(), MakeRequestUuidV7))
                .layer(axum::middleware::from_fn(access_log::log))
                .layer(TraceLayer::new_for_http().make_span_with(trace_context::request_span))
                .layer(axum::middleware::from_fn(
                    trace_context::respond_with_traceparent,
                ))
                .layer(PropagateRequestIdLayer::new(header))
                .layer(axum::middleware::from_fn(metrics::track_http))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                ))
                .layer(DefaultBodyLimit::max(limits.body_limit_bytes)),
        );
    cors::layer(app, &limits.cors_allowed_origins)
}

/// The router of the separate metrics listener (`galley serve --metrics-listen`): `/metrics`
/// without a token, for a scraper that reaches this address only (a private port, not the
/// one the Service or load balancer exposes). Nothing else is served there.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { render_metrics(&state).await }),
        )
        .with_state(state)
}

/// Liveness: the process answers. No dependency is checked.
async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// Readiness: the database answers, within `ready_timeout`, and every migration is applied.
/// A load balancer must be able to route away from a replica whose database is partitioned,
/// so this never waits longer than its own deadline.
async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    let deadline = state.limits().ready_timeout;
    let why = match tokio::time::timeout(deadline, state.store().ready()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "the database did not answer within {} ms",
            deadline.as_millis()
        ),
    };
    tracing::warn!(error = %why, "not ready");
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Prometheus metrics, with the log head sampled at scrape time. Needs a valid token (any
/// role) unless `public_metrics` is set.
async fn metrics_endpoint(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if !state.limits().public_metrics {
        let authorization = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Err(rejection) = http::authenticate(&state, client, authorization).await {
            return rejection.into_response(http::MediaType::Json, None);
        }
    }
    render_metrics(&state).await
}

/// The Prometheus text of this process, with what is sampled at scrape time brought up to
/// date. Served by /metrics and by the separate metrics listener ([`metrics_router`]).
async fn render_metrics(state: &AppState) -> axum::response::Response {
    metrics::sample_at_scrape();
    // The head and the search checkpoint, read in one snapshot.
    if let Ok(index) = state.store().search_index().await {
        ::metrics::gauge!("galley_log_head_position").set(index.head as f64);
        ::metrics::gauge!("galley_search_index_position").set(index.checkpoint as f64);
        ::metrics::gauge!("galley_search_index_lag_events").set(index.lag() as f64);
    }
    ::metrics::gauge!("galley_websocket_connections").set(state.open_websockets() as f64);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.inner.metrics.render(),
    )
        .into_response()
}
