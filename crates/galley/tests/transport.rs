//! The transport's refusals over real HTTP and WebSocket: authentication, the
//! GraphQL-over-HTTP rules, document limits and every graphql-transport-ws close code.

use std::time::Duration;

use galley_domain::Role;
use galley_tests::{add_user, start, test_config, Backend, Client, Reply, Ws};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refusals_follow_the_graphql_over_http_rules() {
    let backend = Backend::sqlite();
    let server = start(&backend).await;
    let token = add_user(&server, "vera", &[Role::Viewer]).await.token;
    let http = reqwest::Client::new();
    let url = server.graphql_url();

    // Health is public; readiness checks the database.
    let health = http
        .get(format!("{}/healthz", server.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let ready = http
        .get(format!("{}/readyz", server.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // No token: UNAUTHENTICATED and no data; introspection included.
    let anonymous = Client::new(&server, None);
    let Reply { status, body, .. } = anonymous
        .post("{ __schema { types { name } } }", json!({}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(body.get("data").is_none());
    let Reply { status, .. } = Client::with_token(&server, "glly_not-a-token")
        .post("{ me { id } }", json!({}))
        .await;
    assert_eq!(status, 401);

    // A request id sent in comes back out.
    let res = http
        .post(&url)
        .bearer_auth(&token)
        .header("x-request-id", "req-from-client")
        .json(&json!({"query": "{ me { name roles } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-from-client");
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["me"]["roles"][0], "VIEWER");

    // An unusable one is replaced by a UUIDv7.
    let res = http
        .get(format!("{}/healthz", server.http_url()))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");

    // A mutation over GET is 405; a query over GET is fine.
    let res = http
        .get(&url)
        .bearer_auth(&token)
        .query(&[(
            "query",
            "mutation { archiveArticle(articleId: \"x\", expectedVersion: 1) { events { type } } }",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let res = http
        .get(&url)
        .bearer_auth(&token)
        .query(&[("query", "{ me { name } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Not JSON: 415, whether text/plain or a form.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let res = http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body("{\"query\":\"{ me { id } }\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 415, "{content_type}");
    }

    // Above the body limit: 413.
    let big = "x".repeat(1024 * 1024 + 1);
    let res = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"query": format!("{{ me {{ id }} }} # {big}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    // Batches are refused.
    let res = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!([{"query": "{ me { id } }"}, {"query": "{ me { id } }"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Parse and validation failures: 4xx with no data under graphql-response+json.
    let client = Client::with_token(&server, &token);
    for bad in [
        "{ me { id ",
        "{ me { nope } }",
        "{ a0: me { id } a1: me { id } a2: me { id } a3: me { id } a4: me { id } a5: me { id } a6: me { id } a7: me { id } a8: me { id } a9: me { id } b0: me { id } b1: me { id } b2: me { id } b3: me { id } b4: me { id } b5: me { id } b6: me { id } b7: me { id } b8: me { id } b9: me { id } c0: me { id } c1: me { id } c2: me { id } c3: me { id } c4: me { id } c5: me { id } c6: me { id } c7: me { id } c8: me { id } c9: me { id } d0: me { id } }",
        "{ articles(first: 100) { edges { node { history(first: 100) { edges { node { article { history(first: 100) { edges { node { type } } } } } } } } } } }",
        "{ events { edges { node { article { history { edges { node { article { history { edges { node { article { history { edges { node { type } } } } } } } } } } } } } } } }",
    ] {
        let Reply { status, body, .. } = client.post(bad, json!({})).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{body}");
    }
    // A page larger than the cap is a VALIDATION_FAILED on `first`.
    let error = client
        .fails(
            "{ articles(first: 101) { edges { cursor } } }",
            json!({}),
            "VALIDATION_FAILED",
        )
        .await;
    assert_eq!(error["extensions"]["field"], "first");
    // Users are for admins.
    client
        .fails("{ users { name } }", json!({}), "FORBIDDEN")
        .await;

    // Metrics need a token too.
    let metrics = http
        .get(format!("{}/metrics", server.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 401);
    let metrics = http
        .get(format!("{}/metrics", server.http_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_per_token_and_answers_429() {
    let backend = Backend::sqlite();
    let mut config = test_config(&backend);
    config.limits.rate_limit_per_second = 1;
    config.limits.rate_limit_burst = 3;
    let server = galley::spawn(config).await.unwrap();
    let token = add_user(&server, "greedy", &[Role::Viewer]).await.token;
    let other = add_user(&server, "patient", &[Role::Viewer]).await.token;
    let client = Client::with_token(&server, &token);
    for _ in 0..3 {
        client.ok("{ me { id } }", json!({})).await;
    }
    let Reply { status, body, .. } = client.post("{ me { id } }", json!({})).await;
    assert_eq!(status, 429);
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    Client::with_token(&server, &other)
        .ok("{ me { id } }", json!({}))
        .await;
    server.shutdown().await.unwrap();
}

async fn closes_with(ws: &mut Ws) -> u16 {
    loop {
        match ws.recv().await {
            Ok(_) => continue,
            Err(code) => return code,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_graphql_transport_ws_close_code_is_honoured() {
    let backend = Backend::sqlite();
    let server = start(&backend).await;
    let token = add_user(&server, "wanda", &[Role::Viewer]).await.token;
    let subscribe = |id: &str| json!({"id": id, "type": "subscribe", "payload": {"query": "subscription { events { position } }"}});

    // 4401: subscribe before connection_ack.
    let mut ws = Ws::connect(&server).await;
    ws.send(subscribe("1")).await;
    assert_eq!(closes_with(&mut ws).await, 4401);

    // 4403: a bad token.
    let mut ws = Ws::connect(&server).await;
    ws.send(json!({"type": "connection_init", "payload": {"token": "glly_nope"}}))
        .await;
    assert_eq!(closes_with(&mut ws).await, 4403);
    let mut ws = Ws::connect(&server).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(closes_with(&mut ws).await, 4403);

    // 4429: a second connection_init; the Authorization form of the payload works.
    let mut ws = Ws::connect(&server).await;
    ws.send(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(ws.recv().await.unwrap()["type"], "connection_ack");
    ws.send(json!({"type": "connection_init", "payload": {"token": token}}))
        .await;
    assert_eq!(closes_with(&mut ws).await, 4429);

    // 4409: a duplicate subscription id; ping is answered with pong first.
    let mut ws = Ws::init(&server, &token).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await.unwrap()["type"], "pong");
    ws.send(subscribe("dup")).await;
    ws.send(subscribe("dup")).await;
    assert_eq!(closes_with(&mut ws).await, 4409);

    // 4400: a message that is not of the protocol.
    let mut ws = Ws::init(&server, &token).await;
    ws.send(json!({"type": "bogus"})).await;
    assert_eq!(closes_with(&mut ws).await, 4400);
    let mut ws = Ws::init(&server, &token).await;
    ws.send_text("not json").await;
    assert_eq!(closes_with(&mut ws).await, 4400);

    // 4408: no connection_init within the configured timeout.
    let mut ws = Ws::connect(&server).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(closes_with(&mut ws).await, 4408);

    // A subscription that fails validation gets an `error` message, and the socket stays open.
    let mut ws = Ws::init(&server, &token).await;
    ws.send(
        json!({"id": "bad", "type": "subscribe", "payload": {"query": "subscription { nope }"}}),
    )
    .await;
    let message = ws.recv().await.unwrap();
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["id"], "bad");
    ws.send(json!({"id": "q", "type": "subscribe", "payload": {"query": "{ me { name } }"}}))
        .await;
    let message = ws.recv().await.unwrap();
    assert_eq!(
        message["payload"]["data"]["me"]["name"], "wanda",
        "{message}"
    );
    assert_eq!(ws.recv().await.unwrap()["type"], "complete");

    server.shutdown().await.unwrap();
}
