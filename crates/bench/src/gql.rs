//! A minimal GraphQL-over-HTTP client and the documents the harness sends.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// Creates an article; returns its id and version.
pub const CREATE_ARTICLE: &str = "mutation($content: ContentInput!) { \
     createArticle(content: $content) { article { id version } events { position } } }";

/// Writes a new revision; the payload gives the new version and the appended events.
pub const REVISE_DRAFT: &str = "mutation($id: ID!, $expected: Int!, $content: ContentInput!) { \
     reviseDraft(articleId: $id, expectedVersion: $expected, content: $content) { \
     article { id version } events { position recordedAt } } }";

/// One article, with the fields a reader's page shows.
pub const ARTICLE: &str = "query($id: ID!) { article(id: $id) { id version status headline \
     standfirst body slug category tags byline language updatedAt } }";

/// The newest 50 articles, as a list page shows them.
pub const ARTICLES_50: &str = "query { articles(first: 50) { edges { cursor node { id version \
     status headline standfirst slug category tags updatedAt } } pageInfo { hasNextPage \
     endCursor } } }";

/// One page of an article's history.
pub const HISTORY_50: &str = "query($id: ID!, $after: String) { article(id: $id) { \
     history(first: 50, after: $after) { edges { cursor node { position version type \
     recordedAt payload } } pageInfo { hasNextPage } } } }";

/// One page of the global feed.
pub const FEED_50: &str = "query($after: String) { events(after: $after, first: 50) { edges { \
     cursor node { position articleId version type recordedAt payload } } pageInfo { \
     hasNextPage } } }";

/// The log head.
pub const HEAD: &str = "query { head }";

/// How long the client keeps an idle connection: less than galley's default keep-alive timeout
/// (`--keep-alive-timeout-secs`, 5 s).
const IDLE_BEFORE_SERVER_CLOSES: Duration = Duration::from_secs(3);

/// A client bound to one server and one token. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl Client {
    /// A client for `http://addr/graphql` sending `Authorization: Bearer token`.
    pub fn new(addr: SocketAddr, token: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            // Below the server's keep-alive timeout (5 s by default): a connection left idle
            // while a baseline runs is dropped here before the server closes it, instead of
            // being reused just as it closes (a reset at the start of the next phase).
            .pool_idle_timeout(IDLE_BEFORE_SERVER_CLOSES)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Client {
            http,
            url: format!("http://{addr}/graphql"),
            auth: format!("Bearer {token}"),
        })
    }

    /// Waits until text search has indexed the whole log (it follows the log a moment
    /// behind), so that the cases search what was written; fails after a minute.
    pub async fn search_indexed(&self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let data = self.request("{ searchIndex { lag } }", json!({})).await?;
            if data["searchIndex"]["lag"].as_u64() == Some(0) {
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the search index is still behind: {data}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Posts a document and returns `data`; any GraphQL error is an error.
    pub async fn request(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(&self.url)
            .header("authorization", &self.auth)
            .header(
                "accept",
                "application/graphql-response+json, application/json",
            )
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .context("the request failed")?;
        let status = resp.status();
        let mut body: Value = resp
            .json()
            .await
            .with_context(|| format!("the response ({status}) is not JSON"))?;
        if let Some(errors) = body.get("errors") {
            bail!("GraphQL errors ({status}): {errors}");
        }
        if !status.is_success() {
            bail!("HTTP {status}: {body}");
        }
        body.get_mut("data")
            .map(Value::take)
            .context("the response has no data")
    }

    /// Creates an article with the given content and returns `(id, version)`.
    pub async fn create_article(&self, content: Value) -> anyhow::Result<(String, u64)> {
        let data = self
            .request(CREATE_ARTICLE, json!({ "content": content }))
            .await?;
        let article = &data["createArticle"]["article"];
        Ok((
            article["id"].as_str().context("no id")?.to_owned(),
            article["version"].as_u64().context("no version")?,
        ))
    }

    /// Revises a draft and returns the payload (`article`, `events`).
    pub async fn revise_draft(
        &self,
        id: &str,
        expected: u64,
        content: Value,
    ) -> anyhow::Result<Value> {
        let mut data = self
            .request(
                REVISE_DRAFT,
                json!({ "id": id, "expected": expected, "content": content }),
            )
            .await?;
        Ok(data["reviseDraft"].take())
    }

    /// The log head.
    pub async fn head(&self) -> anyhow::Result<u64> {
        let data = self.request(HEAD, json!({})).await?;
        data["head"].as_u64().context("no head")
    }
}

/// A plausible article: a headline that gives a unique slug, a standfirst, a few paragraphs of
/// Markdown, two tags and a byline (about 700 bytes, a short news item).
pub fn content(n: u64, revision: u64) -> Value {
    json!({
        "headline": format!("Harbour council votes on the night ferry, item {n}"),
        "standfirst": "The vote follows months of complaints from shift workers about the last \
                       crossing leaving before the late shift ends.",
        "body": body(revision),
        "category": "local",
        "tags": ["transport", "council"],
        "byline": ["Bench Reporter"],
        "language": "en",
    })
}

/// The body of a revision: the same text with the revision number in it.
pub fn body(revision: u64) -> String {
    format!(
        "The council met on Tuesday evening to decide whether the night ferry should run an \
         hour later. *Revision {revision}.*\n\nShift workers at the hospital and the port \
         have asked for the change for two years; the operator says the extra crossing would \
         need a second crew.\n\nA decision on funding is expected next month, after the \
         transport committee reports."
    )
}
