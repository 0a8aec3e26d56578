//! Helpers for the galley crate's own end-to-end tests: a server on port 0 with a fresh
//! database, users with tokens, a GraphQL client over HTTP and a graphql-transport-ws client.

#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use galley::{RunningServer, ServerConfig};
use galley_domain::Role;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The backends a test runs on.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    /// A fresh SQLite file.
    pub fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh PostgreSQL database, or `None` when none is configured.
    pub async fn postgres() -> Option<Backend> {
        galley_storage::testing::fresh_postgres_url()
            .await
            .map(Backend::Postgres)
    }

    pub fn url(&self) -> String {
        match self {
            Backend::Sqlite(dir) => galley_storage::testing::sqlite_url(dir.path()),
            Backend::Postgres(url) => url.clone(),
        }
    }

    pub async fn cleanup(self) {
        if let Backend::Postgres(url) = self {
            galley_storage::testing::drop_postgres_database(&url).await;
        }
    }
}

/// A configuration suited to tests: fast scheduler, short WebSocket init timeout.
pub fn test_config(url: &str) -> ServerConfig {
    let mut config = ServerConfig::new(url);
    config.scheduler_interval = Some(Duration::from_millis(100));
    config.limits.ws_init_timeout = Duration::from_millis(500);
    config.shutdown_grace = Duration::from_secs(2);
    config
}

pub async fn start(url: &str) -> RunningServer {
    galley::telemetry::init_logs(galley::config::LogFormat::Text, "warn");
    galley::spawn(test_config(url))
        .await
        .expect("the server starts")
}

/// Adds a user and returns their token.
pub async fn user(server: &RunningServer, name: &str, roles: &[Role]) -> (String, String) {
    let (user, token) = galley::users::add_user(server.store(), name, roles)
        .await
        .expect("the user is added");
    (user.id.to_string(), token)
}

/// A GraphQL client for one token.
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub token: Option<String>,
}

impl Client {
    pub fn new(server: &RunningServer, token: Option<&str>) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: server.graphql_url(),
            token: token.map(str::to_owned),
        }
    }

    /// Posts a request and returns the status and the JSON body.
    pub async fn post(&self, query: &str, variables: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(&self.url)
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Posts a request that must succeed and returns its data.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Posts a request that must fail with `code` and returns the first error.
    pub async fn fails(&self, query: &str, variables: Value, code: &str) -> Value {
        let (_, body) = self.post(query, variables).await;
        let error = body["errors"][0].clone();
        assert_eq!(error["extensions"]["code"], code, "{body}");
        error
    }
}

/// A graphql-transport-ws client.
pub struct Ws {
    pub socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    pub async fn connect(server: &RunningServer) -> Ws {
        let mut request = server.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Ws { socket }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_owned().into()))
            .await
            .unwrap();
    }

    /// The next JSON message, or the close code when the server closes.
    pub async fn recv(&mut self) -> Result<Value, u16> {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a message within 10 s");
            match next {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map(|f| u16::from(f.code)).unwrap_or(1005))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(1006),
            }
        }
    }

    /// Connects and initialises with a token.
    pub async fn init(server: &RunningServer, token: &str) -> Ws {
        let mut ws = Ws::connect(server).await;
        ws.send(json!({"type": "connection_init", "payload": {"token": token}}))
            .await;
        assert_eq!(ws.recv().await.unwrap()["type"], "connection_ack");
        ws
    }
}

/// The seed article of fixtures/seed-article.md as ContentInput.
pub fn seed_content() -> Value {
    let raw = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/seed-article.md"),
    )
    .expect("fixtures/seed-article.md");
    let body = raw
        .splitn(3, "---")
        .nth(2)
        .unwrap_or_default()
        .trim()
        .to_owned();
    json!({
        "headline": "NATO DENIES SERBIA AN ARMY PRESENCE IN KOSOVO",
        "standfirst": "Serbian President Aleksandar Vučić had sought to put troops in Northern Kosovo to protect the ethnic Serb minority there.",
        "body": body,
        "category": "News",
        "tags": ["Aleksandar Vučić", "army", "conflict", "ethnic tensions", "KFOR", "Kosovo", "NATO", "Serbia"],
        "byline": ["Tristan Vanheuckelom"],
        "language": "en"
    })
}
