//! The system under test: a release `galley` binary, run as a child process exactly as an
//! operator runs it, configured only through its environment variables.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Longest a server may take to answer /readyz with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds the release binary with cargo (output goes to our stderr) and returns its path.
///
/// The target directory is the one this harness runs from: `CARGO_TARGET_DIR` when set, else
/// the parent of the profile folder holding our own executable (`target/release/galley-bench`
/// gives `target`), so `cargo run --release -p galley-bench` and the binary it builds agree.
pub fn build_release() -> anyhow::Result<PathBuf> {
    let target_dir = target_dir()?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "bench: cargo build --release -p galley (target dir {})",
        target_dir.display()
    );
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "galley", "--target-dir"])
        .arg(&target_dir)
        .current_dir(&workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release -p galley failed ({status})");
    }
    let bin = target_dir
        .join("release")
        .join(format!("galley{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!("{} was not built", bin.display());
    }
    Ok(bin)
}

/// The cargo target directory this harness runs from: `CARGO_TARGET_DIR` when set, else the
/// parent of the profile folder holding our own executable.
pub fn target_dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => {
            let exe = std::env::current_exe().context("cannot find the harness executable")?;
            exe.parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .context("the harness executable is not inside a cargo target directory")
        }
    }
}

/// How to run the `galley` binary against one database.
#[derive(Debug, Clone)]
pub struct Galley {
    /// The release binary.
    pub bin: PathBuf,
    /// `GALLEY_DATABASE_URL`.
    pub database_url: String,
    /// Where server logs go (one file per backend, appended to by each start).
    pub log_path: PathBuf,
}

/// The output of a finished `galley` command.
#[derive(Debug)]
pub struct Finished {
    /// Its stdout.
    pub stdout: String,
    /// Wall-clock time from spawn to exit.
    pub elapsed: Duration,
}

impl Galley {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("GALLEY_DATABASE_URL", &self.database_url)
            // Per-request info logs would cost the server more than some requests do.
            .env("GALLEY_LOG", "warn")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a command to completion (for example `users add …`); fails with its stderr when it
    /// exits unsuccessfully.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<Finished> {
        let started = Instant::now();
        let output = self
            .command()
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            bail!(
                "galley {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Finished {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            elapsed,
        })
    }

    /// Adds an admin user and returns its token (the last line of stdout).
    pub fn add_admin(&self, name: &str) -> anyhow::Result<String> {
        let out = self.run(&["users", "add", name, "--role", "admin"])?;
        out.stdout
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
            .context("`galley users add` printed no token")
    }

    /// Starts `galley serve` on a free loopback port and waits until /readyz answers 200.
    pub async fn serve(&self) -> anyhow::Result<Server> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("cannot open {}", self.log_path.display()))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let started = Instant::now();
        let child = self
            .command()
            .arg("serve")
            .env("GALLEY_LISTEN", addr.to_string())
            // The harness is one user issuing thousands of requests per second on purpose.
            .env("GALLEY_RATE_LIMIT_PER_SECOND", "0")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} serve", self.bin.display()))?;
        let mut server = Server {
            child,
            addr,
            startup: Duration::ZERO,
            log_path: self.log_path.clone(),
            log_start,
        };
        let http = reqwest::Client::new();
        let ready = format!("http://{addr}/readyz");
        loop {
            if let Ok(resp) = http.get(&ready).send().await {
                if resp.status() == reqwest::StatusCode::OK {
                    break;
                }
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "galley serve exited before it was ready ({status}):\n{}",
                    server.log_tail()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "galley serve was not ready within {READY_TIMEOUT:?}:\n{}",
                    server.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.startup = started.elapsed();
        Ok(server)
    }
}

/// A running `galley serve`. Dropping it kills the process, so an error or a panic anywhere in
/// the harness never leaves a server behind.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Time from spawn to the first 200 from /readyz.
    pub startup: Duration,
    log_path: PathBuf,
    log_start: u64,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The resident set size of the server process in KiB, from /proc (Linux only).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }

    /// The last lines this server wrote to its log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path, self.log_start)
    }

    /// Stops the server (SIGKILL: the harness needs no graceful shutdown, and the database
    /// must survive a crash anyway).
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.kill();
        Ok(())
    }

    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last 30 lines of a log file from byte `start` on, for error messages.
pub fn log_tail(path: &Path, start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(start));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Samples a process's RSS every 50 ms and keeps the highest value seen.
#[derive(Debug)]
pub struct RssWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssWatch {
    /// Starts sampling.
    pub fn start(pid: u32) -> RssWatch {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) {
                max = max.max(rss_kib(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            max.max(rss_kib(pid).unwrap_or(0))
        });
        RssWatch { stop, task }
    }

    /// Stops sampling and returns the highest RSS seen, in KiB.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap_or(0)
    }
}
