//! The scheduler publishes due articles once, and leaves one it cannot publish visibly
//! overdue with the reason until the obstacle is gone.

use std::time::Duration;

use galley_domain::Role;
use galley_tests::{add_user, start, test_config, Backend, Client, Ws};
use serde_json::{json, Value};

async fn approved_article(editor: &Client, reviewer: &Client, headline: &str) -> String {
    let id = editor
        .ok(
            "mutation($h: String!) { createArticle(content: {headline: $h, body: \"Text.\"}) { article { id } } }",
            json!({"h": headline}),
        )
        .await["createArticle"]["article"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    editor
        .ok(
            "mutation($id: ID!) { submitForReview(articleId: $id, expectedVersion: 1) { article { id } } }",
            json!({"id": id}),
        )
        .await;
    reviewer
        .ok(
            "mutation($id: ID!) { approveRevision(articleId: $id, expectedVersion: 2, revision: 1) { article { id } } }",
            json!({"id": id}),
        )
        .await;
    id
}

async fn article(client: &Client, id: &str) -> Value {
    client
        .ok(
            "query($id: ID!) { article(id: $id) { version status scheduledFor scheduleBlockedReason liveRevision } }",
            json!({"id": id}),
        )
        .await["article"]
        .clone()
}

async fn wait_for(client: &Client, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let a = article(client, id).await;
        if done(&a) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "article {id} never reached the expected state: {}",
        article(client, id).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embargoed_due_article_stays_overdue_with_the_reason_until_the_embargo_is_lifted() {
    let backend = Backend::sqlite();
    let server = start(&backend).await;
    let editor = Client::new(
        &server,
        Some(add_user(&server, "ed", &[Role::Editor]).await),
    );
    let reviewer = Client::new(
        &server,
        Some(add_user(&server, "rev", &[Role::Reviewer]).await),
    );
    let publisher = Client::new(
        &server,
        Some(add_user(&server, "pub", &[Role::Publisher]).await),
    );
    let admin = Client::new(
        &server,
        Some(add_user(&server, "adm", &[Role::Admin]).await),
    );
    let id = approved_article(&editor, &reviewer, "Embargoed report").await;

    let at = (chrono::Utc::now() + chrono::Duration::milliseconds(600)).to_rfc3339();
    publisher
        .ok(
            "mutation($id: ID!, $at: DateTime!) { publishArticle(articleId: $id, expectedVersion: 3, publishAt: $at) { article { status } } }",
            json!({"id": id, "at": at}),
        )
        .await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    editor
        .ok(
            "mutation($id: ID!, $until: DateTime!) { setEmbargo(articleId: $id, expectedVersion: 4, until: $until) { article { embargoUntil } } }",
            json!({"id": id, "until": until}),
        )
        .await;

    let blocked = wait_for(&publisher, &id, |a| !a["scheduleBlockedReason"].is_null()).await;
    assert_eq!(blocked["status"], "SCHEDULED");
    assert!(
        blocked["scheduleBlockedReason"]
            .as_str()
            .unwrap()
            .starts_with("EMBARGOED"),
        "{blocked}"
    );
    assert_eq!(
        blocked["version"], 6,
        "one PublicationBlocked was appended for the embargo"
    );

    admin
        .ok(
            "mutation($id: ID!) { liftEmbargo(articleId: $id, expectedVersion: 6, reason: \"Minister spoke early\") { article { embargoUntil } } }",
            json!({"id": id}),
        )
        .await;
    let published = wait_for(&publisher, &id, |a| a["status"] == "PUBLISHED").await;
    assert_eq!(published["liveRevision"], 1);
    assert_eq!(published["version"], 8, "published exactly once");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_publish_each_due_article_exactly_once() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let a = start(&backend).await;
    let b = galley::spawn(test_config(&backend)).await.unwrap();
    let editor = Client::new(&a, Some(add_user(&a, "ed", &[Role::Editor]).await));
    let reviewer = Client::new(&a, Some(add_user(&a, "rev", &[Role::Reviewer]).await));
    let pub_token = add_user(&a, "pub", &[Role::Publisher]).await.token;
    let publisher = Client::with_token(&b, &pub_token);
    // A subscriber on server A must see publications made by either replica's scheduler.
    let mut ws = Ws::init(&a, &pub_token).await;
    ws.send(json!({"id": "pubs", "type": "subscribe", "payload": {
        "query": "subscription { events(filter: {types: [\"ArticlePublished\"]}) { articleId actor } }"
    }}))
    .await;
    let at = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = approved_article(&editor, &reviewer, &format!("Report {i}")).await;
        publisher
            .ok(
                "mutation($id: ID!, $at: DateTime!) { publishArticle(articleId: $id, expectedVersion: 3, publishAt: $at) { article { status } } }",
                json!({"id": id, "at": at}),
            )
            .await;
        ids.push(id);
    }
    for id in &ids {
        let published = wait_for(&publisher, id, |a| a["status"] == "PUBLISHED").await;
        assert_eq!(
            published["version"], 5,
            "published exactly once: {published}"
        );
    }
    let feed = publisher
        .ok("{ events(first: 100, filter: {types: [\"ArticlePublished\"]}) { edges { node { articleId } } } }", json!({}))
        .await;
    assert_eq!(feed["events"]["edges"].as_array().unwrap().len(), ids.len());
    let mut seen = Vec::new();
    for _ in &ids {
        let message = ws.recv().await.unwrap();
        assert_eq!(message["type"], "next", "{message}");
        seen.push(
            message["payload"]["data"]["events"]["articleId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    backend.cleanup().await;
}
