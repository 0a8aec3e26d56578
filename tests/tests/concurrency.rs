//! Concurrent clients over real HTTP: racing commands on one article, racing idempotent
//! retries, racing slugs, and a subscriber that joins while many writers write. Whatever the
//! interleaving, the API answers with the codes of its table (never an internal error), the
//! log stays contiguous, and the feed delivers every event once, in order.

use futures::future::join_all;
use galley_tests::{
    on_both_backends, short_article, start, Backend, Client, Newsroom, Ws, PAYLOAD,
};
use serde_json::{json, Value};

on_both_backends!(
    racing_commands_on_one_article_give_one_winner_and_conflicts_naming_its_version,
    racing_retries_with_one_idempotency_key_create_one_article,
    racing_creates_of_one_slug_give_one_article_and_slug_taken,
    a_subscriber_joining_during_concurrent_writes_sees_every_event_once_in_order,
);

async fn racing_commands_on_one_article_give_one_winner_and_conflicts_naming_its_version(
    backend: Backend,
) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let id = staff.editor.create(short_article("Contested")).await;
    let query = galley_tests::mutation("submitForReview", "");
    let replies = join_all((0..8).map(|_| {
        let editor = staff.editor.clone();
        let query = query.clone();
        let id = id.clone();
        async move { editor.post(&query, json!({ "id": id, "v": 1 })).await }
    }))
    .await;
    let mut won = 0;
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        match reply.code() {
            None => won += 1,
            Some("CONFLICT") => {
                assert_eq!(reply.body["errors"][0]["extensions"]["currentVersion"], 2);
            }
            other => panic!("unexpected {other:?}: {}", reply.body),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(staff.viewer.article(&id).await["version"], 2);
    assert_eq!(staff.viewer.head().await, 2);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn racing_retries_with_one_idempotency_key_create_one_article(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let query = format!(
        "mutation($c: ContentInput!) {{ createArticle(content: $c, idempotencyKey: \"retry-storm\") {{ {PAYLOAD} }} }}"
    );
    let replies = join_all((0..8).map(|_| {
        let editor = staff.editor.clone();
        let query = query.clone();
        async move {
            editor
                .post(&query, json!({ "c": short_article("Sent eight times") }))
                .await
        }
    }))
    .await;
    let mut ids = Vec::new();
    let mut originals = 0;
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            reply.body.get("errors").is_none(),
            "a retry is never an error: {}",
            reply.body
        );
        let payload = &reply.body["data"]["createArticle"];
        if payload["replayed"] == false {
            originals += 1;
        }
        assert_eq!(payload["events"][0]["position"], 1, "{payload}");
        ids.push(payload["article"]["id"].clone());
    }
    assert_eq!(originals, 1);
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(staff.viewer.head().await, 1);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn racing_creates_of_one_slug_give_one_article_and_slug_taken(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let replies = join_all((0..8).map(|i| {
        let editor = staff.editor.clone();
        async move {
            editor
                .post(
                    "mutation($c: ContentInput!) { createArticle(content: $c) { article { id slug } } }",
                    json!({ "c": { "headline": "Breaking: one slug", "body": format!("Take {i}.") } }),
                )
                .await
        }
    }))
    .await;
    let mut created = 0;
    for reply in &replies {
        match reply.code() {
            None => {
                created += 1;
                assert_eq!(
                    reply.body["data"]["createArticle"]["article"]["slug"],
                    "breaking-one-slug"
                );
            }
            Some("SLUG_TAKEN") => {}
            other => panic!("unexpected {other:?}: {}", reply.body),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(staff.viewer.head().await, 1);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn a_subscriber_joining_during_concurrent_writes_sees_every_event_once_in_order(
    backend: Backend,
) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let writers = 6;
    let per_writer = 5;
    let write = |w: usize| {
        let editor: Client = staff.editor.clone();
        async move {
            for i in 0..per_writer {
                let id = editor
                    .create(short_article(&format!("Writer {w} piece {i}")))
                    .await;
                editor.mutate("submitForReview", &id, 1, "").await;
            }
        }
    };
    // The writers start; the subscriber joins part-way, from the position it read last.
    let handles: Vec<_> = (0..writers).map(|w| tokio::spawn(write(w))).collect();
    let from = staff.viewer.head().await;
    let mut ws = Ws::init(&server, &staff.viewer.user().token).await;
    ws.subscribe(
        "feed",
        "subscription($after: Int) { events(after: $after) { position version type articleId } }",
        json!({ "after": from }),
    )
    .await;
    for handle in handles {
        handle.await.unwrap();
    }
    let head = staff.viewer.head().await;
    assert_eq!(head, (writers * per_writer * 2) as u64);

    let mut received: Vec<Value> = Vec::new();
    while received.last().and_then(|e| e["position"].as_u64()) != Some(head) {
        received.push(ws.next_data("feed").await["events"].clone());
    }
    let positions: Vec<u64> = received
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (from + 1..=head).collect::<Vec<_>>());
    // What it received is exactly what the log holds after `from`.
    let log = staff
        .viewer
        .ok(
            "query($after: String) { events(first: 100, after: $after) { nodes { position version type articleId } } }",
            json!({ "after": from.to_string() }),
        )
        .await;
    assert_eq!(log["events"]["nodes"], Value::Array(received));
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}
