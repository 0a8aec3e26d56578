//! Stages 3 and 5b: growth and rebuild. A fresh database is grown with generated NDJSON
//! loaded by `galley events import` while the server is stopped; at each size the server is
//! started and history and feed pages are timed. Finally `galley projections rebuild` replays
//! the whole log.

use std::io::BufWriter;
use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

use crate::db::{Backend, BenchDb};
use crate::gql::{self, Client};
use crate::loggen::LogGen;
use crate::report::{self, Row};
use crate::server::Galley;
use crate::stats::{sequential, Rng};
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
