//! `galley probe`: the readiness probe of the container HEALTHCHECK, run by the binary itself
//! so the image needs no shell, curl or wget.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::ProbeArgs;

/// GETs `<url>/readyz` (or `/healthz` with `--live`); success when the answer is 200. Prints
/// one line either way (to stdout on success, stderr on failure).
pub async fn run(args: &ProbeArgs) -> ExitCode {
    let path = if args.live { "healthz" } else { "readyz" };
    let url = format!("{}/{path}", args.url.trim_end_matches('/'));
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs.max(1)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(r) if r.status() == reqwest::StatusCode::OK => {
            println!("probe: {url} answered 200");
            ExitCode::SUCCESS
        }
        Ok(r) => {
            eprintln!("probe: {url} answered {}", r.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("probe: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}
