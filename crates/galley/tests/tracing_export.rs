//! Trace export as an operator turns it on: the real `galley serve` binary with the standard
//! OpenTelemetry variables pointing at an OTLP/HTTP receiver this test runs on 127.0.0.1. What
//! arrives is decoded with the OTLP protobuf types and checked: the service name, a `request`
//! span whose parent is the `traceparent` the test sent, the `graphql` span under it and the
//! `append_batch` span of the mutation's commit under that. The spans still queued at SIGTERM
//! arrive too (the exporter is flushed on shutdown). Without the variables, nothing of the
//! caller's trace context is echoed.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use galley_tests::{seed_article, Backend, Galley, Serving};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{json, Value};

/// Longest wait for a log line, a process exit or the spans.
const WAIT: Duration = Duration::from_secs(30);

/// The caller's span, as a W3C `traceparent`.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

fn galley_bin(url: &str) -> Galley {
    Galley::new(env!("CARGO_BIN_EXE_galley"), url)
}

/// `galley serve` (JSON logs at `info`) with these variables set; returned once it listens.
fn serve(url: &str, env: &[(&str, String)]) -> Serving {
    env.iter()
        .fold(galley_bin(url).serve(), |serve, (k, v)| serve.env(k, v))
        .start()
}

/// An OTLP/HTTP receiver on 127.0.0.1: every POST /v1/traces body, decoded, goes to the
/// channel. Refuses anything but `application/x-protobuf`, as a collector would.
async fn receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                if headers
                    .get("content-type")
                    .is_none_or(|v| v != "application/x-protobuf")
                {
                    return StatusCode::UNSUPPORTED_MEDIA_TYPE;
                }
                match ExportTraceServiceRequest::decode(body) {
                    Ok(request) => {
                        let _ = tx.send(request);
                        StatusCode::OK
                    }
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn string_attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

fn galley(url: &str, args: &[&str]) -> std::process::Output {
    galley_bin(url).run(args)
}

async fn exports_the_request_operation_and_batch_spans_under_the_callers_trace(url: &str) {
    let (endpoint, mut exports) = receiver().await;
    let mut server = serve(
        url,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_SERVICE_NAME", "galley-under-test".to_owned()),
        ],
    );
    let addr = server.addr().to_owned();
    let added = galley(url, &["users", "add", "ed", "--role", "editor"]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let token = String::from_utf8(added.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();

    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(&token)
        .header("traceparent", &traceparent)
        .header("x-request-id", "req-trace-1")
        .json(&json!({
            "query": "mutation Draft($c: ContentInput!) { createArticle(content: $c) { article { id } } }",
            "operationName": "Draft",
            "variables": { "c": seed_article() },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The response names the request's span in the caller's trace.
    let echoed = res.headers()["traceparent"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert!(
        body["data"]["createArticle"]["article"]["id"].is_string(),
        "{body}"
    );
    let parts: Vec<&str> = echoed.split('-').collect();
    assert_eq!(parts.len(), 4, "{echoed}");
    assert_eq!(parts[1], TRACE_ID, "{echoed}");
    assert_ne!(parts[2], PARENT_SPAN_ID, "{echoed}");
    let request_span_id = parts[2].to_owned();

    // An invalid traceparent (all-zero trace id) is ignored: a new trace starts.
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .header(
            "traceparent",
            format!("00-{}-{PARENT_SPAN_ID}-01", "0".repeat(32)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let fresh = res.headers()["traceparent"].to_str().unwrap().to_owned();
    let fresh_trace = fresh.split('-').nth(1).unwrap().to_owned();
    assert_eq!(fresh_trace.len(), 32, "{fresh}");
    assert_ne!(fresh_trace, "0".repeat(32));
    assert_ne!(fresh_trace, TRACE_ID);

    // The access log line carries the trace id.
    let access: Value = server.wait_for_json(|v| {
        (v["message"] == "request" && v["request_id"] == "req-trace-1").then(|| v.clone())
    });
    assert_eq!(access["trace_id"], TRACE_ID, "{access}");

    // Stop the server: what is still queued is flushed before it exits.
    let status = server.terminate();
    assert!(status.success(), "{status}");

    let mut spans: Vec<Span> = Vec::new();
    let mut service_names = Vec::new();
    let deadline = Instant::now() + WAIT;
    let find = |spans: &[Span], name: &str, parent: &[u8]| -> Option<Span> {
        spans
            .iter()
            .find(|s| s.name == name && s.parent_span_id == parent)
            .cloned()
    };
    let parent_id = (0..8)
        .map(|i| u8::from_str_radix(&PARENT_SPAN_ID[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<u8>>();
    let (request, graphql, batch) = loop {
        let request = find(&spans, "request", &parent_id);
        let graphql = request
            .as_ref()
            .and_then(|r| find(&spans, "graphql", &r.span_id));
        let batch = graphql
            .as_ref()
            .and_then(|g| find(&spans, "append_batch", &g.span_id));
        let root = spans.iter().any(|s| {
            s.name == "request" && hex(&s.trace_id) == fresh_trace && s.parent_span_id.is_empty()
        });
        if let (Some(r), Some(g), Some(b), true) = (request, graphql, batch, root) {
            break (r, g, b);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, exports.recv()).await {
            Ok(Some(export)) => {
                for resource_spans in export.resource_spans {
                    if let Some(resource) = &resource_spans.resource {
                        service_names.push(string_attribute(&resource.attributes, "service.name"));
                    }
                    for scope in resource_spans.scope_spans {
                        spans.extend(scope.spans);
                    }
                }
            }
            _ => panic!(
                "spans missing; got {:?}",
                spans
                    .iter()
                    .map(|s| (&s.name, hex(&s.span_id), hex(&s.parent_span_id)))
                    .collect::<Vec<_>>()
            ),
        }
    };
    assert!(!service_names.is_empty());
    assert!(
        service_names
            .iter()
            .all(|n| n.as_deref() == Some("galley-under-test")),
        "{service_names:?}"
    );
    for span in [&request, &graphql, &batch] {
        assert_eq!(hex(&span.trace_id), TRACE_ID, "{}", span.name);
    }
    assert_eq!(hex(&request.span_id), request_span_id);
    assert_eq!(
        string_attribute(&request.attributes, "method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        string_attribute(&request.attributes, "path").as_deref(),
        Some("/graphql")
    );
    assert_eq!(
        string_attribute(&graphql.attributes, "field").as_deref(),
        Some("createArticle")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver_nested_under_the_callers_traceparent() {
    let sqlite = Backend::sqlite();
    exports_the_request_operation_and_batch_spans_under_the_callers_trace(sqlite.url()).await;
    if let Some(postgres) = Backend::postgres().await {
        exports_the_request_operation_and_batch_spans_under_the_callers_trace(postgres.url()).await;
        postgres.cleanup().await;
    } else {
        eprintln!("GALLEY_TEST_POSTGRES_URL not set: the PostgreSQL half is skipped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_variables_no_trace_context_is_read_or_echoed() {
    let sqlite = Backend::sqlite();
    let mut server = serve(sqlite.url(), &[]);
    let addr = server.addr().to_owned();
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .header("x-request-id", "req-untraced")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("traceparent").is_none());
    let access: Value = server.wait_for_json(|v| {
        (v["message"] == "request" && v["request_id"] == "req-untraced").then(|| v.clone())
    });
    assert_eq!(access["trace_id"], "-", "{access}");
}

#[test]
fn an_unsupported_protocol_is_refused_with_a_clear_line_and_the_server_still_serves() {
    let sqlite = Backend::sqlite();
    let server = serve(
        sqlite.url(),
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://127.0.0.1:4317".to_owned(),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        ],
    );
    // The warning comes first, then the server listens all the same.
    let warning = server
        .before_ready()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| (v["level"] == "WARN").then(|| v["message"].as_str().map(str::to_owned))?)
        .unwrap_or_else(|| panic!("no warning before listening: {:?}", server.stderr()));
    assert!(
        warning.contains("grpc") && warning.contains("http/protobuf"),
        "{warning}"
    );
}
