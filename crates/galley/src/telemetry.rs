//! Tracing, initialised once per process.

use std::io::IsTerminal as _;
use std::sync::Once;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber, writing to stderr. Later calls do nothing, so tests that
/// start several servers in one process may call it freely. Colours only when stderr is a
/// terminal: a file or a log collector gets plain text.
pub fn init(format: LogFormat, filter: &str) {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal());
        let _ = match format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
        };
    });
}
