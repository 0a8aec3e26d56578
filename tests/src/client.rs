//! A GraphQL client over HTTP, and the documents and articles the suites send with it.

use std::time::Duration;

use galley::RunningServer;
use serde_json::{json, Value};

use crate::{User, GUARD};

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

    /// A client for a token made elsewhere (by the command line, or a made-up one); its user's
    /// id and name are not known here and left empty.
    pub fn with_token(server: &RunningServer, token: &str) -> Client {
        Client::new(
            server,
            Some(User {
                id: String::new(),
                name: String::new(),
                token: token.to_owned(),
            }),
        )
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

    /// Waits until text search has indexed everything committed before the call (the head
    /// then), polling `searchIndex`: text search follows the log a moment behind it. The wait
    /// is bounded (it fails after a minute); no time is asserted.
    pub async fn search_indexed(&self) -> u64 {
        let head = self.head().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let data = self.ok("{ searchIndex { checkpoint } }", json!({})).await;
            let checkpoint = data["searchIndex"]["checkpoint"].as_u64().unwrap();
            if checkpoint >= head {
                return checkpoint;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the search index stayed at {checkpoint}, short of {head}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
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

/// The node ids of a connection's edges, in order.
pub fn node_ids(connection: &Value) -> Vec<&str> {
    connection["edges"]
        .as_array()
        .expect("a connection with edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("a node id"))
        .collect()
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
