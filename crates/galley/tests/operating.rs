//! The release binary as an operator runs it: `galley serve` on a fresh SQLite file with the
//! metrics listener, `galley users add` beside it, the access log (one JSON line per request,
//! numeric latency), no ANSI colour codes when stderr is not a terminal, and `galley probe`
//! (the container HEALTHCHECK) against the running server and against nothing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

/// Longest wait for a log line.
const WAIT: Duration = Duration::from_secs(30);

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(url: &str, format: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_galley"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .env("GALLEY_DATABASE_URL", url)
            .env("GALLEY_LOG_FORMAT", format)
            .env("GALLEY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("galley serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server { child, lines }
    }

    /// The next line for which `pick` gives a value, within [`WAIT`]; every line read on the
    /// way is passed to `seen`.
    fn wait_for<T>(&self, seen: &mut Vec<String>, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no such log line; seen:\n{}", seen.join("\n")));
            seen.push(line.clone());
            if let Some(v) = pick(&line) {
                return v;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_field(line: &str, message: &str, field: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    (v["message"] == message).then(|| v[field].as_str().map(str::to_owned))?
}

fn galley(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_galley"))
        .args(args)
        .env("GALLEY_DATABASE_URL", url)
        .env("GALLEY_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_each_request_probes_and_serves_metrics_apart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("galley.db").display()
    );
    let server = Server::start(&url, "json");
    // The README's first run: users add at once, next to the starting server.
    let added = galley(&url, &["users", "add", "ada", "--role", "admin"]);
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

    let mut seen = Vec::new();
    // The metrics listener is bound first.
    let metrics_addr = server.wait_for(&mut seen, |l| {
        json_field(
            l,
            "metrics are served without a token on a separate listener",
            "addr",
        )
    });
    let addr = server.wait_for(&mut seen, |l| json_field(l, "galley is listening", "addr"));

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
    let access: Value = server.wait_for(&mut seen, |l| {
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
    let probe = galley(&url, &["probe", "--url", &format!("http://{addr}")]);
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    drop(server);
    // And a failure once it is gone.
    let probe = galley(
        &url,
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
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("galley.db").display()
    );
    let server = Server::start(&url, "text");
    let mut seen = Vec::new();
    server.wait_for(&mut seen, |l| {
        l.contains("galley is listening").then_some(())
    });
    assert!(seen.iter().all(|l| !l.contains('\u{1b}')), "{seen:?}");
    assert!(seen.iter().any(|l| l.contains("INFO")), "{seen:?}");
}
