//! Stage 4: fan-out. Many WebSocket subscribers on `events(after: head)` (graphql-transport-ws,
//! token in connection_init), then mutations one at a time; for each, the time from the
//! mutation's response (and from its event's `recordedAt`) to delivery at every subscriber.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::appends::Owned;
use crate::gql::{self, Client};
use crate::stats::{micros, Measured};

/// Longest the harness waits for every subscriber to receive one event.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// What the fan-out stage measured.
#[derive(Debug)]
pub struct FanOut {
    /// Mutation request sent → event delivered, per subscriber and mutation: what a client
    /// sees, an upper bound of commit → delivery.
    pub from_request: Measured,
    /// The event's `recordedAt` (the server's clock when it accepted the command) → delivered.
    pub from_recorded: Measured,
    /// Deliveries that arrived before the mutation's HTTP response did.
    pub before_response: usize,
    /// Time to open every connection and subscribe.
    pub connect: Duration,
}

/// One delivery: the event's position and when it arrived.
type Delivery = (u64, SystemTime);

/// Runs the stage: `subscribers` connections, then `mutations` revisions of `article`.
pub async fn run(
    addr: SocketAddr,
    token: &str,
    client: &Client,
    article: &mut Owned,
    subscribers: usize,
    mutations: usize,
) -> anyhow::Result<FanOut> {
    let head = client.head().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        tasks.push(tokio::spawn(subscriber(
            addr,
            token.to_owned(),
            head,
            tx.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    for n in 0..subscribers {
        match tokio::time::timeout(DELIVERY_TIMEOUT, ready_rx.recv()).await {
            Ok(Some(())) => {}
            _ => {
                let _ = stop_tx.send(true);
                for task in tasks {
                    if let Ok(Err(e)) = task.await {
                        bail!("subscriber failed after {n} were ready: {e:#}");
                    }
                }
                bail!("only {n} of {subscribers} subscribers connected");
            }
        }
    }
    let connect = started.elapsed();

    // The subscription request gets no acknowledgement, so one unmeasured mutation first
    // proves that every subscriber is live.
    let (position, ..) = mutate(client, article).await?;
    collect(&mut rx, position, subscribers).await?;

    let mut from_request = Vec::with_capacity(subscribers * mutations);
    let mut from_recorded = Vec::with_capacity(subscribers * mutations);
    let mut before_response = 0;
    for _ in 0..mutations {
        let (position, sent, responded, recorded) = mutate(client, article).await?;
        for at in collect(&mut rx, position, subscribers).await? {
            from_request.push(micros(at.duration_since(sent).unwrap_or_default()));
            if at < responded {
                before_response += 1;
            }
            let delivered: DateTime<Utc> = at.into();
            let lag = (delivered - recorded).to_std().unwrap_or_default();
            from_recorded.push(micros(lag));
        }
    }
    let _ = stop_tx.send(true);
    for task in tasks {
        task.await??;
    }
    Ok(FanOut {
        from_request: Measured::new(from_request, Duration::ZERO),
        from_recorded: Measured::new(from_recorded, Duration::ZERO),
        before_response,
        connect,
    })
}

/// Revises the article; returns the event's position, when the request was sent, when the
/// response arrived, and the event's `recordedAt`.
async fn mutate(
    client: &Client,
    article: &mut Owned,
) -> anyhow::Result<(u64, SystemTime, SystemTime, DateTime<Utc>)> {
    let next = article.version + 1;
    let sent = SystemTime::now();
    let payload = client
        .revise_draft(
            &article.id,
            article.version,
            gql::content(article.number, next),
        )
        .await?;
    let responded = SystemTime::now();
    article.version = payload["article"]["version"]
        .as_u64()
        .context("reviseDraft returned no version")?;
    let event = &payload["events"][0];
    let position = event["position"].as_u64().context("no event position")?;
    let recorded = event["recordedAt"]
        .as_str()
        .context("no recordedAt")?
        .parse::<DateTime<Utc>>()?;
    Ok((position, sent, responded, recorded))
}

/// Waits until `count` deliveries of `position` have arrived; returns their arrival times.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Delivery>,
    position: u64,
    count: usize,
) -> anyhow::Result<Vec<SystemTime>> {
    let mut times = Vec::with_capacity(count);
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    while times.len() < count {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((p, at))) if p == position => times.push(at),
            Ok(Some(_)) => {}
            Ok(None) => bail!("every subscriber has gone"),
            Err(_) => bail!(
                "only {} of {count} subscribers received position {position} within {:?}",
                times.len(),
                DELIVERY_TIMEOUT
            ),
        }
    }
    Ok(times)
}

/// One subscriber: connects, authenticates, subscribes, reports readiness, then forwards
/// each event's position and arrival time until told to stop.
async fn subscriber(
    addr: SocketAddr,
    token: String,
    after: u64,
    deliveries: mpsc::UnboundedSender<Delivery>,
    ready: mpsc::UnboundedSender<()>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut request = format!("ws://{addr}/graphql/ws").into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("WebSocket connect failed")?;
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": { "token": token } }).to_string(),
    ))
    .await?;
    loop {
        let message = ws.next().await.context("closed before connection_ack")??;
        if let Message::Text(text) = message {
            let v: Value = serde_json::from_str(text.as_str())?;
            match v["type"].as_str() {
                Some("connection_ack") => break,
                Some("ping") => ws.send(Message::text(r#"{"type":"pong"}"#)).await?,
                _ => bail!("unexpected message before connection_ack: {v}"),
            }
        }
    }
    let query = format!("subscription {{ events(after: {after}) {{ position recordedAt }} }}");
    ws.send(Message::text(
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }).to_string(),
    ))
    .await?;
    let _ = ready.send(());
    loop {
        let message = tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
                continue;
            }
            message = ws.next() => message,
        };
        let Some(message) = message else {
            bail!("the server closed the connection")
        };
        let Message::Text(text) = message? else {
            continue;
        };
        let at = SystemTime::now();
        let v: Value = serde_json::from_str(text.as_str())?;
        match v["type"].as_str() {
            Some("next") => {
                let position = v["payload"]["data"]["events"]["position"]
                    .as_u64()
                    .with_context(|| format!("a next message without a position: {v}"))?;
                let _ = deliveries.send((position, at));
            }
            Some("ping") => ws.send(Message::text(r#"{"type":"pong"}"#)).await?,
            Some("pong") => {}
            _ => bail!("unexpected message: {v}"),
        }
    }
    let _ = ws
        .send(Message::text(r#"{"id":"1","type":"complete"}"#))
        .await;
    let _ = ws.close(None).await;
    Ok(())
}
