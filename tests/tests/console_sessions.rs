//! The console's sign-in, sessions and their security, over real HTTP and WebSocket on both
//! backends: passwords (Argon2id) set as `galley users passwd` does, the HttpOnly SameSite
//! cookie, the CSRF token every cookie-authenticated request needs, the WebSocket's Origin
//! check, sign-out, revocation, expiry, the sign-in throttle, and API tokens unchanged.

use std::time::Duration;

use galley::RunningServer;
use galley_domain::Role;
use galley_tests::{
    add_user, on_both_backends, start, start_with, test_config, Backend, Client, GUARD,
};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "correct-horse-battery";

/// An HTTP client that does not follow redirects and keeps no cookies: each test sends the
/// cookie it means to send.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn origin(server: &RunningServer) -> String {
    server.http_url()
}

/// Percent-encodes a form value (only what these tests send needs it).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn sign_in_raw(
    server: &RunningServer,
    name: &str,
    password: &str,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut req = http()
        .post(format!("{}/console/sign-in", server.http_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "name={}&password={}",
            encode(name),
            encode(password)
        ));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    tokio::time::timeout(GUARD, req.send())
        .await
        .expect("in time")
        .expect("sent")
}

/// Signs in and returns the session cookie (`galley_session=…`).
async fn sign_in(server: &RunningServer, name: &str, password: &str) -> String {
    let res = sign_in_raw(server, name, password, Some(&origin(server))).await;
    assert_eq!(res.status(), 303, "sign-in of {name}");
    assert_eq!(res.headers()["location"], "/console");
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

/// The console page for a cookie: the status and the CSRF token in its `<meta>`.
async fn console_page(server: &RunningServer, cookie: &str) -> (u16, Option<String>) {
    let res = http()
        .get(format!("{}/console", server.http_url()))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.text().await.unwrap();
    let csrf = body
        .split("name=\"galley-csrf\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned);
    (status, csrf)
}

/// A GraphQL request signed in by the cookie, with the CSRF header when given.
async fn gql(
    server: &RunningServer,
    cookie: &str,
    csrf: Option<&str>,
    query: &str,
) -> (u16, Value) {
    let mut req = http()
        .post(server.graphql_url())
        .header("cookie", cookie)
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": query }));
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn ws_with_cookie(
    server: &RunningServer,
    cookie: &str,
    origin: &str,
) -> Result<galley_tests::Ws, u16> {
    let mut request = server.ws_url().into_client_request().unwrap();
    let h = request.headers_mut();
    h.insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    h.insert("cookie", cookie.parse().unwrap());
    h.insert("origin", origin.parse().unwrap());
    match tokio::time::timeout(GUARD, tokio_tungstenite::connect_async(request))
        .await
        .expect("in time")
    {
        Ok((socket, _)) => Ok(galley_tests::Ws { socket }),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("unexpected WebSocket failure: {e}"),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .unwrap_or_default()
}

async fn a_person_signs_in_and_uses_the_api_through_the_session_cookie(backend: Backend) {
    let server = start(&backend).await;
    let root = format!("{}/", server.http_url());

    // An empty newsroom: the sign-in page says how to create the first user.
    let res = http().get(&root).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = header(res.headers(), "content-security-policy").to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(header(res.headers(), "x-frame-options"), "DENY");
    let page = res.text().await.unwrap();
    assert!(
        page.contains("galley users add NAME --role admin"),
        "{page}"
    );
    assert!(page.contains("galley users passwd NAME"));

    let edith = add_user(&server, "edith", &[Role::Editor]).await;
    let page = http()
        .get(&root)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("galley users passwd NAME"),
        "users exist now"
    );

    // No password yet: signing in fails like a wrong password.
    let res = sign_in_raw(&server, "edith", PASSWORD, Some(&origin(&server))).await;
    assert_eq!(res.status(), 401);
    galley::users::set_password(server.store(), "edith", PASSWORD)
        .await
        .unwrap();
    // A too-short password is refused before anything is stored.
    assert!(
        galley::users::set_password(server.store(), "edith", "short")
            .await
            .is_err()
    );

    // A sign-in posted by another site's page, or with no Origin, is refused.
    let res = sign_in_raw(&server, "edith", PASSWORD, Some("http://evil.test")).await;
    assert_eq!(res.status(), 403);
    let res = sign_in_raw(&server, "edith", PASSWORD, None).await;
    assert_eq!(res.status(), 403);
    let res = sign_in_raw(&server, "edith", "wrong-password", Some(&origin(&server))).await;
    assert_eq!(res.status(), 401);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("user name or password is wrong"));

    let res = sign_in_raw(&server, "edith", PASSWORD, Some(&origin(&server))).await;
    assert_eq!(res.status(), 303);
    let set_cookie = header(res.headers(), "set-cookie").to_owned();
    assert!(
        set_cookie.starts_with("galley_session=glls_"),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // Signed in, the root sends the person to the console, which names its CSRF token.
    let res = http()
        .get(&root)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(header(res.headers(), "location"), "/console");
    let (status, csrf) = console_page(&server, &cookie).await;
    assert_eq!(status, 200);
    let csrf = csrf.expect("the shell names the CSRF token");
    assert_eq!(csrf.len(), 64);
    assert!(!cookie.contains(&csrf), "the CSRF token is not the secret");

    // The cookie alone does not authenticate a GraphQL request: it needs the CSRF header.
    let (status, body) = gql(&server, &cookie, None, "{ me { name } }").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let (status, body) = gql(&server, &cookie, Some(&"0".repeat(64)), "{ me { name } }").await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (403, &json!("FORBIDDEN"))
    );
    let (status, body) = gql(&server, &cookie, Some(&csrf), "{ me { name roles } }").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["me"],
        json!({"name": "edith", "roles": ["EDITOR"]})
    );
    // The API's own authorisation applies: an editor cannot list users.
    let (_, body) = gql(&server, &cookie, Some(&csrf), "{ users { name } }").await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let (_, body) = gql(
        &server,
        &cookie,
        Some(&csrf),
        r#"mutation { createArticle(content: {headline: "Made in the console"}) { article { id version } } }"#,
    )
    .await;
    assert_eq!(
        body["data"]["createArticle"]["article"]["version"], 1,
        "{body}"
    );

    // The WebSocket: the cookie works from this origin only.
    let refused = ws_with_cookie(&server, &cookie, "http://evil.test").await;
    assert_eq!(refused.err(), Some(403));
    let mut ws = ws_with_cookie(&server, &cookie, &origin(&server))
        .await
        .expect("same-origin upgrade");
    ws.send(json!({"type": "connection_init", "payload": {}}))
        .await;
    assert_eq!(ws.recv().await.unwrap()["type"], "connection_ack");
    ws.subscribe("1", "subscription { events(after: 0) { type } }", json!({}))
        .await;
    assert_eq!(ws.next_data("1").await["events"]["type"], "ArticleCreated");

    // API tokens keep working as before, with or without a session.
    let token_client = Client::new(&server, Some(edith.clone()));
    assert_eq!(
        token_client.ok("{ me { name } }", json!({})).await["me"]["name"],
        "edith"
    );

    // Sign-out needs the CSRF token and this origin; then the session is over.
    let sign_out = |csrf: String, origin: String| {
        http()
            .post(format!("{}/console/sign-out", server.http_url()))
            .header("cookie", &cookie)
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}"))
            .send()
    };
    assert_eq!(
        sign_out("f".repeat(64), origin(&server))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        sign_out(csrf.clone(), "http://evil.test".into())
            .await
            .unwrap()
            .status(),
        403
    );
    let res = sign_out(csrf.clone(), origin(&server)).await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(header(res.headers(), "set-cookie").contains("Max-Age=0"));
    let (status, body) = gql(&server, &cookie, Some(&csrf), "{ me { name } }").await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (401, &json!("UNAUTHENTICATED"))
    );
    assert_eq!(console_page(&server, &cookie).await.0, 303);
    // A socket opened before sign-out starts nothing more.
    ws.subscribe("2", "subscription { events { type } }", json!({}))
        .await;
    assert_eq!(ws.close_code().await, 4403);

    // Revocation from the command line ends every session of the user.
    let first = sign_in(&server, "edith", PASSWORD).await;
    let second = sign_in(&server, "edith", PASSWORD).await;
    assert_ne!(first, second);
    assert_eq!(console_page(&server, &first).await.0, 200);
    let ended = server
        .store()
        .revoke_sessions("edith", chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(ended, 2);
    assert_eq!(console_page(&server, &first).await.0, 303);
    assert_eq!(console_page(&server, &second).await.0, 303);
    // Changing the password also ends sessions, and the old password stops working.
    let third = sign_in(&server, "edith", PASSWORD).await;
    galley::users::set_password(server.store(), "edith", "another-long-password")
        .await
        .unwrap();
    assert_eq!(console_page(&server, &third).await.0, 303);
    let res = sign_in_raw(&server, "edith", PASSWORD, Some(&origin(&server))).await;
    assert_eq!(res.status(), 401);
    sign_in(&server, "edith", "another-long-password").await;

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn failed_sign_ins_are_throttled_by_name_and_by_address(backend: Backend) {
    let mut config = test_config(&backend);
    config.limits.sign_in.per_name = 3;
    config.limits.sign_in.per_address = 6;
    let server = start_with(config).await;
    add_user(&server, "rob", &[Role::Reviewer]).await;
    galley::users::set_password(server.store(), "rob", PASSWORD)
        .await
        .unwrap();
    let o = origin(&server);
    for _ in 0..3 {
        let res = sign_in_raw(&server, "rob", "guess-guess", Some(&o)).await;
        assert_eq!(res.status(), 401);
    }
    // The name is locked now, even for the right password (and for another spelling of it).
    for name in ["rob", "ROB"] {
        let res = sign_in_raw(&server, name, PASSWORD, Some(&o)).await;
        assert_eq!(res.status(), 429);
        let wait: u64 = header(res.headers(), "retry-after").parse().unwrap();
        assert!(wait > 0 && wait <= 15 * 60, "{wait}");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins"));
    }
    // From the same address, other names fail until the address is locked too.
    for i in 0..3 {
        let res = sign_in_raw(&server, &format!("nobody{i}"), "guess-guess", Some(&o)).await;
        assert_eq!(res.status(), 401);
    }
    let res = sign_in_raw(&server, "someone-new", "guess-guess", Some(&o)).await;
    assert_eq!(res.status(), 429);
    // Oversized input costs no hashing and is simply a failure (here: already throttled).
    let res = sign_in_raw(&server, &"n".repeat(5_000), "x", Some(&o)).await;
    assert_eq!(res.status(), 429);
    // A body above the form limit is refused outright.
    let res = http()
        .post(format!("{}/console/sign-in", server.http_url()))
        .header("origin", &o)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name=rob&password={}", "p".repeat(64 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn a_burst_of_guesses_sent_at_once_is_held_to_the_limit(backend: Backend) {
    let mut config = test_config(&backend);
    config.limits.sign_in.per_name = 3;
    let server = start_with(config).await;
    add_user(&server, "vic", &[Role::Viewer]).await;
    galley::users::set_password(server.store(), "vic", PASSWORD)
        .await
        .unwrap();
    let o = origin(&server);
    let guesses = (0..16).map(|i| {
        let (server, o) = (&server, &o);
        async move {
            sign_in_raw(server, "vic", &format!("guess-{i:04}"), Some(o))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    // Every guess past the limit is refused before hashing, however many arrive together; at
    // most the hashes already under way when the limit was reached finish.
    assert!(checked >= 3, "{statuses:?}");
    assert!(
        checked < 3 + galley_api::console::HASHING_AT_ONCE,
        "{statuses:?}"
    );
    assert_eq!(checked + refused, statuses.len(), "{statuses:?}");
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn an_expired_session_authenticates_no_one(backend: Backend) {
    let mut config = test_config(&backend);
    // Every session is born expired, which is what any session is once its time is up.
    config.limits.session_ttl = Duration::ZERO;
    let server = start_with(config).await;
    add_user(&server, "penny", &[Role::Publisher]).await;
    galley::users::set_password(server.store(), "penny", PASSWORD)
        .await
        .unwrap();
    let cookie = sign_in(&server, "penny", PASSWORD).await;
    assert_eq!(console_page(&server, &cookie).await.0, 303);
    // Even with the right CSRF token the API refuses it.
    let secret = cookie.strip_prefix("galley_session=").unwrap();
    let csrf = galley_api::session::csrf_token(secret);
    let (status, body) = gql(&server, &cookie, Some(&csrf), "{ me { name } }").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn the_console_assets_are_served_from_the_binary(backend: Backend) {
    let server = start(&backend).await;
    for (name, kind) in [
        ("app.js", "text/javascript"),
        ("gql.js", "text/javascript"),
        ("console.css", "text/css"),
    ] {
        let res = http()
            .get(format!("{}/console/assets/{name}", server.http_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
        assert!(header(res.headers(), "content-type").starts_with(kind));
        assert_eq!(header(res.headers(), "x-content-type-options"), "nosniff");
        assert!(!res.text().await.unwrap().is_empty());
    }
    let res = http()
        .get(format!(
            "{}/console/assets/..%2FCargo.toml",
            server.http_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

on_both_backends!(
    a_person_signs_in_and_uses_the_api_through_the_session_cookie,
    failed_sign_ins_are_throttled_by_name_and_by_address,
    a_burst_of_guesses_sent_at_once_is_held_to_the_limit,
    an_expired_session_authenticates_no_one,
    the_console_assets_are_served_from_the_binary,
);
