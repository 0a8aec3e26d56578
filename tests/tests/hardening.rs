//! The hardening a public newsroom API needs, over real HTTP and WebSocket: the
//! GraphQL-over-HTTP rules (media types, status codes, no `data` on request errors), the CSRF
//! rules (no mutation from GET or from a POST that is not JSON), batches, document limits,
//! body size, introspection, and every close code of graphql-transport-ws.

use futures::SinkExt;
use galley_tests::{
    on_both_backends, short_article, start, Backend, Client, Newsroom, Reply, Ws,
    GRAPHQL_RESPONSE_JSON,
};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    the_http_transport_refuses_what_the_graphql_over_http_rules_refuse,
    expensive_documents_are_refused_before_they_run,
    a_document_sent_again_runs_with_its_own_operation_and_variables,
    a_query_that_passed_validation_is_still_refused_with_bad_variables,
    every_graphql_transport_ws_close_code_is_honoured,
);

const CREATE: &str = "mutation { createArticle(content: {headline: \"Forged\", body: \"By a cross-site form.\"}) { article { id } } }";

/// A 4xx with a BAD_REQUEST error and no `data`.
fn assert_rejected(reply: &Reply, status: u16, context: &str) {
    assert_eq!(reply.status, status, "{context}: {}", reply.body);
    assert!(
        reply.body.get("data").is_none(),
        "{context}: {}",
        reply.body
    );
    assert_eq!(
        reply.code(),
        Some("BAD_REQUEST"),
        "{context}: {}",
        reply.body
    );
}

async fn the_http_transport_refuses_what_the_graphql_over_http_rules_refuse(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let editor = &staff.editor;
    let head = editor.head().await;

    // A mutation never runs from GET: 405 with Allow: POST, whether the document holds only
    // the mutation or the mutation is picked from several operations by name.
    let reply = editor.send(editor.get().query(&[("query", CREATE)])).await;
    assert_rejected(&reply, 405, "GET mutation");
    assert_eq!(reply.headers["allow"], "POST");
    let both = format!(
        "query Read {{ head }} {}",
        CREATE.replacen("mutation", "mutation Forge", 1)
    );
    let reply = editor
        .send(
            editor
                .get()
                .query(&[("query", both.as_str()), ("operationName", "Forge")]),
        )
        .await;
    assert_rejected(&reply, 405, "GET mutation by operationName");
    let reply = editor
        .send(
            editor
                .get()
                .query(&[("query", both.as_str()), ("operationName", "Read")]),
        )
        .await;
    assert_eq!(
        reply.status, 200,
        "a query over GET is fine: {}",
        reply.body
    );
    assert_eq!(reply.body["data"]["head"], head);

    // A POST that is not JSON is 415, whatever it holds: text/plain, forms, no type at all.
    let body = json!({ "query": CREATE }).to_string();
    for content_type in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/graphql"),
        None,
    ] {
        let mut req = editor.request().body(body.clone());
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        let reply = editor.send(req).await;
        assert_rejected(&reply, 415, &format!("{content_type:?}"));
    }
    let reply = editor
        .send(editor.request().form(&[("query", CREATE)]))
        .await;
    assert_rejected(&reply, 415, "form POST");

    // Batches are rejected, mutations in them included.
    let reply = editor
        .send(
            editor
                .request()
                .header("accept", GRAPHQL_RESPONSE_JSON)
                .json(&json!([{ "query": CREATE }, { "query": "{ head }" }])),
        )
        .await;
    assert_rejected(&reply, 400, "batch");
    assert_eq!(
        editor.head().await,
        head,
        "nothing written by GET, forms or batches"
    );

    // Above the body limit (1 MiB by default) is 413; just under it is served.
    let padding = |n: usize| format!("{{ head }} #{}", "x".repeat(n));
    let reply = editor
        .send(
            editor
                .request()
                .header("accept", GRAPHQL_RESPONSE_JSON)
                .json(&json!({ "query": padding(1024 * 1024) })),
        )
        .await;
    assert_rejected(&reply, 413, "oversize body");
    let reply = editor
        .send(
            editor
                .request()
                .json(&json!({ "query": padding(1000 * 1000) })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Media types: graphql-response+json is answered in kind, and a document that does not
    // parse or validate is a 4xx without `data`; under application/json the same is a 200
    // (as the specification asks of that legacy type), still without `data`; an Accept that
    // offers neither is 406.
    for (document, what, legacy_status) in [
        ("{ head ", "parse", 200),
        ("{ headline }", "validation", 200),
    ] {
        let reply = editor.post(document, json!({})).await;
        assert_rejected(&reply, 400, what);
        assert!(reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with(GRAPHQL_RESPONSE_JSON));
        let reply = editor
            .send(
                editor
                    .request()
                    .header("accept", "application/json")
                    .json(&json!({ "query": document })),
            )
            .await;
        assert_rejected(&reply, legacy_status, what);
        assert!(reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
    }
    let reply = editor
        .send(
            editor
                .request()
                .header("accept", "text/html")
                .json(&json!({ "query": "{ head }" })),
        )
        .await;
    assert_eq!(reply.status, 406);
    // A subscription is served over WebSocket only.
    let reply = editor
        .post("subscription { events { position } }", json!({}))
        .await;
    assert_rejected(&reply, 400, "subscription over HTTP");

    // Introspection: refused without a token (no schema, no suggestions), served with one.
    let anonymous = Client::new(&server, None);
    for document in ["{ __schema { types { name } } }", "{ heda }"] {
        let reply = anonymous.post(document, json!({})).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.code(), Some("UNAUTHENTICATED"));
        assert!(reply.body.get("data").is_none());
        assert!(
            !reply.body.to_string().contains("Did you mean"),
            "{}",
            reply.body
        );
    }
    let data = staff
        .viewer
        .ok(
            "{ __schema { queryType { name } mutationType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["__schema"]["mutationType"]["name"], "Mutation");

    // A request id sent in comes back out; one is made up when none is sent.
    let reply = editor
        .send(
            editor
                .request()
                .header("x-request-id", "hardening-1")
                .json(&json!({ "query": "{ head }" })),
        )
        .await;
    assert_eq!(reply.headers["x-request-id"], "hardening-1");
    let reply = editor.post("{ head }", json!({})).await;
    assert!(!reply.headers["x-request-id"].is_empty());

    assert_eq!(editor.head().await, head);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

/// The server keeps parsed documents by their text (crates/api/src/documents.rs): a document
/// sent again must still run the operation that request names, with that request's
/// variables, and a document that does not parse must keep failing.
async fn a_document_sent_again_runs_with_its_own_operation_and_variables(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let first = staff.editor.create(short_article("First of two")).await;
    let second = staff.editor.create(short_article("Second of two")).await;
    const DOC: &str = "query One($id: ID!) { article(id: $id) { headline } } \
                       query Head { head }";
    let head = staff.viewer.head().await;
    for round in 0..3 {
        for (id, headline) in [(&first, "First of two"), (&second, "Second of two")] {
            let reply = staff
                .viewer
                .send(staff.viewer.request().json(&json!({
                    "query": DOC,
                    "operationName": "One",
                    "variables": { "id": id },
                })))
                .await;
            assert_eq!(reply.status, 200, "round {round}: {}", reply.body);
            assert_eq!(
                reply.body["data"]["article"]["headline"], headline,
                "round {round}"
            );
        }
        let reply = staff
            .viewer
            .send(
                staff
                    .viewer
                    .request()
                    .json(&json!({ "query": DOC, "operationName": "Head" })),
            )
            .await;
        assert_eq!(reply.body["data"]["head"], head, "round {round}");
        // Without a name the document is ambiguous, kept or not.
        let reply = staff.viewer.post(DOC, json!({ "id": first })).await;
        assert_rejected(&reply, 400, "no operation named");
        let reply = staff.viewer.post("{ head", json!({})).await;
        assert_rejected(&reply, 400, "a document that does not parse");
    }
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

/// What an error reply says, without what differs per request (request ids).
fn errors_of(reply: &Reply) -> (u16, Vec<(Value, Value)>) {
    let errors = reply.body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| (e["message"].clone(), e["extensions"]["code"].clone()))
                .collect()
        })
        .unwrap_or_default();
    (reply.status, errors)
}

/// A query whose text has run under full validation runs later with only what the text
/// cannot settle checked (`crates/api/src/http.rs`, `run`); bad variables must still get
/// exactly the answer full validation gives a text never seen, and a variable of an input
/// object type (whose parse at execution would let an unknown field through) is always
/// validated in full.
async fn a_query_that_passed_validation_is_still_refused_with_bad_variables(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    staff.editor.create(short_article("Validated once")).await;
    let client = &staff.viewer;
    const PAGE: &str =
        "query Page($first: Int!) { articles(first: $first) { edges { node { headline } } } }";
    const FILTERED: &str = "query Filtered($filter: ArticleFilterInput) { articles(first: 5, filter: $filter) { edges { node { headline } } } }";
    for (doc, good, bads) in [
        (
            PAGE,
            json!({ "first": 5 }),
            vec![
                json!({ "first": "ten" }),
                json!({ "first": null }),
                json!({}),
                json!({ "first": 1.5 }),
            ],
        ),
        (
            FILTERED,
            json!({ "filter": { "status": "DRAFT" } }),
            vec![
                json!({ "filter": { "nosuchfield": 1 } }),
                json!({ "filter": { "status": "NOT_A_STATUS" } }),
                json!({ "filter": "DRAFT" }),
            ],
        ),
    ] {
        // The first run validates the text in full; the others may run on what it settled,
        // and answer the same.
        let first = client.post(doc, good.clone()).await;
        assert_eq!(first.status, 200, "{doc}: {}", first.body);
        assert!(first.body.get("errors").is_none(), "{doc}: {}", first.body);
        assert_eq!(
            first.body["data"]["articles"]["edges"][0]["node"]["headline"], "Validated once",
            "{doc}: {}",
            first.body
        );
        for _ in 0..2 {
            let again = client.post(doc, good.clone()).await;
            assert_eq!(again.body, first.body, "{doc}");
        }
        for bad in bads {
            let kept = client.post(doc, bad.clone()).await;
            // The same document with one more space: a text never seen, validated in full.
            let fresh = client.post(&format!("{doc} "), bad.clone()).await;
            assert_eq!(
                (errors_of(&kept), &kept.body["data"]),
                (errors_of(&fresh), &fresh.body["data"]),
                "{doc} with {bad}: {} against {}",
                kept.body,
                fresh.body
            );
            // A value of the wrong kind is refused, kept text or not (a null for a non-null
            // variable given to a nullable argument is not, by async-graphql: the same
            // answer either way is what matters here).
            if !bad.to_string().contains("null") && bad != json!({}) {
                assert!(
                    !errors_of(&kept).1.is_empty() && kept.body["data"].is_null(),
                    "{doc} with {bad}: {}",
                    kept.body
                );
            }
        }
    }
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn expensive_documents_are_refused_before_they_run(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let client = &staff.viewer;
    // Some data, so that refusals are not an artefact of an empty database.
    staff
        .editor
        .create(short_article("Something to read"))
        .await;

    let aliases = |n: usize| {
        (0..n)
            .map(|i| format!("a{i}: head"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Up to the alias limit (30) is served; one more is refused, in the operation or hidden
    // in a fragment.
    let data = client
        .ok(&format!("{{ {} }}", aliases(30)), json!({}))
        .await;
    assert_eq!(data.as_object().unwrap().len(), 30);
    let reply = client
        .post(&format!("{{ {} }}", aliases(31)), json!({}))
        .await;
    assert_rejected(&reply, 400, "alias flood");
    let reply = client
        .post(
            &format!("{{ ...F }} fragment F on Query {{ {} }}", aliases(31)),
            json!({}),
        )
        .await;
    assert_rejected(&reply, 400, "alias flood in a fragment");
    // Sent again, the flood is served from the kept parse and refused the same way.
    let reply = client
        .post(&format!("{{ {} }}", aliases(31)), json!({}))
        .await;
    assert_rejected(&reply, 400, "alias flood sent again");
    // Mutations are no way around it: an alias flood of createArticle writes nothing.
    let flood = (0..40)
        .map(|i| {
            format!(
                "c{i}: createArticle(content: {{headline: \"Flood {i}\"}}) {{ article {{ id }} }}"
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let head = client.head().await;
    let reply = staff
        .editor
        .post(&format!("mutation {{ {flood} }}"), json!({}))
        .await;
    assert_rejected(&reply, 400, "mutation alias flood");
    assert_eq!(client.head().await, head);

    // Too deep: the event → article → history → event cycle nested past the depth limit.
    let mut deep = "type".to_owned();
    for _ in 0..5 {
        deep = format!("article {{ history(first: 1) {{ nodes {{ {deep} }} }} }}");
    }
    let reply = client
        .post(
            &format!("{{ events(first: 1) {{ nodes {{ {deep} }} }} }}"),
            json!({}),
        )
        .await;
    assert_rejected(&reply, 400, "deep query");
    // Too complex: lists weighted by `first`.
    let reply = client
        .post(
            "{ articles(first: 100) { nodes { history(first: 100) { nodes { type actorUser { name } } } } } }",
            json!({}),
        )
        .await;
    assert_rejected(&reply, 400, "complex query");
    // Huge `first` values nested three deep must not overflow the complexity arithmetic (a
    // panic would drop the connection without an answer): they are refused like any other.
    let reply = client
        .post(
            "{ articles(first: 2147483647) { nodes { history(first: 2147483647) { nodes { article { history(first: 2147483647) { nodes { type } } } } } } } }",
            json!({}),
        )
        .await;
    assert_rejected(&reply, 400, "complexity overflow");
    // Too many directives on one field.
    let directives = "@include(if: true) ".repeat(11);
    let reply = client
        .post(&format!("{{ head {directives} }}"), json!({}))
        .await;
    assert_rejected(&reply, 400, "directive flood");
    // Pages are capped.
    let error = client
        .fails(
            "{ events(first: 1000) { nodes { type } } }",
            json!({}),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(error["extensions"]["field"], "first");
    // Search text is data, never query syntax: full-text operators, wildcards, quotes and
    // SQL are searched for (and found nowhere), not interpreted or failed on.
    client.search_indexed().await;
    for text in [
        "\"unbalanced",
        "AND OR NOT",
        "NEAR(x y",
        "a:b",
        "*",
        "100%",
        "_",
        "'; DROP TABLE articles; --",
        "\\",
        "(",
    ] {
        let data = client
            .ok(
                "query($t: String!) { articles(filter: {text: $t}, orderBy: RELEVANCE) { nodes { headline } } }",
                json!({ "t": text }),
            )
            .await;
        assert_eq!(data["articles"]["nodes"], json!([]), "{text}");
    }
    let data = client
        .ok(
            "{ articles(filter: {text: \"something\"}) { nodes { headline } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["articles"]["nodes"],
        json!([{ "headline": "Something to read" }])
    );

    // A fragment that spreads itself never validates.
    let reply = client
        .post(
            "{ ...A } fragment A on Query { head ...B } fragment B on Query { ...A }",
            json!({}),
        )
        .await;
    assert_rejected(&reply, 400, "fragment cycle");

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn every_graphql_transport_ws_close_code_is_honoured(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let token = staff.viewer.user().token.clone();
    let feed = "subscription { events { position type } }";

    // 4400: messages that are not of the protocol.
    for bad in [
        Message::Text("not json".into()),
        Message::Text(json!({ "type": "bogus" }).to_string().into()),
        Message::Text(json!({ "payload": {} }).to_string().into()),
        Message::Text(
            json!({ "type": "subscribe", "payload": { "query": feed } })
                .to_string()
                .into(),
        ),
        Message::Text(
            json!({ "type": "subscribe", "id": "x", "payload": 7 })
                .to_string()
                .into(),
        ),
        Message::Binary(vec![1u8, 2, 3].into()),
    ] {
        let mut ws = Ws::init(&server, &token).await;
        let what = format!("{bad:?}");
        ws.send_frame(bad).await;
        assert_eq!(ws.close_code().await, 4400, "{what}");
    }

    // 4401: subscribe before connection_ack.
    let mut ws = Ws::connect(&server).await;
    ws.subscribe("1", feed, json!({})).await;
    assert_eq!(ws.close_code().await, 4401);

    // 4403: a token that is unknown, or none.
    for payload in [
        json!({ "token": "glly_unknown" }),
        json!({}),
        json!({ "Authorization": "Basic dmljOnB3" }),
    ] {
        let mut ws = Ws::connect(&server).await;
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        assert_eq!(ws.close_code().await, 4403, "{payload}");
    }

    // 4403 too: a token revoked after the connection was acknowledged starts nothing more.
    let leaver = galley_tests::add_user(&server, "leaver", &[galley_domain::Role::Viewer]).await;
    let mut ws = Ws::init(&server, &leaver.token).await;
    server
        .store()
        .revoke_tokens("leaver", chrono::Utc::now())
        .await
        .unwrap();
    ws.subscribe("1", feed, json!({})).await;
    assert_eq!(ws.close_code().await, 4403, "revoked after init");

    // 4408: no connection_init within the (test-configured, half-second) timeout.
    let mut ws = Ws::connect(&server).await;
    assert_eq!(ws.close_code().await, 4408);

    // 4429: a second connection_init, even after the first was acknowledged.
    let mut ws = Ws::init(&server, &token).await;
    ws.send(json!({ "type": "connection_init", "payload": { "token": token } }))
        .await;
    assert_eq!(ws.close_code().await, 4429);

    // 4409: a second subscription under an id that is still running.
    let mut ws = Ws::init(&server, &token).await;
    ws.subscribe("dup", feed, json!({})).await;
    ws.subscribe("dup", feed, json!({})).await;
    assert_eq!(ws.close_code().await, 4409);

    // ping/pong, at the protocol level (with a payload) and the transport level; a client's
    // pong is accepted silently; an id may be reused once its operation completed.
    let mut ws = Ws::init(&server, &token).await;
    ws.send(json!({ "type": "ping", "payload": { "at": 1 } }))
        .await;
    assert_eq!(ws.recv().await.unwrap()["type"], "pong");
    ws.send(json!({ "type": "pong" })).await;
    ws.send_frame(Message::Ping(b"are you there".to_vec().into()))
        .await;
    match ws.next_frame().await.expect("a pong frame") {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("unexpected frame {other:?}"),
    }
    for _ in 0..2 {
        ws.subscribe("again", "{ me { name } }", json!({})).await;
        let data = ws.next_data("again").await;
        assert_eq!(data["me"]["name"], "vic");
        assert_eq!(
            ws.recv().await.unwrap(),
            json!({ "type": "complete", "id": "again" })
        );
    }
    // A subscription the client completes stops; the socket stays open and usable.
    ws.subscribe("live", feed, json!({})).await;
    ws.send(json!({ "type": "complete", "id": "live" })).await;
    // The pong proves the server has read the complete (messages are handled in order).
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.recv().await.unwrap()["type"], "pong");
    staff
        .editor
        .create(short_article("After the complete"))
        .await;
    ws.send(json!({ "type": "ping" })).await;
    let message = ws.recv().await.unwrap();
    assert_eq!(
        message["type"], "pong",
        "nothing from a completed subscription: {message}"
    );
    // Operations over WebSocket pass the same document limits.
    let flood = (0..31)
        .map(|i| format!("a{i}: head"))
        .collect::<Vec<_>>()
        .join(" ");
    ws.subscribe("flood", &format!("{{ {flood} }}"), json!({}))
        .await;
    let message = ws.recv().await.unwrap();
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["payload"][0]["extensions"]["code"], "BAD_REQUEST");
    // A viewer's mutation over WebSocket is FORBIDDEN like over HTTP.
    ws.subscribe(
        "write",
        "mutation { createArticle(content: {headline: \"Via socket\"}) { article { id } } }",
        json!({}),
    )
    .await;
    let message = ws.recv().await.unwrap();
    let errors: &Value = if message["type"] == "next" {
        &message["payload"]["errors"]
    } else {
        &message["payload"]
    };
    assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{message}");

    // A frame above the body limit is not accepted: the server ends the connection.
    let mut big = Ws::init(&server, &token).await;
    let huge = "x".repeat(1024 * 1024 + 1);
    let _ = big
        .socket
        .send(Message::Text(
            json!({ "type": "ping", "payload": { "pad": huge } })
                .to_string()
                .into(),
        ))
        .await;
    assert!(big.close_code().await >= 1000, "the connection is closed");

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}
