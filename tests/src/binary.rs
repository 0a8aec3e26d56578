//! The `galley` binary as an operator runs it: one-shot commands ([`Galley::run`]) and
//! `galley serve` as a child process ([`Galley::serve`] → [`Serving`]), started with a
//! configuration of flags and environment variables, waited for until it listens (with a
//! bounded timeout), killed on drop, its stderr kept for failure messages.
//!
//! The caller names the binary: `env!("CARGO_BIN_EXE_galley")` is set only for the galley
//! crate's own tests, so this library cannot find it itself.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a child process may take to log a line or to exit (a hang guard, not a
/// measurement). Longer than [`crate::GUARD`]: a process also starts up and migrates.
pub const PROCESS_GUARD: Duration = Duration::from_secs(30);

/// The message `galley serve` logs once it accepts connections, with an `addr` field.
pub const LISTENING: &str = "galley is listening";

/// The `galley` binary on one database (`GALLEY_DATABASE_URL`), logging warnings only
/// (`GALLEY_LOG=warn`) unless a command says otherwise.
#[derive(Debug, Clone)]
pub struct Galley {
    bin: PathBuf,
    database_url: String,
}

impl Galley {
    /// The binary at `bin` (in the galley crate's tests: `env!("CARGO_BIN_EXE_galley")`) on
    /// the database at `database_url`.
    pub fn new(bin: impl AsRef<Path>, database_url: &str) -> Galley {
        Galley {
            bin: bin.as_ref().to_owned(),
            database_url: database_url.to_owned(),
        }
    }

    /// The command `galley <args>`, with the database and log level set, ready for more.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env("GALLEY_DATABASE_URL", &self.database_url)
            .env("GALLEY_LOG", "warn");
        command
    }

    /// Runs `galley <args>` to the end and returns its status and output.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }

    /// Runs `galley <args>` with `input` on its standard input.
    pub fn run_with_stdin<S: AsRef<OsStr>>(&self, args: &[S], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        child
            .stdin
            .take()
            .expect("a piped stdin")
            .write_all(input.as_bytes())
            .expect("the input is written");
        child.wait_with_output().expect("the command ends")
    }

    /// Starts `galley <args>` without waiting, stdout and stderr piped (for commands that
    /// must run side by side; `wait_with_output` collects them).
    pub fn spawn<S: AsRef<OsStr>>(&self, args: &[S]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }

    /// `galley serve --listen 127.0.0.1:0` with JSON logs at `info` (the readiness line is an
    /// `info`), to configure further and [`Serve::start`].
    pub fn serve(&self) -> Serve {
        let mut command = self.command(&["serve", "--listen", "127.0.0.1:0"]);
        command
            .env("GALLEY_LOG_FORMAT", "json")
            .env("GALLEY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Serve { command }
    }
}

/// A `galley serve` not started yet: more flags and variables may be added. Variables set here
/// replace the defaults of [`Galley::serve`]; keep `GALLEY_LOG` at `info` or lower, or the
/// readiness line is never written.
#[derive(Debug)]
pub struct Serve {
    command: Command,
}

impl Serve {
    /// Adds a flag or value.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Serve {
        self.command.arg(arg);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Serve {
        self.command.env(key, value);
        self
    }

    /// Starts the server and waits (at most [`PROCESS_GUARD`]) until it logs that it listens.
    /// Panics with everything it wrote to stderr when it exits first or takes too long.
    pub fn start(mut self) -> Serving {
        let mut child = self
            .command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start galley serve: {e}"));
        let stderr = child.stderr.take().expect("a piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serving = Serving {
            child,
            lines,
            seen: Vec::new(),
            read: 0,
            addr: String::new(),
        };
        serving.addr = serving.wait_for(listening_addr);
        serving
    }
}

/// The `addr` of the readiness line, in either log format: JSON (`"addr"` field) or text
/// (`addr=…`).
fn listening_addr(line: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<Value>(line) {
        return (v["message"] == LISTENING).then(|| v["addr"].as_str().map(str::to_owned))?;
    }
    let (_, after) = line.split_once(LISTENING)?;
    let addr = after
        .split_whitespace()
        .find_map(|field| field.strip_prefix("addr="))?;
    Some(addr.to_owned())
}

/// A running `galley serve`; killed (SIGKILL) when dropped unless [`Serving::terminate`] ended
/// it first.
#[derive(Debug)]
pub struct Serving {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stderr line read so far.
    seen: Vec<String>,
    /// How many of `seen` the waits have gone past.
    read: usize,
    addr: String,
}

impl Serving {
    /// The address it listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://` and the address.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The stderr lines read so far: through the readiness line, and through the last line a
    /// wait matched.
    pub fn stderr(&self) -> &[String] {
        &self.seen
    }

    /// The lines logged before the readiness line (what start-up wrote before it listened).
    pub fn before_ready(&self) -> &[String] {
        let ready = self
            .seen
            .iter()
            .position(|l| listening_addr(l).is_some())
            .expect("the readiness line was read");
        &self.seen[..ready]
    }

    /// The next stderr line (after those earlier waits went past) for which `pick` gives a
    /// value, within [`PROCESS_GUARD`]. Panics with every line read when none comes in time
    /// or the process ends first.
    pub fn wait_for<T>(&mut self, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + PROCESS_GUARD;
        loop {
            while self.read < self.seen.len() {
                self.read += 1;
                if let Some(v) = pick(&self.seen[self.read - 1]) {
                    return v;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "galley serve wrote no such line within {PROCESS_GUARD:?}; stderr:\n{}",
                    self.seen.join("\n")
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "galley serve ended ({status:?}) without writing such a line; stderr:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// Like [`Serving::wait_for`], for the JSON log lines only (the default format).
    pub fn wait_for_json<T>(&mut self, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
        self.wait_for(|line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| pick(&v))
        })
    }

    /// Sends SIGTERM (a graceful shutdown) and returns the exit status, within
    /// [`PROCESS_GUARD`].
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM is sent");
        let deadline = Instant::now() + PROCESS_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().expect("the exit status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "galley serve did not exit within {PROCESS_GUARD:?} of SIGTERM; stderr:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::listening_addr;

    #[test]
    fn the_readiness_line_is_read_in_both_log_formats() {
        assert_eq!(
            listening_addr(
                r#"{"level":"INFO","message":"galley is listening","addr":"127.0.0.1:4000"}"#
            )
            .as_deref(),
            Some("127.0.0.1:4000")
        );
        assert_eq!(
            listening_addr(
                "2025-01-01T00:00:00Z  INFO galley::server: galley is listening addr=127.0.0.1:4001 backend=Sqlite"
            )
            .as_deref(),
            Some("127.0.0.1:4001")
        );
        assert_eq!(
            listening_addr(r#"{"message":"request","addr":"127.0.0.1:4000"}"#),
            None
        );
        assert_eq!(listening_addr("INFO galley::server: starting"), None);
    }
}
