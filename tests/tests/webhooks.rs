//! Webhooks end to end (issue 16), on both backends: endpoints managed through GraphQL over
//! HTTP by an ADMIN, deliveries posted by the server's dispatcher to real HTTP receivers on
//! 127.0.0.1 (allowed by the test server's configuration), and every delivery checked with
//! the Standard Webhooks specification's own Rust library (`standardwebhooks`, which shares
//! no HMAC or SHA-256 code with the server). Two replicas on one PostgreSQL, one of them killed
//! mid-stream, are in crates/galley/tests/webhook_takeover.rs, which runs the real binary.
//!
//! No assertion is about time: every wait is for a condition, guarded by a timeout.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use galley::ServerConfig;
use galley_tests::receiver::{accepted, positions, Delivery, Receiver, STRANGER};
use galley_tests::{
    approved_article, on_both_backends, short_article, start_with, test_config, Backend, Client,
    Newsroom, GUARD,
};
use galley_webhooks::{AddressPolicy, WebhookConfig};
use serde_json::{json, Value};

/// The test configuration, with deliveries allowed to 127.0.0.1 over http, fast retries and a
/// fast scan.
fn hooks_config(backend: &Backend) -> ServerConfig {
    let mut config = test_config(backend);
    config.limits.webhooks = WebhookConfig {
        allow_http: true,
        addresses: AddressPolicy {
            allow: vec!["127.0.0.1/32".parse().unwrap()],
        },
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(100),
        scan_interval: Duration::from_millis(100),
        ..WebhookConfig::default()
    };
    config
}

const ENDPOINT: &str = "id url description state stateReason version checkpoint lag lastError \
     failingSince lastDeliveredAt previousSecretUntil filter { eventTypes category articleId }";

const ATTEMPT: &str =
    "position eventId webhookId attempt kind outcome status latencyMs error responseExcerpt";

/// Creates an endpoint for `types` (every type when empty); returns it and its secret.
async fn create_endpoint(admin: &Client, url: &str, types: &[&str]) -> (Value, String) {
    let data = admin
        .ok(
            &format!(
                "mutation($e: WebhookEndpointInput!) {{ createWebhookEndpoint(endpoint: $e) \
                 {{ secret endpoint {{ {ENDPOINT} }} }} }}"
            ),
            json!({ "e": { "url": url, "description": "a test receiver", "filter": { "eventTypes": types } } }),
        )
        .await;
    let created = &data["createWebhookEndpoint"];
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (created["endpoint"].clone(), secret)
}

async fn endpoint(admin: &Client, id: &str) -> Value {
    admin
        .ok(
            &format!("query($id: ID!) {{ webhookEndpoint(id: $id) {{ {ENDPOINT} }} }}"),
            json!({ "id": id }),
        )
        .await["webhookEndpoint"]
        .clone()
}

/// The endpoint's attempts, oldest first.
async fn attempts(admin: &Client, id: &str) -> Vec<Value> {
    let data = admin
        .ok(
            &format!(
                "query($id: ID!) {{ webhookEndpoint(id: $id) {{ attempts(first: 100) {{ {ATTEMPT} }} }} }}"
            ),
            json!({ "id": id }),
        )
        .await;
    let mut attempts = data["webhookEndpoint"]["attempts"]
        .as_array()
        .unwrap()
        .clone();
    attempts.reverse();
    attempts
}

/// Polls the endpoint until `done` holds (a hang guard, not a measurement).
async fn wait_endpoint(
    admin: &Client,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let current = endpoint(admin, id).await;
        if done(&current) {
            return current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoint never got {what}: {current}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the endpoint's attempts until `done` holds.
async fn wait_attempts(
    admin: &Client,
    id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let current = attempts(admin, id).await;
        if done(&current) {
            return current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoint never had {what}: {current:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The log's events (of `types`, or every one): position, type, event id, article id.
async fn log_events(client: &Client, types: &[&str]) -> Vec<Value> {
    let filter = if types.is_empty() {
        String::new()
    } else {
        format!(", filter: {{ types: {} }}", json!(types))
    };
    let data = client
        .ok(
            &format!(
                "{{ events(first: 100{filter}) {{ nodes {{ position type eventId articleId }} }} }}"
            ),
            json!({}),
        )
        .await;
    data["events"]["nodes"].as_array().unwrap().clone()
}

async fn change(admin: &Client, mutation: &str, id: &str, version: u64, args: &str) -> Value {
    admin
        .ok(
            &format!(
                "mutation($id: ID!, $v: Int!) {{ {mutation}(id: $id, expectedVersion: $v{args}) {{ {ENDPOINT} }} }}"
            ),
            json!({ "id": id, "v": version }),
        )
        .await[mutation]
        .clone()
}

async fn change_fails(
    admin: &Client,
    mutation: &str,
    id: &str,
    version: u64,
    args: &str,
    code: &str,
) -> Value {
    admin
        .fails(
            &format!(
                "mutation($id: ID!, $v: Int!) {{ {mutation}(id: $id, expectedVersion: $v{args}) {{ id }} }}"
            ),
            json!({ "id": id, "v": version }),
            code,
        )
        .await
}

fn id_of(endpoint: &Value) -> String {
    endpoint["id"].as_str().unwrap().to_owned()
}

async fn a_receiver_that_fails_first_gets_every_event_once_per_id_in_order(backend: Backend) {
    let server = start_with(hooks_config(&backend)).await;
    let staff = Newsroom::hire(&server).await;
    let receiver = Receiver::start().await;
    // The first three attempts fail (503, 429, 500); every later one succeeds.
    let mut failures = VecDeque::from([503, 429, 500]);
    receiver.answer(move |_| failures.pop_front().unwrap_or(200));
    let (created, secret) = create_endpoint(&staff.admin, &receiver.url("/hooks"), &[]).await;
    let id = id_of(&created);
    assert_eq!(created["state"], "ACTIVE");
    assert_eq!(created["version"], 1);
    assert_eq!(created["checkpoint"], 0);

    let mut articles = Vec::new();
    for i in 0..3 {
        let article = staff
            .editor
            .create(short_article(&format!("Webhook story {i}")))
            .await;
        staff
            .editor
            .mutate("submitForReview", &article, 1, "")
            .await;
        articles.push(article);
    }
    let events = log_events(&staff.viewer, &[]).await;
    assert_eq!(events.len(), 6);
    let log = receiver
        .wait_for("the six events", |log| accepted(log, "/hooks").len() >= 6)
        .await;
    let delivered = accepted(&log, "/hooks");

    // Every event once per id, in position order: the log itself.
    assert_eq!(delivered.len(), 6);
    assert_eq!(positions(&delivered), (1..=6).collect::<Vec<_>>());
    let ids: BTreeSet<String> = delivered.iter().map(|d| d.id()).collect();
    assert_eq!(ids.len(), 6, "one webhook-id per event");
    for (delivery, event) in delivered.iter().zip(&events) {
        assert_eq!(delivery.json["type"], event["type"]);
        assert_eq!(delivery.json["data"]["type"], event["type"]);
        assert_eq!(delivery.json["data"]["eventId"], event["eventId"]);
        assert_eq!(delivery.json["data"]["articleId"], event["articleId"]);
        assert_eq!(delivery.json["data"]["article"]["id"], event["articleId"]);
        assert!(delivery.json["data"]["article"]["slug"]
            .as_str()
            .unwrap()
            .starts_with("webhook-story-"));
        assert!(delivery.json["data"]["payload"].is_object());
        assert_eq!(delivery.headers["content-type"], "application/json");
    }

    // The failed attempts were the first event's, under the id its delivery kept.
    let refused: Vec<&Delivery> = log.iter().filter(|d| !d.ok()).collect();
    assert_eq!(
        refused.iter().map(|d| d.status).collect::<Vec<_>>(),
        [503, 429, 500]
    );
    assert!(refused.iter().all(|d| d.id() == delivered[0].id()));

    // Every request is signed as the specification says; another secret does not verify,
    // nor does a changed body.
    for delivery in &log {
        assert!(delivery.verifies(&secret), "{:?}", delivery.headers);
        assert!(!delivery.verifies(STRANGER));
        let mut tampered = delivery.clone();
        tampered.body = delivery.body.to_vec().repeat(2).into();
        assert!(!tampered.verifies(&secret));
    }

    // The endpoint shows where it is and what happened.
    let now = wait_endpoint(&staff.admin, &id, "the head", |e| e["checkpoint"] == 6).await;
    assert_eq!(now["lag"], 0);
    assert_eq!(now["lastError"], "HTTP 500");
    assert!(now["failingSince"].is_null(), "{now}");
    assert!(now["lastDeliveredAt"].is_string(), "{now}");
    let attempts = attempts(&staff.admin, &id).await;
    assert_eq!(attempts.len(), 9);
    let outcomes: Vec<&str> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        &outcomes[..4],
        ["RETRYING", "RETRYING", "RETRYING", "DELIVERED"]
    );
    assert!(outcomes[4..].iter().all(|o| *o == "DELIVERED"));
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts[0]["responseExcerpt"], "answered 503");
    assert_eq!(attempts[0]["error"], "HTTP 503");
    assert_eq!(
        attempts[..4]
            .iter()
            .map(|a| a["attempt"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(attempts.iter().all(|a| a["kind"] == "DISPATCH"));
    assert_eq!(attempts[3]["webhookId"], delivered[0].id().as_str());
    assert_eq!(attempts[8]["webhookId"], delivered[5].id().as_str());

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn a_receiver_that_is_down_gets_everything_after_it_comes_back(backend: Backend) {
    let server = start_with(hooks_config(&backend)).await;
    let staff = Newsroom::hire(&server).await;
    let mut receiver = Receiver::start().await;
    let (created, secret) =
        create_endpoint(&staff.admin, &receiver.url("/purge"), &["ArticlePublished"]).await;
    let id = id_of(&created);
    receiver.stop().await;

    // Three articles go live while the receiver is down.
    for i in 0..3 {
        let article =
            approved_article(&staff.editor, &staff.reviewer, &format!("Live story {i}")).await;
        staff
            .publisher
            .mutate("publishArticle", &article, 3, "")
            .await;
    }
    let published = log_events(&staff.viewer, &["ArticlePublished"]).await;
    let expected: Vec<u64> = published
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(expected.len(), 3);

    // The dispatcher cannot connect; it retries the first publication and holds the others.
    let held = wait_attempts(&staff.admin, &id, "retries of the first", |a| a.len() >= 3).await;
    for attempt in &held {
        assert_eq!(attempt["outcome"], "RETRYING", "{attempt}");
        assert_eq!(attempt["position"], expected[0], "{attempt}");
        assert!(attempt["status"].is_null());
        assert!(
            attempt["error"].as_str().unwrap().contains("connect"),
            "{attempt}"
        );
    }
    let failing = endpoint(&staff.admin, &id).await;
    assert_eq!(failing["state"], "ACTIVE");
    assert!(failing["failingSince"].is_string(), "{failing}");
    assert!(failing["checkpoint"].as_u64().unwrap() < expected[0]);

    receiver.restart().await;
    let log = receiver
        .wait_for("the three publications", |log| {
            accepted(log, "/purge").len() >= 3
        })
        .await;
    let delivered = accepted(&log, "/purge");
    assert_eq!(positions(&delivered), expected);
    assert!(delivered
        .iter()
        .all(|d| d.json["type"] == "ArticlePublished"));
    assert!(delivered
        .iter()
        .all(|d| d.json["data"]["article"]["status"] == "PUBLISHED"
            && d.json["data"]["article"]["liveRevision"] == 1));
    assert_eq!(
        delivered
            .iter()
            .map(|d| d.id())
            .collect::<BTreeSet<_>>()
            .len(),
        3
    );
    assert!(delivered.iter().all(|d| d.verifies(&secret)));

    let head = staff.viewer.head().await;
    let caught_up = wait_endpoint(&staff.admin, &id, "the head", |e| e["checkpoint"] == head).await;
    assert!(caught_up["failingSince"].is_null(), "{caught_up}");
    assert!(caught_up["lastDeliveredAt"].is_string());
    assert_eq!(caught_up["lag"], 0);

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn a_rewind_replays_and_a_redelivery_repeats_one_event(backend: Backend) {
    let server = start_with(hooks_config(&backend)).await;
    let staff = Newsroom::hire(&server).await;
    let receiver = Receiver::start().await;
    let (created, secret) = create_endpoint(&staff.admin, &receiver.url("/index"), &[]).await;
    let id = id_of(&created);
    staff.editor.create(short_article("First to index")).await;
    staff.editor.create(short_article("Second to index")).await;
    receiver
        .wait_for("both events", |log| accepted(log, "/index").len() >= 2)
        .await;
    wait_endpoint(&staff.admin, &id, "the head", |e| e["checkpoint"] == 2).await;

    // A rewind to the start replays both events, in order, under the same ids.
    let rewound = change(
        &staff.admin,
        "rewindWebhookEndpoint",
        &id,
        1,
        ", position: 0",
    )
    .await;
    assert_eq!(rewound["version"], 2);
    assert_eq!(rewound["checkpoint"], 0);
    let log = receiver
        .wait_for("the replay", |log| accepted(log, "/index").len() >= 4)
        .await;
    let delivered = accepted(&log, "/index");
    assert_eq!(positions(&delivered), [1, 2, 1, 2]);
    assert_eq!(delivered[0].id(), delivered[2].id());
    assert_eq!(delivered[1].id(), delivered[3].id());
    assert_ne!(delivered[0].id(), delivered[1].id());
    assert!(delivered.iter().all(|d| d.verifies(&secret)));
    wait_endpoint(&staff.admin, &id, "the head again", |e| {
        e["checkpoint"] == 2
    })
    .await;

    // A rewind goes back, never forward; a stale version is a conflict.
    let forward = change_fails(
        &staff.admin,
        "rewindWebhookEndpoint",
        &id,
        2,
        ", position: 5",
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(forward["extensions"]["field"], "position");
    let stale = change_fails(
        &staff.admin,
        "rewindWebhookEndpoint",
        &id,
        1,
        ", position: 0",
        "CONFLICT",
    )
    .await;
    assert_eq!(stale["extensions"]["currentVersion"], 2);

    // A redelivery posts one event once more, now, and says what the receiver answered.
    let redelivered = staff
        .admin
        .ok(
            &format!("mutation($id: ID!) {{ redeliverWebhookEvent(id: $id, position: 1) {{ {ATTEMPT} }} }}"),
            json!({ "id": id }),
        )
        .await["redeliverWebhookEvent"]
        .clone();
    assert_eq!(redelivered["outcome"], "DELIVERED");
    assert_eq!(redelivered["status"], 200);
    assert_eq!(redelivered["kind"], "REDELIVERY");
    assert_eq!(redelivered["responseExcerpt"], "answered 200");
    assert_eq!(redelivered["webhookId"], delivered[0].id().as_str());
    let log = receiver.log();
    let last = accepted(&log, "/index").last().copied().unwrap().clone();
    assert_eq!(last.id(), delivered[0].id());
    assert_eq!(last.position(), 1);
    assert!(last.verifies(&secret));
    let none = staff
        .admin
        .fails(
            "mutation($id: ID!) { redeliverWebhookEvent(id: $id, position: 99) { outcome } }",
            json!({ "id": id }),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(none["extensions"]["field"], "position");

    // Every change is recorded, by whom, and no record holds a secret.
    let changes = staff
        .admin
        .ok(
            "query($id: ID!) { webhookChanges(endpointId: $id) { type detail actor actorUser { name } } }",
            json!({ "id": id }),
        )
        .await;
    let types: Vec<&str> = changes["webhookChanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Redelivered", "Rewound", "Created"]);
    assert_eq!(changes["webhookChanges"][0]["actorUser"]["name"], "ada");
    assert!(!changes.to_string().contains("whsec_"), "{changes}");
    assert!(!changes.to_string().contains(&secret[6..]), "{changes}");

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn a_stuck_delivery_holds_the_later_ones_until_skipped_and_a_4xx_moves_on(backend: Backend) {
    let server = start_with(hooks_config(&backend)).await;
    let staff = Newsroom::hire(&server).await;
    let receiver = Receiver::start().await;
    // The first event is always refused with 500 (retried), the second with 410 (a failure
    // for good); the rest are accepted.
    receiver.answer(|d| match d.position() {
        1 => 500,
        2 => 410,
        _ => 200,
    });
    let (created, _) = create_endpoint(&staff.admin, &receiver.url("/chat"), &[]).await;
    let id = id_of(&created);
    for i in 0..3 {
        staff
            .editor
            .create(short_article(&format!("Desk note {i}")))
            .await;
    }

    // The first delivery is retried and holds the others: nothing else is attempted.
    let held = wait_attempts(&staff.admin, &id, "three retries", |a| a.len() >= 3).await;
    assert!(
        held.iter()
            .all(|a| a["position"] == 1 && a["outcome"] == "RETRYING"),
        "{held:#?}"
    );
    assert!(receiver.log().iter().all(|d| d.position() == 1));

    // Only the delivery it waits on can be skipped.
    let wrong = change_fails(
        &staff.admin,
        "skipWebhookDelivery",
        &id,
        1,
        ", position: 2",
        "VALIDATION_FAILED",
    )
    .await;
    assert!(
        wrong["message"].as_str().unwrap().contains("position 1"),
        "{wrong}"
    );
    let skipped = change(&staff.admin, "skipWebhookDelivery", &id, 1, ", position: 1").await;
    assert_eq!(skipped["version"], 2);

    // The endpoint moves on: the 410 fails for good (not retried) and the third is delivered.
    let log = receiver
        .wait_for("the third event", |log| !accepted(log, "/chat").is_empty())
        .await;
    let accepted = accepted(&log, "/chat");
    assert_eq!(positions(&accepted), [3]);
    let order: Vec<u64> = log.iter().map(Delivery::position).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    assert_eq!(log.iter().filter(|d| d.position() == 2).count(), 1);
    let done = wait_endpoint(&staff.admin, &id, "the head", |e| e["checkpoint"] == 3).await;
    assert_eq!(done["lastError"], "HTTP 410");
    let attempts = attempts(&staff.admin, &id).await;
    let failed: Vec<&Value> = attempts.iter().filter(|a| a["position"] == 2).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["outcome"], "FAILED");
    assert_eq!(failed[0]["status"], 410);
    assert_eq!(failed[0]["responseExcerpt"], "answered 410");
    let changes = staff
        .admin
        .ok(
            "query($id: ID!) { webhookChanges(endpointId: $id) { type detail } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(changes["webhookChanges"][0]["type"], "Skipped");
    assert_eq!(changes["webhookChanges"][0]["detail"]["position"], 1);

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn an_endpoint_failing_too_long_is_disabled_until_an_admin_resumes_it(backend: Backend) {
    let mut config = hooks_config(&backend);
    // Failing at all is failing too long.
    config.limits.webhooks.disable_after = Duration::ZERO;
    let server = start_with(config).await;
    let staff = Newsroom::hire(&server).await;
    let receiver = Receiver::start().await;
    let healthy = Arc::new(AtomicBool::new(false));
    let answer = healthy.clone();
    receiver.answer(move |_| {
        if answer.load(Ordering::SeqCst) {
            200
        } else {
            503
        }
    });
    let (created, _) = create_endpoint(&staff.admin, &receiver.url("/flaky"), &[]).await;
    let id = id_of(&created);
    staff
        .editor
        .create(short_article("Before the outage"))
        .await;

    let disabled = wait_endpoint(&staff.admin, &id, "DISABLED", |e| e["state"] == "DISABLED").await;
    assert_eq!(disabled["version"], 2);
    assert!(
        disabled["stateReason"]
            .as_str()
            .unwrap()
            .contains("HTTP 503"),
        "{disabled}"
    );
    assert_eq!(disabled["checkpoint"], 0);
    let changes = staff
        .admin
        .ok(
            "query($id: ID!) { webhookChanges(endpointId: $id) { type actor actorUser { name } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(changes["webhookChanges"][0]["type"], "Disabled");
    assert_eq!(
        changes["webhookChanges"][0]["actor"],
        "00000000-0000-0000-0000-000000000000"
    );
    assert!(changes["webhookChanges"][0]["actorUser"].is_null());
    assert_eq!(receiver.log().len(), 1);

    // Nothing is delivered while it is disabled; once resumed it goes on from its checkpoint.
    healthy.store(true, Ordering::SeqCst);
    staff
        .editor
        .create(short_article("During the outage"))
        .await;
    let resumed = change(&staff.admin, "resumeWebhookEndpoint", &id, 2, "").await;
    assert_eq!(resumed["state"], "ACTIVE");
    assert!(resumed["failingSince"].is_null(), "{resumed}");
    let log = receiver
        .wait_for("both events", |log| accepted(log, "/flaky").len() >= 2)
        .await;
    assert_eq!(positions(&accepted(&log, "/flaky")), [1, 2]);

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn an_endpoint_at_a_private_address_is_refused_without_the_allow_list(backend: Backend) {
    let receiver = Receiver::start().await;
    let mut strict = hooks_config(&backend);
    strict.limits.webhooks.addresses = AddressPolicy::default();

    // Without the allow-list, no address inside a network is accepted, literal or named.
    let server = start_with(strict.clone()).await;
    let staff = Newsroom::hire(&server).await;
    for url in [
        receiver.url("/hook"),
        format!("http://localhost:{}/hook", receiver.addr().port()),
        "http://10.0.0.1/hook".to_owned(),
        "http://192.168.1.10/hook".to_owned(),
        "http://172.16.5.4/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://100.64.0.1/hook".to_owned(),
        "http://[::1]:9/hook".to_owned(),
        "http://[::ffff:127.0.0.1]:9/hook".to_owned(),
        "http://[fd00:ec2::254]/hook".to_owned(),
        "http://0.0.0.0:9/hook".to_owned(),
    ] {
        let refused = staff
            .admin
            .fails(
                "mutation($e: WebhookEndpointInput!) { createWebhookEndpoint(endpoint: $e) { secret } }",
                json!({ "e": { "url": url } }),
                "VALIDATION_FAILED",
            )
            .await;
        assert_eq!(refused["extensions"]["field"], "url", "{url}");
        assert!(
            refused["message"].as_str().unwrap().contains("refused"),
            "{url}: {refused}"
        );
    }
    let none = staff
        .admin
        .ok("{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_eq!(none["webhookEndpoints"], json!([]));
    server.shutdown().await.unwrap();

    // With 127.0.0.1/32 allowed, the receiver is accepted …
    let server = start_with(hooks_config(&backend)).await;
    let admin = Client::new(&server, staff.admin.user.clone());
    let (created, _) = create_endpoint(&admin, &receiver.url("/hook"), &[]).await;
    let id = id_of(&created);
    server.shutdown().await.unwrap();

    // … and when the operator takes the allow-list away, every delivery to it is refused at
    // delivery time, on the address it would connect to: the receiver gets nothing.
    let server = start_with(strict).await;
    let admin = Client::new(&server, staff.admin.user.clone());
    let editor = Client::new(&server, staff.editor.user.clone());
    editor.create(short_article("Never sent")).await;
    let refused = wait_attempts(&admin, &id, "a refusal", |a| !a.is_empty()).await;
    assert_eq!(refused[0]["outcome"], "RETRYING");
    let error = refused[0]["error"].as_str().unwrap();
    assert!(
        error.contains("refused") && error.contains("loopback"),
        "{error}"
    );
    assert!(receiver.log().is_empty());
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn a_paused_endpoint_delivers_nothing_until_resumed(backend: Backend) {
    let server = start_with(hooks_config(&backend)).await;
    let staff = Newsroom::hire(&server).await;
    let receiver = Receiver::start().await;
    let (paused, _) = create_endpoint(&staff.admin, &receiver.url("/paused"), &[]).await;
    let (control, _) = create_endpoint(&staff.admin, &receiver.url("/control"), &[]).await;
    let (paused, control) = (id_of(&paused), id_of(&control));

    let now = change(
        &staff.admin,
        "pauseWebhookEndpoint",
        &paused,
        1,
        ", reason: \"receiver maintenance\"",
    )
    .await;
    assert_eq!(now["state"], "PAUSED");
    assert_eq!(now["stateReason"], "receiver maintenance");
    assert_eq!(now["version"], 2);
    change_fails(
        &staff.admin,
        "pauseWebhookEndpoint",
        &paused,
        2,
        "",
        "VALIDATION_FAILED",
    )
    .await;
    let stale = change_fails(
        &staff.admin,
        "pauseWebhookEndpoint",
        &paused,
        1,
        "",
        "CONFLICT",
    )
    .await;
    assert_eq!(stale["extensions"]["currentVersion"], 2);

    staff
        .editor
        .create(short_article("While paused, one"))
        .await;
    staff
        .editor
        .create(short_article("While paused, two"))
        .await;
    // The active endpoint gets both; the paused one nothing, and has tried nothing.
    receiver
        .wait_for("the control's events", |log| {
            accepted(log, "/control").len() >= 2
        })
        .await;
    wait_endpoint(&staff.admin, &control, "the head", |e| e["checkpoint"] == 2).await;
    assert!(receiver.log().iter().all(|d| d.path == "/control"));
    let waiting = endpoint(&staff.admin, &paused).await;
    assert_eq!(waiting["checkpoint"], 0);
    assert_eq!(waiting["lag"], 2);
    assert!(attempts(&staff.admin, &paused).await.is_empty());

    let resumed = change(&staff.admin, "resumeWebhookEndpoint", &paused, 2, "").await;
    assert_eq!(resumed["state"], "ACTIVE");
    assert!(resumed["stateReason"].is_null());
    let log = receiver
        .wait_for("the paused endpoint's events", |log| {
            accepted(log, "/paused").len() >= 2
        })
        .await;
    assert_eq!(positions(&accepted(&log, "/paused")), [1, 2]);

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn a_rotated_secret_signs_beside_the_new_one_for_the_overlap(backend: Backend) {
    let server = start_with(hooks_config(&backend)).await;
    let staff = Newsroom::hire(&server).await;
    let receiver = Receiver::start().await;
    let (created, first) = create_endpoint(&staff.admin, &receiver.url("/keys"), &[]).await;
    let id = id_of(&created);
    let rotate = |version: u64, overlap: u64| {
        let admin = staff.admin.clone();
        let id = id.clone();
        async move {
            admin
                .ok(
                    "mutation($id: ID!, $v: Int!, $o: Int) { rotateWebhookSecret(id: $id, expectedVersion: $v, overlapSeconds: $o) { secret endpoint { version previousSecretUntil } } }",
                    json!({ "id": id, "v": version, "o": overlap }),
                )
                .await["rotateWebhookSecret"]
                .clone()
        }
    };

    staff.editor.create(short_article("Signed once")).await;
    let log = receiver
        .wait_for("one", |log| !accepted(log, "/keys").is_empty())
        .await;
    assert!(log[0].verifies(&first));

    // During the overlap both secrets verify: two signatures are sent.
    let rotated = rotate(1, 3600).await;
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(rotated["endpoint"]["version"], 2);
    assert!(rotated["endpoint"]["previousSecretUntil"].is_string());
    staff.editor.create(short_article("Signed twice")).await;
    let log = receiver
        .wait_for("two", |log| accepted(log, "/keys").len() >= 2)
        .await;
    let signatures = log[1].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(log[1].verifies(&second));
    assert!(log[1].verifies(&first));

    // Without an overlap, the old secret stops at once.
    let third = rotate(2, 0).await["secret"].as_str().unwrap().to_owned();
    staff.editor.create(short_article("Signed anew")).await;
    let log = receiver
        .wait_for("three", |log| accepted(log, "/keys").len() >= 3)
        .await;
    assert!(log[2].verifies(&third));
    assert!(!log[2].verifies(&second));
    assert!(!log[2].verifies(&first));

    // The secret is never shown again.
    let listed = staff
        .admin
        .ok(
            &format!("{{ webhookEndpoints {{ {ENDPOINT} }} }}"),
            json!({}),
        )
        .await;
    assert!(!listed.to_string().contains("whsec_"), "{listed}");

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn only_admins_manage_endpoints(backend: Backend) {
    let server = start_with(hooks_config(&backend)).await;
    let staff = Newsroom::hire(&server).await;
    let receiver = Receiver::start().await;
    let (created, _) = create_endpoint(&staff.admin, &receiver.url("/admin"), &[]).await;
    let id = id_of(&created);
    let url = receiver.url("/other");
    let operations = [
        "{ webhookEndpoints { id } }".to_owned(),
        format!("{{ webhookEndpoint(id: \"{id}\") {{ id }} }}"),
        "{ webhookChanges { id } }".to_owned(),
        format!("mutation {{ createWebhookEndpoint(endpoint: {{ url: \"{url}\" }}) {{ secret }} }}"),
        format!("mutation {{ updateWebhookEndpoint(id: \"{id}\", expectedVersion: 1, description: \"x\") {{ id }} }}"),
        format!("mutation {{ pauseWebhookEndpoint(id: \"{id}\", expectedVersion: 1) {{ id }} }}"),
        format!("mutation {{ resumeWebhookEndpoint(id: \"{id}\", expectedVersion: 1) {{ id }} }}"),
        format!("mutation {{ deleteWebhookEndpoint(id: \"{id}\", expectedVersion: 1) {{ id }} }}"),
        format!("mutation {{ rotateWebhookSecret(id: \"{id}\", expectedVersion: 1) {{ secret }} }}"),
        format!("mutation {{ rewindWebhookEndpoint(id: \"{id}\", expectedVersion: 1, position: 0) {{ id }} }}"),
        format!("mutation {{ skipWebhookDelivery(id: \"{id}\", expectedVersion: 1, position: 1) {{ id }} }}"),
        format!("mutation {{ redeliverWebhookEvent(id: \"{id}\", position: 1) {{ outcome }} }}"),
    ];
    for client in [
        &staff.viewer,
        &staff.editor,
        &staff.reviewer,
        &staff.publisher,
    ] {
        for operation in &operations {
            client.fails(operation, json!({}), "FORBIDDEN").await;
        }
    }
    let anonymous = Client::new(&server, None);
    for operation in &operations {
        let reply = anonymous.post(operation, json!({})).await;
        assert_eq!(
            reply.code(),
            Some("UNAUTHENTICATED"),
            "{operation}: {}",
            reply.body
        );
    }
    // Nothing changed: one endpoint, at version 1, one recorded change (its creation).
    let still = endpoint(&staff.admin, &id).await;
    assert_eq!(still["version"], 1);
    assert_eq!(still["state"], "ACTIVE");
    let changes = staff
        .admin
        .ok("{ webhookChanges { type } }", json!({}))
        .await;
    assert_eq!(changes["webhookChanges"], json!([{ "type": "Created" }]));

    // The ADMIN may: an update, then a delete that leaves the record of it.
    let updated = staff
        .admin
        .ok(
            &format!("mutation {{ updateWebhookEndpoint(id: \"{id}\", expectedVersion: 1, description: \"the site's cache\", filter: {{ eventTypes: [\"ArticlePublished\", \"ArticleUnpublished\"], category: \"News\" }}) {{ {ENDPOINT} }} }}"),
            json!({}),
        )
        .await["updateWebhookEndpoint"]
        .clone();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["description"], "the site's cache");
    assert_eq!(
        updated["filter"],
        json!({ "eventTypes": ["ArticlePublished", "ArticleUnpublished"], "category": "News", "articleId": null })
    );
    let unknown = staff
        .admin
        .fails(
            &format!("mutation {{ updateWebhookEndpoint(id: \"{id}\", expectedVersion: 2, filter: {{ eventTypes: [\"ArticleDeleted\"] }}) {{ id }} }}"),
            json!({}),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(unknown["extensions"]["field"], "filter.eventTypes");
    change(&staff.admin, "deleteWebhookEndpoint", &id, 2, "").await;
    assert!(endpoint(&staff.admin, &id).await.is_null());
    let gone = change_fails(
        &staff.admin,
        "pauseWebhookEndpoint",
        &id,
        3,
        "",
        "NOT_FOUND",
    )
    .await;
    assert!(gone["message"]
        .as_str()
        .unwrap()
        .contains("webhook endpoint"));
    let changes = staff
        .admin
        .ok(
            &format!("{{ webhookChanges(endpointId: \"{id}\") {{ type }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        changes["webhookChanges"],
        json!([{ "type": "Deleted" }, { "type": "Updated" }, { "type": "Created" }])
    );

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

on_both_backends!(
    a_receiver_that_fails_first_gets_every_event_once_per_id_in_order,
    a_receiver_that_is_down_gets_everything_after_it_comes_back,
    a_rewind_replays_and_a_redelivery_repeats_one_event,
    a_stuck_delivery_holds_the_later_ones_until_skipped_and_a_4xx_moves_on,
    an_endpoint_failing_too_long_is_disabled_until_an_admin_resumes_it,
    an_endpoint_at_a_private_address_is_refused_without_the_allow_list,
    a_paused_endpoint_delivers_nothing_until_resumed,
    a_rotated_secret_signs_beside_the_new_one_for_the_overlap,
    only_admins_manage_endpoints,
);
