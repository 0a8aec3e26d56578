//! Database outages, as issue 10 staged them: a loopback TCP proxy between the server and
//! PostgreSQL that stalls (holds every packet, closes nothing: a network partition) and then
//! resumes, and one that drops every connection. During the outage every request is answered
//! in bounded time (a mutation and an unknown token with 503, SERVICE_UNAVAILABLE and
//! Retry-After; /readyz 503 within its deadline; /healthz 200); after it writes resume within
//! seconds, and every mutation that was acknowledged is in the log. PostgreSQL only: the
//! outage is a network one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use galley_domain::Role;
use galley_tests::{add_user, short_article, start_with, test_config, Backend, Client, GUARD};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forward everything.
    Pass,
    /// Forward nothing and close nothing.
    Stall,
    /// Close every connection at once (the database is gone).
    Refuse,
}

/// The proxy's state: the mode, and an epoch that dropping every connection bumps (a
/// connection of an older epoch closes; new ones are accepted again at once).
#[derive(Debug, Clone, Copy)]
struct State {
    mode: Mode,
    epoch: u64,
}

/// A loopback TCP proxy to PostgreSQL.
struct Proxy {
    port: u16,
    state: watch::Sender<State>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = watch::Sender::new(State {
            mode: Mode::Pass,
            epoch: 0,
        });
        let states = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let epoch = states.borrow().epoch;
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, states.subscribe(), epoch));
                tokio::spawn(pump(server_read, client_write, states.subscribe(), epoch));
            }
        });
        Proxy { port, state }
    }

    fn stall(&self) {
        self.state.send_modify(|s| s.mode = Mode::Stall);
    }

    fn resume(&self) {
        self.state.send_modify(|s| s.mode = Mode::Pass);
    }

    /// Closes every open connection and every new one until [`Proxy::resume`].
    fn refuse(&self) {
        self.state.send_modify(|s| {
            s.mode = Mode::Refuse;
            s.epoch += 1;
        });
    }
}

/// Copies `from` to `to` while the mode is Pass; holds everything while it is Stall; ends
/// (closing both halves) under Refuse or when the epoch moves on.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut state: watch::Receiver<State>,
    epoch: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let now = *state.borrow_and_update();
        if now.epoch != epoch || now.mode == Mode::Refuse {
            return;
        }
        if now.mode == Mode::Stall {
            if state.changed().await.is_err() {
                return;
            }
            continue;
        }
        tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The URL with its host and port replaced by the proxy's; and the upstream host:port.
fn through_proxy(url: &str, port: u16) -> (String, String) {
    let at = url.find('@').expect("a user in the URL") + 1;
    let slash = at + url[at..].find('/').expect("a database in the URL");
    let upstream = url[at..slash].to_owned();
    (
        format!("{}127.0.0.1:{port}{}", &url[..at], &url[slash..]),
        upstream,
    )
}

/// Mutations sent one after another by a background task, and what became of them.
#[derive(Default)]
struct Writes {
    /// Acknowledged: the article ids that came back.
    acknowledged: Vec<String>,
    /// How many times each HTTP status was answered.
    statuses: BTreeMap<u16, usize>,
    /// Every error code seen.
    codes: BTreeMap<String, usize>,
}

fn spawn_writer(
    editor: Client,
    writes: Arc<Mutex<Writes>>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0;
        while !*stop.borrow() {
            n += 1;
            let reply = editor
                .post(
                    "mutation($c: ContentInput!, $k: String) { createArticle(content: $c, idempotencyKey: $k) { article { id } } }",
                    json!({ "c": short_article(&format!("Dispatch {n}")), "k": format!("dispatch-{n}") }),
                )
                .await;
            {
                let mut writes = writes.lock().unwrap();
                *writes.statuses.entry(reply.status).or_default() += 1;
                if let Some(code) = reply.code() {
                    *writes.codes.entry(code.to_owned()).or_default() += 1;
                }
                if let Some(id) = reply.body["data"]["createArticle"]["article"]["id"].as_str() {
                    assert_eq!(reply.status, 200);
                    writes.acknowledged.push(id.to_owned());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Polls until `check` holds (a hang guard, not a measurement).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + GUARD;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status_of(url: String) -> u16 {
    tokio::time::timeout(GUARD, reqwest::get(url))
        .await
        .expect("an answer in bounded time")
        .expect("an answer")
        .status()
        .as_u16()
}

/// Stages an outage (a stall, or with `dropping` every connection closed and refused) while
/// an editor writes, ends it, and checks every answer in between.
async fn survive(backend: Backend, dropping: bool) {
    let proxy = Proxy::start(through_proxy(backend.url(), 0).1).await;
    let (url, _) = through_proxy(backend.url(), proxy.port);
    let mut config = test_config(&backend);
    config.database_url = url;
    config.database_statement_timeout = Duration::from_secs(1);
    config.database_acquire_timeout = Duration::from_secs(1);
    config.limits.ready_timeout = Duration::from_millis(500);
    config.scheduler_interval = None;
    let server = start_with(config).await;
    let editor = Client::new(
        &server,
        Some(add_user(&server, "edith", &[Role::Editor]).await),
    );
    let newcomer = add_user(&server, "nina", &[Role::Viewer]).await;
    let base = server.http_url();

    let writes = Arc::new(Mutex::new(Writes::default()));
    let (stop, stopped) = watch::channel(false);
    let writer = spawn_writer(editor.clone(), writes.clone(), stopped);
    eventually("three writes before the outage", || async {
        writes.lock().unwrap().acknowledged.len() >= 3
    })
    .await;

    if dropping {
        proxy.refuse();
    } else {
        proxy.stall();
    }
    // During the outage: readiness says no, liveness yes, a write is refused the one way.
    eventually("/readyz answers 503", || {
        let url = format!("{base}/readyz");
        async move { status_of(url).await == 503 }
    })
    .await;
    assert_eq!(status_of(format!("{base}/healthz")).await, 200);
    let refused = editor
        .post(
            "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }",
            json!({ "c": short_article("During the outage") }),
        )
        .await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(
        refused.code(),
        Some("SERVICE_UNAVAILABLE"),
        "{}",
        refused.body
    );
    assert_eq!(refused.headers["retry-after"], "1");
    // A token the server has not seen yet needs the database: 503 too, not 500 or 401.
    let first_use = Client::new(&server, Some(newcomer.clone()))
        .post("{ head }", json!({}))
        .await;
    assert_eq!(first_use.status, 503, "{}", first_use.body);
    assert_eq!(first_use.code(), Some("SERVICE_UNAVAILABLE"));
    assert!(first_use.headers.contains_key("retry-after"));
    eventually("the writer is refused too", || async {
        writes.lock().unwrap().statuses.contains_key(&503)
    })
    .await;

    proxy.resume();
    let before = writes.lock().unwrap().acknowledged.len();
    eventually("writes resume", || async {
        writes.lock().unwrap().acknowledged.len() >= before + 3
    })
    .await;
    eventually("/readyz answers 200 again", || {
        let url = format!("{base}/readyz");
        async move { status_of(url).await == 200 }
    })
    .await;
    let _ = stop.send(true);
    writer.await.unwrap();

    let writes = std::mem::take(&mut *writes.lock().unwrap());
    // Nothing but success and 503 was ever answered, each refusal with its code.
    assert!(
        writes.statuses.keys().all(|s| [200, 503].contains(s)),
        "{:?}",
        writes.statuses
    );
    assert!(
        writes.codes.keys().all(|c| c == "SERVICE_UNAVAILABLE"),
        "{:?}",
        writes.codes
    );
    // Every acknowledged write is in the log.
    let viewer = Client::new(&server, Some(newcomer));
    for id in &writes.acknowledged {
        let article = viewer.article(id).await;
        assert_eq!(article["id"], id.as_str(), "acknowledged {id} is lost");
    }
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_is_answered_in_bounded_time_and_loses_nothing_acknowledged() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    survive(backend, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_database_connections_are_answered_503_and_writes_resume() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    survive(backend, true).await;
}
