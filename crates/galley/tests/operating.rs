//! The release binary as an operator runs it: `galley serve` on a fresh SQLite file with the
//! metrics listener, `galley users add` beside it, the access log (one JSON line per request,
//! numeric latency), no ANSI colour codes when stderr is not a terminal, and `galley probe`
//! (the container HEALTHCHECK) against the running server and against nothing. A server that
//! cannot start fails its test with what it wrote to stderr.

use std::process::Output;

use galley_tests::{Backend, Galley, Serving};
use serde_json::{json, Value};

fn galley_bin(url: &str) -> Galley {
    Galley::new(env!("CARGO_BIN_EXE_galley"), url)
}

/// `galley serve` with the metrics listener, logging in `format` at `info`; returned once it
/// listens.
fn serve(url: &str, format: &str) -> Serving {
    galley_bin(url)
        .serve()
        .arg("--metrics-listen")
        .arg("127.0.0.1:0")
        .env("GALLEY_LOG_FORMAT", format)
        .start()
}

fn json_field(line: &str, message: &str, field: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    (v["message"] == message).then(|| v[field].as_str().map(str::to_owned))?
}

fn galley(url: &str, args: &[&str]) -> Output {
    galley_bin(url).run(args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_each_request_probes_and_serves_metrics_apart() {
    let backend = Backend::sqlite();
    let url = backend.url();
    // The README's first run: users add at once, next to the starting server.
    let users_add = galley_bin(url).spawn(&["users", "add", "ada", "--role", "admin"]);
    let mut server = serve(url, "json");
    let added = users_add.wait_with_output().unwrap();
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

    // The metrics listener is bound first.
    let metrics_addr = server
        .before_ready()
        .iter()
        .find_map(|l| {
            json_field(
                l,
                "metrics are served without a token on a separate listener",
                "addr",
            )
        })
        .unwrap_or_else(|| panic!("no metrics line before listening: {:?}", server.stderr()));
    let addr = server.addr().to_owned();

    let http = reqwest::Client::new();
    let res = http
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(&token)
        .header("x-request-id", "req-ops-1")
        .json(&json!({ "query": "query Me { me { name } }", "operationName": "Me" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let access: Value = server.wait_for(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        (v["message"] == "request" && v["request_id"] == "req-ops-1").then_some(v)
    });
    assert_eq!(access["method"], "POST", "{access}");
    assert_eq!(access["path"], "/graphql", "{access}");
    assert_eq!(access["status"], 200, "{access}");
    assert!(access["latency_ms"].is_number(), "{access}");
    assert_eq!(access["operation_type"], "query", "{access}");
    assert_eq!(access["operation_name"], "Me", "{access}");
    assert_eq!(access["level"], "INFO", "{access}");

    // The metrics listener answers without a token.
    let res = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("# HELP galley_build_info"));

    // The HEALTHCHECK: ready while the server runs.
    let probe = galley(url, &["probe", "--url", &format!("http://{addr}")]);
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    drop(server);
    // And a failure once it is gone.
    let probe = galley(
        url,
        &[
            "probe",
            "--url",
            &format!("http://{addr}"),
            "--timeout-secs",
            "2",
        ],
    );
    assert!(!probe.status.success());
    assert!(String::from_utf8_lossy(&probe.stderr).contains("probe:"));
}

#[test]
fn text_logs_written_to_a_pipe_carry_no_colour_codes() {
    let backend = Backend::sqlite();
    let server = serve(backend.url(), "text");
    let seen = server.stderr();
    assert!(seen.iter().all(|l| !l.contains('\u{1b}')), "{seen:?}");
    assert!(seen.iter().any(|l| l.contains("INFO")), "{seen:?}");
}

#[test]
fn a_server_that_cannot_start_fails_the_test_with_its_stderr() {
    let started = std::panic::catch_unwind(|| {
        galley_bin("mysql://localhost/galley").serve().start();
    });
    let panic = started.expect_err("galley serve on a MySQL URL never listens");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("galley serve ended"), "{message}");
    assert!(
        message.contains("url must start with sqlite: or postgres://"),
        "{message}"
    );
}
