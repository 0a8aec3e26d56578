//! Start-up and shutdown as library calls: `galley serve` and the tests start the same thing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use galley_api::{router, AppState};
use galley_storage::{Store, StoreOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;

/// A server that is running: its address, its store, and the means to stop it.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    store: Store,
    state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    scheduler: Option<JoinHandle<()>>,
    pruner: JoinHandle<()>,
    /// The webhook dispatcher, unless this process does not dispatch.
    webhooks: Option<JoinHandle<()>>,
    grace: Duration,
    metrics_addr: Option<SocketAddr>,
}

/// Connects to the database the configuration names (migrating it when asked) and starts the
/// server on it.
pub async fn spawn(config: ServerConfig) -> anyhow::Result<RunningServer> {
    let store = Store::connect(&StoreOptions {
        url: config.database_url.clone(),
        max_connections: config.max_connections,
        migrate: config.migrate,
        token_cache_ttl: config.token_cache_ttl,
        list_cache_pages: config.list_cache_pages,
        sqlite_cache_kib: config.sqlite_cache_kib,
        sqlite_mmap_mib: config.sqlite_mmap_mib,
        search_indexer: config.search_indexer,
        statement_timeout: config.database_statement_timeout,
        acquire_timeout: config.database_acquire_timeout,
        ..StoreOptions::default()
    })
    .await
    .with_context(|| format!("cannot open the database {}", redact(&config.database_url)))?;
    spawn_with_store(store, config).await
}

/// Starts the server on an open store: binds, serves, and runs the scheduler.
pub async fn spawn_with_store(store: Store, config: ServerConfig) -> anyhow::Result<RunningServer> {
    let (shutdown, rx) = watch::channel(false);
    let state = AppState::new(store.clone(), config.limits.clone(), rx.clone());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = router(state.clone());
    let server = tokio::spawn(crate::connections::serve(
        listener,
        app,
        config.connections.clone(),
        rx.clone(),
    ));
    let metrics_addr = crate::metrics_listener::spawn(config.metrics_listen, &state, &rx).await?;
    let pruner = tokio::spawn(galley_api::scheduler::prune_idempotency_keys(
        store.clone(),
        config.idempotency_retention,
        rx.clone(),
    ));
    let webhooks = config.limits.webhooks.dispatch.then(|| {
        galley_webhooks::dispatcher::spawn(state.webhooks().clone(), store.clone(), rx.clone())
    });
    let scheduler = config
        .scheduler_interval
        .map(|interval| tokio::spawn(galley_api::scheduler::run(store.clone(), interval, rx)));
    tracing::info!(%addr, backend = ?store.backend(), "galley is listening");
    Ok(RunningServer {
        addr,
        store,
        state,
        shutdown,
        server,
        scheduler,
        pruner,
        webhooks,
        grace: config.shutdown_grace,
        metrics_addr,
    })
}

impl RunningServer {
    /// The address the server listens on (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the separate metrics listener, when one was configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `http://addr`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The GraphQL endpoint.
    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// The WebSocket endpoint.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// The server's store, for setting up users and fixtures in tests.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops gracefully: stops accepting connections, lets in-flight requests finish, completes
    /// every subscription and closes WebSockets (waiting up to the grace period), stops the
    /// scheduler and the webhook dispatcher, and closes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.server.await;
        let deadline = Instant::now() + self.grace;
        while self.state.open_websockets() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(scheduler) = self.scheduler {
            let _ = scheduler.await;
        }
        let _ = self.pruner.await;
        // The dispatcher gives its leases up before the store closes; a delivery in flight is
        // abandoned and made again by the next holder, with the same webhook-id.
        if let Some(webhooks) = self.webhooks {
            let _ = webhooks.await;
        }
        self.store.close().await;
        tracing::info!("galley stopped");
        served.context("the server task failed")??;
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received");
}

/// Runs the server until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let server = spawn(config).await?;
    shutdown_signal().await;
    server.shutdown().await
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_in_a_database_url_is_never_printed() {
        assert_eq!(
            redact("postgres://galley:secret@db:5432/galley"),
            "postgres://galley:***@db:5432/galley"
        );
        assert_eq!(
            redact("sqlite://galley.db?mode=rwc"),
            "sqlite://galley.db?mode=rwc"
        );
    }
}
