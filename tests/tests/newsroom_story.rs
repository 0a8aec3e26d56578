//! The newsroom story, end to end over HTTP and WebSocket: the seed article goes from a draft
//! through review, a request for changes, a second review and approval to publication, while
//! a subscriber that connected before the first step sees every event live, in order.

use galley_tests::{on_both_backends, seed_article, start, types, Backend, Newsroom, Ws};
use serde_json::{json, Value};

on_both_backends!(
    the_seed_article_goes_from_draft_to_published_with_a_live_subscriber_watching,
    a_published_article_is_corrected_rescheduled_taken_down_archived_and_restored,
);

/// What the story expects of each step: the event type, the article's status after it, and
/// its working revision.
struct Step {
    event: &'static str,
    status: &'static str,
    revision: u64,
}

const EVENT: &str =
    "eventId articleId version position type actor requestId payload article { status }";

async fn the_seed_article_goes_from_draft_to_published_with_a_live_subscriber_watching(
    backend: Backend,
) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let seed = seed_article();

    // The subscriber connects and subscribes before anything happens. It asks for the feed
    // from the head it read over HTTP (0: the log is empty), so it cannot miss the first
    // event however quickly that follows.
    let head = staff.viewer.head().await;
    assert_eq!(head, 0);
    let mut ws = Ws::init(&server, &staff.viewer.user().token).await;
    ws.subscribe(
        "feed",
        &format!("subscription($after: Int) {{ events(after: $after) {{ {EVENT} }} }}"),
        json!({ "after": head }),
    )
    .await;

    let mut log: Vec<Value> = Vec::new();
    // Checks a mutation's payload against the step, then receives the same events from the
    // subscriber before the story moves on: each event is delivered live, in order.
    let mut step = async |payload: &Value, expected: Step, ws: &mut Ws| {
        let events = payload["events"].as_array().expect("events").clone();
        assert_eq!(types(&payload["events"]), [expected.event], "{payload}");
        let article = &payload["article"];
        assert_eq!(article["status"], expected.status, "{payload}");
        assert_eq!(article["revisionNumber"], expected.revision, "{payload}");
        for event in events {
            let n = log.len() as u64 + 1;
            assert_eq!(event["version"], n, "the stream's versions are 1, 2, 3 …");
            assert_eq!(event["position"], n, "the global positions are contiguous");
            assert_eq!(article["version"], n);
            let live = ws.next_data("feed").await["events"].clone();
            for field in [
                "eventId",
                "articleId",
                "version",
                "position",
                "type",
                "actor",
            ] {
                assert_eq!(live[field], event[field], "{field} of {live}");
            }
            assert_eq!(live["article"]["status"], expected.status, "{live}");
            log.push(event);
        }
    };

    // 1. The editor creates the seed article; every field survives the trip, Vučić included.
    let created = staff
        .editor
        .ok(
            "mutation($c: ContentInput!) { createArticle(content: $c) { article { id version status revisionNumber liveRevision content { headline standfirst body slug category tags byline language } authors { name } } events { eventId articleId type version position actor payload } } }",
            json!({ "c": seed }),
        )
        .await["createArticle"]
        .clone();
    let content = &created["article"]["content"];
    for field in [
        "headline",
        "standfirst",
        "body",
        "slug",
        "category",
        "tags",
        "byline",
        "language",
    ] {
        assert_eq!(content[field], seed[field], "{field}");
    }
    assert_eq!(created["article"]["authors"], json!([{ "name": "edith" }]));
    assert_eq!(
        created["events"][0]["payload"]["content"]["headline"],
        seed["headline"]
    );
    let id = created["article"]["id"].as_str().unwrap().to_owned();
    step(
        &created,
        Step {
            event: "ArticleCreated",
            status: "DRAFT",
            revision: 1,
        },
        &mut ws,
    )
    .await;

    // 2. The editor revises the standfirst.
    let mut revised = seed.clone();
    revised["standfirst"] = json!("Vučić wanted Serbian troops in Northern Kosovo; KFOR said no.");
    let payload = staff
        .editor
        .send(
            staff
                .editor
                .request()
                .header("x-request-id", "story-revise-1")
                .json(&json!({
                    "query": format!("mutation($id: ID!, $c: ContentInput!) {{ reviseDraft(articleId: $id, expectedVersion: 1, content: $c) {{ {} }} }}", galley_tests::PAYLOAD),
                    "variables": { "id": id, "c": revised },
                })),
        )
        .await;
    assert_eq!(payload.status, 200, "{}", payload.body);
    assert_eq!(payload.headers["x-request-id"], "story-revise-1");
    let payload = payload.body["data"]["reviseDraft"].clone();
    step(
        &payload,
        Step {
            event: "DraftRevised",
            status: "DRAFT",
            revision: 2,
        },
        &mut ws,
    )
    .await;

    // 3. The editor submits revision 2.
    let payload = staff.editor.mutate("submitForReview", &id, 2, "").await;
    step(
        &payload,
        Step {
            event: "SubmittedForReview",
            status: "IN_REVIEW",
            revision: 2,
        },
        &mut ws,
    )
    .await;

    // 4. The reviewer comments on revision 2 …
    let payload = staff
        .reviewer
        .mutate(
            "addReviewComment",
            &id,
            3,
            ", revision: 2, body: \"Where does the 3,800 figure come from?\"",
        )
        .await;
    step(
        &payload,
        Step {
            event: "ReviewCommentAdded",
            status: "IN_REVIEW",
            revision: 2,
        },
        &mut ws,
    )
    .await;

    // 5. … and requests changes, with a reason.
    let payload = staff
        .reviewer
        .mutate(
            "requestChanges",
            &id,
            4,
            ", reason: \"Cite KFOR's own statement.\"",
        )
        .await;
    assert_eq!(
        payload["events"][0]["payload"]["reason"],
        "Cite KFOR's own statement."
    );
    step(
        &payload,
        Step {
            event: "ChangesRequested",
            status: "CHANGES_REQUESTED",
            revision: 2,
        },
        &mut ws,
    )
    .await;

    // 6. The editor revises the body and 7. resubmits.
    let mut second = revised.clone();
    second["body"] = json!(format!(
        "{}\n\nKFOR confirmed the figure of 3,800 troops in a statement.",
        seed["body"].as_str().unwrap()
    ));
    let payload = staff
        .editor
        .ok(
            &format!("mutation($id: ID!, $c: ContentInput!) {{ reviseDraft(articleId: $id, expectedVersion: 5, content: $c) {{ {} }} }}", galley_tests::PAYLOAD),
            json!({ "id": id, "c": second }),
        )
        .await["reviseDraft"]
        .clone();
    step(
        &payload,
        Step {
            event: "DraftRevised",
            status: "DRAFT",
            revision: 3,
        },
        &mut ws,
    )
    .await;
    let payload = staff.editor.mutate("submitForReview", &id, 6, "").await;
    step(
        &payload,
        Step {
            event: "SubmittedForReview",
            status: "IN_REVIEW",
            revision: 3,
        },
        &mut ws,
    )
    .await;

    // 8. The reviewer approves revision 3.
    let payload = staff
        .reviewer
        .mutate("approveRevision", &id, 7, ", revision: 3")
        .await;
    step(
        &payload,
        Step {
            event: "RevisionApproved",
            status: "APPROVED",
            revision: 3,
        },
        &mut ws,
    )
    .await;

    // 9. The publisher publishes it.
    let payload = staff.publisher.mutate("publishArticle", &id, 8, "").await;
    assert_eq!(payload["article"]["liveRevision"], 3);
    assert_eq!(payload["events"][0]["payload"]["revision"], 3);
    step(
        &payload,
        Step {
            event: "ArticlePublished",
            status: "PUBLISHED",
            revision: 3,
        },
        &mut ws,
    )
    .await;

    let expected_types = [
        "ArticleCreated",
        "DraftRevised",
        "SubmittedForReview",
        "ReviewCommentAdded",
        "ChangesRequested",
        "DraftRevised",
        "SubmittedForReview",
        "RevisionApproved",
        "ArticlePublished",
    ];
    assert_eq!(types(&Value::Array(log.clone())), expected_types);
    let actors: Vec<&str> = log.iter().map(|e| e["actor"].as_str().unwrap()).collect();
    let (editor, reviewer, publisher) = (
        staff.editor.user().id.as_str(),
        staff.reviewer.user().id.as_str(),
        staff.publisher.user().id.as_str(),
    );
    assert_eq!(
        actors,
        [editor, editor, editor, reviewer, reviewer, editor, editor, reviewer, publisher]
    );

    // The viewer reads the article: its history, revisions, comments and live revision.
    let read = staff
        .viewer
        .ok(
            "query($id: ID!, $slug: String!) {
                article(id: $id) {
                    version status revisionNumber liveRevision approvedRevision hasUnpublishedChanges
                    firstSubmittedAt firstPublishedAt
                    live { number headline body }
                    revisions { number standfirst author { name } }
                    comments { revision body author { name } }
                    history(first: 50) {
                        edges { cursor node { eventId version position type actor requestId actorUser { name } } }
                        pageInfo { hasNextPage }
                    }
                    newest: history(first: 1, order: NEWEST_FIRST) { nodes { type version } }
                }
                articleBySlug(slug: $slug) { id }
            }",
            json!({ "id": id, "slug": seed["slug"] }),
        )
        .await;
    let article = &read["article"];
    assert_eq!(article["version"], 9);
    assert_eq!(article["status"], "PUBLISHED");
    assert_eq!(article["liveRevision"], 3);
    assert_eq!(article["approvedRevision"], 3);
    assert_eq!(article["hasUnpublishedChanges"], false);
    assert!(article["firstSubmittedAt"].is_string());
    assert!(article["firstPublishedAt"].is_string());
    assert_eq!(article["live"]["number"], 3);
    assert_eq!(article["live"]["body"], second["body"]);
    assert_eq!(
        article["revisions"],
        json!([
            { "number": 1, "standfirst": seed["standfirst"], "author": { "name": "edith" } },
            { "number": 2, "standfirst": revised["standfirst"], "author": { "name": "edith" } },
            { "number": 3, "standfirst": revised["standfirst"], "author": { "name": "edith" } },
        ])
    );
    assert_eq!(
        article["comments"],
        json!([{ "revision": 2, "body": "Where does the 3,800 figure come from?", "author": { "name": "rob" } }])
    );
    let history: Vec<Value> = article["history"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert_eq!(article["history"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(history.len(), 9);
    for (read, written) in history.iter().zip(&log) {
        for field in ["eventId", "version", "position", "type", "actor"] {
            assert_eq!(read[field], written[field], "{field}");
        }
    }
    assert_eq!(history[1]["requestId"], "story-revise-1");
    assert_eq!(history[3]["actorUser"]["name"], "rob");
    assert_eq!(
        article["newest"]["nodes"],
        json!([{ "type": "ArticlePublished", "version": 9 }])
    );
    assert_eq!(read["articleBySlug"]["id"], id.as_str());

    // The viewer reads the global feed, in two pages, and its head.
    let page = |after: Option<&str>| {
        let after = after.map(str::to_owned);
        let viewer = staff.viewer.clone();
        async move {
            viewer
                .ok(
                    "query($after: String) { events(first: 5, after: $after) { edges { cursor node { eventId position type articleId } } pageInfo { hasNextPage endCursor } } }",
                    json!({ "after": after }),
                )
                .await["events"]
                .clone()
        }
    };
    let first = page(None).await;
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let rest = page(first["pageInfo"]["endCursor"].as_str()).await;
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    let feed: Vec<Value> = first["edges"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["edges"].as_array().unwrap())
        .map(|e| e["node"].clone())
        .collect();
    assert_eq!(feed.len(), 9);
    for (read, written) in feed.iter().zip(&log) {
        assert_eq!(read["eventId"], written["eventId"]);
        assert_eq!(read["position"], written["position"]);
        assert_eq!(read["articleId"], id.as_str());
    }
    assert_eq!(staff.viewer.head().await, 9);
    let listed = staff
        .viewer
        .ok(
            "{ articles(filter: {status: [PUBLISHED]}) { nodes { id headline } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["articles"]["nodes"],
        json!([{ "id": id, "headline": seed["headline"] }])
    );

    // Nothing more arrives: the subscriber stops its subscription and the server confirms
    // nothing else by answering a ping next.
    ws.send(json!({ "type": "complete", "id": "feed" })).await;
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.recv().await.unwrap()["type"], "pong");

    // A client of the article's own stream catches up on all nine events.
    let mut watcher = Ws::init(&server, &staff.viewer.user().token).await;
    watcher
        .subscribe(
            "one",
            "subscription($id: ID!) { articleEvents(articleId: $id) { version type } }",
            json!({ "id": id }),
        )
        .await;
    for expected in 1..=9u64 {
        let event = watcher.next_data("one").await["articleEvents"].clone();
        assert_eq!(event["version"], expected);
        assert_eq!(event["type"], expected_types[expected as usize - 1]);
    }

    // The operations were counted: /metrics answers a token holder in Prometheus' format.
    let metrics = staff
        .viewer
        .http
        .get(format!("{}/metrics", server.http_url()))
        .bearer_auth(&staff.viewer.user().token)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    for series in ["graphql_operations_total", "galley_commands_total"] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }

    // The projections the viewer read are exactly what a replay of the log gives.
    let diffs = server.store().verify_projections().await.unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");

    // Shutdown completes the live subscription and closes the sockets with 1001.
    server.shutdown().await.unwrap();
    assert_eq!(
        watcher.recv().await.unwrap(),
        json!({ "type": "complete", "id": "one" })
    );
    assert_eq!(watcher.close_code().await, 1001);
    assert_eq!(ws.close_code().await, 1001);
    backend.cleanup().await;
}

/// The rest of an article's life, after its first publication: a revision while live, a
/// schedule that a later revision cancels, a corrected re-publication, a takedown, the
/// archive and back, and an old revision restored. A subscriber to the article's own stream
/// watches it all.
async fn a_published_article_is_corrected_rescheduled_taken_down_archived_and_restored(
    backend: Backend,
) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let (editor, reviewer, publisher) = (&staff.editor, &staff.reviewer, &staff.publisher);
    let seed = seed_article();
    let id = editor.create(seed.clone()).await;
    let mut ws = Ws::init(&server, &staff.viewer.user().token).await;
    ws.subscribe(
        "article",
        "subscription($id: ID!) { articleEvents(articleId: $id) { version type payload } }",
        json!({ "id": id }),
    )
    .await;
    let revise = |version: u64, standfirst: &str| {
        let mut content = seed.clone();
        content["standfirst"] = json!(standfirst);
        content.as_object_mut().unwrap().remove("slug");
        let editor = editor.clone();
        let id = id.clone();
        async move {
            editor
                .ok(
                    &format!("mutation($id: ID!, $v: Int!, $c: ContentInput!) {{ reviseDraft(articleId: $id, expectedVersion: $v, content: $c) {{ {} }} }}", galley_tests::PAYLOAD),
                    json!({ "id": id, "v": version, "c": content }),
                )
                .await["reviseDraft"]
                .clone()
        }
    };
    let viewer = staff.viewer.clone();
    let state = |id: String| {
        let viewer = viewer.clone();
        async move {
            viewer
                .ok(
                    "query($id: ID!) { article(id: $id) { version status revisionNumber liveRevision approvedRevision hasUnpublishedChanges scheduledFor slug live { number standfirst } } }",
                    json!({ "id": id }),
                )
                .await["article"]
                .clone()
        }
    };

    // First publication: revision 1 is live.
    editor.mutate("submitForReview", &id, 1, "").await;
    reviewer
        .mutate("approveRevision", &id, 2, ", revision: 1")
        .await;
    publisher.mutate("publishArticle", &id, 3, "").await;

    // A revision while live: the working copy is a draft again, revision 1 stays live, and
    // the public URL (the slug) does not move although no slug was sent.
    revise(4, "Second take.").await;
    let article = state(id.clone()).await;
    assert_eq!(article["status"], "DRAFT");
    assert_eq!(article["revisionNumber"], 2);
    assert_eq!(article["liveRevision"], 1);
    assert_eq!(article["hasUnpublishedChanges"], true);
    assert_eq!(article["slug"], seed["slug"]);
    assert_eq!(article["live"]["standfirst"], seed["standfirst"]);

    // Revision 2 is approved and scheduled; a third revision cancels the schedule (two events
    // from one command) and the approval.
    editor.mutate("submitForReview", &id, 5, "").await;
    reviewer
        .mutate("approveRevision", &id, 6, ", revision: 2")
        .await;
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let scheduled = publisher
        .mutate("publishArticle", &id, 7, &format!(", publishAt: \"{at}\""))
        .await;
    assert_eq!(scheduled["article"]["status"], "SCHEDULED");
    let payload = revise(8, "Third take, with the correction.").await;
    assert_eq!(
        types(&payload["events"]),
        ["ScheduleCancelled", "DraftRevised"]
    );
    let article = state(id.clone()).await;
    assert_eq!(article["version"], 10);
    assert_eq!(article["status"], "DRAFT");
    assert_eq!(article["scheduledFor"], Value::Null);
    assert_eq!(article["liveRevision"], 1);

    // Revision 3 goes live with a public correction note.
    editor.mutate("submitForReview", &id, 10, "").await;
    reviewer
        .mutate("approveRevision", &id, 11, ", revision: 3")
        .await;
    let published = publisher
        .mutate(
            "publishArticle",
            &id,
            12,
            ", correction: \"An earlier version misspelt Štrpac.\"",
        )
        .await;
    let event = &published["events"][0];
    assert_eq!(
        event["payload"]["correction"],
        "An earlier version misspelt Štrpac."
    );
    assert_eq!(event["payload"]["previousLive"], 1);
    let article = state(id.clone()).await;
    assert_eq!(
        (
            article["liveRevision"].clone(),
            article["hasUnpublishedChanges"].clone()
        ),
        (json!(3), json!(false))
    );

    // Taken down with a reason, archived, restored, and revision 1 brought back as revision 4.
    publisher
        .mutate(
            "unpublishArticle",
            &id,
            13,
            ", reason: \"Legal asked us to.\"",
        )
        .await;
    let article = state(id.clone()).await;
    assert_eq!(article["status"], "UNPUBLISHED");
    assert_eq!(article["liveRevision"], Value::Null);
    assert_eq!(article["live"], Value::Null);
    publisher.mutate("archiveArticle", &id, 14, "").await;
    assert_eq!(state(id.clone()).await["status"], "ARCHIVED");
    publisher.mutate("restoreArticle", &id, 15, "").await;
    assert_eq!(state(id.clone()).await["status"], "DRAFT");
    let restored = editor
        .mutate("restoreRevision", &id, 16, ", revision: 1")
        .await;
    assert_eq!(restored["article"]["revisionNumber"], 4);
    let revision = staff
        .viewer
        .ok(
            "query($id: ID!) { article(id: $id) { revision(number: 4) { restoredFrom standfirst body } } }",
            json!({ "id": id }),
        )
        .await["article"]["revision"]
        .clone();
    assert_eq!(revision["restoredFrom"], 1);
    assert_eq!(revision["standfirst"], seed["standfirst"]);
    assert_eq!(revision["body"], seed["body"]);

    // The subscriber saw the whole stream, in order, each event once.
    let expected = [
        "ArticleCreated",
        "SubmittedForReview",
        "RevisionApproved",
        "ArticlePublished",
        "DraftRevised",
        "SubmittedForReview",
        "RevisionApproved",
        "PublicationScheduled",
        "ScheduleCancelled",
        "DraftRevised",
        "SubmittedForReview",
        "RevisionApproved",
        "ArticlePublished",
        "ArticleUnpublished",
        "ArticleArchived",
        "ArticleRestored",
        "RevisionRestored",
    ];
    for (i, expected) in expected.iter().enumerate() {
        let event = ws.next_data("article").await["articleEvents"].clone();
        assert_eq!(event["version"], i as u64 + 1, "{event}");
        assert_eq!(event["type"], *expected, "{event}");
    }
    let diffs = server.store().verify_projections().await.unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}
