//! Requests that used to hang, stall or crash the service (issue: hardening), over real HTTP and
//! WebSocket on both backends: each is refused, or answered in bounded time, and the server
//! answers everyone else afterwards.
//!
//! - dates at the ends of the calendar (the dashboard's day loop never ended; date arithmetic
//!   panicked) are refused as VALIDATION_FAILED on every time argument;
//! - a draft with 100,000 tags is refused before it reaches the shared writer, and so is a
//!   viewer's mutation of any size;
//! - idempotency keys are the user's own, creates with a key keep UUIDv7 ids, and keys are
//!   pruned after their retention without touching the log;
//! - smaller items: a variable of the wrong type is the caller's error, messages name their
//!   field once, rendered bodies keep only absolute http(s)/mailto links, close frames stay
//!   within RFC 6455, and junk field names never reach /metrics.

use std::time::Duration;

use futures::StreamExt;
use galley_domain::Role;
use galley_tests::{
    add_user, approved_article, on_both_backends, short_article, start, start_with, test_config,
    Backend, Client, Newsroom, Ws, GUARD,
};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    times_at_the_ends_of_the_calendar_are_refused_and_the_server_keeps_answering,
    a_draft_with_a_hundred_thousand_tags_is_refused_before_the_writer,
    idempotency_keys_belong_to_their_user_and_creates_keep_time_ordered_ids,
    idempotency_keys_are_pruned_after_their_retention_without_touching_the_log,
    small_hardening_items_hold,
);

const DASHBOARD: &str =
    "query($from: DateTime, $to: DateTime) { dashboard(from: $from, to: $to) { from to publishedPerDay { day count } } }";

async fn healthz(server: &galley::RunningServer) -> u16 {
    let url = format!("{}/healthz", server.http_url());
    tokio::time::timeout(GUARD, reqwest::get(&url))
        .await
        .expect("/healthz answers in time")
        .expect("/healthz answers")
        .status()
        .as_u16()
}

async fn times_at_the_ends_of_the_calendar_are_refused_and_the_server_keeps_answering(
    backend: Backend,
) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let viewer = &staff.viewer;

    // The window that looped for ever, and the `to` whose default `from` overflowed: both
    // refused, naming the argument. Several at once, more than the server has worker threads.
    let hostile = [
        json!({ "from": "+262142-12-30T23:59:59Z", "to": "+262142-12-31T23:59:59Z" }),
        json!({ "to": "-262143-01-01T00:00:00Z" }),
        json!({ "from": "-262143-01-01T00:00:00Z", "to": "-262143-01-02T00:00:00Z" }),
        json!({ "from": "1969-12-31T23:59:59Z", "to": "1970-01-02T00:00:00Z" }),
    ];
    let replies = futures::future::join_all(
        hostile
            .iter()
            .cycle()
            .take(8)
            .map(|v| viewer.post(DASHBOARD, v.clone())),
    )
    .await;
    for (reply, vars) in replies.iter().zip(hostile.iter().cycle()) {
        assert_eq!(
            reply.code(),
            Some("VALIDATION_FAILED"),
            "{vars}: {}",
            reply.body
        );
        let field = reply.body["errors"][0]["extensions"]["field"].as_str();
        assert!(
            matches!(field, Some("from" | "to")),
            "{vars}: {}",
            reply.body
        );
    }
    assert_eq!(healthz(&server).await, 200);

    // The last legal day still answers, with its one day counted.
    let edge = viewer
        .ok(
            DASHBOARD,
            json!({ "from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:59:59Z" }),
        )
        .await;
    let days = edge["dashboard"]["publishedPerDay"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{edge}");
    assert_eq!(days[0]["day"], "9999-12-31");
    // The first legal moment as `to`: the default window is clamped to the epoch, and an
    // empty window is refused rather than computed.
    viewer
        .fails(
            DASHBOARD,
            json!({ "to": "1970-01-01T00:00:00Z" }),
            "VALIDATION_FAILED",
        )
        .await;

    // Every other time argument is range-checked too.
    let editor = &staff.editor;
    let id = approved_article(editor, &staff.reviewer, "Dates at the edge").await;
    let far = "+262142-12-31T23:59:59Z";
    let error = staff
        .publisher
        .fails(
            "mutation($id: ID!, $t: DateTime) { publishArticle(articleId: $id, expectedVersion: 3, publishAt: $t) { article { id } } }",
            json!({ "id": id, "t": far }),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(error["extensions"]["field"], "publishAt");
    let error = editor
        .fails(
            "mutation($id: ID!, $t: DateTime!) { setEmbargo(articleId: $id, expectedVersion: 3, until: $t) { article { id } } }",
            json!({ "id": id, "t": "-262143-01-01T00:00:00Z" }),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(error["extensions"]["field"], "until");
    let error = viewer
        .fails(
            "query($id: ID!, $t: DateTime) { article(id: $id) { asOf(at: $t) { version } } }",
            json!({ "id": id, "t": far }),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(error["extensions"]["field"], "at");
    // Nothing of it was appended, and the article is as it was.
    assert_eq!(viewer.article(&id).await["version"], 3);
    assert_eq!(healthz(&server).await, 200);

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

/// A draft with `n` distinct tags, about 9 bytes each in JSON.
fn tagged(n: usize) -> Value {
    let tags: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    json!({ "headline": "Tagged to death", "body": "Text.", "tags": tags })
}

async fn a_draft_with_a_hundred_thousand_tags_is_refused_before_the_writer(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let editor = &staff.editor;
    let head = editor.head().await;
    let create = "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }";

    // 100,000 tags: about 1 MB, under the body limit. Refused as a validation error, in far
    // less than the guard (before the fix the writer spent minutes on it), while an honest
    // editor's write, sent at the same time, commits.
    let honest = Client::new(&server, editor.user.clone());
    let (big, ok) = tokio::join!(
        editor.post(create, json!({ "c": tagged(100_000) })),
        honest.post(
            create,
            json!({ "c": short_article("Meanwhile, real news") })
        ),
    );
    assert_eq!(big.code(), Some("VALIDATION_FAILED"), "{}", big.body);
    assert_eq!(big.body["errors"][0]["extensions"]["field"], "tags");
    assert!(
        big.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 50 tags"),
        "{}",
        big.body
    );
    assert!(ok.body.get("errors").is_none(), "{}", ok.body);

    // A viewer's mutation of the same size is refused for the role, not for the size, and not
    // after waiting for the writer.
    staff
        .viewer
        .fails(create, json!({ "c": tagged(100_000) }), "FORBIDDEN")
        .await;

    // The limit counts what is sent: 51 tags are refused, 50 (with case duplicates that
    // collapse) are kept once each, first spelling first.
    editor
        .fails(create, json!({ "c": tagged(51) }), "VALIDATION_FAILED")
        .await;
    let mut fifty: Vec<String> = (0..25).map(|i| format!("Tag {i}")).collect();
    fifty.extend((0..25).map(|i| format!("TAG {i}")));
    let data = editor
        .ok(
            "mutation($c: ContentInput!) { createArticle(content: $c) { article { content { tags } } } }",
            json!({ "c": { "headline": "Fifty", "body": "B.", "tags": fifty } }),
        )
        .await;
    let tags = data["createArticle"]["article"]["content"]["tags"]
        .as_array()
        .unwrap();
    assert_eq!(tags.len(), 25);
    assert_eq!(tags[0], "Tag 0");

    // Only the two honest creates were appended.
    assert_eq!(editor.head().await, head + 2);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

const KEYED_CREATE: &str = "mutation($c: ContentInput!, $k: String) { createArticle(content: $c, idempotencyKey: $k) { article { id version } replayed } }";

async fn keyed_create(client: &Client, headline: &str, key: &str) -> galley_tests::Reply {
    client
        .post(
            KEYED_CREATE,
            json!({ "c": short_article(headline), "k": key }),
        )
        .await
}

fn uuid_version(id: &Value) -> usize {
    uuid::Uuid::parse_str(id.as_str().expect("an id"))
        .expect("a UUID")
        .get_version_num()
}

async fn idempotency_keys_belong_to_their_user_and_creates_keep_time_ordered_ids(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let edith = &staff.editor;
    let eddie = Client::new(
        &server,
        Some(add_user(&server, "eddie", &[Role::Editor]).await),
    );

    // Two editors, one key: two commands, two articles, each id a UUIDv7.
    let first = keyed_create(edith, "Edith's story", "story-1").await;
    let other = keyed_create(&eddie, "Eddie's story", "story-1").await;
    for reply in [&first, &other] {
        assert!(reply.body.get("errors").is_none(), "{}", reply.body);
        assert_eq!(reply.body["data"]["createArticle"]["replayed"], false);
        assert_eq!(
            uuid_version(&reply.body["data"]["createArticle"]["article"]["id"]),
            7
        );
    }
    let id = first.body["data"]["createArticle"]["article"]["id"].clone();
    assert_ne!(id, other.body["data"]["createArticle"]["article"]["id"]);

    // Edith's retry is a replay of her own command, with the original id; her key with
    // another command is refused; Eddie's key was never Edith's business.
    let retry = keyed_create(edith, "Edith's story", "story-1").await;
    assert_eq!(
        retry.body["data"]["createArticle"]["replayed"], true,
        "{}",
        retry.body
    );
    assert_eq!(retry.body["data"]["createArticle"]["article"]["id"], id);
    let reused = keyed_create(edith, "Another story", "story-1").await;
    assert_eq!(
        reused.code(),
        Some("IDEMPOTENCY_KEY_REUSED"),
        "{}",
        reused.body
    );

    // Concurrent retries of one keyed create make one article.
    let head = edith.head().await;
    let racing =
        futures::future::join_all((0..6).map(|_| keyed_create(edith, "Raced", "story-2"))).await;
    let ids: std::collections::BTreeSet<String> = racing
        .iter()
        .map(|r| {
            assert!(r.body.get("errors").is_none(), "{}", r.body);
            r.body["data"]["createArticle"]["article"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(edith.head().await, head + 1);

    // A keyed comment, retried, is one comment with one id.
    let article = edith.create(short_article("Commented")).await;
    edith.mutate("submitForReview", &article, 1, "").await;
    let comment = "mutation($id: ID!) { addReviewComment(articleId: $id, expectedVersion: 2, revision: 1, body: \"Cite it.\", idempotencyKey: \"c-1\") { events { payload } replayed } }";
    let once = staff.reviewer.ok(comment, json!({ "id": article })).await;
    let twice = staff.reviewer.ok(comment, json!({ "id": article })).await;
    assert_eq!(twice["addReviewComment"]["replayed"], true);
    assert_eq!(
        once["addReviewComment"]["events"],
        twice["addReviewComment"]["events"]
    );

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn idempotency_keys_are_pruned_after_their_retention_without_touching_the_log(
    backend: Backend,
) {
    let mut config = test_config(&backend);
    config.idempotency_retention = Duration::from_millis(400);
    let server = start_with(config).await;
    let staff = Newsroom::hire(&server).await;
    let editor = &staff.editor;

    let first = keyed_create(editor, "Kept a while", "daily").await;
    assert!(first.body.get("errors").is_none(), "{}", first.body);
    let id = first.body["data"]["createArticle"]["article"]["id"].clone();
    let head = editor.head().await;

    // Until it is pruned, the key refuses another command; once pruned, the same key names a
    // new command. Each refused attempt appends nothing.
    let deadline = tokio::time::Instant::now() + GUARD;
    let second = loop {
        let reply = keyed_create(editor, "A new day", "daily").await;
        match reply.code() {
            Some("IDEMPOTENCY_KEY_REUSED") => {
                assert_eq!(editor.head().await, head);
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the key was never pruned"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => break reply,
            other => panic!("unexpected {other:?}: {}", reply.body),
        }
    };
    assert_eq!(second.body["data"]["createArticle"]["replayed"], false);
    assert_ne!(second.body["data"]["createArticle"]["article"]["id"], id);
    // The log lost nothing: the first article and its event are still there, and the head
    // moved by the one new create.
    assert_eq!(editor.head().await, head + 1);
    assert_eq!(editor.article(id.as_str().unwrap()).await["version"], 1);

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn small_hardening_items_hold(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let viewer = &staff.viewer;

    // A variable of the wrong type is the caller's mistake, not an internal error.
    let reply = viewer
        .post(
            "query($f: ArticleFilterInput) { articles(filter: $f) { edges { node { id } } } }",
            json!({ "f": "notanobject" }),
        )
        .await;
    assert_eq!(reply.code(), Some("BAD_REQUEST"), "{}", reply.body);

    // Messages name their field once.
    let id = staff.editor.create(short_article("Named once")).await;
    staff.editor.mutate("submitForReview", &id, 1, "").await;
    let error = staff
        .reviewer
        .fails(
            &galley_tests::mutation("approveRevision", ", revision: 5"),
            json!({ "id": id, "v": 2 }),
            "VALIDATION_FAILED",
        )
        .await;
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("revision 5 is not"), "{message}");
    assert!(!message.contains("revision revision"), "{message}");
    staff
        .reviewer
        .mutate("approveRevision", &id, 2, ", revision: 1")
        .await;
    let error = staff
        .publisher
        .fails(
            &galley_tests::mutation("publishArticle", ", correction: \"Fixed a name.\""),
            json!({ "id": id, "v": 3 }),
            "VALIDATION_FAILED",
        )
        .await;
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("correction can only"), "{message}");

    // Rendered bodies keep absolute http, https and mailto links only.
    let body = "[a](//evil.example/x) [b](/relative) [c](javascript:alert(1)) \
                [d](https://ok.example/) [e](mailto:desk@example.org) ![i](//evil.example/i.png)";
    let linked = staff
        .editor
        .create(json!({ "headline": "Links", "body": body }))
        .await;
    let html = viewer
        .ok(
            "query($id: ID!) { article(id: $id) { bodyHtml } }",
            json!({ "id": linked }),
        )
        .await["article"]["bodyHtml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(html.contains("href=\"https://ok.example/\""), "{html}");
    assert!(html.contains("href=\"mailto:desk@example.org\""), "{html}");
    for banned in ["evil.example", "/relative", "javascript"] {
        assert!(!html.contains(banned), "{banned} in {html}");
    }

    // A close frame never echoes more than RFC 6455 allows, whatever the client sent.
    let mut ws = Ws::init(&server, &viewer.user().token).await;
    ws.send(json!({ "type": "x".repeat(200) })).await;
    let frame = tokio::time::timeout(GUARD, ws.socket.next())
        .await
        .expect("a close in time");
    match frame {
        Some(Ok(Message::Close(Some(close)))) => {
            assert_eq!(u16::from(close.code), 4400);
            assert!(close.reason.len() <= 123, "{} bytes", close.reason.len());
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // A 200-character subscription id, refused as a duplicate, too.
    let mut ws = Ws::init(&server, &viewer.user().token).await;
    let long_id = "é".repeat(100);
    let sub = "subscription { events(after: 0) { position } }";
    ws.subscribe(&long_id, sub, json!({})).await;
    ws.subscribe(&long_id, sub, json!({})).await;
    loop {
        match tokio::time::timeout(GUARD, ws.socket.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Close(Some(close)))) => {
                assert_eq!(u16::from(close.code), 4409);
                assert!(close.reason.len() <= 123, "{} bytes", close.reason.len());
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    // Junk root fields are refused and never become metric labels.
    for i in 0..20 {
        let reply = viewer.post(&format!("{{ junkField{i} }}"), json!({})).await;
        assert_eq!(reply.code(), Some("BAD_REQUEST"), "{}", reply.body);
    }
    viewer.ok("{ head }", json!({})).await;
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", server.http_url()))
        .bearer_auth(&viewer.user().token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("field=\"head\""), "{text}");
    assert!(!text.contains("junkField"), "{text}");

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}
