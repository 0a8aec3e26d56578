//! End-to-end tests of Galley: real HTTP and WebSocket against servers that `galley::spawn`
//! starts on port 0, exactly as `galley serve` starts them, each test with its own database.
//!
//! This library holds what the tests in `tests/` share: the backends ([`Backend`], an SQLite
//! file always and a fresh PostgreSQL database when `GALLEY_TEST_POSTGRES_URL` is set), the
//! [`on_both_backends!`] macro that runs one scenario on each, a GraphQL client over HTTP
//! ([`Client`]), a graphql-transport-ws client ([`Ws`]), the newsroom's users ([`Newsroom`]) and
//! the seed article of `fixtures/seed-article.md` ([`seed_article`]).
//!
//! Invariants: no test asserts on timing; timeouts only guard against hangs. Every database a
//! test creates is dropped, even when the test fails ([`Backend`]'s `Drop`).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use galley::{RunningServer, ServerConfig};
use galley_domain::Role;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub use galley;
pub use serde_json;
pub use tokio;

/// How long any single wait may take before the test fails (a hang guard, not a measurement).
pub const GUARD: Duration = Duration::from_secs(20);

/// Runs an async scenario `fn(Backend)` once on SQLite and once on PostgreSQL, as two tests
/// named `<scenario>::on_sqlite` and `<scenario>::on_postgres`. The PostgreSQL test passes
/// with a notice when no server is configured, and fails when `GALLEY_REQUIRE_POSTGRES=1`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[$crate::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$scenario($crate::Backend::sqlite()).await;
            }

            #[$crate::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(backend) = $crate::Backend::postgres().await {
                    super::$scenario(backend).await;
                }
            }
        }
    )+};
}

/// A fresh database for one test. A PostgreSQL database is dropped by [`Backend::cleanup`], or
/// by `Drop` when a failing test never gets there.
#[derive(Debug)]
pub struct Backend {
    url: String,
    kind: BackendKind,
    /// Holds the SQLite file's folder; removed on drop.
    _dir: Option<tempfile::TempDir>,
    /// Set once the PostgreSQL database is dropped, so `Drop` does not try again.
    cleaned: bool,
}

/// Which database a [`Backend`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// An SQLite file in a temporary folder.
    Sqlite,
    /// A database of its own on the PostgreSQL server of `GALLEY_TEST_POSTGRES_URL`.
    Postgres,
}

impl Backend {
    /// A fresh SQLite file.
    pub fn sqlite() -> Backend {
        let dir = tempfile::tempdir().expect("a temporary folder");
        Backend {
            url: galley_storage::testing::sqlite_url(dir.path()),
            kind: BackendKind::Sqlite,
            _dir: Some(dir),
            cleaned: false,
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a notice) when none is configured.
    pub async fn postgres() -> Option<Backend> {
        let url = galley_storage::testing::fresh_postgres_url().await?;
        Some(Backend {
            url,
            kind: BackendKind::Postgres,
            _dir: None,
            cleaned: false,
        })
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which database this is.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// Drops the PostgreSQL database (call after every server on it has shut down).
    pub async fn cleanup(mut self) {
        if self.kind == BackendKind::Postgres {
            galley_storage::testing::drop_postgres_database(&self.url).await;
        }
        self.cleaned = true;
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if self.kind != BackendKind::Postgres || self.cleaned {
            return;
        }
        // A failing test unwinds without reaching `cleanup`; drop its database on a thread of
        // its own, since this may run inside a runtime that cannot block.
        let url = self.url.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(galley_storage::testing::drop_postgres_database(&url));
            }
        })
        .join();
    }
}

/// A configuration for tests: a fast scheduler, a short WebSocket init timeout, a short
/// shutdown grace, and no rate limit nor throttle of failed authentication (tests that
/// exercise them set them).
pub fn test_config(backend: &Backend) -> ServerConfig {
    let mut config = ServerConfig::new(backend.url());
    config.scheduler_interval = Some(Duration::from_millis(100));
    config.limits.ws_init_timeout = Duration::from_millis(500);
    config.limits.rate_limit_per_second = 0;
    config.limits.auth_failure_burst = 0;
    config.shutdown_grace = Duration::from_secs(2);
    config
}

/// Starts a server on `backend` with [`test_config`].
pub async fn start(backend: &Backend) -> RunningServer {
    start_with(test_config(backend)).await
}

/// Starts a server with a configuration.
pub async fn start_with(config: ServerConfig) -> RunningServer {
    galley::telemetry::init_logs(galley::config::LogFormat::Text, "warn");
    galley::spawn(config).await.expect("the server starts")
}

/// A user and their token.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub name: String,
    /// Their bearer token.
    pub token: String,
}

/// Adds a user with `roles`, as `galley users add` does.
pub async fn add_user(server: &RunningServer, name: &str, roles: &[Role]) -> User {
    let (user, token) = galley::users::add_user(server.store(), name, roles)
        .await
        .expect("the user is added");
    User {
        id: user.id.to_string(),
        name: name.to_owned(),
        token,
    }
}

/// The staff of a newsroom, one user per role, with a client each.
#[derive(Debug)]
pub struct Newsroom {
    /// EDITOR.
    pub editor: Client,
    /// REVIEWER.
    pub reviewer: Client,
    /// PUBLISHER.
    pub publisher: Client,
    /// VIEWER.
    pub viewer: Client,
    /// ADMIN.
    pub admin: Client,
}

impl Newsroom {
    /// Adds edith (EDITOR), rob (REVIEWER), penny (PUBLISHER), vic (VIEWER) and ada (ADMIN).
    pub async fn hire(server: &RunningServer) -> Newsroom {
        let client = |user: User| Client::new(server, Some(user));
        Newsroom {
            editor: client(add_user(server, "edith", &[Role::Editor]).await),
            reviewer: client(add_user(server, "rob", &[Role::Reviewer]).await),
            publisher: client(add_user(server, "penny", &[Role::Publisher]).await),
            viewer: client(add_user(server, "vic", &[Role::Viewer]).await),
            admin: client(add_user(server, "ada", &[Role::Admin]).await),
        }
    }
}

/// The media type of the GraphQL-over-HTTP specification.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// A GraphQL client over HTTP for one user (or none).
#[derive(Debug, Clone)]
pub struct Client {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The /graphql URL.
    pub url: String,
    /// The user, if any.
    pub user: Option<User>,
}

/// A response: the HTTP status, the headers and the JSON body (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON.
    pub body: Value,
}

impl Reply {
    /// The `extensions.code` of the first error, if any.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    /// Reads a response.
    pub async fn read(res: reqwest::Response) -> Reply {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }
}

impl Client {
    /// A client of `server` for `user` (anonymous when `None`).
    pub fn new(server: &RunningServer, user: Option<User>) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: server.graphql_url(),
            user,
        }
    }

    /// The user, who must exist.
    pub fn user(&self) -> &User {
        self.user.as_ref().expect("an authenticated client")
    }

    /// A POST to /graphql with the bearer token (if any), ready for more headers.
    pub fn request(&self) -> reqwest::RequestBuilder {
        let req = self.http.post(&self.url);
        match &self.user {
            Some(u) => req.bearer_auth(&u.token),
            None => req,
        }
    }

    /// A GET to /graphql with the bearer token (if any).
    pub fn get(&self) -> reqwest::RequestBuilder {
        let req = self.http.get(&self.url);
        match &self.user {
            Some(u) => req.bearer_auth(&u.token),
            None => req,
        }
    }

    /// Posts a GraphQL request, accepting application/graphql-response+json.
    pub async fn post(&self, query: &str, variables: Value) -> Reply {
        self.send(
            self.request()
                .header("accept", GRAPHQL_RESPONSE_JSON)
                .json(&json!({ "query": query, "variables": variables })),
        )
        .await
    }

    /// Sends any request and reads the reply.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = tokio::time::timeout(GUARD, req.send())
            .await
            .expect("a response in time")
            .expect("the request is sent");
        Reply::read(res).await
    }

    /// Posts a request that must succeed and returns its data.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let reply = self.post(query, variables).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        assert!(
            reply.body.get("errors").is_none(),
            "{query}: unexpected errors: {}",
            reply.body
        );
        reply.body["data"].clone()
    }

    /// Posts a request that must fail with `code`; returns the first error.
    pub async fn fails(&self, query: &str, variables: Value, code: &str) -> Value {
        let reply = self.post(query, variables).await;
        assert_eq!(reply.code(), Some(code), "{query}: {}", reply.body);
        reply.body["errors"][0].clone()
    }

    /// The global head of the log.
    pub async fn head(&self) -> u64 {
        self.ok("{ head }", json!({})).await["head"]
            .as_u64()
            .expect("head is a number")
    }

    /// An article's version, status and revision number.
    pub async fn article(&self, id: &str) -> Value {
        self.ok(
            "query($id: ID!) { article(id: $id) { id version status revisionNumber liveRevision approvedRevision embargoUntil scheduledFor } }",
            json!({ "id": id }),
        )
        .await["article"]
            .clone()
    }

    /// Creates an article and returns its id.
    pub async fn create(&self, content: Value) -> String {
        let data = self
            .ok(
                "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }",
                json!({ "c": content }),
            )
            .await;
        data["createArticle"]["article"]["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    /// Runs a mutation `name(articleId: $id, expectedVersion: $v <args>)`, which must succeed,
    /// and returns its payload: the article and the events.
    pub async fn mutate(&self, name: &str, id: &str, version: u64, args: &str) -> Value {
        let query = mutation(name, args);
        self.ok(&query, json!({ "id": id, "v": version })).await[name].clone()
    }
}

/// The selection a mutation returns in these tests.
pub const PAYLOAD: &str = "article { id version status revisionNumber liveRevision } events { eventId articleId type version position actor payload } replayed";

/// The document of mutation `name` on `$id` at `$v`, with extra literal arguments.
pub fn mutation(name: &str, args: &str) -> String {
    format!(
        "mutation($id: ID!, $v: Int!) {{ {name}(articleId: $id, expectedVersion: $v{args}) {{ {PAYLOAD} }} }}"
    )
}

/// A short article that may be submitted.
pub fn short_article(headline: &str) -> Value {
    json!({ "headline": headline, "body": "A body of text." })
}

/// Runs an article through create, submit and approve: returns its id (version 3, APPROVED).
pub async fn approved_article(editor: &Client, reviewer: &Client, headline: &str) -> String {
    let id = editor.create(short_article(headline)).await;
    editor.mutate("submitForReview", &id, 1, "").await;
    reviewer
        .mutate("approveRevision", &id, 2, ", revision: 1")
        .await;
    id
}

/// Polls until `done` holds for the article (a hang guard of [`GUARD`], not a measurement).
pub async fn wait_for_article(client: &Client, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let article = client.article(id).await;
        if done(&article) {
            return article;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "article {id} never reached the expected state: {article}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A graphql-transport-ws client.
#[derive(Debug)]
pub struct Ws {
    /// The socket.
    pub socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// What the server sent next: a protocol message, or the close code.
pub type Received = Result<Value, u16>;

impl Ws {
    /// Opens a socket with the graphql-transport-ws subprotocol (no connection_init yet).
    pub async fn connect(server: &RunningServer) -> Ws {
        let mut request = server.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, response) =
            tokio::time::timeout(GUARD, tokio_tungstenite::connect_async(request))
                .await
                .expect("the socket opens in time")
                .expect("the socket opens");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Ws { socket }
    }

    /// Connects and initialises with a token; the server must acknowledge.
    pub async fn init(server: &RunningServer, token: &str) -> Ws {
        let mut ws = Ws::connect(server).await;
        ws.send(json!({"type": "connection_init", "payload": {"token": token}}))
            .await;
        let ack = ws.recv().await;
        assert_eq!(
            ack.as_ref().map(|m| &m["type"]),
            Ok(&json!("connection_ack"))
        );
        ws
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, message: Value) {
        self.send_frame(Message::Text(message.to_string().into()))
            .await;
    }

    /// Sends any frame.
    pub async fn send_frame(&mut self, frame: Message) {
        self.socket.send(frame).await.expect("the frame is sent");
    }

    /// Subscribes under `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "id": id,
            "type": "subscribe",
            "payload": { "query": query, "variables": variables }
        }))
        .await;
    }

    /// The next protocol message, or the close code (1006 when the connection just ends).
    pub async fn recv(&mut self) -> Received {
        loop {
            match self.next_frame().await {
                Some(Message::Text(t)) => {
                    return Ok(serde_json::from_str(&t).expect("a JSON message"))
                }
                Some(Message::Close(frame)) => {
                    return Err(frame.map(|f| u16::from(f.code)).unwrap_or(1005))
                }
                Some(_) => continue,
                None => return Err(1006),
            }
        }
    }

    /// The next frame of any kind (`None` when the connection ends).
    pub async fn next_frame(&mut self) -> Option<Message> {
        let next = tokio::time::timeout(GUARD, self.socket.next())
            .await
            .expect("a frame in time");
        match next {
            Some(Ok(frame)) => Some(frame),
            Some(Err(_)) | None => None,
        }
    }

    /// The next message, which must be a `next` for `id`; returns its `payload.data`.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let message = self.recv().await.expect("a message, not a close");
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        message["payload"]["data"].clone()
    }

    /// Reads until the server closes; returns the close code.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            if let Err(code) = self.recv().await {
                return code;
            }
        }
    }
}

/// The seed article of `fixtures/seed-article.md` as a `ContentInput`: its front matter
/// (`key: value` lines, values quoted strings, JSON lists or bare words) and its body.
pub fn seed_article() -> Value {
    parse_article(include_str!("../../fixtures/seed-article.md"))
}

/// Parses a Markdown file with front matter into a `ContentInput`. Only the content fields
/// are kept (the fixture's `published` date is not one).
pub fn parse_article(raw: &str) -> Value {
    let rest = raw
        .strip_prefix("---\n")
        .expect("the file opens with front matter");
    let (front, body) = rest
        .split_once("\n---\n")
        .expect("the front matter is closed");
    let mut content = serde_json::Map::new();
    for line in front.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line.split_once(':').expect("a key: value line");
        let key = key.trim();
        let value = value.trim();
        let value: Value = if value.starts_with('"') || value.starts_with('[') {
            serde_json::from_str(value).expect("a JSON string or list")
        } else {
            Value::String(value.to_owned())
        };
        let wanted = [
            "headline",
            "standfirst",
            "slug",
            "category",
            "tags",
            "byline",
            "language",
        ];
        if wanted.contains(&key) {
            content.insert(key.to_owned(), value);
        }
    }
    content.insert("body".to_owned(), Value::String(body.trim().to_owned()));
    Value::Object(content)
}

/// The event types of a list of events (or of `next` data), in order.
pub fn types(events: &Value) -> Vec<String> {
    events
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|e| e["type"].as_str().expect("a type").to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_article_keeps_its_front_matter_and_body() {
        let seed = seed_article();
        assert_eq!(
            seed["headline"],
            "NATO DENIES SERBIA AN ARMY PRESENCE IN KOSOVO"
        );
        assert_eq!(
            seed["slug"],
            "nato-denies-serbia-an-army-presence-in-kosovo"
        );
        assert_eq!(seed["tags"][0], "Aleksandar Vučić");
        assert_eq!(seed["tags"].as_array().unwrap().len(), 8);
        assert_eq!(seed["byline"], json!(["Tristan Vanheuckelom"]));
        assert_eq!(seed["language"], "en");
        assert!(seed.get("published").is_none());
        let body = seed["body"].as_str().unwrap();
        assert!(body.starts_with("The NATO-led Kosovo Force (KFOR)"));
        assert!(body.contains("\n\n> We all knew"));
        assert!(body.contains("Near the town of Štrpac"));
        assert!(body.ends_with("suspicion of attempted manslaughter."));
    }
}
