//! The access log: one line at info per HTTP request, written when the response is ready.
//!
//! Fields: `method`, `path`, `status`, `latency_ms` (a number, fractional milliseconds),
//! `request_id`, `trace_id` (`-` when traces are not exported), and for GraphQL requests `operation_type` and `operation_name` (from the
//! [`Operation`] the handler leaves in the response's extensions). The target is
//! `galley::access`, so `GALLEY_LOG=info,galley::access=warn` turns it off alone.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::REQUEST_ID_HEADER;

/// Longest operation name logged; longer ones are cut (GraphQL names have no length limit).
const NAME_MAX: usize = 128;

/// What a GraphQL handler tells the access log about the operation it ran.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `query`, `mutation` or `subscription`.
    pub kind: &'static str,
    /// The operation name the request gave, if any.
    pub name: Option<String>,
}

/// The middleware: times the request and logs its line.
pub async fn log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(req).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let operation = response.extensions().get::<Operation>();
    let operation_type = operation.map_or("-", |o| o.kind);
    let operation_name = operation.and_then(|o| o.name.as_deref()).map_or("-", |n| {
        match n.char_indices().nth(NAME_MAX) {
            Some((cut, _)) => &n[..cut],
            None => n,
        }
    });
    tracing::info!(
        target: "galley::access",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms,
        request_id = %request_id,
        operation_type,
        operation_name,
        trace_id = crate::trace_context::trace_id_of(&response).unwrap_or("-"),
        "request"
    );
    response
}
