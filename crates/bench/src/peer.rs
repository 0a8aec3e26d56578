//! The peer: PostGraphile 4.14.1, what a team would put on PostgreSQL instead of Galley,
//! installed from npm into a cache folder outside the repository's tracked files and run as a
//! child process against the harness's database.
//!
//! The dependency tree is pinned by `crates/bench/peer/package-lock.json` (installed with
//! `npm ci`), so every run measures the same code. PostGraphile 5 needs Node.js 22; 4.14.1
//! runs on the Node.js 20 of the reference machine.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::appends::which;
use crate::server;

/// The PostGraphile version the lock file pins.
pub const VERSION: &str = "4.14.1";

/// The peer's name in the table.
pub const NAME: &str = "PostGraphile 4.14.1";

/// `package.json` of the cache folder.
const PACKAGE_JSON: &str = include_str!("../peer/package.json");
/// Its lock file: PostGraphile and every dependency, by version and integrity hash.
const PACKAGE_LOCK: &str = include_str!("../peer/package-lock.json");

/// Longest PostGraphile may take to introspect the database and answer.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The connections PostGraphile may hold, shared by its workers: galley's default
/// (`GALLEY_DATABASE_MAX_CONNECTIONS`, 16), so neither side has more database sessions.
pub const POOL_SIZE: u32 = 16;

/// Whether Node.js and npm are on PATH.
pub fn node_available() -> bool {
    which("node") && which("npm")
}

/// The default cache folder: `<target dir>/galley-bench-peer/postgraphile-4.14.1`.
pub fn default_dir() -> anyhow::Result<PathBuf> {
    Ok(server::target_dir()?
        .join("galley-bench-peer")
        .join(format!("postgraphile-{VERSION}")))
}

/// An installed PostGraphile.
#[derive(Debug, Clone)]
pub struct Installed {
    dir: PathBuf,
}

impl Installed {
    /// The installation in `dir`, when it is complete and made from this lock file.
    pub fn find(dir: &Path) -> Option<Installed> {
        let same = |name: &str, text: &str| {
            std::fs::read_to_string(dir.join(name)).is_ok_and(|found| found == text)
        };
        let version = std::fs::read_to_string(dir.join("node_modules/postgraphile/package.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned));
        let complete = same("package.json", PACKAGE_JSON)
            && same("package-lock.json", PACKAGE_LOCK)
            && version.as_deref() == Some(VERSION)
            && dir.join("node_modules/postgraphile/cli.js").is_file()
            && dir.join("node_modules/jsonwebtoken/package.json").is_file();
        complete.then(|| Installed {
            dir: dir.to_path_buf(),
        })
    }

    /// Installs into `dir` with `npm ci --no-audit --no-fund` (blocking; npm's output goes to
    /// stderr), unless it is there already.
    pub fn install(dir: &Path) -> anyhow::Result<Installed> {
        if let Some(found) = Installed::find(dir) {
            eprintln!("bench: peer: reusing {}", dir.display());
            return Ok(found);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join("package.json"), PACKAGE_JSON)?;
        std::fs::write(dir.join("package-lock.json"), PACKAGE_LOCK)?;
        eprintln!(
            "bench: peer: npm ci --no-audit --no-fund (postgraphile@{VERSION}) in {}",
            dir.display()
        );
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .context("cannot run npm")?;
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            bail!("npm ci failed ({}) in {}", output.status, dir.display());
        }
        Installed::find(dir).with_context(|| {
            format!(
                "npm ci finished but {} holds no postgraphile {VERSION}",
                dir.display()
            )
        })
    }

    /// A JWT PostGraphile accepts (HS256 with `secret`, audience `postgraphile`) that makes it
    /// `SET ROLE role` for the request, signed by the `jsonwebtoken` package PostGraphile
    /// itself uses.
    pub fn jwt(&self, role: &str, secret: &str) -> anyhow::Result<String> {
        let output = Command::new("node")
            .arg("-e")
            .arg(
                "process.stdout.write(require('jsonwebtoken').sign(\
                 { role: process.argv[1], aud: 'postgraphile' }, process.argv[2]))",
            )
            .arg(role)
            .arg(secret)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .context("cannot run node")?;
        if !output.status.success() {
            bail!(
                "node could not sign a JWT ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8(output.stdout)?.trim().to_owned())
    }

    /// Starts PostGraphile on a free loopback port against `database_url` and waits (at most
    /// 90 s) until it answers `{ __typename }`.
    ///
    /// The options are those of a production deployment: no GraphiQL, no query log, no
    /// `--watch`, the flags its help marks recommended (`--dynamic-json`,
    /// `--no-setof-functions-contain-nulls`, `--no-ignore-rbac`, `--no-ignore-indexes`),
    /// `NODE_ENV=production`, a pool as large as galley's; with `jwt` (the secret and a
    /// token to check it with), JWT authentication; with `workers` above 1, that many Node.js
    /// processes (`--cluster-workers`), each with its own pool.
    pub async fn start(
        &self,
        database_url: &str,
        jwt: Option<(&str, &str)>,
        workers: u32,
        log_path: &Path,
    ) -> anyhow::Result<Peer> {
        let port = server::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new("node");
        cmd.arg(self.dir.join("node_modules/postgraphile/cli.js"))
            .args(["--connection", database_url])
            .args(["--schema", "public"])
            .args(["--host", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args([
                "--max-pool-size",
                &POOL_SIZE.div_ceil(workers.max(1)).to_string(),
            ])
            .arg("--disable-graphiql")
            .arg("--disable-query-log")
            .arg("--dynamic-json")
            .arg("--no-setof-functions-contain-nulls")
            .arg("--no-ignore-rbac")
            .arg("--no-ignore-indexes");
        if workers > 1 {
            cmd.args(["--cluster-workers", &workers.to_string()]);
        }
        let mut header = None;
        if let Some((secret, token)) = jwt {
            cmd.args(["--jwt-secret", secret]);
            header = Some(format!("Bearer {token}"));
        }
        let started = Instant::now();
        let child = cmd
            .env("NODE_ENV", "production")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start PostGraphile (node)")?;
        let mut peer = Peer {
            child,
            addr,
            startup: Duration::ZERO,
            log_path: log_path.to_path_buf(),
            log_start,
        };
        let http = reqwest::Client::new();
        let url = format!("http://{addr}/graphql");
        loop {
            let mut request = http
                .post(&url)
                .json(&serde_json::json!({ "query": "{ __typename }" }));
            if let Some(h) = &header {
                request = request.header("authorization", h);
            }
            if let Ok(resp) = request.send().await {
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                if status.is_success() && body["data"]["__typename"] == "Query" {
                    break;
                }
                if body.get("errors").is_some() {
                    bail!(
                        "PostGraphile answered with errors: {body}\n{}",
                        peer.log_tail()
                    );
                }
            }
            if let Some(status) = peer.child.try_wait()? {
                bail!(
                    "PostGraphile exited before it was ready ({status}):\n{}",
                    peer.log_tail()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "PostGraphile was not ready within {READY_TIMEOUT:?}:\n{}",
                    peer.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peer.startup = started.elapsed();
        Ok(peer)
    }
}

/// A running PostGraphile. Dropping it kills the process.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Time from spawn to its first answer.
    pub startup: Duration,
    log_path: PathBuf,
    log_start: u64,
}

impl Peer {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines it wrote to its log.
    pub fn log_tail(&self) -> String {
        server::log_tail(&self.log_path, self.log_start)
    }

    /// Stops it (SIGKILL, as for galley).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}
