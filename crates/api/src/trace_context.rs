//! W3C trace context on HTTP: the `request` span continues the caller's trace when the request
//! carries a `traceparent` header, and the response carries the request span's `traceparent`
//! so that a client can find its trace. Both go through the global OpenTelemetry propagator,
//! which the binary installs only when it exports traces: otherwise nothing is read or written.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::REQUEST_ID_HEADER;

/// The W3C header naming the caller's span (and, in responses, the request's span).
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Request headers as an OpenTelemetry carrier.
struct Carrier<'a>(&'a HeaderMap);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Response headers as an OpenTelemetry carrier.
struct CarrierMut<'a>(&'a mut HeaderMap);

impl Injector for CarrierMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The `request` span of one HTTP request: method, path, request id and, when traces are
/// exported, `trace_id` (so that JSON log lines inside the request name the trace). Its parent
/// is the caller's span when the request has a valid `traceparent`; an invalid one is ignored
/// (a new trace starts), as the W3C specification asks.
pub fn request_span<B>(req: &Request<B>) -> Span {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Carrier(req.headers()))
    });
    if parent.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed: then there is no trace to join.
        let _ = span.set_parent(parent);
    }
    let context = span.context();
    let trace = context.span().span_context().clone();
    if trace.is_valid() {
        span.record("trace_id", tracing::field::display(trace.trace_id()));
    }
    span
}

/// The middleware (inside the request span): adds the request span's `traceparent` to the
/// response when traces are exported.
pub async fn respond_with_traceparent(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let context = Span::current().context();
    if context.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut CarrierMut(response.headers_mut()));
        });
    }
    response
}

/// The trace id of a response's `traceparent` (`00-<trace id>-<span id>-<flags>`), for the
/// access log, which runs outside the request span.
pub fn trace_id_of(response: &Response) -> Option<&str> {
    let value = response.headers().get(TRACEPARENT_HEADER)?.to_str().ok()?;
    let mut parts = value.split('-');
    let _version = parts.next()?;
    parts.next().filter(|id| id.len() == 32)
}
