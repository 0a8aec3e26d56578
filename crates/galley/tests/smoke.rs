//! A smoke test of the whole server through real HTTP and WebSocket, on SQLite and (when
//! GALLEY_TEST_POSTGRES_URL is set) PostgreSQL: the newsroom story with a live subscriber,
//! a scheduled publication, and the transport's refusals. The full suite lives in tests/.

use std::time::Duration;

use galley_domain::Role;
use galley_tests::{add_user, seed_article, start, Backend, Client, Ws};
use serde_json::{json, Value};

const ARTICLE: &str = "id version status revisionNumber liveRevision hasUnpublishedChanges slug headline tags authors { name }";

async fn mutate(client: &Client, name: &str, args: &str, vars: Value) -> Value {
    let query = format!(
        "mutation($id: ID!, $v: Int!) {{ {name}(articleId: $id, expectedVersion: $v{args}) {{ article {{ {ARTICLE} }} events {{ type version position }} }} }}"
    );
    client.ok(&query, vars).await[name].clone()
}

async fn newsroom_story(backend: Backend) {
    let server = start(&backend).await;
    let editor = add_user(&server, "edith", &[Role::Editor]).await.token;
    let reviewer = add_user(&server, "rob", &[Role::Reviewer]).await.token;
    let publisher = add_user(&server, "penny", &[Role::Publisher]).await.token;
    let viewer = add_user(&server, "vic", &[Role::Viewer]).await.token;
    let editor = Client::with_token(&server, &editor);
    let reviewer_c = Client::with_token(&server, &reviewer);
    let publisher = Client::with_token(&server, &publisher);
    let viewer_c = Client::with_token(&server, &viewer);

    // A subscriber connected before the first step.
    let mut ws = Ws::init(&server, &viewer).await;
    ws.send(json!({"id": "feed", "type": "subscribe", "payload": {
        "query": "subscription { events(after: 0) { position version type articleId actorUser { name } } }"
    }}))
    .await;

    // The editor creates and revises the seed article, then submits it.
    let created = editor
        .ok(
            &format!("mutation($c: ContentInput!) {{ createArticle(content: $c, idempotencyKey: \"seed-1\") {{ article {{ {ARTICLE} }} events {{ type }} replayed }} }}"),
            json!({"c": seed_article()}),
        )
        .await["createArticle"]
        .clone();
    assert_eq!(
        created["article"]["slug"],
        "nato-denies-serbia-an-army-presence-in-kosovo"
    );
    assert_eq!(created["article"]["tags"][0], "Aleksandar Vučić");
    assert_eq!(created["events"][0]["type"], "ArticleCreated");
    let id = created["article"]["id"].as_str().unwrap().to_owned();

    // An idempotent retry returns the original outcome.
    let retried = editor
        .ok(
            "mutation($c: ContentInput!) { createArticle(content: $c, idempotencyKey: \"seed-1\") { article { id version } replayed } }",
            json!({"c": seed_article()}),
        )
        .await;
    assert_eq!(retried["createArticle"]["article"]["id"], id.as_str());
    assert_eq!(retried["createArticle"]["replayed"], true);

    let mut content = seed_article();
    content["standfirst"] = json!("Vučić sought to put troops in Northern Kosovo.");
    let revised = editor
        .ok(
            &format!("mutation($id: ID!, $c: ContentInput!) {{ reviseDraft(articleId: $id, expectedVersion: 1, content: $c) {{ article {{ {ARTICLE} }} }} }}"),
            json!({"id": id, "c": content}),
        )
        .await;
    assert_eq!(revised["reviseDraft"]["article"]["revisionNumber"], 2);
    let submitted = mutate(&editor, "submitForReview", "", json!({"id": id, "v": 2})).await;
    assert_eq!(submitted["article"]["status"], "IN_REVIEW");

    // A stale version is a CONFLICT that names the current one.
    let conflict = editor
        .fails(
            "mutation($id: ID!) { withdrawSubmission(articleId: $id, expectedVersion: 1) { article { id } } }",
            json!({"id": id}),
            "CONFLICT",
        )
        .await;
    assert_eq!(conflict["extensions"]["currentVersion"], 3);

    // The viewer may not write: FORBIDDEN.
    viewer_c
        .fails(
            "mutation($id: ID!) { withdrawSubmission(articleId: $id, expectedVersion: 3) { article { id } } }",
            json!({"id": id}),
            "FORBIDDEN",
        )
        .await;

    // The reviewer comments, then requests changes with a reason.
    mutate(
        &reviewer_c,
        "addReviewComment",
        ", revision: 2, body: \"Source for the 3,800 figure?\"",
        json!({"id": id, "v": 3}),
    )
    .await;
    let changes = mutate(
        &reviewer_c,
        "requestChanges",
        ", reason: \"Cite KFOR's statement.\"",
        json!({"id": id, "v": 4}),
    )
    .await;
    assert_eq!(changes["article"]["status"], "CHANGES_REQUESTED");

    // The editor revises and resubmits; the reviewer approves; the publisher publishes.
    content["body"] = json!(format!(
        "{}\n\nKFOR confirmed the figure.",
        content["body"].as_str().unwrap()
    ));
    editor
        .ok(
            "mutation($id: ID!, $c: ContentInput!) { reviseDraft(articleId: $id, expectedVersion: 5, content: $c) { article { version } } }",
            json!({"id": id, "c": content}),
        )
        .await;
    mutate(&editor, "submitForReview", "", json!({"id": id, "v": 6})).await;
    let approved = mutate(
        &reviewer_c,
        "approveRevision",
        ", revision: 3",
        json!({"id": id, "v": 7}),
    )
    .await;
    assert_eq!(approved["article"]["status"], "APPROVED");
    let published = mutate(&publisher, "publishArticle", "", json!({"id": id, "v": 8})).await;
    assert_eq!(published["article"]["status"], "PUBLISHED");
    assert_eq!(published["article"]["liveRevision"], 3);

    // The viewer reads the history and the global feed.
    let read = viewer_c
        .ok(
            "query($id: ID!) { article(id: $id) { version comments { body author { name } } revisions { number } history(first: 50) { edges { node { type version } } pageInfo { hasNextPage } } } events(first: 50) { edges { cursor node { type } } } }",
            json!({"id": id}),
        )
        .await;
    let history: Vec<&str> = read["article"]["history"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "ArticleCreated",
            "DraftRevised",
            "SubmittedForReview",
            "ReviewCommentAdded",
            "ChangesRequested",
            "DraftRevised",
            "SubmittedForReview",
            "RevisionApproved",
            "ArticlePublished"
        ]
    );
    assert_eq!(read["article"]["comments"][0]["author"]["name"], "rob");
    assert_eq!(read["events"]["edges"].as_array().unwrap().len(), 9);

    // The subscriber received every event live, in order.
    for (i, expected) in history.iter().enumerate() {
        let message = ws.recv().await.expect("a next message");
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], "feed");
        let event = &message["payload"]["data"]["events"];
        assert_eq!(event["type"], *expected);
        assert_eq!(event["position"], i as u64 + 1);
    }

    // A scheduled publication goes out on its own, as the system.
    let second = editor
        .ok(
            "mutation { createArticle(content: {headline: \"Scheduled piece\", body: \"Text.\"}) { article { id } } }",
            json!({}),
        )
        .await["createArticle"]["article"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    mutate(
        &editor,
        "submitForReview",
        "",
        json!({"id": second, "v": 1}),
    )
    .await;
    mutate(
        &reviewer_c,
        "approveRevision",
        ", revision: 1",
        json!({"id": second, "v": 2}),
    )
    .await;
    let at = (chrono::Utc::now() + chrono::Duration::milliseconds(700)).to_rfc3339();
    let scheduled = publisher
        .ok(
            "mutation($id: ID!, $at: DateTime!) { publishArticle(articleId: $id, expectedVersion: 3, publishAt: $at) { article { status scheduledFor } } }",
            json!({"id": second, "at": at}),
        )
        .await;
    assert_eq!(
        scheduled["publishArticle"]["article"]["status"],
        "SCHEDULED"
    );
    let mut status = Value::Null;
    for _ in 0..100 {
        let data = viewer_c
            .ok("query($id: ID!) { article(id: $id) { status history(order: NEWEST_FIRST, first: 1) { edges { node { actor actorUser { name } } } } } }", json!({"id": second}))
            .await;
        status = data["article"]["status"].clone();
        if status == "PUBLISHED" {
            let node = &data["article"]["history"]["edges"][0]["node"];
            assert_eq!(node["actor"], "00000000-0000-0000-0000-000000000000");
            assert!(node["actorUser"].is_null());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "PUBLISHED");

    // Shutdown completes the subscription and closes the socket cleanly.
    server.shutdown().await.unwrap();
    loop {
        match ws.recv().await {
            Ok(m) => assert!(m["type"] == "next" || m["type"] == "complete", "{m}"),
            Err(code) => {
                assert_eq!(code, 1001);
                break;
            }
        }
    }
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newsroom_story_runs_end_to_end_on_sqlite() {
    newsroom_story(Backend::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newsroom_story_runs_end_to_end_on_postgres() {
    if let Some(backend) = Backend::postgres().await {
        newsroom_story(backend).await;
    }
}
