//! Issue 11, the workflow gaps, over real HTTP and WebSocket on both backends: a missed
//! schedule is an event (once per cause, kept by a rebuild), corrections are readable, users
//! travel with the export and their changes are history, search matches a prefix and bylines,
//! reviewers can be unassigned and the review queue pages like `articles`, and the dashboard
//! tells time in stage.

use chrono::Utc;
use galley_tests::{
    approved_article, on_both_backends, seed_article, short_article, start, types,
    wait_for_article, Backend, Client, Newsroom, Ws,
};
use serde_json::{json, Value};

on_both_backends!(
    a_missed_schedule_is_an_event_once_per_cause_that_a_rebuild_keeps,
    corrections_are_listed_in_order_with_revision_time_and_publisher,
    users_travel_with_the_export_and_their_changes_are_history,
    search_matches_the_last_word_as_a_prefix_and_finds_bylines,
    reviewers_are_unassigned_and_the_review_queue_pages_like_articles,
    the_dashboard_tells_time_in_stage,
);

/// An article's history, oldest first: (type, payload).
async fn history(client: &Client, id: &str) -> Vec<(String, Value)> {
    let data = client
        .ok(
            "query($id: ID!) { article(id: $id) { history(first: 50) { nodes { type payload } } } }",
            json!({ "id": id }),
        )
        .await;
    data["article"]["history"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["type"].as_str().unwrap().to_owned(), n["payload"].clone()))
        .collect()
}

async fn a_missed_schedule_is_an_event_once_per_cause_that_a_rebuild_keeps(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let id = approved_article(&staff.editor, &staff.reviewer, "Embargoed after scheduling").await;
    let mut ws = Ws::init(&server, &staff.viewer.user().token).await;
    let from = staff.viewer.head().await;
    ws.subscribe(
        "feed",
        "subscription($after: Int) { events(after: $after) { type articleId payload } }",
        json!({ "after": from }),
    )
    .await;
    let at = (Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    staff
        .publisher
        .ok(
            "mutation($id: ID!, $at: DateTime!) { publishArticle(articleId: $id, expectedVersion: 3, publishAt: $at) { article { status } } }",
            json!({ "id": id, "at": at }),
        )
        .await;
    let until = (Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    staff
        .editor
        .ok(
            "mutation($id: ID!, $u: DateTime!) { setEmbargo(articleId: $id, expectedVersion: 4, until: $u) { article { version } } }",
            json!({ "id": id, "u": until }),
        )
        .await;

    // The scheduler's refusal arrives as an event, live.
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("PublicationBlocked") {
        let event = ws.next_data("feed").await["events"].clone();
        seen.push(event["type"].as_str().unwrap().to_owned());
        if event["type"] == "PublicationBlocked" {
            assert_eq!(event["articleId"], json!(id));
            assert_eq!(event["payload"]["code"], "EMBARGOED");
        }
    }
    assert_eq!(
        seen,
        ["PublicationScheduled", "EmbargoSet", "PublicationBlocked"]
    );
    let blocked = wait_for_article(&staff.viewer, &id, |a| a["version"] == 6).await;
    assert_eq!(blocked["status"], "SCHEDULED");
    let reason = |client: &Client| {
        let client = client.clone();
        let id = id.clone();
        async move {
            client
                .ok(
                    "query($id: ID!) { article(id: $id) { scheduleBlockedReason } }",
                    json!({ "id": id }),
                )
                .await["article"]["scheduleBlockedReason"]
                .clone()
        }
    };
    let note = reason(&staff.viewer).await;
    assert!(
        note.as_str()
            .unwrap()
            .starts_with("EMBARGOED: the article is embargoed until"),
        "{note}"
    );

    // More ticks with the same cause record nothing more.
    for _ in 0..3 {
        let report = galley_api::scheduler::tick(server.store(), Utc::now())
            .await
            .unwrap();
        assert_eq!((report.published, report.blocked), (0, 1), "{report:?}");
    }
    let events = history(&staff.viewer, &id).await;
    let blocked_events: Vec<&Value> = events
        .iter()
        .filter(|(t, _)| t == "PublicationBlocked")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(blocked_events.len(), 1, "{events:?}");
    assert_eq!(
        format!(
            "EMBARGOED: {}",
            blocked_events[0]["reason"].as_str().unwrap()
        ),
        note.as_str().unwrap()
    );

    // asOf tells the article's past: blocked at version 6, not before.
    let past = staff
        .viewer
        .ok(
            "query($id: ID!) { article(id: $id) { before: asOf(version: 5) { scheduleBlockedReason } after: asOf(version: 6) { scheduleBlockedReason } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        past["article"]["before"]["scheduleBlockedReason"],
        Value::Null
    );
    assert_eq!(past["article"]["after"]["scheduleBlockedReason"], note);

    // The note is a function of the log: a rebuild keeps it and verify excludes nothing.
    server.store().rebuild_projections().await.unwrap();
    assert_eq!(reason(&staff.viewer).await, note);
    assert!(server
        .store()
        .verify_projections()
        .await
        .unwrap()
        .is_empty());
    let feed = staff
        .viewer
        .ok(
            "{ events(first: 10, filter: { types: [\"PublicationBlocked\"] }) { nodes { articleId } } }",
            json!({}),
        )
        .await;
    assert_eq!(feed["events"]["nodes"], json!([{ "articleId": id }]));

    // Lifting the embargo lets the next tick publish; the note ends with the schedule.
    staff
        .admin
        .mutate("liftEmbargo", &id, 6, ", reason: \"The minister spoke\"")
        .await;
    let published = wait_for_article(&staff.viewer, &id, |a| a["status"] == "PUBLISHED").await;
    assert_eq!(published["version"], 8);
    assert_eq!(reason(&staff.viewer).await, Value::Null);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

/// Revises, submits and approves the article at `version`; returns the new version.
async fn next_revision(staff: &Newsroom, id: &str, version: u64, headline: &str) -> u64 {
    let revised = staff
        .editor
        .ok(
            "mutation($id: ID!, $v: Int!, $c: ContentInput!) { reviseDraft(articleId: $id, expectedVersion: $v, content: $c) { article { version revisionNumber } } }",
            json!({ "id": id, "v": version, "c": short_article(headline) }),
        )
        .await["reviseDraft"]["article"]
        .clone();
    let v = revised["version"].as_u64().unwrap();
    let revision = revised["revisionNumber"].as_u64().unwrap();
    staff.editor.mutate("submitForReview", id, v, "").await;
    staff
        .reviewer
        .mutate(
            "approveRevision",
            id,
            v + 1,
            &format!(", revision: {revision}"),
        )
        .await;
    v + 2
}

async fn corrections_are_listed_in_order_with_revision_time_and_publisher(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let id = approved_article(&staff.editor, &staff.reviewer, "Figures story").await;
    staff.publisher.mutate("publishArticle", &id, 3, "").await;
    let v = next_revision(&staff, &id, 4, "Figures story, corrected").await;
    staff
        .publisher
        .mutate(
            "publishArticle",
            &id,
            v,
            ", correction: \"An earlier version gave the wrong figure.\"",
        )
        .await;
    let v = next_revision(&staff, &id, v + 1, "Figures story, corrected again").await;
    staff
        .publisher
        .mutate(
            "publishArticle",
            &id,
            v,
            ", correction: \"The date was wrong.\"",
        )
        .await;
    let data = staff
        .viewer
        .ok(
            "query($id: ID!) { article(id: $id) { liveRevision corrections { note revision previousLive version publishedAt actor actorUser { name } } } }",
            json!({ "id": id }),
        )
        .await;
    let corrections = data["article"]["corrections"].as_array().unwrap();
    assert_eq!(corrections.len(), 2, "{data}");
    assert_eq!(
        corrections
            .iter()
            .map(|c| (
                c["note"].as_str().unwrap(),
                c["revision"].as_u64().unwrap(),
                c["previousLive"].as_u64().unwrap()
            ))
            .collect::<Vec<_>>(),
        [
            ("An earlier version gave the wrong figure.", 2, 1),
            ("The date was wrong.", 3, 2)
        ]
    );
    assert_eq!(corrections[0]["actorUser"]["name"], "penny");
    assert_eq!(
        corrections[0]["actor"],
        json!(staff.publisher.user().id),
        "{data}"
    );
    assert!(corrections[0]["publishedAt"].as_str() < corrections[1]["publishedAt"].as_str());
    assert_eq!(corrections[1]["version"], json!(v + 1));
    // An article never corrected has none.
    let plain = approved_article(&staff.editor, &staff.reviewer, "Plain story").await;
    let data = staff
        .viewer
        .ok(
            "query($id: ID!) { article(id: $id) { corrections { note } } }",
            json!({ "id": plain }),
        )
        .await;
    assert_eq!(data["article"]["corrections"], json!([]));
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn users_travel_with_the_export_and_their_changes_are_history(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let id = staff.editor.create(short_article("Attributed story")).await;
    let rob = staff.reviewer.user().id.clone();
    let vic = staff.viewer.user().id.clone();

    // ADMIN changes roles, renames and disables; each change is recorded.
    let roles = staff
        .admin
        .ok(
            "mutation($u: ID!) { setUserRoles(userId: $u, roles: [REVIEWER, EDITOR]) { name roles } }",
            json!({ "u": rob }),
        )
        .await;
    assert_eq!(
        roles["setUserRoles"],
        json!({ "name": "rob", "roles": ["EDITOR", "REVIEWER"] })
    );
    // The new role works at once (rob now creates articles).
    staff.reviewer.create(short_article("Rob writes too")).await;
    staff
        .admin
        .ok(
            "mutation($u: ID!) { renameUser(userId: $u, name: \"victor\") { name } }",
            json!({ "u": vic }),
        )
        .await;
    staff
        .admin
        .fails(
            "mutation($u: ID!) { renameUser(userId: $u, name: \"edith\") { name } }",
            json!({ "u": vic }),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(
        staff.viewer.ok("{ me { name } }", json!({})).await["me"]["name"],
        "victor"
    );
    let disabled = staff
        .admin
        .ok(
            "mutation($u: ID!) { disableUser(userId: $u) { name disabled disabledAt } }",
            json!({ "u": vic }),
        )
        .await;
    assert_eq!(disabled["disableUser"]["disabled"], true);
    // The disabled user's token stops working at once on this server.
    staff
        .viewer
        .fails("{ me { name } }", json!({}), "UNAUTHENTICATED")
        .await;
    staff
        .admin
        .fails(
            "mutation($u: ID!) { disableUser(userId: $u) { name } }",
            json!({ "u": vic }),
            "VALIDATION_FAILED",
        )
        .await;
    // Only ADMIN changes users.
    staff
        .editor
        .fails(
            "mutation($u: ID!) { disableUser(userId: $u) { name } }",
            json!({ "u": rob }),
            "FORBIDDEN",
        )
        .await;
    staff
        .editor
        .fails(
            "mutation($u: ID!) { setUserRoles(userId: $u, roles: []) { name } }",
            json!({ "u": rob }),
            "FORBIDDEN",
        )
        .await;
    staff
        .admin
        .fails(
            "mutation($u: ID!) { setUserRoles(userId: $u, roles: []) { name } }",
            json!({ "u": rob }),
            "VALIDATION_FAILED",
        )
        .await;
    // ADMIN cannot lock themselves out.
    let ada = staff.admin.user().id.clone();
    for query in [
        "mutation($u: ID!) { disableUser(userId: $u) { name } }",
        "mutation($u: ID!) { setUserRoles(userId: $u, roles: [EDITOR]) { name } }",
    ] {
        staff
            .admin
            .fails(query, json!({ "u": ada }), "VALIDATION_FAILED")
            .await;
    }
    let changes = staff
        .admin
        .ok(
            "query($u: ID!) { user(id: $u) { disabled changes { seq type name roles actorUser { name } } } }",
            json!({ "u": vic }),
        )
        .await;
    let list = changes["user"]["changes"].as_array().unwrap();
    assert_eq!(
        list.iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["UserAdded", "UserRenamed", "UserDisabled"]
    );
    assert_eq!(list[0]["name"], "vic");
    assert_eq!(list[1]["name"], "victor");
    assert_eq!(list[1]["actorUser"]["name"], "ada");
    staff
        .editor
        .fails(
            "query($u: ID!) { user(id: $u) { changes { seq } } }",
            json!({ "u": vic }),
            "FORBIDDEN",
        )
        .await;
    assert!(server
        .store()
        .verify_projections()
        .await
        .unwrap()
        .is_empty());
    // The users table is a projection of the user log: verify sees tampering, rebuild mends it.
    server
        .store()
        .execute_raw_sql_for_tests("UPDATE users SET roles = '[\"ADMIN\"]' WHERE name = 'rob'")
        .await
        .unwrap();
    let diffs = server.store().verify_projections().await.unwrap();
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(
        (diffs[0].table.as_str(), diffs[0].key.as_str()),
        ("users", rob.as_str())
    );
    server.store().rebuild_projections().await.unwrap();
    assert!(server
        .store()
        .verify_projections()
        .await
        .unwrap()
        .is_empty());

    // Export, then import into an empty database of the same backend.
    let mut exported = Vec::new();
    let events = galley::cli::export(server.store(), &mut exported)
        .await
        .unwrap();
    let text = String::from_utf8(exported.clone()).unwrap();
    for user in [
        staff.editor.user(),
        staff.reviewer.user(),
        staff.viewer.user(),
    ] {
        assert!(!text.contains(&user.token), "a token was exported");
    }
    assert!(!text.contains("token"), "{text}");
    server.shutdown().await.unwrap();

    let target = backend.another().await;
    let copy = start(&target).await;
    assert_eq!(
        galley::cli::import(copy.store(), exported.as_slice())
            .await
            .unwrap(),
        events
    );
    let (ada, token) = galley::users::add_token(copy.store(), "ada").await.unwrap();
    assert_eq!(ada.id.to_string(), staff.admin.user().id);
    let admin = Client::new(
        &copy,
        Some(galley_tests::User {
            id: ada.id.to_string(),
            name: "ada".to_owned(),
            token,
        }),
    );
    let users = admin
        .ok("{ users { id name roles disabled } }", json!({}))
        .await;
    let names: Vec<(&str, &str, bool)> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["id"].as_str().unwrap(),
                u["disabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("ada", staff.admin.user().id.as_str(), false),
            ("edith", staff.editor.user().id.as_str(), false),
            ("penny", staff.publisher.user().id.as_str(), false),
            ("rob", rob.as_str(), false),
            ("victor", vic.as_str(), true),
        ]
    );
    // History is attributed again.
    let attributed = admin
        .ok(
            "query($id: ID!) { article(id: $id) { history(first: 5) { nodes { actorUser { name } } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        attributed["article"]["history"]["nodes"][0]["actorUser"]["name"],
        "edith"
    );
    assert!(copy.store().verify_projections().await.unwrap().is_empty());
    // A second import of the same user log does not continue it: refused.
    assert!(galley::cli::import(copy.store(), exported.as_slice())
        .await
        .is_err());
    copy.shutdown().await.unwrap();
    target.cleanup().await;
    backend.cleanup().await;
}

/// Article ids found by a search, as a set.
async fn found(client: &Client, text: &str) -> Vec<String> {
    client.search_indexed().await;
    let data = client
        .ok(
            "query($t: String) { articles(first: 50, filter: { text: $t }, orderBy: RELEVANCE) { nodes { id } } }",
            json!({ "t": text }),
        )
        .await;
    let mut ids: Vec<String> = data["articles"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn search_matches_the_last_word_as_a_prefix_and_finds_bylines(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let seed = staff.editor.create(seed_article()).await;
    let mut other = short_article("Opera season opens in Novi Sad");
    other["byline"] = json!(["Jelena Petrović"]);
    other["standfirst"] = json!("A night of Verdi.");
    let opera = staff.editor.create(other).await;
    assert_eq!(found(&staff.viewer, "vuc").await, [seed.as_str()]);
    assert_eq!(found(&staff.viewer, "Vučić").await, [seed.as_str()]);
    assert_eq!(found(&staff.viewer, "Vanheuckelom").await, [seed.as_str()]);
    assert_eq!(found(&staff.viewer, "vanheu").await, [seed.as_str()]);
    assert_eq!(found(&staff.viewer, "petrovic").await, [opera.as_str()]);
    assert_eq!(found(&staff.viewer, "verd").await, [opera.as_str()]);
    assert_eq!(found(&staff.viewer, "kosovo kf").await, [seed.as_str()]);
    // Only the last word is a prefix.
    assert!(found(&staff.viewer, "kf kosovo").await.is_empty());
    // "ope" is a prefix of the seed's "operating" and of "Opera".
    let mut both = vec![seed.clone(), opera.clone()];
    both.sort();
    assert_eq!(found(&staff.viewer, "ope").await, both);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn reviewers_are_unassigned_and_the_review_queue_pages_like_articles(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let rob = staff.reviewer.user().id.clone();
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = staff
            .editor
            .create(short_article(&format!("Queued {i}")))
            .await;
        staff.editor.mutate("submitForReview", &id, 1, "").await;
        ids.push(id);
    }
    let assigned = staff
        .editor
        .mutate(
            "assignReviewer",
            &ids[2],
            2,
            &format!(", reviewerId: \"{rob}\""),
        )
        .await;
    assert_eq!(types(&assigned["events"]), ["ReviewerAssigned"]);

    // rob's queue a page at a time: his assignment first, then the unassigned, oldest first.
    let page = |after: Option<String>| {
        let client = staff.reviewer.clone();
        async move {
            client
                .ok(
                    "query($a: String) { reviewQueue(first: 2, after: $a) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
                    json!({ "a": after }),
                )
                .await["reviewQueue"]
                .clone()
        }
    };
    let first = page(None).await;
    let node_ids = |p: &Value| {
        p["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(node_ids(&first), [ids[2].clone(), ids[0].clone()]);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let second = page(first["pageInfo"]["endCursor"].as_str().map(str::to_owned)).await;
    assert_eq!(node_ids(&second), [ids[1].clone()]);
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    staff
        .reviewer
        .fails(
            "{ reviewQueue(after: \"zz\") { edges { cursor } } }",
            json!({}),
            "BAD_REQUEST",
        )
        .await;

    // Unassigning is an event; the article leaves rob's front of the queue.
    let unassigned = staff
        .editor
        .mutate(
            "unassignReviewer",
            &ids[2],
            3,
            &format!(", reviewerId: \"{rob}\""),
        )
        .await;
    assert_eq!(types(&unassigned["events"]), ["ReviewerUnassigned"]);
    let reviewers = staff
        .viewer
        .ok(
            "query($id: ID!) { article(id: $id) { reviewers { id } } }",
            json!({ "id": ids[2] }),
        )
        .await;
    assert_eq!(reviewers["article"]["reviewers"], json!([]));
    let queue = staff
        .reviewer
        .ok("{ reviewQueue { edges { node { id } } } }", json!({}))
        .await["reviewQueue"]
        .clone();
    assert_eq!(node_ids(&queue), ids);
    staff
        .editor
        .fails(
            &galley_tests::mutation("unassignReviewer", &format!(", reviewerId: \"{rob}\"")),
            json!({ "id": ids[2], "v": 4 }),
            "VALIDATION_FAILED",
        )
        .await;
    staff
        .viewer
        .fails(
            &galley_tests::mutation("unassignReviewer", &format!(", reviewerId: \"{rob}\"")),
            json!({ "id": ids[2], "v": 4 }),
            "FORBIDDEN",
        )
        .await;
    server.store().rebuild_projections().await.unwrap();
    assert!(server
        .store()
        .verify_projections()
        .await
        .unwrap()
        .is_empty());
    let queue = staff
        .reviewer
        .ok("{ reviewQueue { edges { node { id } } } }", json!({}))
        .await["reviewQueue"]
        .clone();
    assert_eq!(node_ids(&queue), ids);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn the_dashboard_tells_time_in_stage(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    // In review (submitted first), sent back, approved, and one approved and published.
    let waiting = staff.editor.create(short_article("Waiting")).await;
    staff
        .editor
        .mutate("submitForReview", &waiting, 1, "")
        .await;
    let sent_back = staff.editor.create(short_article("Sent back")).await;
    staff
        .editor
        .mutate("submitForReview", &sent_back, 1, "")
        .await;
    staff
        .reviewer
        .mutate("requestChanges", &sent_back, 2, ", reason: \"Cite it\"")
        .await;
    let approved = approved_article(&staff.editor, &staff.reviewer, "Approved").await;
    let live = approved_article(&staff.editor, &staff.reviewer, "Live").await;
    staff.publisher.mutate("publishArticle", &live, 3, "").await;

    let data = staff
        .viewer
        .ok(
            "{ dashboard { timeInStage { \
               inReviewNow { count oldestArticleId oldestSince oldestAgeSeconds oldest { headline } } \
               changesRequestedNow { count oldestArticleId oldestAgeSeconds } \
               approvedNow { count oldestArticleId oldestAgeSeconds } \
               inReview { count p50Seconds p90Seconds } \
               changesRequested { count p50Seconds } \
               approved { count p50Seconds } } } }",
            json!({}),
        )
        .await;
    let stages = &data["dashboard"]["timeInStage"];
    assert_eq!(stages["inReviewNow"]["count"], 1, "{stages}");
    assert_eq!(stages["inReviewNow"]["oldestArticleId"], json!(waiting));
    assert_eq!(stages["inReviewNow"]["oldest"]["headline"], "Waiting");
    assert!(stages["inReviewNow"]["oldestAgeSeconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(stages["changesRequestedNow"]["count"], 1);
    assert_eq!(
        stages["changesRequestedNow"]["oldestArticleId"],
        json!(sent_back)
    );
    assert_eq!(stages["approvedNow"]["count"], 1);
    assert_eq!(stages["approvedNow"]["oldestArticleId"], json!(approved));
    // Three decisions closed a review; one approval went live; nothing was resubmitted.
    assert_eq!(stages["inReview"]["count"], 3);
    assert!(stages["inReview"]["p50Seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(stages["approved"]["count"], 1);
    assert!(stages["approved"]["p50Seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(stages["changesRequested"]["count"], 0);
    assert_eq!(stages["changesRequested"]["p50Seconds"], Value::Null);

    // Resubmitting ends the changes-requested stage.
    staff
        .editor
        .mutate("submitForReview", &sent_back, 3, "")
        .await;
    let data = staff
        .viewer
        .ok(
            "{ dashboard { timeInStage { changesRequestedNow { count oldestArticleId } changesRequested { count } inReviewNow { count oldestArticleId } } } }",
            json!({}),
        )
        .await;
    let stages = &data["dashboard"]["timeInStage"];
    assert_eq!(stages["changesRequestedNow"]["count"], 0);
    assert_eq!(
        stages["changesRequestedNow"]["oldestArticleId"],
        Value::Null
    );
    assert_eq!(stages["changesRequested"]["count"], 1);
    assert_eq!(stages["inReviewNow"]["count"], 2);
    assert_eq!(stages["inReviewNow"]["oldestArticleId"], json!(waiting));
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}
