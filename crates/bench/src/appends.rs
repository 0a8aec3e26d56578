//! Stage 1: appends. `reviseDraft` over HTTP, each client on its own article, next to one-row
//! INSERT transactions into a copy of the events table on the same database.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::FutureExt as _;
use sqlx::types::Json;
use uuid::Uuid;

use crate::db::{sqlite_pool, BenchDb, Raw};
use crate::gql::{self, Client};
use crate::stats::{drive, Measured, Op, Window};

/// An article owned by one client, with the version it last saw.
#[derive(Debug, Clone)]
pub struct Owned {
    /// Its id.
    pub id: String,
    /// Its number (which makes its slug unique).
    pub number: u64,
    /// The version the client expects.
    pub version: u64,
}

/// Creates `count` articles, 8 at a time, numbered from `first_number`.
pub async fn create_articles(
    client: &Client,
    first_number: u64,
    count: usize,
) -> anyhow::Result<Vec<Owned>> {
    let mut out = Vec::with_capacity(count);
    let numbers: Vec<u64> = (0..count as u64).map(|i| first_number + i).collect();
    for chunk in numbers.chunks(8) {
        let calls = chunk.iter().map(|&n| {
            let client = client.clone();
            async move {
                let (id, version) = client.create_article(gql::content(n, 1)).await?;
                anyhow::Ok(Owned {
                    id,
                    number: n,
                    version,
                })
            }
        });
        for owned in futures::future::join_all(calls).await {
            out.push(owned?);
        }
    }
    Ok(out)
}

/// Runs `reviseDraft` with one client per article for the window; returns the latencies and
/// the articles with their new versions.
pub async fn revise_drafts(
    client: &Client,
    articles: Vec<Owned>,
    window: Window,
) -> anyhow::Result<(Measured, Vec<Owned>)> {
    let states: Vec<(Client, Owned)> = articles.into_iter().map(|a| (client.clone(), a)).collect();
    let op: Op<(Client, Owned)> = Arc::new(|(client, mut article)| {
        async move {
            let next = article.version + 1;
            let payload = client
                .revise_draft(
                    &article.id,
                    article.version,
                    gql::content(article.number, next),
                )
                .await?;
            article.version = payload["article"]["version"]
                .as_u64()
                .context("reviseDraft returned no version")?;
            Ok((client, article))
        }
        .boxed()
    });
    let (measured, states) = drive(states, window, op).await?;
    Ok((measured, states.into_iter().map(|(_, a)| a).collect()))
}

/// Where raw one-row INSERT transactions go.
#[derive(Debug)]
pub enum RawInserts {
    /// pgbench against a copy of `events` in galley's PostgreSQL database.
    Pgbench {
        /// galley's database URL.
        url: String,
        /// Scratch folder for the script and the per-transaction logs.
        dir: std::path::PathBuf,
    },
    /// A sqlx loop against a copy of `events` in galley's PostgreSQL database (no pgbench).
    PgLoop(sqlx::PgPool),
    /// A sqlx loop against an SQLite file of its own, opened as galley opens its database,
    /// with galley's single writer connection.
    SqliteLoop {
        /// The raw file's single writer.
        pool: sqlx::SqlitePool,
        /// The last position written.
        last: Arc<AtomicI64>,
    },
}

/// The raw table's name.
const RAW_TABLE: &str = "bench_raw_events";

impl RawInserts {
    /// Creates the events-like table: `LIKE events INCLUDING ALL` on PostgreSQL (the same
    /// columns, constraints and indexes), and on SQLite the `CREATE` statements of galley's
    /// `events` table and its indexes, read from galley's database file.
    pub async fn prepare(db: &BenchDb, raw: &Raw) -> anyhow::Result<RawInserts> {
        match raw {
            Raw::Pg(pool) => {
                sqlx::query(&format!(
                    "CREATE TABLE {RAW_TABLE} (LIKE events INCLUDING ALL)"
                ))
                .execute(pool)
                .await?;
                sqlx::query(&format!("CREATE SEQUENCE {RAW_TABLE}_position"))
                    .execute(pool)
                    .await?;
                if which("pgbench") {
                    Ok(RawInserts::Pgbench {
                        url: db.url.clone(),
                        dir: db.scratch("pgbench"),
                    })
                } else {
                    eprintln!("bench: pgbench is not on PATH; using a sqlx INSERT loop");
                    Ok(RawInserts::PgLoop(pool.clone()))
                }
            }
            Raw::Sqlite(pool) => {
                let ddl: Vec<String> = sqlx::query_scalar(
                    "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' \
                     AND type IN ('table', 'index') AND sql IS NOT NULL \
                     ORDER BY type = 'index', name",
                )
                .fetch_all(pool)
                .await?;
                if ddl.is_empty() {
                    bail!("galley's SQLite database has no events table");
                }
                let path = db.scratch("raw-inserts.db");
                let raw = sqlite_pool(&path, 1).await?;
                for statement in ddl {
                    sqlx::query(&statement).execute(&raw).await?;
                }
                Ok(RawInserts::SqliteLoop {
                    pool: raw,
                    last: Arc::new(AtomicI64::new(0)),
                })
            }
        }
    }

    /// What the baseline is, for the table.
    pub fn label(&self) -> &'static str {
        match self {
            RawInserts::Pgbench { .. } => "raw INSERT (pgbench)",
            RawInserts::PgLoop(_) => "raw INSERT (sqlx)",
            RawInserts::SqliteLoop { .. } => "raw INSERT (sqlx, 1 writer)",
        }
    }

    /// One-row INSERT transactions at `clients` concurrency for `secs` seconds.
    pub async fn run(&self, clients: usize, secs: u64) -> anyhow::Result<Measured> {
        let window = Window {
            warmup: Duration::ZERO,
            measure: Duration::from_secs(secs),
        };
        match self {
            RawInserts::Pgbench { url, dir } => pgbench(url, dir, clients, secs),
            RawInserts::PgLoop(pool) => {
                let pool = pool.clone();
                let op: Op<()> = Arc::new(move |()| {
                    let pool = pool.clone();
                    async move {
                        sqlx::query(&format!(
                            "INSERT INTO {RAW_TABLE} (position, event_id, article_id, version, \
                             event_type, schema_version, payload, actor, correlation_id, \
                             causation_id, request_id, recorded_at) VALUES \
                             (nextval('{RAW_TABLE}_position'), $1, $2, 1, 'DraftRevised', 1, \
                             $3, $4, $5, NULL, $6, now())"
                        ))
                        .bind(Uuid::now_v7())
                        .bind(Uuid::now_v7())
                        .bind(Json(crate::loggen::draft_revised_payload()))
                        .bind(Uuid::now_v7())
                        .bind(Uuid::now_v7())
                        .bind("bench-request")
                        .execute(&pool)
                        .await?;
                        Ok(())
                    }
                    .boxed()
                });
                Ok(drive(vec![(); clients], window, op).await?.0)
            }
            RawInserts::SqliteLoop { pool, last } => {
                let pool = pool.clone();
                let payload = Arc::new(crate::loggen::draft_revised_payload().to_string());
                let c = Arc::clone(last);
                let op: Op<()> = Arc::new(move |()| {
                    let pool = pool.clone();
                    let payload = Arc::clone(&payload);
                    let position = c.fetch_add(1, Ordering::Relaxed) + 1;
                    async move {
                        sqlx::query(
                            "INSERT INTO events (position, event_id, article_id, version, \
                             event_type, schema_version, payload, actor, correlation_id, \
                             causation_id, request_id, recorded_at) VALUES \
                             ($1, $2, $3, 1, 'DraftRevised', 1, $4, $5, $6, NULL, $7, $8)",
                        )
                        .bind(position)
                        .bind(Uuid::now_v7())
                        .bind(Uuid::now_v7())
                        .bind(payload.as_str())
                        .bind(Uuid::now_v7())
                        .bind(Uuid::now_v7())
                        .bind("bench-request")
                        .bind(chrono::Utc::now())
                        .execute(&pool)
                        .await?;
                        Ok(())
                    }
                    .boxed()
                });
                Ok(drive(vec![(); clients], window, op).await?.0)
            }
        }
    }

    /// Removes the raw table (PostgreSQL) or closes the raw file (SQLite).
    pub async fn finish(self, raw: &Raw) -> anyhow::Result<()> {
        match (self, raw) {
            (RawInserts::SqliteLoop { pool, .. }, _) => pool.close().await,
            (_, Raw::Pg(pool)) => {
                sqlx::query(&format!("DROP TABLE {RAW_TABLE}"))
                    .execute(pool)
                    .await?;
                sqlx::query(&format!("DROP SEQUENCE {RAW_TABLE}_position"))
                    .execute(pool)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether a program is on PATH.
pub fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs `pgbench -n -f script -c C -j J -T secs -l` and reads the rate from its "tps = " line
/// and the latencies from its per-transaction log.
fn pgbench(url: &str, dir: &Path, clients: usize, secs: u64) -> anyhow::Result<Measured> {
    std::fs::create_dir_all(dir)?;
    let script = dir.join("insert.sql");
    // pgbench substitutes `:name` variables in scripts, so the JSON literal keeps a space
    // after every colon (the payload's strings contain none).
    let payload = crate::loggen::draft_revised_payload()
        .to_string()
        .replace("\":", "\": ")
        .replace('\'', "''");
    std::fs::write(
        &script,
        format!(
            "INSERT INTO {RAW_TABLE} (position, event_id, article_id, version, event_type, \
             schema_version, payload, actor, correlation_id, causation_id, request_id, \
             recorded_at) VALUES (nextval('{RAW_TABLE}_position'), gen_random_uuid(), \
             gen_random_uuid(), 1, 'DraftRevised', 1, '{payload}'::jsonb, gen_random_uuid(), \
             gen_random_uuid(), NULL, 'bench-request', now());\n"
        ),
    )?;
    let prefix = dir.join(format!("log-c{clients}"));
    let threads = if clients.is_multiple_of(2) { 2 } else { 1 };
    let started = Instant::now();
    let output = Command::new("pgbench")
        .arg("-n")
        .arg("-f")
        .arg(&script)
        .args(["-c", &clients.to_string()])
        .args(["-j", &threads.to_string()])
        .args(["-T", &secs.to_string()])
        .arg("-l")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg(url)
        .current_dir(dir)
        .output()
        .context("cannot run pgbench")?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tps = parse_tps(&stdout).with_context(|| format!("no tps in pgbench output:\n{stdout}"))?;
    let mut samples = Vec::new();
    let file_prefix = prefix
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name
            .to_string_lossy()
            .starts_with(&format!("{file_prefix}."))
        {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())?;
        // "client_id transaction_no time_us script_no time_epoch time_us_frac"
        samples.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .filter_map(|t| t.parse::<u64>().ok()),
        );
        std::fs::remove_file(entry.path())?;
    }
    if samples.is_empty() {
        bail!("pgbench wrote no per-transaction log");
    }
    // The rate is pgbench's own; the window is set so that `Measured::rate` returns it.
    let n = samples.len();
    let window = if tps > 0.0 {
        Duration::from_secs_f64(n as f64 / tps)
    } else {
        elapsed
    };
    Ok(Measured::new(samples, window))
}

/// The rate pgbench reports: "tps = 1234.5 (without initial connection time)" on PostgreSQL
/// 14 and later, "… (excluding connections establishing)" before.
pub fn parse_tps(stdout: &str) -> Option<f64> {
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("tps = ")).collect();
    let line = lines
        .iter()
        .find(|l| l.contains("without") || l.contains("excluding"))
        .or(lines.first())?;
    line.trim_start_matches("tps = ")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::parse_tps;

    #[test]
    fn the_rate_is_read_from_either_pgbench_format() {
        assert_eq!(
            parse_tps("latency average = 1.0 ms\ntps = 812.5 (without initial connection time)\n"),
            Some(812.5)
        );
        assert_eq!(
            parse_tps(
                "tps = 700.0 (including connections establishing)\n\
                 tps = 750.0 (excluding connections establishing)\n"
            ),
            Some(750.0)
        );
        assert_eq!(parse_tps("nothing"), None);
    }
}

/// Where galley's PostgreSQL connections spend an append run, from `pg_stat_activity` sampled
/// every 5 ms, and the rows each mutation writes, from `pg_stat_database`.
#[derive(Debug)]
pub struct PgProfile {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<(String, f64)>>>,
    pool: sqlx::PgPool,
    before: [i64; 4],
}

/// `pg_stat_database` counters: commits, rows inserted, updated, deleted.
async fn db_counters(pool: &sqlx::PgPool) -> anyhow::Result<[i64; 4]> {
    let (c, i, u, d): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    Ok([c, i, u, d])
}

impl PgProfile {
    /// Starts sampling galley's connections to the database of `pool` (the harness's own
    /// connections are idle meanwhile, and idle connections are not counted).
    pub async fn start(pool: &sqlx::PgPool) -> anyhow::Result<PgProfile> {
        // Statistics are sent at transaction end and read from a snapshot; take a fresh one.
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(pool)
            .await?;
        let before = db_counters(pool).await?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let p = pool.clone();
        let task = tokio::spawn(async move {
            let mut totals: std::collections::BTreeMap<String, f64> = Default::default();
            let mut samples = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT CASE \
                       WHEN state = 'idle in transaction' THEN 'in a transaction, waiting for galley' \
                       WHEN wait_event_type = 'Lock' THEN 'waiting for a lock (' || wait_event || ')' \
                       WHEN wait_event_type IS NULL THEN 'executing (on CPU)' \
                       ELSE 'waiting: ' || wait_event_type || '/' || wait_event END, count(*) \
                     FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid() AND state <> 'idle' \
                     AND backend_type = 'client backend' GROUP BY 1",
                )
                .fetch_all(&p)
                .await?;
                for (what, n) in rows {
                    *totals.entry(what).or_default() += n as f64;
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let samples = f64::from(samples.max(1));
            let mut out: Vec<(String, f64)> =
                totals.into_iter().map(|(k, v)| (k, v / samples)).collect();
            out.sort_by(|a, b| b.1.total_cmp(&a.1));
            Ok(out)
        });
        Ok(PgProfile {
            stop,
            task,
            pool: pool.clone(),
            before,
        })
    }

    /// Stops sampling and describes the run of `mutations` mutations in one line.
    pub async fn finish(self, mutations: usize) -> anyhow::Result<String> {
        self.stop.store(true, Ordering::Relaxed);
        let states = self.task.await??;
        // Give the statistics collector a moment to receive the last transactions' counts.
        tokio::time::sleep(Duration::from_millis(700)).await;
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&self.pool)
            .await?;
        let after = db_counters(&self.pool).await?;
        let per = |i: usize| (after[i] - self.before[i]) as f64 / mutations.max(1) as f64;
        let states = states
            .iter()
            .map(|(what, n)| format!("{what} {n:.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(format!(
            "galley's busy connections on average: {states}; per mutation: {:.1} commits, \
             {:.1} rows inserted, {:.1} updated, {:.1} deleted",
            per(0),
            per(1),
            per(2),
            per(3)
        ))
    }
}
