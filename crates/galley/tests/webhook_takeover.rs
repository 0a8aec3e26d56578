//! Two `galley serve` replicas on one PostgreSQL, as the compose file runs them: exactly one
//! dispatches a webhook endpoint (it holds the endpoint's advisory lock), and when it is killed
//! (SIGKILL, mid-stream: held on a delivery its receiver keeps refusing) the other takes the
//! endpoint over from its checkpoint, so the receiver gets every event once, in order, nothing
//! lost. PostgreSQL only: on SQLite the one process dispatches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use galley_tests::receiver::{accepted, positions, Receiver};
use galley_tests::{short_article, Backend, Client, Galley, Serving, User};
use serde_json::{json, Value};

/// The position the receiver refuses (503) until the dispatching replica is dead.
const HELD: u64 = 12;
/// Events written before the kill.
const BEFORE: u64 = 30;
/// Events written after it.
const AFTER: u64 = 10;

fn replica(galley: &Galley) -> Serving {
    galley
        .serve()
        .env("GALLEY_WEBHOOK_ALLOW_HTTP", "true")
        .env("GALLEY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
        .env("GALLEY_WEBHOOK_RETRY_BASE_MS", "10")
        .env("GALLEY_WEBHOOK_RETRY_CAP_MS", "100")
        .env("GALLEY_WEBHOOK_SCAN_INTERVAL_MS", "100")
        .env("GALLEY_RATE_LIMIT_PER_SECOND", "0")
        .env("GALLEY_NO_SCHEDULER", "true")
        .start()
}

/// Waits (in a blocking section, the wait being a blocking read of the child's stderr) until
/// the replica logs that it dispatches an endpoint.
fn wait_dispatching(replica: &mut Serving) {
    tokio::task::block_in_place(|| {
        replica
            .wait_for_json(|line| (line["message"] == "dispatching webhook endpoint").then_some(()))
    });
}

fn add_user(galley: &Galley, name: &str, role: &str) -> String {
    let added = galley.run(&["users", "add", name, "--role", role]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    String::from_utf8(added.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

fn client(replica: &Serving, name: &str, token: &str) -> Client {
    Client {
        http: reqwest::Client::new(),
        url: format!("{}/graphql", replica.http_url()),
        user: Some(User {
            id: String::new(),
            name: name.to_owned(),
            token: token.to_owned(),
        }),
    }
}

async fn endpoint(admin: &Client, id: &str) -> Value {
    admin
        .ok(
            "query($id: ID!) { webhookEndpoint(id: $id) { checkpoint lag state attempts(first: 100) { position outcome } } }",
            json!({ "id": id }),
        )
        .await["webhookEndpoint"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_dispatching_replica_loses_nothing_and_the_other_goes_on_from_the_checkpoint() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let galley = Galley::new(env!("CARGO_BIN_EXE_galley"), backend.url());
    let mut a = replica(&galley);
    let admin_token = add_user(&galley, "ada", "admin");
    let editor_token = add_user(&galley, "edith", "editor");

    let receiver = Receiver::start().await;
    let released = Arc::new(AtomicBool::new(false));
    let gate = released.clone();
    receiver.answer(move |d| {
        if d.position() == HELD && !gate.load(Ordering::SeqCst) {
            503
        } else {
            200
        }
    });

    // The endpoint is created through A, the only replica yet, which takes it.
    let admin_a = client(&a, "ada", &admin_token);
    let created = admin_a
        .ok(
            "mutation($e: WebhookEndpointInput!) { createWebhookEndpoint(endpoint: $e) { secret endpoint { id } } }",
            json!({ "e": { "url": receiver.url("/replicas") } }),
        )
        .await["createWebhookEndpoint"]
        .clone();
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    wait_dispatching(&mut a);

    // B starts beside it; the events are written through B.
    let mut b = replica(&galley);
    let editor_b = client(&b, "edith", &editor_token);
    let admin_b = client(&b, "ada", &admin_token);
    for i in 0..BEFORE {
        editor_b
            .create(short_article(&format!("Replica story {i}")))
            .await;
    }

    // A delivers up to the held event and retries it; the later ones wait.
    receiver
        .wait_for("retries of the held event", |log| {
            log.iter().filter(|d| d.position() == HELD).count() >= 2
        })
        .await;
    assert_eq!(
        positions(&accepted(&receiver.log(), "/replicas")),
        (1..HELD).collect::<Vec<_>>()
    );

    // A dies mid-stream; the receiver recovers. B takes the endpoint over from A's checkpoint.
    drop(a);
    released.store(true, Ordering::SeqCst);
    wait_dispatching(&mut b);
    for i in 0..AFTER {
        editor_b
            .create(short_article(&format!("After the kill {i}")))
            .await;
    }
    let total = BEFORE + AFTER;
    let log = receiver
        .wait_for("every event", |log| {
            accepted(log, "/replicas").len() as u64 >= total
        })
        .await;

    // Every event once, in position order, each verified with the endpoint's secret.
    let delivered = accepted(&log, "/replicas");
    assert_eq!(positions(&delivered), (1..=total).collect::<Vec<_>>());
    assert!(delivered.iter().all(|d| d.verifies(&secret)));
    let order: Vec<u64> = log.iter().map(|d| d.position()).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");

    // B's view: caught up, and the held event's attempts recorded, the refused ones by A and
    // the delivered one by B.
    let deadline = tokio::time::Instant::now() + galley_tests::GUARD;
    let now = loop {
        let now = endpoint(&admin_b, &id).await;
        if now["checkpoint"] == total {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(now["lag"], 0);
    assert_eq!(now["state"], "ACTIVE");
    let held: Vec<&Value> = now["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["position"] == HELD)
        .collect();
    assert!(held.iter().any(|a| a["outcome"] == "RETRYING"), "{held:?}");
    assert_eq!(
        held.iter().filter(|a| a["outcome"] == "DELIVERED").count(),
        1,
        "{held:?}"
    );

    drop(b);
    backend.cleanup().await;
}
