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
    let telemetry = galley::telemetry::init(galley::telemetry::TelemetryConfig {
        format: cli.global.log_format,
        filter: cli.global.log.clone(),
        otlp: galley::telemetry::OtlpConfig::from_env(),
    });
    let code = match galley::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    code
}
