//! A webhook receiver for the tests: an HTTP server on 127.0.0.1 that records every request
//! it gets and answers as the test tells it (200 unless told otherwise), closing each
//! connection after its answer, so that stopping it really makes the next delivery fail to
//! connect. [`Delivery::verifies`] checks a request as the Standard Webhooks specification says,
//! with the specification's own Rust library (`standardwebhooks`), which shares no HMAC or
//! SHA-256 code with the server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::GUARD;

/// A secret no endpoint has: `whsec_` and 32 zero bytes.
pub const STRANGER: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// One request a receiver got, and what it answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The request's path.
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, as sent.
    pub body: Bytes,
    /// The body as JSON (`Null` when it is not).
    pub json: Value,
    /// The status the receiver answered.
    pub status: u16,
}

impl Delivery {
    /// The `webhook-id` header.
    pub fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }

    /// The event's position (`data.position`).
    pub fn position(&self) -> u64 {
        self.json["data"]["position"].as_u64().unwrap()
    }

    /// Whether the receiver accepted it (2xx).
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether it verifies with `secret`, by the Standard Webhooks library.
    pub fn verifies(&self, secret: &str) -> bool {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&self.body, &self.headers)
            .is_ok()
    }
}

type Answer = Box<dyn FnMut(&Delivery) -> u16 + Send>;

#[derive(Clone)]
struct Shared {
    log: Arc<Mutex<Vec<Delivery>>>,
    answer: Arc<Mutex<Answer>>,
}

/// The receiver. Dropping it stops it.
pub struct Receiver {
    addr: SocketAddr,
    shared: Shared,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

async fn record(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut delivery = Delivery {
        path: uri.path().to_owned(),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        headers,
        body,
        status: 0,
    };
    let status = (shared.answer.lock().unwrap())(&delivery);
    delivery.status = status;
    shared.log.lock().unwrap().push(delivery);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("connection", "close")],
        format!("answered {status}"),
    )
}

impl Receiver {
    /// A receiver on a free port of 127.0.0.1, answering 200.
    pub async fn start() -> Receiver {
        let shared = Shared {
            log: Arc::default(),
            answer: Arc::new(Mutex::new(Box::new(|_| 200))),
        };
        Receiver::listen(SocketAddr::from(([127, 0, 0, 1], 0)), shared).await
    }

    async fn listen(addr: SocketAddr, shared: Shared) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the receiver listens");
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(record).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            shared,
            task: Some(task),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` and `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How to answer from now on: the status for each request.
    pub fn answer(&self, answer: impl FnMut(&Delivery) -> u16 + Send + 'static) {
        *self.shared.answer.lock().unwrap() = Box::new(answer);
    }

    /// Every request so far, in the order they came.
    pub fn log(&self) -> Vec<Delivery> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Stops listening: deliveries now fail to connect.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again, on the same port.
    pub async fn restart(&mut self) {
        let mut again = Receiver::listen(self.addr, self.shared.clone()).await;
        self.task = again.task.take();
    }

    /// Waits until the log satisfies `done` (at most [`GUARD`], a hang guard); returns it.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let log = self.log();
            if done(&log) {
                return log;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver never got {what}: {:#?}",
                log.iter()
                    .map(|d| (d.path.clone(), d.status, d.json["data"]["position"].clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The deliveries the receiver accepted (2xx) on `path`, in the order they came.
pub fn accepted<'a>(log: &'a [Delivery], path: &str) -> Vec<&'a Delivery> {
    log.iter().filter(|d| d.ok() && d.path == path).collect()
}

/// Their events' positions.
pub fn positions(deliveries: &[&Delivery]) -> Vec<u64> {
    deliveries.iter().map(|d| d.position()).collect()
}
