//! galley-bench: measures a real release `galley serve` the way its users would, over HTTP and
//! WebSocket on loopback, next to raw SQL on the same database, and prints one table.
//!
//! `all` is the full run (a few minutes); `smoke` runs every stage with tiny sizes in seconds
//! and asserts nothing about timings, only that every stage ran (CI runs it). Each backend
//! gets a fresh database (an SQLite file in a temporary folder, or a `galley_bench_<uuid>`
//! PostgreSQL database) that is removed afterwards, and every server the harness starts is a
//! child process killed when its guard drops, on success, error or panic alike.
//! See docs/BENCHMARKS.md.

mod appends;
mod compare;
mod db;
mod fanout;
mod gql;
mod growth;
mod loggen;
mod peer;
mod reads;
mod report;
mod server;
mod stats;
mod wrk;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use futures::FutureExt as _;

use crate::appends::RawInserts;
use crate::compare::{PeerAuth, PeerConfig, PeerPlan};
use crate::db::{Backend, BenchDb};
use crate::gql::Client;
use crate::report::Row;
use crate::server::{Galley, RssWatch};
use crate::stats::Window;

/// Benchmarks for Galley.
#[derive(Debug, Parser)]
#[command(name = "galley-bench")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    /// Which backends to measure.
    #[arg(long, value_enum, default_value_t = BackendChoice::Both, global = true)]
    backend: BackendChoice,
    /// Largest log size of the growth stage (overrides the mode's).
    #[arg(long, global = true)]
    max_events: Option<u64>,
    /// Use this galley binary instead of building one with `cargo build --release`.
    #[arg(long, global = true, hide = true)]
    galley_bin: Option<PathBuf>,
    /// Where the peer stage installs PostGraphile (default: galley-bench-peer/ in the cargo
    /// target directory).
    #[arg(long, env = "GALLEY_BENCH_PEER_DIR", global = true)]
    peer_dir: Option<PathBuf>,
    /// How the peer authenticates requests: none (its fastest setup, the default) or JWT.
    #[arg(long, value_enum, default_value_t = PeerAuth::None, global = true)]
    peer_auth: PeerAuth,
    /// Node.js processes of the peer (PostGraphile's `--cluster-workers` when above 1).
    #[arg(long, default_value_t = 1, global = true)]
    peer_workers: u32,
    /// Seconds of each wrk run in the peer stage (overrides the mode's).
    #[arg(long, global = true)]
    peer_secs: Option<u64>,
    /// Rounds of the peer stage (overrides the mode's).
    #[arg(long, global = true)]
    peer_rounds: Option<usize>,
    /// Measure only the peer stage's cases whose text contains one of these, comma-separated
    /// (for example `50-item list`); every case is still checked.
    #[arg(long, global = true, value_delimiter = ',')]
    peer_cases: Vec<String>,
    /// WebSocket subscribers of the fan-out stage, one measurement per count, comma-separated
    /// (overrides the mode's: 500 in `all`, 500 and 2000 in `fanout`).
    #[arg(long, global = true, value_delimiter = ',')]
    subscribers: Option<Vec<usize>>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Mode {
    /// The full run: every stage at full size (a few minutes).
    All,
    /// Every stage at tiny sizes, in seconds; no timing is asserted (CI).
    Smoke,
    /// Only start-up and the append stage at full size, next to its baseline: the quick loop
    /// for work on the write path (run a profiler beside it).
    Appends,
    /// Only the growth stage (import, start-up, pages and rebuild at each log size); with
    /// `--max-events 1000000` the run to a million events.
    Growth,
    /// Only start-up and the read stage (next to raw SQL): the quick loop for work on the
    /// read path.
    Reads,
    /// Only start-up and the fan-out stage, at each count of `--subscribers` (500 and 2000 by
    /// default): the quick loop for work on live delivery.
    Fanout,
    /// Only the peer stage: Galley next to PostGraphile on PostgreSQL, under wrk (needs Node.js,
    /// npm and wrk; about 6 minutes, 2 with --quick).
    Peer {
        /// 3 s per case instead of 10.
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

/// The stage a mode runs alone (start-up included, where the stage has a live server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Appends,
    Reads,
    Fanout,
    Growth,
}

/// The sizes and durations of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrency levels of the append stage.
    pub append_clients: Vec<usize>,
    /// Seconds each append level (and its raw baseline) runs; pgbench needs whole seconds.
    pub append_secs: u64,
    /// Unrecorded warm-up before each HTTP throughput measurement.
    pub warmup: Duration,
    /// How long each read case runs.
    pub read_window: Duration,
    /// Concurrent readers.
    pub read_clients: usize,
    /// Articles in the database during the read stage.
    pub read_articles: usize,
    /// WebSocket subscribers of the fan-out stage: one measurement per count, on one server.
    pub subscribers: Vec<usize>,
    /// Measured mutations of the fan-out stage.
    pub fanout_mutations: usize,
    /// Log sizes at which pages are timed.
    pub growth_sizes: Vec<u64>,
    /// Events of the one long article.
    pub big_article_events: u64,
    /// Timed requests per page kind and size.
    pub page_samples: usize,
    /// One stage alone (the `appends`, `reads`, `fanout` and `growth` modes), or every stage.
    pub only: Option<Only>,
    /// The peer stage.
    pub peer: PeerPlan,
}

impl Plan {
    fn all() -> Plan {
        Plan {
            append_clients: vec![1, 8, 32],
            append_secs: 5,
            warmup: Duration::from_millis(500),
            read_window: Duration::from_secs(5),
            read_clients: 8,
            read_articles: 500,
            subscribers: vec![500],
            fanout_mutations: 20,
            // 1M events take over five minutes to import and three to rebuild per backend on
            // the 2-core reference machine, which would put `all` far past its ten-minute
            // budget; `--max-events 1000000` runs it (docs/BENCHMARKS.md).
            growth_sizes: vec![10_000, 100_000, 300_000],
            big_article_events: 10_000,
            page_samples: 300,
            only: None,
            peer: PeerPlan::full(),
        }
    }

    fn smoke() -> Plan {
        Plan {
            append_clients: vec![1, 8, 32],
            append_secs: 1,
            warmup: Duration::ZERO,
            read_window: Duration::from_millis(500),
            read_clients: 8,
            read_articles: 60,
            subscribers: vec![20],
            fanout_mutations: 3,
            growth_sizes: vec![1_000, 2_000],
            big_article_events: 500,
            page_samples: 20,
            only: None,
            peer: PeerPlan::smoke(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen mode; `Ok(false)` when a backend failed (its error is printed).
async fn run(cli: Cli) -> anyhow::Result<bool> {
    let started = Instant::now();
    let (mode_name, mut plan) = match cli.mode {
        Mode::All => ("all", Plan::all()),
        Mode::Smoke => ("smoke", Plan::smoke()),
        Mode::Appends => (
            "appends",
            Plan {
                only: Some(Only::Appends),
                ..Plan::all()
            },
        ),
        Mode::Growth => (
            "growth",
            Plan {
                only: Some(Only::Growth),
                ..Plan::all()
            },
        ),
        Mode::Reads => (
            "reads",
            Plan {
                only: Some(Only::Reads),
                ..Plan::all()
            },
        ),
        Mode::Fanout => (
            "fanout",
            Plan {
                only: Some(Only::Fanout),
                subscribers: vec![500, 2000],
                ..Plan::all()
            },
        ),
        Mode::Peer { quick } => (
            "peer",
            Plan {
                peer: if quick {
                    PeerPlan::quick()
                } else {
                    PeerPlan::full()
                },
                ..Plan::all()
            },
        ),
    };
    if let Some(secs) = cli.peer_secs {
        plan.peer.secs = secs.max(1);
    }
    plan.peer.only = cli.peer_cases.clone();
    if let Some(rounds) = cli.peer_rounds {
        plan.peer.rounds = rounds.max(1);
    }
    if let Some(counts) = cli.subscribers {
        anyhow::ensure!(
            !counts.is_empty() && counts.iter().all(|&n| n > 0),
            "--subscribers needs one or more counts above zero"
        );
        plan.subscribers = counts;
    }
    if let Some(max) = cli.max_events {
        plan.growth_sizes.retain(|&s| s < max);
        plan.growth_sizes.push(max);
    }
    let bin = match cli.galley_bin {
        Some(bin) => bin,
        None => tokio::task::spawn_blocking(server::build_release).await??,
    };
    let backends = match cli.backend {
        BackendChoice::Sqlite => vec![Backend::Sqlite],
        BackendChoice::Postgres => vec![Backend::Postgres],
        BackendChoice::Both => vec![Backend::Sqlite, Backend::Postgres],
    };
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut ratios = Vec::new();
    let mut failed = false;
    let peer_only = matches!(cli.mode, Mode::Peer { .. });
    let with_peer = !matches!(
        cli.mode,
        Mode::Appends | Mode::Fanout | Mode::Reads | Mode::Growth
    );
    let has_postgres = backends.contains(&Backend::Postgres);
    for backend in backends.into_iter().filter(|_| !peer_only) {
        let name = backend.name();
        eprintln!("bench: {name}: {mode_name} run");
        let outcome = AssertUnwindSafe(bench_backend(&plan, &bin, backend, &mut rows, &mut notes))
            .catch_unwind()
            .await;
        match outcome {
            Ok(Ok(ratio)) if matches!(plan.only, None | Some(Only::Appends)) => {
                ratios.push((name, ratio))
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                eprintln!("error: {name}: {e:#}");
                failed = true;
            }
            Err(_) => {
                eprintln!("error: {name}: the harness panicked");
                failed = true;
            }
        }
    }
    let mut peer_ran = false;
    if with_peer && !has_postgres {
        let why = "the peer stage runs on PostgreSQL only (--backend postgres or both)";
        eprintln!("bench: peer: skipped: {why}");
        notes.push(format!("peer stage skipped: {why}"));
    } else if with_peer {
        let config = PeerConfig {
            plan: plan.peer.clone(),
            dir: match cli.peer_dir {
                Some(dir) => dir,
                None => peer::default_dir()?,
            },
            auth: cli.peer_auth,
            workers: cli.peer_workers.max(1),
        };
        eprintln!("bench: peer stage");
        let outcome = AssertUnwindSafe(compare::run(&config, &bin, &mut rows, &mut notes))
            .catch_unwind()
            .await;
        match outcome {
            Ok(Ok(ran)) => peer_ran = ran,
            Ok(Err(e)) => {
                eprintln!("error: peer: {e:#}");
                failed = true;
            }
            Err(_) => {
                eprintln!("error: peer: the harness panicked");
                failed = true;
            }
        }
    }
    println!();
    println!(
        "galley-bench {mode_name}: {} ({} s)",
        machine_summary(),
        started.elapsed().as_secs()
    );
    println!();
    print!("{}", report::markdown(&rows));
    println!();
    for (name, ratio) in &ratios {
        println!("append ratio vs raw INSERT at 32 clients: {ratio:.2} ({name})");
    }
    for note in &notes {
        println!("{note}");
    }
    if matches!(cli.mode, Mode::Smoke) && !failed {
        check_every_stage_ran(&rows, &ratios)?;
        if peer_ran {
            anyhow::ensure!(
                rows.iter().any(|r| r.stage == "peer"),
                "the peer stage printed no row"
            );
        }
        println!("smoke: every stage ran");
    }
    if peer_only && !peer_ran && !failed {
        // `galley-bench peer` that measured nothing is a failure, not a quiet success.
        eprintln!("error: the peer stage did not run (see the notice above)");
        return Ok(false);
    }
    Ok(!failed)
}

/// Smoke mode asserts only that each backend produced a row for every stage.
fn check_every_stage_ran(rows: &[Row], ratios: &[(&str, f64)]) -> anyhow::Result<()> {
    for (backend, _) in ratios {
        for stage in [
            "start-up", "appends", "reads", "fan-out", "growth", "rebuild", "memory",
        ] {
            anyhow::ensure!(
                rows.iter()
                    .any(|r| r.backend == *backend && r.stage == stage),
                "{backend}: the {stage} stage printed no row"
            );
        }
    }
    Ok(())
}

/// Every stage on one backend; returns the append ratio at the highest concurrency.
async fn bench_backend(
    plan: &Plan,
    bin: &Path,
    backend: Backend,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<f64> {
    if plan.only == Some(Only::Growth) {
        growth::run(plan, bin, backend, rows).await?;
        return Ok(f64::NAN);
    }
    let db = BenchDb::create(backend).await?;
    let result = AssertUnwindSafe(live_stages(plan, bin, &db, rows, notes))
        .catch_unwind()
        .await;
    // The server guard has dropped by now (it lives inside `live_stages`), so the database can
    // go whatever happened.
    let removed = db.remove().await;
    let ratio = match result {
        Ok(r) => r?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    removed?;
    if plan.only.is_none() {
        growth::run(plan, bin, backend, rows).await?;
    }
    Ok(ratio)
}

/// Start-up, appends, reads, fan-out and memory, on one server.
async fn live_stages(
    plan: &Plan,
    bin: &Path,
    db: &BenchDb,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<f64> {
    let name = db.backend.name();
    let galley = Galley {
        bin: bin.to_path_buf(),
        database_url: db.url.clone(),
        log_path: db.scratch("server.log"),
    };
    let server = galley.serve().await?;
    rows.push(Row::figure(
        name,
        "start-up",
        "to /readyz, empty database (migrations included)",
        format!("{:.3} s", server.startup.as_secs_f64()),
    ));
    let token = galley.add_admin("bench")?;
    let client = Client::new(server.addr, &token)?;
    client
        .head()
        .await
        .context("the admin token does not work")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.rss_kib().unwrap_or(0);
    if plan.only == Some(Only::Fanout) {
        let memory = fanout_stage(name, plan, &server, &token, &client, rows).await?;
        rows.extend(memory);
        server.stop()?;
        return Ok(f64::NAN);
    }

    // 1. Appends.
    let max_clients = plan.append_clients.iter().copied().max().unwrap_or(1);
    let raw = db.raw(max_clients.max(plan.read_clients) as u32).await?;
    let mut articles = appends::create_articles(&client, 0, max_clients).await?;
    let inserts = RawInserts::prepare(db, &raw).await?;
    let watch = RssWatch::start(server.pid());
    let mut ratio = f64::NAN;
    let append_clients: &[usize] = if plan.only == Some(Only::Reads) {
        &[]
    } else {
        &plan.append_clients
    };
    for &c in append_clients {
        let window = Window {
            warmup: plan.warmup,
            measure: Duration::from_secs(plan.append_secs),
        };
        let profile = match &raw {
            db::Raw::Pg(pool) if c == max_clients => Some(appends::PgProfile::start(pool).await?),
            _ => None,
        };
        let before: u64 = articles[..c].iter().map(|a| a.version).sum();
        let (measured, back) = appends::revise_drafts(&client, articles[..c].to_vec(), window)
            .await
            .with_context(|| format!("reviseDraft at {c} clients"))?;
        let issued = back.iter().map(|a| a.version).sum::<u64>() - before;
        articles.splice(..c, back);
        if let Some(profile) = profile {
            let line = profile.finish(issued as usize).await?;
            notes.push(format!(
                "profile ({name}, reviseDraft at {c} clients): {line}"
            ));
        }
        let base = inserts
            .run(c, plan.append_secs)
            .await
            .with_context(|| format!("raw INSERT at {c} clients"))?;
        ratio = measured.rate() / base.rate();
        let row = Row::measured(
            name,
            "appends",
            &format!("reviseDraft, {c} clients"),
            &measured,
            "mut/s",
        )
        .against(inserts.label(), &measured, &base, "tx/s");
        eprintln!("bench: {name}: {} {} ({})", row.case, row.value, row.ratio);
        rows.push(row);
    }
    let append_rss = watch.finish().await;
    inserts.finish(&raw).await?;
    let append_rss_row = Row::figure(
        name,
        "memory",
        &format!("peak RSS, appends at {max_clients} clients"),
        report::mib(append_rss),
    );
    if plan.only == Some(Only::Appends) {
        rows.push(append_rss_row);
        raw.close().await;
        server.stop()?;
        return Ok(ratio);
    }

    // 2. Reads.
    let more = plan.read_articles.saturating_sub(articles.len());
    articles.extend(appends::create_articles(&client, max_clients as u64, more).await?);
    let ids: Arc<Vec<String>> = Arc::new(articles.iter().map(|a| a.id.clone()).collect());
    let window = Window {
        warmup: plan.warmup,
        measure: plan.read_window,
    };
    let watch = RssWatch::start(server.pid());
    let g = reads::galley_article(&client, Arc::clone(&ids), plan.read_clients, window).await?;
    let r = reads::raw_article(&raw, Arc::clone(&ids), plan.read_clients, window).await?;
    let case = format!("article(id), {} clients", plan.read_clients);
    rows.push(Row::measured(name, "reads", &case, &g, "req/s").against(
        "raw SQL (sqlx)",
        &g,
        &r,
        "q/s",
    ));
    // The same read served over HTTP with nothing else in the way, to the same client.
    let (raw_addr, raw_server) = reads::serve_raw_article(&raw).await?;
    let raw_client = Client::new(raw_addr, "unused")?;
    let h = reads::galley_article(&raw_client, Arc::clone(&ids), plan.read_clients, window).await;
    raw_server.abort();
    let h = h?;
    rows.push(Row::measured(name, "reads", &case, &g, "req/s").against(
        "raw SQL over HTTP (axum, same client)",
        &g,
        &h,
        "req/s",
    ));
    let g = reads::galley_list(&client, plan.read_clients, window).await?;
    let r = reads::raw_list(&raw, plan.read_clients, window).await?;
    let case = format!("articles(first: 50), {} clients", plan.read_clients);
    rows.push(Row::measured(name, "reads", &case, &g, "req/s").against(
        "raw SQL (sqlx)",
        &g,
        &r,
        "q/s",
    ));
    let read_rss = watch.finish().await;
    eprintln!("bench: {name}: reads done");
    raw.close().await;
    if plan.only == Some(Only::Reads) {
        rows.push(Row::figure(
            name,
            "memory",
            &format!("peak RSS, reads at {} clients", plan.read_clients),
            report::mib(read_rss),
        ));
        server.stop()?;
        return Ok(ratio);
    }

    // 4. Fan-out.
    let fan_rss = fanout_stage(name, plan, &server, &token, &client, rows).await?;

    // 5. Memory.
    rows.push(Row::figure(
        name,
        "memory",
        "idle RSS after start-up",
        report::mib(idle),
    ));
    rows.push(append_rss_row);
    rows.push(Row::figure(
        name,
        "memory",
        &format!("peak RSS, reads at {} clients", plan.read_clients),
        report::mib(read_rss),
    ));
    rows.extend(fan_rss);
    server.stop()?;
    Ok(ratio)
}

/// The fan-out stage at each of the plan's subscriber counts, one after the other on one
/// server; returns the memory rows (peak RSS at each count).
async fn fanout_stage(
    name: &str,
    plan: &Plan,
    server: &server::Server,
    token: &str,
    client: &Client,
    rows: &mut Vec<Row>,
) -> anyhow::Result<Vec<Row>> {
    let mut article = appends::create_articles(client, 1_000_000, 1)
        .await?
        .pop()
        .context("no article")?;
    let mut memory = Vec::new();
    for &subscribers in &plan.subscribers {
        let watch = RssWatch::start(server.pid());
        let fan = fanout::run(
            server.addr,
            token,
            client,
            &mut article,
            subscribers,
            plan.fanout_mutations,
        )
        .await
        .with_context(|| format!("fan-out to {subscribers} subscribers"))?;
        let fan_rss = watch.finish().await;
        let deliveries = fan.from_recorded.count();
        rows.push(Row {
            value: format!("{deliveries} deliveries"),
            ..Row::latency(
                name,
                "fan-out",
                &format!("{subscribers} subscribers: event recordedAt -> delivery"),
                &fan.from_recorded,
            )
        });
        rows.push(Row {
            value: format!("{deliveries} deliveries"),
            ..Row::latency(
                name,
                "fan-out",
                &format!(
                    "{subscribers} subscribers: mutation sent -> delivery ({} before the response)",
                    fan.before_response
                ),
                &fan.from_request,
            )
        });
        rows.push(Row::figure(
            name,
            "fan-out",
            &format!("{subscribers} subscribers: connect and subscribe"),
            format!("{:.2} s", fan.connect.as_secs_f64()),
        ));
        memory.push(Row::figure(
            name,
            "memory",
            &format!("peak RSS, {subscribers} WebSocket subscribers"),
            report::mib(fan_rss),
        ));
        eprintln!(
            "bench: {name}: fan-out to {subscribers} done (p99 {:.1} ms from recordedAt)",
            fan.from_recorded.p99()
        );
    }
    Ok(memory)
}

/// CPU model, cores and memory, from /proc.
fn machine_summary() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!(
        "{model}, {cores} cores, {:.1} GiB RAM",
        mem_kib as f64 / (1024.0 * 1024.0)
    )
}
