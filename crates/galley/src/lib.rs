//! The `galley` binary as a library: configuration ([`config`]), tracing ([`telemetry`]),
//! start-up and shutdown ([`server`]), users and tokens ([`users`]) and the commands
//! ([`cli`]). `main` only parses the command line and calls [`cli::run`], so tests start
//! exactly what the binary starts: [`server::spawn`] on port 0 with a fresh database.
//!
//! Invariants: stdout carries command output only (the token of `users add` is alone on the
//! last line), logs go to stderr; `anyhow` stops here and never leaks into the library crates.

pub mod cli;
pub mod config;
pub mod connections;
pub mod metrics_listener;
pub mod probe;
pub mod server;
pub mod telemetry;
pub mod users;

pub use config::{Cli, ServerConfig};
pub use server::{spawn, spawn_with_store, RunningServer};
