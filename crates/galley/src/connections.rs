//! The HTTP connection loop: hyper's HTTP/1 server under the limits a public server needs,
//! which `axum::serve` cannot set.
//!
//! - A header read timeout (hyper's): a request's head must arrive within it, on a new
//!   connection and between keep-alive requests, so a client trickling one header line at a
//!   time is cut off.
//! - A keep-alive timeout: a connection with no request in flight since its last response is
//!   closed after it.
//! - A cap on open connections. When it is reached, the connection that has been idle longest
//!   (no request in flight) is closed to make room, so idle sockets can never lock out a new
//!   client; only when every connection is busy with a request is the new one refused, with
//!   `503 Service Unavailable` and `Retry-After`, and closed.
//!
//! Each request carries the peer's address ([`ClientAddr`]) for the per-address throttle of
//! failed authentication. A WebSocket leaves this loop once upgraded (hyper hands its socket
//! over); the API caps those separately. Shutdown stops accepting, closes idle connections at
//! once and lets busy ones finish their response.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use galley_api::ClientAddr;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// The limits of the connection loop.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// How long a request's head may take to arrive once the server waits for one.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight after a response.
    pub keep_alive_timeout: Duration,
    /// Most HTTP connections open at once (WebSockets, once upgraded, are not counted here).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_connections: 1024,
        }
    }
}

/// The answer to a connection over the cap.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 29\r\nconnection: close\r\n\r\n\
too many connections; retry\n";

/// Most refusals written at once; past this an over-cap connection is just closed.
const MAX_REFUSALS: usize = 64;

/// One open connection, as the cap sees it.
#[derive(Debug)]
struct Tracked {
    /// Requests in flight (0 or 1 on HTTP/1).
    busy: AtomicUsize,
    /// When the last response was sent (`None` before the first request).
    idle_since: Mutex<Option<Instant>>,
    /// When it was accepted: a connection that never sent a request is idle since then.
    accepted: Instant,
    /// Told to close because a new connection needs its slot.
    evict: Notify,
    /// Set once told, so a burst of new connections evicts a different one each.
    evicted: std::sync::atomic::AtomicBool,
}

impl Tracked {
    fn idle_since(&self) -> Option<Instant> {
        if self.busy.load(Ordering::Acquire) > 0 || self.evicted.load(Ordering::Acquire) {
            return None;
        }
        let last = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        Some(last.unwrap_or(self.accepted))
    }
}

/// Marks a connection busy while a request is being answered.
struct Busy(Arc<Tracked>);

impl Busy {
    fn enter(tracked: &Arc<Tracked>) -> Busy {
        tracked.busy.fetch_add(1, Ordering::AcqRel);
        Busy(tracked.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open connections.
#[derive(Debug, Default)]
struct Registry {
    open: Mutex<HashMap<u64, Arc<Tracked>>>,
    next: AtomicU64,
    /// The number of open connections, for shutdown to wait on.
    count: watch::Sender<usize>,
}

impl Registry {
    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn insert(&self) -> (u64, Arc<Tracked>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            busy: AtomicUsize::new(0),
            idle_since: Mutex::new(None),
            accepted: Instant::now(),
            evict: Notify::new(),
            evicted: std::sync::atomic::AtomicBool::new(false),
        });
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(id, tracked.clone());
        self.count.send_replace(open.len());
        (id, tracked)
    }

    fn remove(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&id);
        self.count.send_replace(open.len());
    }

    /// Tells the connection idle longest to close; `false` when every one is busy. The
    /// evicted connection leaves the registry when its task ends, a moment later, so the cap
    /// may be exceeded by the connections being evicted.
    fn evict_idlest(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let idlest = open
            .values()
            .filter_map(|t| t.idle_since().map(|since| (since, t)))
            .min_by_key(|(since, _)| *since);
        match idlest {
            Some((_, tracked)) => {
                tracked.evicted.store(true, Ordering::Release);
                tracked.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` holds `true`, then waits for the connections
/// to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::default());
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let max = limits.max_connections.max(1);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        // Too many open connections: make room by closing the idlest, or refuse this one.
        // The evicted connection closes within a moment; until it does this one is served
        // beside it.
        if registry.len() >= max && !registry.evict_idlest() {
            metrics::counter!("galley_connections_refused_total").increment(1);
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, tracked) = registry.insert();
        let registry = registry.clone();
        let app = app.clone();
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        let keep_alive = limits.keep_alive_timeout;
        tokio::spawn(async move {
            serve_connection(stream, peer, app, builder, tracked, keep_alive, shutdown).await;
            registry.remove(id);
        });
    }
    drop(listener);
    let mut count = registry.count.subscribe();
    let _ = count.wait_for(|open| *open == 0).await;
    Ok(())
}

/// Answers 503 and closes, giving the client a moment to read the answer.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await?;
        // Read what the client sent, so closing does not reset the connection before the
        // answer is read.
        let mut sink = [0u8; 1024];
        loop {
            stream.readable().await?;
            match stream.try_read(&mut sink) {
                Ok(0) => return Ok::<_, std::io::Error>(()),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    builder: hyper::server::conn::http1::Builder,
    tracked: Arc<Tracked>,
    keep_alive: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let in_service = tracked.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer.ip()));
        let busy = Busy::enter(&in_service);
        let app = app.clone();
        async move {
            let response = app.oneshot(req).await;
            drop(busy);
            response
        }
    });
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            _ = tracked.evict.notified() => {
                tracing::debug!(%peer, "idle connection closed to make room");
                return;
            }
            () = idle_for(&tracked, keep_alive), if !closing => {
                return;
            }
            () = stopped(&mut shutdown), if !closing => {
                if tracked.busy.load(Ordering::Acquire) == 0 {
                    return;
                }
                // Let the request in flight finish, then close.
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Resolves once `shutdown` holds `true` (the guard `wait_for` returns is not `Send`, so it is
/// dropped here).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Resolves once the connection has been idle, after a response, for `keep_alive`.
async fn idle_for(tracked: &Tracked, keep_alive: Duration) {
    loop {
        let last = *tracked.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = match last {
            Some(at) if tracked.busy.load(Ordering::Acquire) == 0 => at + keep_alive,
            // Before the first request the header read timeout applies; while busy, the
            // request timeout. Look again one timeout later (so an idle connection may stay
            // up to twice the timeout, and idle sockets cost one wake-up per timeout).
            _ => Instant::now() + keep_alive,
        };
        tokio::time::sleep_until(deadline).await;
        let still_idle = tracked.busy.load(Ordering::Acquire) == 0
            && (*tracked.idle_since.lock().unwrap_or_else(|e| e.into_inner()))
                .is_some_and(|at| at.elapsed() >= keep_alive);
        if still_idle {
            return;
        }
    }
}
