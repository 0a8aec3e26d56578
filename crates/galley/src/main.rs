//! The `galley` binary: parse the command line, start tracing, run the command.

use std::process::ExitCode;

use clap::Parser;

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
