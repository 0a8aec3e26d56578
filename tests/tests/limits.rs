//! Connection limits, revocation of running subscriptions and the throttle of failed
//! authentication, attacked as issue 10 attacked them, over real TCP, HTTP and WebSocket:
//!
//! - a client trickling header lines is cut off by the header read timeout;
//! - idle sockets past the connection cap never lock out a new client (the idlest are closed);
//! - an idle keep-alive connection is closed after its timeout;
//! - a connection over the cap while every connection is busy is answered 503;
//! - WebSockets past their cap (pre-init ones counted) are refused with 503;
//! - a subscription past the per-connection cap gets an `error` message, the others go on;
//! - a revoked token's subscriptions end with 4403: through the server, from another process
//!   on SQLite (within the token cache window), and from another replica on PostgreSQL;
//! - failed authentications from one address are answered 429 with Retry-After after the
//!   budget, on /graphql, /metrics and the WebSocket upgrade, while a valid token from the
//!   same address still works.

use std::time::Duration;

use galley_domain::Role;
use galley_tests::{
    add_user, on_both_backends, short_article, start_with, test_config, Backend, Client, Ws, GUARD,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Reads until the server closes the connection (EOF or reset); returns what was read.
/// Fails if the server keeps it open longer than the hang guard.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&all).into_owned()
}

async fn healthz(server: &galley::RunningServer) -> u16 {
    let res = tokio::time::timeout(
        GUARD,
        reqwest::get(format!("{}/healthz", server.http_url())),
    )
    .await
    .expect("/healthz answers in time")
    .expect("/healthz answers");
    res.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_header_lines_is_cut_off_while_healthz_answers() {
    let backend = Backend::sqlite();
    let mut config = test_config(&backend);
    config.connections.header_read_timeout = Duration::from_secs(1);
    let server = start_with(config).await;

    let mut slow = TcpStream::connect(server.local_addr()).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: galley\r\n")
        .await
        .unwrap();
    // One header line every 200 ms, for up to the hang guard: the server must close first.
    let mut lines = 0;
    let closed = loop {
        if slow
            .write_all(format!("x-slow-{lines}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            break true;
        }
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => panic!("the server answered an incomplete request"),
            Err(_) => {}
        }
        lines += 1;
        if lines > GUARD.as_millis() / 200 {
            break false;
        }
    };
    assert!(closed, "a client trickling headers was never cut off");
    assert_eq!(healthz(&server).await, 200);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_past_the_cap_never_lock_out_a_new_client() {
    let backend = Backend::sqlite();
    let mut config = test_config(&backend);
    config.connections.max_connections = 20;
    let server = start_with(config).await;

    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(server.local_addr()).await.unwrap());
    }
    // A new client is served although 200 sockets sit idle on a cap of 20.
    assert_eq!(healthz(&server).await, 200);
    // The server closed all but at most the cap of them.
    let mut closed = 0;
    for stream in &mut idle {
        let mut byte = [0u8; 1];
        let ended = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await;
        if matches!(ended, Ok(Ok(0)) | Ok(Err(_))) {
            closed += 1;
        }
    }
    assert!(
        closed >= 180,
        "only {closed} of 200 idle sockets were closed"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_its_timeout() {
    let backend = Backend::sqlite();
    let mut config = test_config(&backend);
    config.connections.keep_alive_timeout = Duration::from_secs(1);
    let server = start_with(config).await;

    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: galley\r\n\r\n")
        .await
        .unwrap();
    // The answer arrives, and then the server closes the connection it left idle.
    let seen = read_until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_the_cap_while_every_one_is_busy_is_answered_503() {
    let backend = Backend::sqlite();
    let mut config = test_config(&backend);
    config.connections.max_connections = 2;
    let server = start_with(config).await;

    // Two connections busy with a request whose body has not all arrived. `Expect:
    // 100-continue` makes the server say when the handler starts reading the body, so the
    // test knows both are in flight.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        stream
            .write_all(
                b"POST /graphql HTTP/1.1\r\nhost: galley\r\ncontent-type: application/json\r\n\
                  connection: close\r\nexpect: 100-continue\r\ncontent-length: 20\r\n\r\n",
            )
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !seen.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(GUARD, stream.read(&mut buf))
                .await
                .expect("100 Continue in time")
                .unwrap();
            assert!(n > 0, "closed before 100 Continue");
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(seen.starts_with(b"HTTP/1.1 100"), "{seen:?}");
        stream.write_all(b"{\"query\":").await.unwrap();
        busy.push(stream);
    }
    // Every connection is busy: the next one is refused.
    let mut third = TcpStream::connect(server.local_addr()).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: galley\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let refusal = read_until_closed(&mut third).await;
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
    assert!(
        refusal.to_ascii_lowercase().contains("retry-after: 1"),
        "{refusal}"
    );
    // The busy ones finish (401: they sent no token) and room is made.
    for mut stream in busy {
        stream.write_all(b"\"{ head }\"}").await.unwrap();
        let seen = read_until_closed(&mut stream).await;
        assert!(seen.contains("HTTP/1.1 401"), "{seen}");
    }
    assert_eq!(healthz(&server).await, 200);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_past_the_cap_are_refused_pre_init_ones_counted() {
    let backend = Backend::sqlite();
    let mut config = test_config(&backend);
    config.limits.max_websockets = 3;
    config.limits.ws_init_timeout = Duration::from_secs(30);
    let server = start_with(config).await;
    let viewer = add_user(&server, "vic", &[Role::Viewer]).await;

    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(Ws::connect(&server).await);
    }
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let refused = tokio_tungstenite::connect_async(request.clone()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            assert_eq!(response.headers()["retry-after"], "1");
        }
        other => panic!("a fourth WebSocket was not refused: {other:?}"),
    }
    // /healthz is unaffected, and once one closes a new one is accepted.
    assert_eq!(healthz(&server).await, 200);
    let mut first = open.remove(0);
    first.socket.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        match tokio_tungstenite::connect_async(request.clone()).await {
            Ok(_) => break,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "never accepted: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
    let _ = viewer;
    server.shutdown().await.unwrap();
}

const EVENTS: &str = "subscription { events(after: 0) { position type } }";

async fn a_subscription_past_the_per_connection_cap_gets_an_error(backend: Backend) {
    let mut config = test_config(&backend);
    config.limits.max_subscriptions_per_connection = 2;
    let server = start_with(config).await;
    let editor = Client::new(
        &server,
        Some(add_user(&server, "edith", &[Role::Editor]).await),
    );
    let viewer = add_user(&server, "vic", &[Role::Viewer]).await;

    let mut ws = Ws::init(&server, &viewer.token).await;
    ws.subscribe("a", EVENTS, json!({})).await;
    ws.subscribe("b", EVENTS, json!({})).await;
    ws.subscribe("c", EVENTS, json!({})).await;
    let refused = ws.recv().await.expect("a message, not a close");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "c");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "BAD_REQUEST");

    // The two running subscriptions go on.
    editor.create(short_article("Capped")).await;
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        let message = ws.recv().await.expect("a message, not a close");
        assert_eq!(message["type"], "next", "{message}");
        seen.insert(message["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    // Completing one makes room for another.
    ws.send(json!({"id": "a", "type": "complete"})).await;
    ws.subscribe("d", EVENTS, json!({})).await;
    let data = ws.next_data("d").await;
    assert_eq!(data["events"]["type"], "ArticleCreated");

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn revoking_a_token_ends_its_running_subscriptions(backend: Backend) {
    let mut config = test_config(&backend);
    // Longer than the hang guard: only the revocation signal can end the subscription in
    // time, not the expiry of the cached lookup.
    config.token_cache_ttl = Duration::from_secs(60);
    let server = start_with(config).await;
    let editor = Client::new(
        &server,
        Some(add_user(&server, "edith", &[Role::Editor]).await),
    );
    let viewer = add_user(&server, "vic", &[Role::Viewer]).await;
    let other = add_user(&server, "olga", &[Role::Viewer]).await;

    let mut ws = Ws::init(&server, &viewer.token).await;
    ws.subscribe("feed", EVENTS, json!({})).await;
    let mut bystander = Ws::init(&server, &other.token).await;
    bystander.subscribe("feed", EVENTS, json!({})).await;
    editor.create(short_article("Before revocation")).await;
    assert_eq!(
        ws.next_data("feed").await["events"]["type"],
        "ArticleCreated"
    );
    assert_eq!(
        bystander.next_data("feed").await["events"]["type"],
        "ArticleCreated"
    );

    server
        .store()
        .revoke_tokens("vic", chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(ws.close_code().await, 4403);
    // Another user's subscription is untouched.
    editor.create(short_article("After revocation")).await;
    assert_eq!(
        bystander.next_data("feed").await["events"]["type"],
        "ArticleCreated"
    );

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_revocation_by_another_process_ends_subscriptions_within_the_cache_window() {
    let backend = Backend::sqlite();
    let mut config = test_config(&backend);
    config.token_cache_ttl = Duration::from_secs(1);
    let server = start_with(config).await;
    let viewer = add_user(&server, "vic", &[Role::Viewer]).await;
    let mut ws = Ws::init(&server, &viewer.token).await;
    ws.subscribe("feed", EVENTS, json!({})).await;

    // `galley tokens revoke` beside the running server: its own store on the same file,
    // whose revocation the server's cache never hears of.
    let cli = galley_storage::Store::connect(&galley_storage::StoreOptions {
        url: backend.url().to_owned(),
        migrate: false,
        ..galley_storage::StoreOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(
        cli.revoke_tokens("vic", chrono::Utc::now()).await.unwrap(),
        1
    );
    cli.close().await;
    assert_eq!(ws.close_code().await, 4403);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_revocation_through_one_replica_ends_subscriptions_on_the_other() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let config = || {
        let mut config = test_config(&backend);
        config.token_cache_ttl = Duration::from_secs(60);
        config
    };
    let a = start_with(config()).await;
    let b = start_with(config()).await;
    let viewer = add_user(&a, "vic", &[Role::Viewer]).await;
    let mut on_a = Ws::init(&a, &viewer.token).await;
    on_a.subscribe("feed", EVENTS, json!({})).await;
    let mut on_b = Ws::init(&b, &viewer.token).await;
    on_b.subscribe("feed", EVENTS, json!({})).await;

    b.store()
        .revoke_tokens("vic", chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(on_a.close_code().await, 4403);
    assert_eq!(on_b.close_code().await, 4403);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn failed_authentication_is_throttled_per_address_but_valid_tokens_still_work(
    backend: Backend,
) {
    let mut config = test_config(&backend);
    config.limits.auth_failure_burst = 5;
    config.limits.auth_failures_per_minute = 1;
    let server = start_with(config).await;
    let viewer = Client::new(
        &server,
        Some(add_user(&server, "vic", &[Role::Viewer]).await),
    );
    let guess = |n: usize| {
        let mut user = viewer.user().clone();
        user.token = format!("glly_{n:064x}");
        Client::new(&server, Some(user))
    };

    for n in 0..5 {
        let reply = guess(n).post("{ head }", json!({})).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.code(), Some("UNAUTHENTICATED"));
    }
    let reply = guess(5).post("{ head }", json!({})).await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert_eq!(reply.code(), Some("RATE_LIMITED"));
    let wait: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "{wait}");

    // A valid token from the same address is not slowed.
    assert_eq!(viewer.head().await, 0);

    // /metrics and the WebSocket upgrade share the budget.
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", server.http_url()))
        .bearer_auth("glly_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 429);
    assert!(metrics.headers().contains_key("retry-after"));
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("the upgrade was not throttled: {other:?}"),
    }
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn failed_connection_inits_count_against_the_address(backend: Backend) {
    let mut config = test_config(&backend);
    config.limits.auth_failure_burst = 2;
    config.limits.auth_failures_per_minute = 1;
    let server = start_with(config).await;
    let viewer = add_user(&server, "vic", &[Role::Viewer]).await;

    for _ in 0..2 {
        let mut ws = Ws::connect(&server).await;
        ws.send(json!({"type": "connection_init", "payload": {"token": "glly_guess"}}))
            .await;
        assert_eq!(ws.close_code().await, 4403);
    }
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
        }
        other => panic!("the upgrade was not throttled: {other:?}"),
    }
    // HTTP with the valid token still works from this address.
    let client = Client::new(&server, Some(viewer));
    assert_eq!(client.head().await, 0);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

on_both_backends!(
    a_subscription_past_the_per_connection_cap_gets_an_error,
    revoking_a_token_ends_its_running_subscriptions,
    failed_authentication_is_throttled_per_address_but_valid_tokens_still_work,
    failed_connection_inits_count_against_the_address,
);
