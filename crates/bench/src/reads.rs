//! Stage 2: reads. `article(id)` and `articles(first: 50)` over HTTP, next to sqlx running the
//! same reads on the projection tables.

use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt as _;
use serde_json::json;
use sqlx::Row as _;
use uuid::Uuid;

use crate::db::Raw;
use crate::gql::{self, Client};
use crate::stats::{drive, Measured, Op, Rng, Window};

/// The columns the store reads for an article (`ARTICLE_COLUMNS` in crates/storage/src/read/rows.rs).
pub(crate) const ARTICLE_COLUMNS: &str =
    "id, version, status, revision, headline, standfirst, body, slug, \
     category, tags, byline, language, live_revision, approved_revision, embargo_until, \
     scheduled_for, schedule_blocked_reason, authors, reviewers, created_at, \
     first_submitted_at, submitted_at, first_published_at, last_published_at, updated_at";

/// `article(id)` over HTTP, a random article per request.
pub async fn galley_article(
    client: &Client,
    ids: Arc<Vec<String>>,
    clients: usize,
    window: Window,
) -> anyhow::Result<Measured> {
    let states: Vec<(Client, Rng)> = (0..clients)
        .map(|i| (client.clone(), Rng::new(i as u64 + 1)))
        .collect();
    let op: Op<(Client, Rng)> = Arc::new(move |(client, mut rng)| {
        let id = ids[rng.below(ids.len() as u64) as usize].clone();
        async move {
            let data = client.request(gql::ARTICLE, json!({ "id": id })).await?;
            data["article"]["headline"]
                .as_str()
                .context("article(id) returned no article")?;
            Ok((client, rng))
        }
        .boxed()
    });
    Ok(drive(states, window, op).await?.0)
}

/// `articles(first: 50)` over HTTP.
pub async fn galley_list(
    client: &Client,
    clients: usize,
    window: Window,
) -> anyhow::Result<Measured> {
    let states = vec![client.clone(); clients];
    let op: Op<Client> = Arc::new(|client| {
        async move {
            let data = client.request(gql::ARTICLES_50, json!({})).await?;
            let n = data["articles"]["edges"].as_array().map_or(0, Vec::len);
            anyhow::ensure!(n == 50, "articles(first: 50) returned {n} articles");
            Ok(client)
        }
        .boxed()
    });
    Ok(drive(states, window, op).await?.0)
}

/// The same single-article read in SQL: the row by primary key, every column decoded as the
/// store decodes it into its record (text, numbers and JSON).
pub async fn raw_article(
    raw: &Raw,
    ids: Arc<Vec<String>>,
    clients: usize,
    window: Window,
) -> anyhow::Result<Measured> {
    let ids: Arc<Vec<Uuid>> = Arc::new(
        ids.iter()
            .map(|s| Uuid::parse_str(s))
            .collect::<Result<_, _>>()?,
    );
    let sql: Arc<str> = format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = $1").into();
    let states: Vec<Rng> = (0..clients).map(|i| Rng::new(i as u64 + 1)).collect();
    let raw = raw.clone();
    let op: Op<Rng> = Arc::new(move |mut rng| {
        let id = ids[rng.below(ids.len() as u64) as usize];
        let raw = raw.clone();
        let sql = Arc::clone(&sql);
        async move {
            let n = match &raw {
                Raw::Pg(p) => touch_pg(&sqlx::query(&sql).bind(id).fetch_all(p).await?)?,
                Raw::Sqlite(p) => touch_sqlite(&sqlx::query(&sql).bind(id).fetch_all(p).await?)?,
            };
            anyhow::ensure!(n == 1, "the article row is missing");
            Ok(rng)
        }
        .boxed()
    });
    Ok(drive(states, window, op).await?.0)
}

/// The read of [`raw_article`] served over HTTP by a bare axum handler in this process, for the
/// same client as `article(id)`: the same request body, an answer of the same shape with the
/// same twelve fields, and nothing between them but JSON and the statement (no
/// authentication, GraphQL, rate limit, request id, tracing or metrics). Galley next to it is
/// what Galley's request path costs beyond the query and the transport. Serves until the
/// returned task is aborted.
pub async fn serve_raw_article(
    raw: &Raw,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::extract::State;
    use axum::http::StatusCode;

    async fn article(
        State((raw, sql)): State<(Raw, Arc<str>)>,
        axum::Json(body): axum::Json<serde_json::Value>,
    ) -> Result<axum::Json<serde_json::Value>, (StatusCode, String)> {
        let bad = |e: String| (StatusCode::BAD_REQUEST, e);
        let id = body["variables"]["id"]
            .as_str()
            .ok_or_else(|| bad("no id".into()))
            .and_then(|s| Uuid::parse_str(s).map_err(|e| bad(e.to_string())))?;
        let failed = |e: sqlx::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        // The fields `gql::ARTICLE` asks for, decoded from the row as the store decodes them.
        macro_rules! answer {
            ($pool:expr) => {{
                let row = sqlx::query(&sql)
                    .bind(id)
                    .fetch_one($pool)
                    .await
                    .map_err(failed)?;
                json!({ "data": { "article": {
                    "id": row.try_get::<Uuid, _>("id").map_err(failed)?.to_string(),
                    "version": row.try_get::<i64, _>("version").map_err(failed)?,
                    "status": row.try_get::<String, _>("status").map_err(failed)?,
                    "headline": row.try_get::<String, _>("headline").map_err(failed)?,
                    "standfirst": row.try_get::<String, _>("standfirst").map_err(failed)?,
                    "body": row.try_get::<String, _>("body").map_err(failed)?,
                    "slug": row.try_get::<Option<String>, _>("slug").map_err(failed)?,
                    "category": row.try_get::<Option<String>, _>("category").map_err(failed)?,
                    "tags": row.try_get::<sqlx::types::Json<serde_json::Value>, _>("tags").map_err(failed)?.0,
                    "byline": row.try_get::<sqlx::types::Json<serde_json::Value>, _>("byline").map_err(failed)?.0,
                    "language": row.try_get::<String, _>("language").map_err(failed)?,
                    "updatedAt": row
                        .try_get::<chrono::DateTime<chrono::Utc>, _>("updated_at")
                        .map_err(failed)?
                        .to_rfc3339(),
                } } })
            }};
        }
        Ok(axum::Json(match &raw {
            Raw::Pg(p) => answer!(p),
            Raw::Sqlite(p) => answer!(p),
        }))
    }

    let app = axum::Router::new()
        .route("/graphql", axum::routing::post(article))
        .with_state((
            raw.clone(),
            Arc::<str>::from(format!(
                "SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = $1"
            )),
        ));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("bench: the raw-SQL HTTP server stopped: {e}");
        }
    });
    Ok((addr, task))
}

/// The same list read in SQL: the newest 51 rows by `(updated_at, id)` (one more than the
/// page, as the store asks for, to know whether a next page exists).
pub async fn raw_list(raw: &Raw, clients: usize, window: Window) -> anyhow::Result<Measured> {
    let sql: Arc<str> = format!(
        "SELECT {ARTICLE_COLUMNS} FROM articles ORDER BY updated_at DESC, id DESC LIMIT 51"
    )
    .into();
    let raw = raw.clone();
    let op: Op<()> = Arc::new(move |()| {
        let raw = raw.clone();
        let sql = Arc::clone(&sql);
        async move {
            let n = match &raw {
                Raw::Pg(p) => touch_pg(&sqlx::query(&sql).fetch_all(p).await?)?,
                Raw::Sqlite(p) => touch_sqlite(&sqlx::query(&sql).fetch_all(p).await?)?,
            };
            anyhow::ensure!(n > 50, "the list read returned {n} rows");
            Ok(())
        }
        .boxed()
    });
    Ok(drive(vec![(); clients], window, op).await?.0)
}

/// Decodes the text and JSON columns of every row, so the raw reads pay for decoding as the
/// store does; returns the number of rows.
fn touch_pg(rows: &[sqlx::postgres::PgRow]) -> anyhow::Result<usize> {
    for row in rows {
        let _: String = row.try_get("headline")?;
        let _: String = row.try_get("body")?;
        let _: sqlx::types::Json<serde_json::Value> = row.try_get("tags")?;
        let _: chrono::DateTime<chrono::Utc> = row.try_get("updated_at")?;
    }
    Ok(rows.len())
}

/// See [`touch_pg`].
fn touch_sqlite(rows: &[sqlx::sqlite::SqliteRow]) -> anyhow::Result<usize> {
    for row in rows {
        let _: String = row.try_get("headline")?;
        let _: String = row.try_get("body")?;
        let _: sqlx::types::Json<serde_json::Value> = row.try_get("tags")?;
        let _: chrono::DateTime<chrono::Utc> = row.try_get("updated_at")?;
    }
    Ok(rows.len())
}
