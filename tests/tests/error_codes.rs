//! Every code of the API's error table (DESIGN.md §6) is provoked over real HTTP and asserted:
//! its `extensions.code`, the extra fields it promises (`currentVersion`, `field`,
//! `requestId`), its HTTP status where the transport sets one, and that nothing was written.

use std::collections::BTreeSet;
use std::sync::Mutex;

use galley_domain::Role;
use galley_tests::{
    add_user, approved_article, mutation, on_both_backends, seed_article, short_article, start,
    start_with, test_config, Backend, Client, Newsroom, Reply, Ws, GRAPHQL_RESPONSE_JSON,
};
use serde_json::{json, Value};

on_both_backends!(
    every_refusal_of_the_workflow_has_its_own_code,
    the_rate_limit_answers_429_with_rate_limited_per_token,
    a_database_failure_is_an_internal_server_error_with_a_masked_message_and_the_request_id,
    a_server_on_an_unmigrated_database_is_not_ready_and_masks_its_failures,
);

/// The codes a scenario provoked, checked against the table at the end.
#[derive(Default)]
struct Seen(Mutex<BTreeSet<String>>);

impl Seen {
    fn saw(&self, error: &Value) -> Value {
        let code = error["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("an error with a code: {error}"));
        self.0.lock().unwrap().insert(code.to_owned());
        error.clone()
    }
}

async fn every_refusal_of_the_workflow_has_its_own_code(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let seen = Seen::default();
    let (editor, reviewer, publisher, viewer, admin) = (
        &staff.editor,
        &staff.reviewer,
        &staff.publisher,
        &staff.viewer,
        &staff.admin,
    );
    let article = editor.create(seed_article()).await;
    let head = viewer.head().await;

    // UNAUTHENTICATED: no token, an unknown token, another scheme, a revoked token — each a
    // 401 with a Bearer challenge and no data.
    let anonymous = Client::new(&server, None);
    let revoked = add_user(&server, "gone", &[Role::Editor]).await;
    let revoked_client = Client::new(&server, Some(revoked.clone()));
    revoked_client.ok("{ me { name } }", json!({})).await;
    server
        .store()
        .revoke_tokens("gone", chrono::Utc::now())
        .await
        .unwrap();
    let unknown = galley_tests::User {
        token: "glly_0000".to_owned(),
        ..revoked.clone()
    };
    for client in [
        anonymous.clone(),
        Client::new(&server, Some(unknown)),
        revoked_client,
    ] {
        let reply = client
            .post(
                "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }",
                json!({ "c": short_article("Sneaked in") }),
            )
            .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
        assert!(reply.body.get("data").is_none(), "{}", reply.body);
        seen.saw(&reply.body["errors"][0]);
        assert_eq!(reply.code(), Some("UNAUTHENTICATED"));
    }
    let basic = anonymous
        .send(
            anonymous
                .request()
                .basic_auth("vic", Some("password"))
                .json(&json!({ "query": "{ head }" })),
        )
        .await;
    assert_eq!(basic.status, 401);
    assert_eq!(basic.code(), Some("UNAUTHENTICATED"));

    // FORBIDDEN: a viewer writes; a non-admin lists users.
    let error = viewer
        .fails(
            "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }",
            json!({ "c": short_article("Viewer's scoop") }),
            "FORBIDDEN",
        )
        .await;
    seen.saw(&error);
    let reply = editor.post("{ users { name } }", json!({})).await;
    assert_eq!(reply.code(), Some("FORBIDDEN"));
    assert_eq!(reply.body["data"], Value::Null);

    // NOT_FOUND: a command on an article that does not exist (a well-formed UUIDv7).
    let missing = uuid::Uuid::now_v7().to_string();
    let error = editor
        .fails(
            &mutation("submitForReview", ""),
            json!({ "id": missing, "v": 1 }),
            "NOT_FOUND",
        )
        .await;
    seen.saw(&error);
    assert_eq!(error["path"], json!(["submitForReview"]));
    // A read of a missing article is null, not an error.
    let data = viewer
        .ok(
            "query($id: ID!) { article(id: $id) { id } }",
            json!({ "id": missing }),
        )
        .await;
    assert_eq!(data["article"], Value::Null);

    // CONFLICT names the current version.
    let error = editor
        .fails(
            &mutation("submitForReview", ""),
            json!({ "id": article, "v": 7 }),
            "CONFLICT",
        )
        .await;
    assert_eq!(seen.saw(&error)["extensions"]["currentVersion"], 1);

    // INVALID_TRANSITION: approving a draft that was never submitted.
    let error = reviewer
        .fails(
            &mutation("approveRevision", ", revision: 1"),
            json!({ "id": article, "v": 1 }),
            "INVALID_TRANSITION",
        )
        .await;
    seen.saw(&error);

    // VALIDATION_FAILED names the field: from the domain, the API and the store's inputs.
    let empty = editor.create(json!({ "headline": "No body yet" })).await;
    for (client, query, variables, field) in [
        (
            editor,
            mutation("submitForReview", ""),
            json!({ "id": empty, "v": 1 }),
            "body",
        ),
        (
            editor,
            "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }"
                .to_owned(),
            json!({ "c": { "headline": "Bad slug", "body": "x", "slug": "Not A Slug!" } }),
            "slug",
        ),
        (
            editor,
            "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }"
                .to_owned(),
            json!({ "c": { "headline": "Bad language", "body": "x", "language": "not a language tag" } }),
            "language",
        ),
        (
            editor,
            mutation("submitForReview", ""),
            json!({ "id": "not-an-id", "v": 1 }),
            "articleId",
        ),
        (
            editor,
            mutation("submitForReview", ", idempotencyKey: \"\""),
            json!({ "id": article, "v": 1 }),
            "idempotencyKey",
        ),
        (
            viewer,
            "{ articles(first: 101) { nodes { id } } }".to_owned(),
            json!({}),
            "first",
        ),
    ] {
        let error = client.fails(&query, variables, "VALIDATION_FAILED").await;
        assert_eq!(seen.saw(&error)["extensions"]["field"], field, "{error}");
    }
    // A reason is required: submit the seed, then request changes with a blank reason.
    editor.mutate("submitForReview", &article, 1, "").await;
    let error = reviewer
        .fails(
            &mutation("requestChanges", ", reason: \"   \""),
            json!({ "id": article, "v": 2 }),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(seen.saw(&error)["extensions"]["field"], "reason");

    // SLUG_TAKEN: a second article with the seed's headline derives the same slug.
    let before = viewer.head().await;
    let error = editor
        .fails(
            "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }",
            json!({ "c": { "headline": seed_article()["headline"], "body": "Copy." } }),
            "SLUG_TAKEN",
        )
        .await;
    seen.saw(&error);
    assert_eq!(viewer.head().await, before, "nothing written");

    // EMBARGOED: an approved article under a future embargo cannot be published now.
    let embargoed = approved_article(editor, reviewer, "Budget leak").await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    editor
        .ok(
            "mutation($id: ID!, $until: DateTime!) { setEmbargo(articleId: $id, expectedVersion: 3, until: $until) { article { version } } }",
            json!({ "id": embargoed, "until": until }),
        )
        .await;
    let error = publisher
        .fails(
            &mutation("publishArticle", ""),
            json!({ "id": embargoed, "v": 4 }),
            "EMBARGOED",
        )
        .await;
    seen.saw(&error);
    // An admin lifts it with a reason, and then it publishes.
    admin
        .mutate(
            "liftEmbargo",
            &embargoed,
            4,
            ", reason: \"The minister spoke early.\"",
        )
        .await;
    publisher.mutate("publishArticle", &embargoed, 5, "").await;

    // SELF_APPROVAL: an editor who also reviews may not approve their own article.
    let both = Client::new(
        &server,
        Some(add_user(&server, "dual", &[Role::Editor, Role::Reviewer]).await),
    );
    let own = both.create(short_article("My own piece")).await;
    both.mutate("submitForReview", &own, 1, "").await;
    let error = both
        .fails(
            &mutation("approveRevision", ", revision: 1"),
            json!({ "id": own, "v": 2 }),
            "SELF_APPROVAL",
        )
        .await;
    seen.saw(&error);

    // IDEMPOTENCY_KEY_REUSED: a retry of the same command replays it and writes nothing; the
    // same key on another command is refused.
    let create = "mutation($c: ContentInput!) { createArticle(content: $c, idempotencyKey: \"key-1\") { article { id version } events { position } replayed } }";
    let first = editor
        .ok(create, json!({ "c": short_article("Once only") }))
        .await;
    let before = viewer.head().await;
    let again = editor
        .ok(create, json!({ "c": short_article("Once only") }))
        .await;
    assert_eq!(again["createArticle"]["replayed"], true);
    assert_eq!(
        again["createArticle"]["article"],
        first["createArticle"]["article"]
    );
    assert_eq!(
        again["createArticle"]["events"],
        first["createArticle"]["events"]
    );
    assert_eq!(viewer.head().await, before, "a replay writes nothing");
    let error = editor
        .fails(
            create,
            json!({ "c": short_article("Something else") }),
            "IDEMPOTENCY_KEY_REUSED",
        )
        .await;
    seen.saw(&error);
    assert_eq!(viewer.head().await, before);

    // BAD_REQUEST: a document that does not parse, one that does not validate, a body that is
    // not JSON, a variable of the wrong type, a malformed cursor.
    for (query, variables) in [
        ("{ head ", json!({})),
        ("{ nope }", json!({})),
        (
            "query($n: Int!) { articles(first: $n) { nodes { id } } }",
            json!({ "n": "ten" }),
        ),
    ] {
        let reply = viewer.post(query, variables).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert!(reply.body.get("data").is_none(), "{}", reply.body);
        seen.saw(&reply.body["errors"][0]);
        assert_eq!(reply.code(), Some("BAD_REQUEST"), "{}", reply.body);
    }
    let reply = viewer
        .send(
            viewer
                .request()
                .header("accept", GRAPHQL_RESPONSE_JSON)
                .header("content-type", "application/json")
                .body("{\"query\": "),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (400, Some("BAD_REQUEST")));
    let error = viewer
        .fails(
            "{ events(after: \"zz\") { nodes { position } } }",
            json!({}),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(error["extensions"]["field"], "after");

    // Over WebSocket the same table applies: a subscription on a malformed id is refused with
    // an `error` message carrying the code, and the socket stays open.
    let mut ws = Ws::init(&server, &viewer.user().token).await;
    ws.subscribe(
        "bad",
        "subscription { articleEvents(articleId: \"nope\") { version } }",
        json!({}),
    )
    .await;
    let message = ws.recv().await.unwrap();
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(
        message["payload"][0]["extensions"]["code"],
        "VALIDATION_FAILED"
    );
    assert_eq!(message["payload"][0]["extensions"]["field"], "articleId");

    // Nothing of the refusals above was written: only the successful commands moved the head.
    let events = viewer
        .ok("{ events(first: 100) { nodes { type } } }", json!({}))
        .await;
    assert_eq!(
        galley_tests::types(&events["events"]["nodes"]),
        [
            "ArticleCreated",     // the seed
            "ArticleCreated",     // the article without a body
            "SubmittedForReview", // the seed
            "ArticleCreated",     // Budget leak
            "SubmittedForReview",
            "RevisionApproved",
            "EmbargoSet",
            "EmbargoLifted",
            "ArticlePublished",
            "ArticleCreated", // My own piece
            "SubmittedForReview",
            "ArticleCreated", // Once only
        ]
    );
    assert_eq!(head, 1);

    let codes = seen.0.into_inner().unwrap();
    let expected: BTreeSet<String> = galley_api::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .filter(|c| {
            ![
                "RATE_LIMITED",
                "INTERNAL_SERVER_ERROR",
                "SERVICE_UNAVAILABLE",
            ]
            .contains(&c.as_str())
        })
        .collect();
    assert_eq!(
        codes, expected,
        "every code but RATE_LIMITED, INTERNAL_SERVER_ERROR and SERVICE_UNAVAILABLE (their own \
         tests; the last in outage.rs) is provoked here"
    );

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn the_rate_limit_answers_429_with_rate_limited_per_token(backend: Backend) {
    let mut config = test_config(&backend);
    config.limits.rate_limit_per_second = 1;
    config.limits.rate_limit_burst = 3;
    let server = start_with(config).await;
    let greedy = Client::new(
        &server,
        Some(add_user(&server, "greedy", &[Role::Editor]).await),
    );
    let patient = Client::new(
        &server,
        Some(add_user(&server, "patient", &[Role::Viewer]).await),
    );

    // Requests beyond the burst are refused with 429, RATE_LIMITED, a Retry-After and no
    // data. The bucket refills while the test runs, so the test counts rather than assumes
    // which requests are refused: every create that got through wrote exactly one event, and
    // every refused one wrote nothing.
    let mut created = 0;
    let mut refused = 0;
    for i in 0..8 {
        let reply = greedy
            .post(
                "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }",
                json!({ "c": short_article(&format!("Flood {i}")) }),
            )
            .await;
        match reply.status {
            200 => {
                assert!(reply.body.get("errors").is_none(), "{}", reply.body);
                created += 1;
            }
            429 => {
                assert_eq!(reply.code(), Some("RATE_LIMITED"), "{}", reply.body);
                assert!(reply.body.get("data").is_none(), "{}", reply.body);
                let wait: u64 = reply.headers["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait >= 1);
                refused += 1;
            }
            other => panic!("unexpected status {other}: {}", reply.body),
        }
    }
    assert!(refused > 0, "eight requests against a burst of three");
    assert_eq!(
        patient.head().await,
        created,
        "a refused mutation writes nothing"
    );

    // Another token has a bucket of its own.
    patient.ok("{ me { name } }", json!({})).await;

    // Operations over WebSocket draw from the same bucket: one of a quick series is refused
    // with an `error` message carrying the code.
    let mut ws = Ws::init(&server, &greedy.user().token).await;
    let mut limited = false;
    for i in 0..8 {
        let id = format!("q{i}");
        ws.subscribe(&id, "{ me { name } }", json!({})).await;
        let message = ws.recv().await.unwrap();
        if message["type"] == "error" {
            assert_eq!(message["id"], id.as_str());
            assert_eq!(message["payload"][0]["extensions"]["code"], "RATE_LIMITED");
            limited = true;
            break;
        }
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(ws.recv().await.unwrap()["type"], "complete");
    }
    assert!(limited, "eight operations against an empty bucket");

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn a_database_failure_is_an_internal_server_error_with_a_masked_message_and_the_request_id(
    backend: Backend,
) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let id = staff.editor.create(seed_article()).await;
    staff
        .reviewer
        .mutate(
            "addReviewComment",
            &id,
            1,
            ", revision: 1, body: \"Check names.\"",
        )
        .await;

    // A projection table disappears under the running server (an operator's mistake, a
    // failed migration): reads of it fail inside a resolver.
    server
        .store()
        .execute_raw_sql_for_tests("ALTER TABLE review_comments RENAME TO review_comments_lost")
        .await
        .unwrap();
    let reply = staff
        .viewer
        .send(
            staff
                .viewer
                .request()
                .header("accept", GRAPHQL_RESPONSE_JSON)
                .header("x-request-id", "req-internal-1")
                .json(&json!({
                    "query": "query($id: ID!) { article(id: $id) { id comments { body } } }",
                    "variables": { "id": id },
                })),
        )
        .await;
    assert_internal(&reply, "req-internal-1");

    // The pool is closed under the server: even authentication cannot reach the database,
    // which is answered the one way a database outage is (503, Retry-After,
    // SERVICE_UNAVAILABLE; see outage.rs), never as a 500.
    server.store().close().await;
    let reply = staff
        .viewer
        .send(
            staff
                .viewer
                .request()
                .header("accept", GRAPHQL_RESPONSE_JSON)
                .header("x-request-id", "req-internal-2")
                .json(&json!({ "query": "{ head }" })),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.body.get("data").is_none());
    assert_eq!(reply.code(), Some("SERVICE_UNAVAILABLE"), "{}", reply.body);
    assert_eq!(reply.headers["retry-after"], "1");
    assert!(!reply.body.to_string().contains("pool"), "{}", reply.body);
    let ready = reqwest::get(format!("{}/readyz", server.http_url()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let health = reqwest::get(format!("{}/healthz", server.http_url()))
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        200,
        "liveness does not depend on the database"
    );

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn a_server_on_an_unmigrated_database_is_not_ready_and_masks_its_failures(backend: Backend) {
    let mut config = test_config(&backend);
    config.migrate = false;
    config.scheduler_interval = None;
    let server = start_with(config).await;
    let ready = reqwest::get(format!("{}/readyz", server.http_url()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    // Without a request id from the client, the server makes one and names it in both places.
    let client = Client::new(
        &server,
        Some(galley_tests::User {
            id: String::new(),
            name: "nobody".to_owned(),
            token: "glly_whatever".to_owned(),
        }),
    );
    let reply = client.post("{ head }", json!({})).await;
    assert_eq!(reply.status, 500, "{}", reply.body);
    let generated = reply.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(!generated.is_empty());
    assert_internal(&reply, &generated);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

/// The error is INTERNAL_SERVER_ERROR with the fixed message and the request id, and nothing
/// of its cause (SQL, table names, driver messages) reaches the client.
fn assert_internal(reply: &Reply, request_id: &str) {
    let error = &reply.body["errors"][0];
    assert_eq!(
        error["extensions"]["code"], "INTERNAL_SERVER_ERROR",
        "{}",
        reply.body
    );
    assert_eq!(error["message"], "internal server error", "{}", reply.body);
    assert_eq!(
        error["extensions"]["requestId"], request_id,
        "{}",
        reply.body
    );
    assert_eq!(reply.headers["x-request-id"], request_id);
    let text = reply.body.to_string().to_lowercase();
    for leak in [
        "review_comments",
        "sql",
        "database",
        "pool",
        "relation",
        "table",
        "sqlx",
    ] {
        assert!(!text.contains(leak), "the cause leaked ({leak}): {text}");
    }
}
