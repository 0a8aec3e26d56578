//! The read side over real HTTP, on both backends: history, revisions, diff, asOf, bodyHtml
//! sanitising, full-text search, the review queue and the dashboard (including an overdue
//! scheduled publication the scheduler could not publish), and that an anonymous caller reads
//! none of it.

use galley_tests::{
    approved_article, node_ids, on_both_backends, seed_article, short_article, start,
    wait_for_article, Backend, Client, Newsroom, GUARD,
};
use serde_json::{json, Value};

on_both_backends!(
    history_revisions_diff_and_as_of_tell_the_articles_past,
    body_html_is_rendered_and_sanitised,
    search_review_queue_and_dashboard_reflect_the_newsroom,
    a_list_shows_bodies_only_when_asked_and_always_the_right_ones,
    a_history_page_reads_payloads_only_when_shown_and_always_the_right_ones,
    a_text_search_finds_a_revision_once_the_index_has_reached_it,
);

/// Revises an article with `content`; returns the new version.
async fn revise(editor: &Client, id: &str, version: u64, content: Value) -> u64 {
    editor
        .ok(
            "mutation($id: ID!, $v: Int!, $c: ContentInput!) { reviseDraft(articleId: $id, \
             expectedVersion: $v, content: $c) { article { version } } }",
            json!({ "id": id, "v": version, "c": content }),
        )
        .await["reviseDraft"]["article"]["version"]
        .as_u64()
        .expect("a version")
}

async fn history_revisions_diff_and_as_of_tell_the_articles_past(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let seed = seed_article();
    let id = staff.editor.create(seed.clone()).await;
    let mut second = seed.clone();
    second["headline"] = json!("NATO rejects Serbia's request for troops in Kosovo");
    second["tags"] = json!(["Aleksandar Vučić", "NATO", "Serbia", "KFOR", "Belgrade"]);
    let body = seed["body"].as_str().unwrap();
    second["body"] = json!(body.replacen("has rebuffed", "has firmly rejected", 1));
    let v = revise(&staff.editor, &id, 1, second).await;
    assert_eq!(v, 2);
    staff.editor.mutate("submitForReview", &id, 2, "").await;

    let data = staff
        .viewer
        .ok(
            r#"query($id: ID!, $at: DateTime!) { article(id: $id) {
                history(first: 10) { edges { cursor node { type version } } }
                newest: history(first: 1, order: NEWEST_FIRST) { edges { node { type } } pageInfo { hasNextPage } }
                revisions { number headline }
                revision(number: 1) { headline slug }
                diff(from: 1, to: 2) {
                    from to
                    changedFields { field before after }
                    tagsAdded tagsRemoved
                    body { changed wordsAdded wordsRemoved unified hunks { oldStart newStart inline segments { kind text } } }
                }
                v1: asOf(version: 1) { version revisionNumber status content { headline tags } }
                v3: asOf(version: 3) { version status revisionNumber }
                before: asOf(at: "2001-01-01T00:00:00Z") { version }
                now: asOf(at: $at) { version content { headline } }
            } }"#,
            json!({ "id": id, "at": chrono_now_plus(0) }),
        )
        .await;
    let a = &data["article"];
    let types: Vec<&str> = a["history"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["ArticleCreated", "DraftRevised", "SubmittedForReview"]
    );
    assert_eq!(a["history"]["edges"][2]["cursor"], "3");
    assert_eq!(
        a["newest"]["edges"][0]["node"]["type"],
        "SubmittedForReview"
    );
    assert_eq!(a["newest"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(a["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(
        a["revision"]["slug"],
        "nato-denies-serbia-an-army-presence-in-kosovo"
    );

    let diff = &a["diff"];
    assert_eq!(
        (diff["from"].as_u64(), diff["to"].as_u64()),
        (Some(1), Some(2))
    );
    let fields: Vec<&str> = diff["changedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    // The slug was given, so only the headline changed among the scalar fields.
    assert_eq!(fields, ["headline"], "{diff}");
    assert_eq!(
        diff["changedFields"][0]["before"],
        "NATO DENIES SERBIA AN ARMY PRESENCE IN KOSOVO"
    );
    assert_eq!(diff["tagsAdded"], json!(["Belgrade"]));
    assert_eq!(
        diff["tagsRemoved"],
        json!(["army", "conflict", "ethnic tensions", "Kosovo"])
    );
    let body_diff = &diff["body"];
    assert_eq!(body_diff["changed"], true);
    assert_eq!(body_diff["wordsAdded"], 2, "{body_diff}");
    assert_eq!(body_diff["wordsRemoved"], 1, "{body_diff}");
    assert_eq!(body_diff["hunks"].as_array().unwrap().len(), 1);
    let inline = body_diff["hunks"][0]["inline"].as_str().unwrap();
    assert!(
        inline.contains("rebuffed") && inline.contains("rejected"),
        "{inline}"
    );
    let unified = body_diff["unified"].as_str().unwrap();
    assert!(
        unified.starts_with("--- revision 1\n+++ revision 2\n"),
        "{unified}"
    );
    assert!(unified.contains("\n-The NATO-led Kosovo Force (KFOR) has rebuffed"));
    assert!(unified.contains("\n+The NATO-led Kosovo Force (KFOR) has firmly rejected"));

    assert_eq!(a["v1"]["status"], "DRAFT");
    assert_eq!(a["v1"]["revisionNumber"], 1);
    assert_eq!(
        a["v1"]["content"]["headline"],
        "NATO DENIES SERBIA AN ARMY PRESENCE IN KOSOVO"
    );
    assert_eq!(a["v1"]["content"]["tags"].as_array().unwrap().len(), 8);
    assert_eq!(a["v3"]["status"], "IN_REVIEW");
    assert_eq!(a["v3"]["revisionNumber"], 2);
    assert_eq!(a["before"], Value::Null);
    assert_eq!(a["now"]["version"], 3, "now is after every event");
    assert_eq!(
        a["now"]["content"]["headline"],
        "NATO rejects Serbia's request for troops in Kosovo"
    );

    // A diff of a revision that does not exist, and asOf without a point, are refused.
    staff
        .viewer
        .fails(
            "query($id: ID!) { article(id: $id) { diff(from: 1, to: 9) { from } } }",
            json!({ "id": id }),
            "VALIDATION_FAILED",
        )
        .await;
    staff
        .viewer
        .fails(
            "query($id: ID!) { article(id: $id) { asOf { version } } }",
            json!({ "id": id }),
            "VALIDATION_FAILED",
        )
        .await;
    server.shutdown().await.expect("a clean shutdown");
    backend.cleanup().await;
}

/// Now plus `seconds`, as RFC 3339.
fn chrono_now_plus(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

async fn body_html_is_rendered_and_sanitised(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let id = staff
        .editor
        .create(json!({
            "headline": "Hostile markup",
            "body": "Hello *world*.\n\n> A quote.\n\n[site](https://example.org) \
                     [bad](javascript:alert(1))\n\n<script>alert('x')</script>\
                     <img src=\"x.png\" onerror=\"alert(1)\"><a href=\"#\" onclick=\"steal()\">a</a>",
        }))
        .await;
    let seed = staff.editor.create(seed_article()).await;
    let data = staff
        .viewer
        .ok(
            "query($a: ID!, $b: ID!) { a: article(id: $a) { bodyHtml revision(number: 1) { bodyHtml } \
             asOf(version: 1) { bodyHtml } } b: article(id: $b) { bodyHtml } }",
            json!({ "a": id, "b": seed }),
        )
        .await;
    let html = data["a"]["bodyHtml"].as_str().unwrap();
    assert!(html.contains("<em>world</em>"), "{html}");
    assert!(html.contains("<blockquote>"), "{html}");
    assert!(
        html.contains(r#"<a href="https://example.org" rel="noopener noreferrer">site</a>"#),
        "{html}"
    );
    for bad in ["<script", "alert('x')", "onerror", "onclick", "javascript:"] {
        assert!(!html.contains(bad), "{bad} survived in {html}");
    }
    assert_eq!(data["a"]["revision"]["bodyHtml"], data["a"]["bodyHtml"]);
    assert_eq!(data["a"]["asOf"]["bodyHtml"], data["a"]["bodyHtml"]);
    let seed_html = data["b"]["bodyHtml"].as_str().unwrap();
    assert!(
        seed_html.contains("<blockquote>\n<p>We all knew"),
        "{seed_html}"
    );
    assert!(seed_html.contains("Vučić"));
    // The seed's `[…](#)` link is relative: only absolute http, https and mailto links keep
    // their target, so the text stays and the href goes.
    assert!(
        seed_html.contains(r#"<a rel="noopener noreferrer">comes as no surprise</a>"#),
        "{seed_html}"
    );
    server.shutdown().await.expect("a clean shutdown");
    backend.cleanup().await;
}

async fn search_review_queue_and_dashboard_reflect_the_newsroom(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;

    // Search: accent-insensitive, ranked, combined with filters.
    let seed = staff.editor.create(seed_article()).await;
    let mut other = short_article("Vučić visits Brussels");
    other["category"] = json!("Politics");
    let brussels = staff.editor.create(other).await;
    staff.editor.create(short_article("Weather warning")).await;
    let search = |text: &'static str, category: Option<&'static str>| {
        let viewer = staff.viewer.clone();
        async move {
            viewer.search_indexed().await;
            let data = viewer
                .ok(
                    "query($f: ArticleFilterInput) { articles(filter: $f, orderBy: RELEVANCE) \
                     { edges { node { id } } } }",
                    json!({ "f": { "text": text, "category": category } }),
                )
                .await;
            data["articles"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // (Ranking is asserted by the storage suite; here the hits.)
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let both = sorted(vec![brussels.clone(), seed.clone()]);
    assert_eq!(sorted(search("vucic", None).await), both);
    assert_eq!(sorted(search("VUČIĆ", None).await), both);
    assert_eq!(search("strpac", None).await, [seed.as_str()]);
    assert_eq!(search("vucic", Some("Politics")).await, [brussels.as_str()]);
    assert!(search("nothing like this", None).await.is_empty());

    // The review queue: rob's assignments first, then unassigned, oldest submission first.
    let first = staff.editor.create(short_article("Queue one")).await;
    let second = staff.editor.create(short_article("Queue two")).await;
    staff.editor.mutate("submitForReview", &first, 1, "").await;
    let rob = staff.reviewer.user().id.clone();
    staff
        .editor
        .mutate(
            "assignReviewer",
            &second,
            1,
            &format!(", reviewerId: \"{rob}\""),
        )
        .await;
    staff.editor.mutate("submitForReview", &second, 2, "").await;
    let queue = staff
        .reviewer
        .ok(
            "{ reviewQueue { edges { node { id status } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        node_ids(&queue["reviewQueue"]),
        [second.as_str(), first.as_str()]
    );
    // Another reviewer's queue, as a viewer sees it: only the unassigned one.
    let other_queue = staff
        .viewer
        .ok(
            "query($r: ID) { reviewQueue(reviewer: $r) { edges { node { id } } } }",
            json!({ "r": staff.admin.user().id }),
        )
        .await;
    assert_eq!(
        other_queue["reviewQueue"]["edges"],
        json!([{ "node": { "id": first } }])
    );

    // Decisions: rob sends `first` back, approves `second`; penny publishes `second`.
    staff
        .reviewer
        .mutate("requestChanges", &first, 2, ", reason: \"Needs a source\"")
        .await;
    staff
        .reviewer
        .mutate("approveRevision", &second, 3, ", revision: 1")
        .await;
    staff
        .publisher
        .mutate("publishArticle", &second, 4, "")
        .await;

    // A scheduled publication that an embargo set afterwards blocks: the scheduler leaves it
    // overdue with the reason.
    let blocked = approved_article(&staff.editor, &staff.reviewer, "Blocked story").await;
    staff
        .publisher
        .mutate(
            "publishArticle",
            &blocked,
            3,
            &format!(", publishAt: \"{}\"", chrono_now_plus(2)),
        )
        .await;
    staff
        .editor
        .mutate(
            "setEmbargo",
            &blocked,
            4,
            &format!(", until: \"{}\"", chrono_now_plus(3600)),
        )
        .await;

    const DASHBOARD: &str = "{ dashboard { from to statusCounts { status count } \
        publishedPerDay { day count } timeToFirstPublish { count p50Seconds p90Seconds } \
        reviewTurnaround { count p50Seconds p90Seconds } bounceBacks { changesRequested articles } \
        reviewers { reviewerId reviewer { name } approvals changesRequested medianTurnaroundSeconds } \
        overdue { articleId headline scheduledFor blockedReason article { status } } } }";
    let deadline = tokio::time::Instant::now() + GUARD;
    let dash = loop {
        let data = staff.viewer.ok(DASHBOARD, json!({})).await;
        let dash = data["dashboard"].clone();
        if dash["overdue"][0]["blockedReason"].is_string() {
            break dash;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scheduler never marked the blocked publication: {dash}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let count = |status: &str| {
        dash["statusCounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["status"] == status)
            .map(|c| c["count"].as_u64().unwrap())
    };
    assert_eq!(count("DRAFT"), Some(3), "{dash}");
    assert_eq!(count("CHANGES_REQUESTED"), Some(1));
    assert_eq!(count("PUBLISHED"), Some(1));
    assert_eq!(count("SCHEDULED"), Some(1));
    assert_eq!(count("ARCHIVED"), Some(0));
    let per_day = dash["publishedPerDay"].as_array().unwrap();
    assert!(per_day.len() >= 30, "every day of the default window");
    assert_eq!(
        per_day
            .iter()
            .map(|d| d["count"].as_u64().unwrap())
            .sum::<u64>(),
        1
    );
    assert_eq!(dash["timeToFirstPublish"]["count"], 1);
    assert!(dash["timeToFirstPublish"]["p50Seconds"].as_f64().unwrap() >= 0.0);
    // first (sent back), second and blocked (approved).
    assert_eq!(dash["reviewTurnaround"]["count"], 3);
    assert_eq!(
        dash["bounceBacks"],
        json!([{ "changesRequested": 0, "articles": 2 }, { "changesRequested": 1, "articles": 1 }])
    );
    let reviewers = dash["reviewers"].as_array().unwrap();
    assert_eq!(reviewers.len(), 1);
    assert_eq!(reviewers[0]["reviewer"]["name"], "rob");
    assert_eq!(reviewers[0]["approvals"], 2);
    assert_eq!(reviewers[0]["changesRequested"], 1);
    assert!(reviewers[0]["medianTurnaroundSeconds"].as_f64().unwrap() >= 0.0);
    let overdue = dash["overdue"].as_array().unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["articleId"], blocked.as_str());
    assert_eq!(overdue[0]["headline"], "Blocked story");
    assert_eq!(overdue[0]["article"]["status"], "SCHEDULED");
    assert!(
        overdue[0]["blockedReason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("embargo"),
        "{dash}"
    );
    // The article itself still says SCHEDULED: the scheduler did not skip it silently.
    wait_for_article(&staff.viewer, &blocked, |a| a["status"] == "SCHEDULED").await;

    // One category, and a window that is refused.
    let politics = staff
        .viewer
        .ok(
            "{ dashboard(category: \"Politics\") { statusCounts { count } overdue { articleId } } }",
            json!({}),
        )
        .await;
    let total: u64 = politics["dashboard"]["statusCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1);
    assert_eq!(politics["dashboard"]["overdue"], json!([]));
    staff
        .viewer
        .fails(
            "{ dashboard(from: \"2026-01-01T00:00:00Z\", to: \"2024-01-01T00:00:00Z\") { from } }",
            json!({}),
            "VALIDATION_FAILED",
        )
        .await;

    // Nobody anonymous reads any of it.
    let anonymous = Client::new(&server, None);
    for query in [
        "{ dashboard { from } }",
        "{ reviewQueue { edges { node { id } } } }",
        "{ articles(filter: { text: \"vucic\" }) { edges { node { id } } } }",
    ] {
        let reply = anonymous.post(query, json!({})).await;
        assert_eq!(
            reply.code(),
            Some("UNAUTHENTICATED"),
            "{query}: {}",
            reply.body
        );
        assert!(
            reply.body["data"].is_null() || reply.body.get("data").is_none(),
            "{}",
            reply.body
        );
    }
    server.shutdown().await.expect("a clean shutdown");
    backend.cleanup().await;
}

/// A list whose selection shows no body is read without bodies; every way of asking for one
/// (a field, a fragment, an inline fragment, `nodes`, `content`, `bodyHtml`) still answers with
/// each article's own body, and the headline-only page lists the same articles in the same order.
async fn a_list_shows_bodies_only_when_asked_and_always_the_right_ones(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let body = |i: usize| format!("The body of **article {i}**.");
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut article = short_article(&format!("Lean list {i}"));
        article["body"] = json!(body(i));
        article["tags"] = json!([format!("lean-{i}"), "desk"]);
        article["byline"] = json!([format!("Writer {i}")]);
        ids.push(staff.editor.create(article).await);
    }
    let lean = staff
        .viewer
        .ok(
            "{ articles(first: 3) { edges { cursor node { id headline status } } } }",
            json!({}),
        )
        .await;
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(node_ids(&lean["articles"]), newest_first);

    let full = staff
        .viewer
        .ok(
            r#"query {
                a: articles(first: 3) { edges { cursor node { id ...Body } } }
                b: articles(first: 3) { nodes { id ... on Article { html: bodyHtml } } }
                c: articles(first: 3) { nodes { id content { body } } }
                d: articles(first: 3) { edges { node { id } } nodes { body } }
            }
            fragment Body on Article { body }"#,
            json!({}),
        )
        .await;
    let number = |id: &str| ids.iter().position(|i| i == id).unwrap();
    let body_of = |id: &Value| json!(body(number(id.as_str().unwrap())));
    for (n, edge) in full["a"]["edges"].as_array().unwrap().iter().enumerate() {
        let node = &edge["node"];
        assert_eq!(node["body"], body_of(&node["id"]));
        assert_eq!(edge["cursor"], lean["articles"]["edges"][n]["cursor"]);
    }
    for node in full["b"]["nodes"].as_array().unwrap() {
        let i = number(node["id"].as_str().unwrap());
        let html = node["html"].as_str().unwrap();
        assert!(
            html.contains(&format!("<strong>article {i}</strong>")),
            "{html}"
        );
    }
    for node in full["c"]["nodes"].as_array().unwrap() {
        assert_eq!(node["content"]["body"], body_of(&node["id"]));
    }
    let d = &full["d"];
    for (edge, node) in d["edges"]
        .as_array()
        .unwrap()
        .iter()
        .zip(d["nodes"].as_array().unwrap())
    {
        assert_eq!(node["body"], body_of(&edge["node"]["id"]));
    }

    // Tags, byline and people are read only when shown, and always right when they are.
    let details = staff
        .viewer
        .ok(
            r#"query {
                e: articles(first: 3) { nodes { id tags byline authors { name } reviewers { name } } }
                f: articles(first: 3) { edges { node { id ...Tags } } }
                g: articles(first: 3) { nodes { id headline status } edges { node { byline } } }
            }
            fragment Tags on Article { tags }"#,
            json!({}),
        )
        .await;
    let editor_name = staff.editor.ok("{ me { name } }", json!({})).await["me"]["name"].clone();
    assert!(editor_name.is_string());
    let tags_of = |id: &Value| {
        let i = number(id.as_str().unwrap());
        json!([format!("lean-{i}"), "desk"])
    };
    let byline_of = |id: &Value| json!([format!("Writer {}", number(id.as_str().unwrap()))]);
    for node in details["e"]["nodes"].as_array().unwrap() {
        assert_eq!(node["tags"], tags_of(&node["id"]));
        assert_eq!(node["byline"], byline_of(&node["id"]));
        assert_eq!(node["authors"], json!([{ "name": editor_name }]));
        assert_eq!(node["reviewers"], json!([]));
    }
    for edge in details["f"]["edges"].as_array().unwrap() {
        assert_eq!(edge["node"]["tags"], tags_of(&edge["node"]["id"]));
    }
    let g = &details["g"];
    for (node, edge) in g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(g["edges"].as_array().unwrap())
    {
        assert_eq!(edge["node"]["byline"], byline_of(&node["id"]));
        assert_eq!(node["status"], "DRAFT");
    }
    assert_eq!(
        node_ids(&details["f"]),
        newest_first,
        "the same order whatever is read"
    );
    server.shutdown().await.expect("a clean shutdown");
    backend.cleanup().await;
}

async fn a_history_page_reads_payloads_only_when_shown_and_always_the_right_ones(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let id = staff.editor.create(short_article("Payloads, first")).await;
    let v = revise(&staff.editor, &id, 1, short_article("Payloads, second")).await;
    staff.editor.mutate("submitForReview", &id, v, "").await;
    let data = staff
        .viewer
        .ok(
            r#"query($id: ID!) {
                article(id: $id) {
                    lean: history(first: 10) { edges { cursor node { position version type recordedAt actor } } }
                    full: history(first: 10) { nodes { position type payload } }
                    viaFragment: history(first: 10, order: NEWEST_FIRST) { edges { node { position ...Payload } } }
                }
                log: events(filter: { articleId: $id }) { nodes { position type version recordedAt actor payload } }
            }
            fragment Payload on Event { type payload }"#,
            json!({ "id": id }),
        )
        .await;
    let log = data["log"]["nodes"].as_array().unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[1]["payload"]["content"]["headline"], "Payloads, second");
    let a = &data["article"];
    let lean = a["lean"]["edges"].as_array().unwrap();
    let full = a["full"]["nodes"].as_array().unwrap();
    let newest: Vec<&Value> = a["viaFragment"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!((lean.len(), full.len(), newest.len()), (3, 3, 3));
    for (i, event) in log.iter().enumerate() {
        let node = &lean[i]["node"];
        for field in ["position", "version", "type", "recordedAt", "actor"] {
            assert_eq!(node[field], event[field], "{field} of event {i}");
        }
        assert_eq!(lean[i]["cursor"], json!(event["version"].to_string()));
        assert_eq!(full[i]["payload"], event["payload"], "payload of event {i}");
        assert_eq!(full[i]["type"], event["type"]);
        let from_newest = newest[log.len() - 1 - i];
        assert_eq!(from_newest["position"], event["position"]);
        assert_eq!(from_newest["payload"], event["payload"]);
        assert!(!event["payload"].is_null(), "every event has a payload");
    }
    server.shutdown().await.expect("a clean shutdown");
    backend.cleanup().await;
}

/// Text search follows the log on its own: over HTTP, `searchIndex` says how far it has got,
/// and once its checkpoint reaches the revision's event (a bounded wait, no time asserted) the
/// revision is found and the words it dropped are not; the article itself is current as
/// soon as the mutation answers.
async fn a_text_search_finds_a_revision_once_the_index_has_reached_it(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let editor = &staff.editor;
    let hits = |text: &'static str| async move {
        let data = editor
            .ok(
                "query($t: String) { articles(filter: { text: $t }) { nodes { id } } }",
                json!({ "t": text }),
            )
            .await;
        data["articles"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let id = editor
        .create(short_article("Lighthouse keepers strike"))
        .await;
    let created = editor.head().await;
    assert!(editor.search_indexed().await >= created);
    assert_eq!(hits("lighthouse").await, std::slice::from_ref(&id));

    revise(editor, &id, 1, short_article("Ferry crews strike")).await;
    let revised = editor.head().await;
    let data = editor
        .ok(
            "query($id: ID!) { article(id: $id) { headline } searchIndex { checkpoint head lag } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["article"]["headline"], "Ferry crews strike", "at once");
    let index = &data["searchIndex"];
    let (checkpoint, head) = (index["checkpoint"].as_u64(), index["head"].as_u64());
    assert_eq!(head, Some(revised), "{index}");
    assert_eq!(
        index["lag"].as_u64(),
        Some(revised - checkpoint.unwrap()),
        "{index}"
    );
    assert!(editor.search_indexed().await >= revised);
    assert_eq!(hits("ferry").await, std::slice::from_ref(&id));
    assert!(
        hits("lighthouse").await.is_empty(),
        "the old words are gone"
    );

    let anonymous = Client::new(&server, None);
    let reply = anonymous.post("{ searchIndex { lag } }", json!({})).await;
    assert_eq!(reply.code(), Some("UNAUTHENTICATED"), "{}", reply.body);
    server.shutdown().await.expect("a clean shutdown");
    backend.cleanup().await;
}
