//! Prometheus metrics: the recorder (installed once per process, so several servers started
//! by tests share it) and the HTTP middleware that counts requests and their latencies.
//!
//! Names: `http_requests_total` and `http_request_duration_seconds` (by method, route and
//! status), `graphql_operations_total` and `graphql_operation_duration_seconds` (by operation
//! type, root field and outcome), `galley_commands_total` (by command and outcome),
//! `galley_events_appended_total`, `galley_feed_lag_seconds` (commit to delivery on a
//! subscription), `galley_log_head_position`, `galley_scheduler_*`.

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
            builder()
                .install_recorder()
                .unwrap_or_else(|_| builder().build_recorder().handle())
        })
        .clone()
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
