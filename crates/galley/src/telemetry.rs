//! Tracing, initialised once per process: log lines on stderr and, when the standard
//! OpenTelemetry variables ask for it, spans exported over OTLP http/protobuf.

use std::io::IsTerminal as _;
use std::sync::Once;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::{Layered, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::Registry;

use crate::config::LogFormat;

/// The service name spans carry when `OTEL_SERVICE_NAME` is not set.
pub const DEFAULT_SERVICE_NAME: &str = "galley";

/// Where and as whom to export traces: read from the standard OpenTelemetry variables by
/// [`OtlpConfig::from_env`] in `main`, or built directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The full URL spans are posted to (`…/v1/traces`).
    pub traces_endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

impl OtlpConfig {
    /// Reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (`/v1/traces` appended), `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SDK_DISABLED` and `OTEL_TRACES_EXPORTER`.
    /// `Ok(None)`: no endpoint, or export turned off. `Err`: a setting Galley cannot honour
    /// (the message says which); nothing is exported then.
    pub fn from_env() -> Result<Option<OtlpConfig>, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`OtlpConfig::from_env`] over any source of variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<OtlpConfig>, String> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(exporter) = get("OTEL_TRACES_EXPORTER") {
            match exporter.trim() {
                "otlp" => {}
                "none" => return Ok(None),
                other => {
                    return Err(format!(
                        "OTEL_TRACES_EXPORTER={other} is not supported (only otlp or none); \
                         traces are not exported"
                    ))
                }
            }
        }
        let traces_endpoint = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => url.trim().to_owned(),
            (None, Some(base)) => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "http/protobuf".to_owned());
        if protocol.trim() != "http/protobuf" {
            return Err(format!(
                "OTLP protocol {:?} is not supported (only http/protobuf); traces are not \
                 exported",
                protocol.trim()
            ));
        }
        if !(traces_endpoint.starts_with("http://") || traces_endpoint.starts_with("https://")) {
            return Err(format!(
                "OTLP traces endpoint {traces_endpoint:?} is not an http(s) URL; traces are not \
                 exported"
            ));
        }
        let service_name =
            get("OTEL_SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
        Ok(Some(OtlpConfig {
            traces_endpoint,
            service_name,
        }))
    }
}

/// The layers under the global filter: log lines, and the OpenTelemetry bridge when exporting.
type Layers = Box<dyn Layer<Layered<EnvFilter, Registry>> + Send + Sync>;

/// Everything [`init`] needs.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Text or JSON log lines.
    pub format: LogFormat,
    /// An `EnvFilter` directive (`info`, `info,galley_storage=debug`, …).
    pub filter: String,
    /// Trace export: `Ok(None)` for none, `Err` for a refused setting (logged once the
    /// subscriber is up, nothing exported).
    pub otlp: Result<Option<OtlpConfig>, String>,
}

/// Keeps the tracer provider of an exporting process; [`TelemetryGuard::shutdown`] flushes the
/// spans still queued. Does nothing when nothing is exported.
#[derive(Debug, Default)]
#[must_use = "call shutdown before exiting so that queued spans are exported"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports the spans still queued and stops the exporter (bounded by the SDK's export
    /// timeout). Call it from the runtime, after the command has finished.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                eprintln!("warning: flushing traces failed: {e}");
            }
        }
    }
}

/// Installs the global subscriber, writing to stderr, and the OTLP exporter when configured.
/// Later calls do nothing (and return an empty guard), so tests that start several servers
/// in one process may call it freely. Colours only when stderr is a terminal: a file or a log
/// collector gets plain text. Exporting needs a Tokio runtime (the batch span processor runs
/// on it).
pub fn init(config: TelemetryConfig) -> TelemetryGuard {
    static INIT: Once = Once::new();
    let mut guard = TelemetryGuard::default();
    INIT.call_once(|| {
        let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal());
        let mut layers: Vec<Layers> = vec![match config.format {
            LogFormat::Text => fmt.boxed(),
            LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        }];
        let mut problem = config.otlp.as_ref().err().cloned();
        if let Ok(Some(otlp)) = &config.otlp {
            match provider(otlp) {
                Ok(provider) => {
                    let tracer = provider.tracer("galley");
                    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
                    guard.provider = Some(provider);
                    layers.push(tracing_opentelemetry::layer().with_tracer(tracer).boxed());
                }
                Err(e) => problem = Some(format!("OTLP exporter not started: {e}")),
            }
        }
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(layers)
            .try_init();
        if let Some(problem) = problem {
            tracing::warn!("{problem}");
        } else if let Ok(Some(otlp)) = &config.otlp {
            tracing::info!(
                endpoint = %otlp.traces_endpoint,
                service = %otlp.service_name,
                "exporting traces over OTLP http/protobuf"
            );
        }
    });
    guard
}

/// [`init`] with log lines only, never exporting: for tests that start servers in-process.
pub fn init_logs(format: LogFormat, filter: &str) {
    let _guard = init(TelemetryConfig {
        format,
        filter: filter.to_owned(),
        otlp: Ok(None),
    });
}

/// The tracer provider: OTLP http/protobuf exporter, batch span processor on Tokio.
fn provider(
    otlp: &OtlpConfig,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(otlp.traces_endpoint.clone())
        .build()?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name(otlp.service_name.clone())
                .build(),
        )
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<OtlpConfig>, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OtlpConfig::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn nothing_set_exports_nothing() {
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(read(&[("OTEL_SERVICE_NAME", "x")]), Ok(None));
    }

    #[test]
    fn base_endpoint_gets_the_traces_path_and_the_signal_endpoint_is_used_as_is() {
        let c = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(c.traces_endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(c.service_name, DEFAULT_SERVICE_NAME);
        let c = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:9/custom"),
            ("OTEL_SERVICE_NAME", "newsroom"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.traces_endpoint, "http://b:9/custom");
        assert_eq!(c.service_name, "newsroom");
    }

    #[test]
    fn unsupported_protocols_and_exporters_are_refused_and_off_switches_honoured() {
        let e = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap_err();
        assert!(e.contains("grpc") && e.contains("http/protobuf"), "{e}");
        assert!(read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ])
        .unwrap()
        .is_some());
        assert!(read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
        ])
        .is_err());
        assert!(read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "a:4318")]).is_err());
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            assert_eq!(
                read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"), off]),
                Ok(None)
            );
        }
    }
}
