//! Two `galley` servers on one PostgreSQL, as in the compose file's replicas: a subscriber on
//! one sees what is written through the other (LISTEN/NOTIFY is the doorbell, the log is
//! re-read), and articles scheduled a second ahead are published exactly once while both
//! servers' schedulers run. PostgreSQL only: SQLite is the single-process embedded store.

use std::collections::BTreeMap;

use galley_domain::Role;
use galley_tests::{add_user, approved_article, start, wait_for_article, Backend, Client, Ws};
use serde_json::{json, Value};

const EVENT: &str = "position version type articleId actor";

/// Receives feed events from `ws` (subscription `id`) up to and including `position`.
async fn receive_until(ws: &mut Ws, id: &str, position: u64) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = ws.next_data(id).await["events"].clone();
        let at = event["position"].as_u64().unwrap();
        events.push(event);
        if at >= position {
            return events;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_share_the_feed_and_publish_each_due_article_exactly_once() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let a = start(&backend).await;
    let b = start(&backend).await;
    let editor = add_user(&a, "edith", &[Role::Editor]).await;
    let reviewer = add_user(&a, "rob", &[Role::Reviewer]).await;
    let publisher = add_user(&a, "penny", &[Role::Publisher]).await;
    let viewer = add_user(&a, "vic", &[Role::Viewer]).await;
    // Users live in the shared database: a token made through A works on B.
    let on = |server, user: &galley_tests::User| Client::new(server, Some(user.clone()));
    let (editor_a, editor_b) = (on(&a, &editor), on(&b, &editor));
    let (reviewer_a, reviewer_b) = (on(&a, &reviewer), on(&b, &reviewer));
    let (publisher_a, publisher_b) = (on(&a, &publisher), on(&b, &publisher));
    let viewer_b = on(&b, &viewer);

    // Subscribers on both servers, from the (empty) head, before anything is written.
    let query = format!("subscription($after: Int) {{ events(after: $after) {{ {EVENT} }} }}");
    let mut ws_a = Ws::init(&a, &viewer.token).await;
    ws_a.subscribe("a", &query, json!({ "after": 0 })).await;
    let mut ws_b = Ws::init(&b, &viewer.token).await;
    ws_b.subscribe("b", &query, json!({ "after": 0 })).await;

    // An article is prepared through A and published through B; A's subscriber sees the
    // publication, B's subscriber sees A's writes.
    let id = approved_article(&editor_a, &reviewer_a, "Cross-replica report").await;
    let published = publisher_b.mutate("publishArticle", &id, 3, "").await;
    assert_eq!(published["article"]["status"], "PUBLISHED");
    let expected = [
        "ArticleCreated",
        "SubmittedForReview",
        "RevisionApproved",
        "ArticlePublished",
    ];
    for (ws, sub) in [(&mut ws_a, "a"), (&mut ws_b, "b")] {
        let events = receive_until(ws, sub, 4).await;
        assert_eq!(
            galley_tests::types(&Value::Array(events.clone())),
            expected,
            "{sub}"
        );
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event["position"], i as u64 + 1);
            assert_eq!(event["version"], i as u64 + 1);
            assert_eq!(event["articleId"], id.as_str());
        }
        assert_eq!(events[3]["actor"], publisher.id.as_str());
    }

    // Twenty articles, prepared and scheduled through both servers alternately, each due a
    // second after it is scheduled; both schedulers run every 100 ms.
    let mut ids = Vec::new();
    for i in 0..20 {
        let (editor, reviewer, publisher) = if i % 2 == 0 {
            (&editor_a, &reviewer_b, &publisher_a)
        } else {
            (&editor_b, &reviewer_a, &publisher_b)
        };
        let id = approved_article(editor, reviewer, &format!("Morning brief {i}")).await;
        let at = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
        let scheduled = publisher
            .mutate("publishArticle", &id, 3, &format!(", publishAt: \"{at}\""))
            .await;
        assert_eq!(scheduled["article"]["status"], "SCHEDULED");
        ids.push(id);
    }
    for id in &ids {
        let article = wait_for_article(&viewer_b, id, |a| a["status"] == "PUBLISHED").await;
        assert_eq!(article["liveRevision"], 1);
    }

    // Exactly once: the log holds one ArticlePublished per article, by the system, and every
    // article's stream stops at version 5 (created, submitted, approved, scheduled, published).
    let feed = viewer_b
        .ok(
            "{ events(first: 100, filter: {types: [\"ArticlePublished\"]}) { nodes { articleId version actor } } }",
            json!({}),
        )
        .await;
    let mut per_article: BTreeMap<String, usize> = BTreeMap::new();
    for event in feed["events"]["nodes"].as_array().unwrap() {
        let article = event["articleId"].as_str().unwrap().to_owned();
        *per_article.entry(article.clone()).or_default() += 1;
        if ids.contains(&article) {
            assert_eq!(event["version"], 5, "{event}");
            assert_eq!(
                event["actor"], "00000000-0000-0000-0000-000000000000",
                "{event}"
            );
        }
    }
    assert_eq!(per_article.len(), 21);
    assert!(per_article.values().all(|n| *n == 1), "{per_article:?}");
    for id in &ids {
        assert_eq!(per_article.get(id), Some(&1), "{id}");
        assert_eq!(viewer_b.article(id).await["version"], 5);
    }

    // Both subscribers saw the whole log once, in position order, with no gap.
    let head = viewer_b.head().await;
    assert_eq!(head, 4 + 20 * 5);
    for (ws, sub) in [(&mut ws_a, "a"), (&mut ws_b, "b")] {
        let events = receive_until(ws, sub, head).await;
        let positions: Vec<u64> = events
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect();
        assert_eq!(positions, (5..=head).collect::<Vec<_>>(), "{sub}");
        let publications = events
            .iter()
            .filter(|e| e["type"] == "ArticlePublished")
            .count();
        assert_eq!(publications, 20, "{sub}");
    }

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    backend.cleanup().await;
}
