//! Stages 3 and 5b: growth and rebuild. A fresh database is grown with generated NDJSON
//! loaded by `galley events import` while the server is stopped; at each size the server is
//! started and history and feed pages are timed. Finally `galley projections rebuild` replays
//! the whole log.

use std::io::BufWriter;
use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

use sqlx::Row as _;
use uuid::Uuid;

use crate::db::{Backend, BenchDb, Raw};
use crate::gql::{self, Client};
use crate::loggen::LogGen;
use crate::reads::ARTICLE_COLUMNS;
use crate::report::{self, Row};
use crate::server::Galley;
use crate::stats::{sequential, Measured, Rng};
use crate::Plan;

/// Runs the stage on a database of its own and returns its rows.
pub async fn run(
    plan: &Plan,
    bin: &Path,
    backend: Backend,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let db = BenchDb::create(backend).await?;
    let result = grow(plan, bin, &db, rows).await;
    let removed = db.remove().await;
    result?;
    removed
}

async fn grow(plan: &Plan, bin: &Path, db: &BenchDb, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let name = db.backend.name();
    let galley = Galley {
        bin: bin.to_path_buf(),
        database_url: db.url.clone(),
        log_path: db.scratch("server.log"),
    };
    // `users add` opens the database and applies the migrations.
    let token = galley.add_admin("bench")?;
    let mut generator = LogGen::new(0, plan.big_article_events, 0x6A11E7);
    let big_complete_at = plan
        .growth_sizes
        .get(1)
        .or(plan.growth_sizes.first())
        .copied()
        .unwrap_or(0);
    let ndjson = db.scratch("log.ndjson");
    let mut rng = Rng::new(42);
    for &size in &plan.growth_sizes {
        let count = size.saturating_sub(generator.head());
        {
            let file = std::fs::File::create(&ndjson)?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            generator.write(count, big_complete_at, &mut out)?;
        }
        let path = ndjson.to_str().context("the scratch path is not UTF-8")?;
        let imported = galley.run(&["events", "import", "--input", path])?;
        std::fs::remove_file(&ndjson)?;
        let size_label = events_label(generator.head());
        rows.push(Row::figure(
            name,
            "growth",
            &format!("import {} events (to {size_label})", events_label(count)),
            report::rate(count as f64 / imported.elapsed.as_secs_f64(), "ev/s"),
        ));
        eprintln!(
            "bench: {name}: imported {count} events in {:.1} s (log at {})",
            imported.elapsed.as_secs_f64(),
            generator.head()
        );

        let server = galley.serve().await?;
        rows.push(Row::figure(
            name,
            "start-up",
            &format!("to /readyz, log at {size_label}"),
            format!("{:.3} s", server.startup.as_secs_f64()),
        ));
        let client = Client::new(server.addr, &token)?;
        let head = generator.head();

        let feed = sequential(5, plan.page_samples, |_| {
            let after = rng.below(head.saturating_sub(50)).to_string();
            let client = client.clone();
            async move {
                let data = client
                    .request(gql::FEED_50, json!({ "after": after }))
                    .await?;
                let n = data["events"]["edges"].as_array().map_or(0, Vec::len);
                anyhow::ensure!(n == 50, "a feed page had {n} events");
                Ok(())
            }
        })
        .await?;
        rows.push(Row::latency(
            name,
            "growth",
            &format!("feed page (events after N, first 50), log at {size_label}"),
            &feed,
        ));

        let (big_id, big_events) = generator.big();
        let big_id = big_id.to_string();
        let history_big = sequential(5, plan.page_samples, |_| {
            let after = rng.below(big_events.saturating_sub(50)).to_string();
            let client = client.clone();
            let id = big_id.clone();
            async move {
                let data = client
                    .request(gql::HISTORY_50, json!({ "id": id, "after": after }))
                    .await?;
                let n = data["article"]["history"]["edges"]
                    .as_array()
                    .map_or(0, Vec::len);
                anyhow::ensure!(n == 50, "a history page had {n} events");
                Ok(())
            }
        })
        .await?;
        rows.push(Row::latency(
            name,
            "growth",
            &format!(
                "history page (first 50, random cursor), article with {} events, log at {size_label}",
                events_label(big_events)
            ),
            &history_big,
        ));

        let finished: Vec<String> = generator
            .finished()
            .iter()
            .map(|id| id.to_string())
            .collect();
        let history_small = sequential(5, plan.page_samples, |_| {
            let id = finished[rng.below(finished.len() as u64) as usize].clone();
            let client = client.clone();
            async move {
                let data = client
                    .request(gql::HISTORY_50, json!({ "id": id, "after": null }))
                    .await?;
                let n = data["article"]["history"]["edges"]
                    .as_array()
                    .map_or(0, Vec::len);
                anyhow::ensure!(n >= 9, "a small article's history had {n} events");
                Ok(())
            }
        })
        .await?;
        rows.push(Row::latency(
            name,
            "growth",
            &format!("history page (first 50), article with 9-17 events, log at {size_label}"),
            &history_small,
        ));
        let raw = db.raw(1).await?;
        let ids = generator.finished();
        let small: Vec<(Uuid, i64)> = (0..DB_SAMPLES)
            .map(|_| (ids[rng.below(ids.len() as u64) as usize].as_uuid(), 0))
            .collect();
        let big_uuid = generator.big().0.as_uuid();
        let big: Vec<(Uuid, i64)> = (0..DB_SAMPLES)
            .map(|_| (big_uuid, rng.below(big_events.saturating_sub(50)) as i64))
            .collect();
        for (label, picks) in [
            ("article with 9-17 events", &small),
            ("random cursor, the long article", &big),
        ] {
            let (measured, buffers) = database_pages(&raw, picks).await?;
            rows.push(Row::latency(
                name,
                "growth",
                &format!(
                    "history page in the database alone (article row + 51 events), {label}, \
                     log at {size_label}"
                ),
                &measured,
            ));
            if let Some(b) = buffers {
                rows.push(Row::figure(
                    name,
                    "growth",
                    &format!("PostgreSQL buffers per such page, {label}, log at {size_label}"),
                    b.to_string(),
                ));
            }
        }
        rows.push(Row::figure(
            name,
            "growth",
            &format!("database size, log at {size_label}"),
            format!(
                "{:.0} MiB",
                database_bytes(db, &raw).await? as f64 / (1 << 20) as f64
            ),
        ));
        raw.close().await;
        server.stop()?;
    }

    let rebuilt = galley.run(&["projections", "rebuild"])?;
    let head = generator.head();
    rows.push(Row::figure(
        name,
        "rebuild",
        &format!("galley projections rebuild, {} events", events_label(head)),
        format!(
            "{} ({:.1} s)",
            report::rate(head as f64 / rebuilt.elapsed.as_secs_f64(), "ev/s"),
            rebuilt.elapsed.as_secs_f64()
        ),
    ));
    eprintln!("bench: {name}: {}", rebuilt.stdout.trim());
    Ok(())
}

/// 1000 → "1k", 1000000 → "1M", others as they are.
pub fn events_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// Pages read in the database alone at each size, beside the HTTP figures (the first five are
/// the warm-up).
const DB_SAMPLES: usize = 305;

/// What the store reads for a history page (`read_stream` in crates/storage/src/log/read.rs).
const HISTORY_SQL: &str = "SELECT position, event_id, article_id, version, event_type, \
     schema_version, payload, actor, correlation_id, causation_id, request_id, recorded_at \
     FROM events WHERE article_id = $1 AND version > $2 ORDER BY version ASC LIMIT 51";

/// PostgreSQL's buffer counts for a page, averaged over the samples.
#[derive(Debug, Default)]
struct Buffers {
    hit: f64,
    read: f64,
}

impl std::fmt::Display for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} hit, {:.1} read", self.hit, self.read)
    }
}

/// Times the two statements of a history page (`article(id)` reads the article row, then its
/// history reads the events), one page at a time as the HTTP samples are, on picks of their
/// own so that the pages are as cold as the HTTP samples' were. On PostgreSQL, a second pass
/// on fresh picks runs each statement under `EXPLAIN (ANALYZE, BUFFERS)` and averages the
/// shared buffers hit (in PostgreSQL's cache) and read (from the operating system).
async fn database_pages(
    raw: &Raw,
    picks: &[(Uuid, i64)],
) -> anyhow::Result<(Measured, Option<Buffers>)> {
    let article_sql = format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = $1");
    let half = picks.len() / 2;
    let page = |i: usize| {
        let (id, after) = picks[i];
        let article_sql = article_sql.as_str();
        async move {
            // The same two statements on either pool (their row types differ).
            macro_rules! read_page {
                ($pool:expr) => {{
                    sqlx::query(article_sql).bind(id).fetch_one($pool).await?;
                    let rows = sqlx::query(HISTORY_SQL)
                        .bind(id)
                        .bind(after)
                        .fetch_all($pool)
                        .await?;
                    for row in &rows {
                        row.try_get::<serde_json::Value, _>("payload")?;
                    }
                    rows.len()
                }};
            }
            let events = match raw {
                Raw::Pg(p) => read_page!(p),
                Raw::Sqlite(p) => read_page!(p),
            };
            anyhow::ensure!(events >= 9, "a history page read {events} events");
            Ok(())
        }
    };
    let measured = match raw {
        // Every pick but the last half is timed (the first five are the warm-up).
        Raw::Sqlite(_) => sequential(5, picks.len() - 5, page).await?,
        Raw::Pg(_) => sequential(5, half - 5, page).await?,
    };
    let Raw::Pg(pool) = raw else {
        return Ok((measured, None));
    };
    let mut buffers = Buffers::default();
    let explained = &picks[half..];
    for &(id, after) in explained {
        for (sql, with_cursor) in [(article_sql.as_str(), false), (HISTORY_SQL, true)] {
            let query = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}");
            let mut query = sqlx::query(&query).bind(id);
            if with_cursor {
                query = query.bind(after);
            }
            let plan: serde_json::Value = query.fetch_one(pool).await?.try_get(0)?;
            let top = &plan[0]["Plan"];
            buffers.hit += top["Shared Hit Blocks"].as_f64().unwrap_or(0.0);
            buffers.read += top["Shared Read Blocks"].as_f64().unwrap_or(0.0);
        }
    }
    buffers.hit /= explained.len() as f64;
    buffers.read /= explained.len() as f64;
    Ok((measured, Some(buffers)))
}

/// The database's size on disk: the SQLite file with its WAL, or `pg_database_size`.
async fn database_bytes(db: &BenchDb, raw: &Raw) -> anyhow::Result<u64> {
    match raw {
        Raw::Pg(p) => {
            let size: i64 = sqlx::query("SELECT pg_database_size(current_database())")
                .fetch_one(p)
                .await?
                .try_get(0)?;
            Ok(size as u64)
        }
        Raw::Sqlite(_) => Ok(["galley.db", "galley.db-wal"]
            .iter()
            .map(|f| std::fs::metadata(db.dir.join(f)).map_or(0, |m| m.len()))
            .sum()),
    }
}
