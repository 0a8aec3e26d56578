//! The `galley` binary: parse the command line, start tracing, run the command.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: a request allocates many small, short-lived
/// objects (the parsed document, JSON values, rows), and glibc's malloc and free took about a
/// sixth of the server's CPU under write load (docs/BENCHMARKS.md). Built with `no_thp`, so
/// that purged segments are not faulted back (and zeroed) as 2 MiB pages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = galley::Cli::parse();
    galley::telemetry::init(cli.global.log_format, &cli.global.log);
    match galley::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
