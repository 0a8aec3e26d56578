//! The separate metrics listener (`galley serve --metrics-listen ADDR`): `/metrics` without a
//! token on an address of its own, so Prometheus scrapes a port the Service or load balancer
//! does not expose. It stops with the server.

use std::net::SocketAddr;

use anyhow::Context as _;
use galley_api::AppState;
use tokio::sync::watch;

/// Binds `addr` (when given) and serves the metrics router on it until shutdown; returns the
/// bound address (the real port when port 0 was asked for).
pub async fn spawn(
    addr: Option<SocketAddr>,
    state: &AppState,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let app = galley_api::metrics_router(state.clone());
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    tracing::info!(addr = %bound, "metrics are served without a token on a separate listener");
    Ok(Some(bound))
}
