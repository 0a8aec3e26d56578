//! Prometheus metrics: the recorder (installed once per process, so several servers started
//! by tests share it) and the HTTP middleware that counts requests and their latencies.
//!
//! Names: `http_requests_total` and `http_request_duration_seconds` (by method, route and
//! status), `graphql_operations_total` and `graphql_operation_duration_seconds` (by operation
//! type, root field and outcome), `galley_commands_total` (by command and outcome),
//! `galley_events_appended_total`, `galley_feed_lag_seconds` (commit to delivery on a
//! subscription), `galley_log_head_position`, `galley_search_index_*`, `galley_scheduler_*`, `galley_webhook_*`
//! (deliveries by outcome, lag per endpoint, disabled endpoints), `galley_build_info` (value
//! 1, labelled with the version), and the process metrics of `metrics-process`
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`, …),
//! sampled at scrape time. Every metric has a `# HELP` line ([`describe`]).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus handle, installing the recorder on first use. When another
/// recorder is already installed (an embedding program's), a detached recorder is used so the
/// endpoint still answers.
pub fn prometheus_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                    .expect("the bucket list is not empty")
            };
            let handle = builder()
                .install_recorder()
                .unwrap_or_else(|_| builder().build_recorder().handle());
            describe();
            handle
        })
        .clone()
}

/// The process metrics collector, shared by every server of the process.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    })
}

/// Samples what is read at scrape time rather than counted as it happens: the process
/// (CPU, memory, file descriptors, threads) and the build.
pub fn sample_at_scrape() {
    process_collector().collect();
    metrics::gauge!("galley_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The `# HELP` text of every metric Galley records.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route (the matched route, not the raw path) and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route and status."
    );
    describe_counter!(
        "graphql_operations_total",
        "GraphQL operations executed, by type, root field (names the schema defines) and outcome."
    );
    describe_histogram!(
        "graphql_operation_duration_seconds",
        Unit::Seconds,
        "Time to execute a GraphQL operation, by type, root field and outcome."
    );
    describe_counter!(
        "galley_commands_total",
        "Domain commands run by mutations, by command and outcome (ok or the error code)."
    );
    describe_counter!(
        "galley_events_appended_total",
        "Events appended to the log by this process."
    );
    describe_counter!(
        "galley_feed_events_delivered_total",
        "Events delivered to subscriptions by this process."
    );
    describe_histogram!(
        "galley_feed_lag_seconds",
        Unit::Seconds,
        "Time from an event's commit to its delivery on a subscription."
    );
    describe_counter!(
        "galley_rate_limited_total",
        "Requests refused because their user's rate limit was exhausted."
    );
    describe_counter!(
        "galley_scheduler_published_total",
        "Scheduled articles the scheduler published."
    );
    describe_counter!(
        "galley_scheduler_blocked_total",
        "Scheduled publications the scheduler found blocked by a workflow rule."
    );
    describe_counter!(
        "galley_scheduler_errors_total",
        "Scheduler runs that failed."
    );
    describe_gauge!(
        "galley_log_head_position",
        "Position of the last committed event in the log, sampled at scrape time."
    );
    describe_gauge!(
        "galley_search_index_position",
        "Position of the last event the search index has reached, sampled at scrape time."
    );
    describe_gauge!(
        "galley_search_index_lag_events",
        "Events committed but not yet indexed for text search (the head minus the search index's checkpoint), sampled at scrape time."
    );
    describe_gauge!(
        "galley_websocket_connections",
        "Open GraphQL WebSocket connections on this server."
    );
    describe_counter!(
        "galley_webhook_deliveries_total",
        "Webhook delivery attempts by this process, by outcome: delivered (2xx), retrying (network error, timeout, 408, 429 or 5xx) or failed (any other answer)."
    );
    describe_histogram!(
        "galley_webhook_delivery_duration_seconds",
        Unit::Seconds,
        "Time of one webhook delivery attempt, by outcome."
    );
    describe_gauge!(
        "galley_webhook_lag_events",
        "Positions between the log's head and a webhook endpoint's checkpoint, by endpoint id (at most 100 endpoints exist), sampled at every dispatcher scan."
    );
    describe_counter!(
        "galley_webhook_endpoints_disabled_total",
        "Webhook endpoints this process disabled because their deliveries failed for too long."
    );
    describe_gauge!(
        "galley_build_info",
        "Always 1; the version label names the running build."
    );
}

/// Counts every HTTP request and records its latency, labelled by route (not raw path, so
/// the label set stays bounded).
pub async fn track_http(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}
