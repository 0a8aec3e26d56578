//! GraphQL over WebSocket with the graphql-transport-ws protocol, written out here because
//! every close code of the protocol must be honoured (async-graphql's own implementation sends
//! 1002 or 1011 where the protocol asks for 4400, 4401, 4403 and 4408, and replaces a
//! subscription on a duplicate id instead of closing with 4409).
//!
//! Close codes: 4400 invalid message, 4401 subscribe before connection_ack, 4403 bad token
//! (also when the token is revoked while the connection is open), 4408 no connection_init in
//! time, 4409 duplicate subscription id, 4429 second connection_init; 1001 when the server
//! shuts down; 1013 (try again later) when the database cannot be asked about the token.
//!
//! Limits: an upgrade past `max_websockets` open connections (those waiting for
//! connection_init included) is answered 503 with Retry-After, and one from an address that
//! spent its failed-authentication budget 429; a `subscribe` past
//! `max_subscriptions_per_connection` running operations gets an `error` message with code
//! BAD_REQUEST, and the connection stays open. A socket's read and write buffers start small
//! (tungstenite's default is 128 KiB each), so a socket that never sends connection_init
//! costs a few KiB for its init timeout.
//!
//! Revocation: once acknowledged, the connection looks its token up again whenever the store
//! says a revocation may have happened (at once on every replica on PostgreSQL) and every
//! token cache window, so a revoked token's subscriptions end with 4403 within that window.
//!
//! The console's browser cannot send a token: its upgrade carries the session cookie instead,
//! and is refused (403, before upgrading) unless its `Origin` is this server, so another
//! site's page cannot open a socket in a signed-in person's name. A `connection_init` without
//! a token then authenticates by that session, re-checked for every operation like a token.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::auth::{self, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::http::{decorate_error, prepare, MediaType};
use crate::schema::{Loaders, RequestContext};
use crate::{AppState, ClientAddr, REQUEST_ID_HEADER};

const PROTOCOL: &str = "graphql-transport-ws";

/// The starting size of a socket's read and write buffers (they grow for larger messages).
const SOCKET_BUFFER: usize = 4 * 1024;

/// `GET /graphql/ws`: upgrades to graphql-transport-ws.
pub async fn upgrade(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(wait) = state.inner.failures.check(client.0) {
        let error = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "too many failed authentications from this address; retry after {} ms",
                wait.as_millis().max(1)
            ),
        );
        let mut response = crate::http::error_response(
            StatusCode::TOO_MANY_REQUESTS,
            MediaType::Json,
            &[error],
            None,
        );
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let Ok(slot) = state.inner.ws_slots.clone().try_acquire_owned() else {
        metrics::counter!("galley_websockets_refused_total").increment(1);
        let error = ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!(
                "too many WebSocket connections (at most {}); retry shortly",
                state.limits().max_websockets
            ),
        );
        let mut response = crate::http::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            MediaType::Json,
            &[error],
            None,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let session = crate::session::session_secret(&headers);
    if session.is_some() && !crate::session::same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "a WebSocket signed in by the session cookie must come from the console's own origin\n",
        )
            .into_response();
    }
    let span = tracing::info_span!(
        "websocket",
        request_id = request_id.as_deref().unwrap_or("-")
    );
    ws.protocols([PROTOCOL])
        .max_message_size(state.limits().body_limit_bytes)
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .on_upgrade(move |socket| {
            Connection::new(state, request_id, client, slot, session)
                .run(socket)
                .instrument(span)
        })
}

/// What a subscription task tells the connection.
enum Outgoing {
    /// A result of the operation.
    Next(String, u64, Value),
    /// The operation failed before producing any result.
    Error(String, u64, Value),
    /// The operation ended.
    Complete(String, u64),
}

/// The longest reason a close frame may carry: RFC 6455 caps a control frame's payload at 125
/// bytes, two of which are the code.
const CLOSE_REASON_MAX: usize = 123;

/// A close reason cut to [`CLOSE_REASON_MAX`] bytes at a character boundary, so that a reason
/// naming client text (an operation id) can never make an invalid control frame.
fn close_reason(reason: &str) -> &str {
    if reason.len() <= CLOSE_REASON_MAX {
        return reason;
    }
    let mut end = CLOSE_REASON_MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Why the connection closes.
struct Close(u16, String);

struct Connection {
    state: AppState,
    request_id: Option<String>,
    /// Set once connection_init was received (a second one closes with 4429).
    init_received: bool,
    /// Set once the token was accepted and connection_ack sent.
    principal: Option<Principal>,
    /// The token from connection_init, checked again for every operation so that a token
    /// revoked (or a user's roles changed) after the connection opened takes effect.
    token: Option<String>,
    /// The console session secret from the upgrade's cookie, used when connection_init
    /// carries no token, and checked again for every operation like a token.
    session: Option<String>,
    /// Running operations by client id, with a generation so a late message from an
    /// operation the client completed is not mistaken for one that reused its id.
    operations: HashMap<String, (u64, tokio::task::AbortHandle)>,
    generation: u64,
    /// The client's address, charged for a failed connection_init.
    client: ClientAddr,
    /// Held while the connection is open; shutdown waits for these to be dropped.
    _open: Arc<()>,
    /// This connection's place under `max_websockets`.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Connection {
    fn new(
        state: AppState,
        request_id: Option<String>,
        client: ClientAddr,
        slot: tokio::sync::OwnedSemaphorePermit,
        session: Option<String>,
    ) -> Connection {
        let open = state.inner.ws_connections.clone();
        Connection {
            state,
            request_id,
            init_received: false,
            principal: None,
            token: None,
            session,
            operations: HashMap::new(),
            generation: 0,
            client,
            _open: open,
            _slot: slot,
        }
    }

    /// Looks the token up again; a close when it no longer names a user. A database that
    /// cannot be asked keeps the connection: running operations were authorised, and every
    /// new one is checked again anyway.
    async fn recheck(&mut self) -> Option<Close> {
        self.principal.as_ref()?;
        match self.authenticate(self.token.as_deref()).await {
            Ok(principal) => {
                self.principal = Some(principal);
                None
            }
            Err(e) if e.code() == ErrorCode::Unauthenticated => {
                tracing::info!("token revoked; closing its WebSocket");
                Some(Close(4403, "Forbidden".into()))
            }
            Err(_) => None,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let (tx, mut rx) = mpsc::channel::<Outgoing>(256);
        let init_deadline = tokio::time::sleep(self.state.limits().ws_init_timeout);
        tokio::pin!(init_deadline);
        let mut shutdown = self.state.inner.shutdown.clone();
        let mut revocations = self.state.store().token_revocations();
        // Every token cache window the lookup reaches the database again, which is how a
        // revocation by another process on SQLite is seen.
        // With the cache off every lookup reaches the database, so the default window keeps
        // the rechecks of many connections from becoming a load of their own.
        let ttl = self.state.store().token_cache_ttl();
        let window = if ttl.is_zero() {
            galley_storage::TOKEN_CACHE_TTL
        } else {
            ttl.max(std::time::Duration::from_millis(500))
        };
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let close = loop {
            tokio::select! {
                _ = &mut init_deadline, if !self.init_received => {
                    break Some(Close(4408, "Connection initialisation timeout".into()));
                }
                changed = revocations.changed(), if self.principal.is_some() => {
                    if changed.is_err() {
                        continue;
                    }
                    if let Some(close) = self.recheck().await {
                        break Some(close);
                    }
                }
                _ = recheck.tick(), if self.principal.is_some() => {
                    if let Some(close) = self.recheck().await {
                        break Some(close);
                    }
                }
                _ = crate::stopped(&mut shutdown) => {
                    for id in self.operations.keys() {
                        let _ = sink.send(text(json!({"type": "complete", "id": id}))).await;
                    }
                    break Some(Close(1001, "server shutting down".into()));
                }
                Some(out) = rx.recv() => {
                    let message = match out {
                        Outgoing::Next(id, generation, payload) => {
                            if !self.is_current(&id, generation) { continue; }
                            json!({"type": "next", "id": id, "payload": payload})
                        }
                        Outgoing::Error(id, generation, errors) => {
                            if !self.is_current(&id, generation) { continue; }
                            self.operations.remove(&id);
                            json!({"type": "error", "id": id, "payload": errors})
                        }
                        Outgoing::Complete(id, generation) => {
                            if !self.is_current(&id, generation) { continue; }
                            self.operations.remove(&id);
                            json!({"type": "complete", "id": id})
                        }
                    };
                    if sink.send(text(message)).await.is_err() {
                        break None;
                    }
                }
                incoming = stream.next() => {
                    let message = match incoming {
                        Some(Ok(m)) => m,
                        Some(Err(_)) | None => break None,
                    };
                    let text = match message {
                        Message::Text(t) => t,
                        Message::Binary(_) => {
                            break Some(Close(4400, "Binary messages are not supported".into()));
                        }
                        Message::Close(_) => break None,
                        // Transport-level ping/pong frames are answered by the library.
                        Message::Ping(_) | Message::Pong(_) => continue,
                    };
                    match self.handle(text.as_str(), &tx).await {
                        Ok(Some(reply)) => {
                            if sink.send(text_msg(reply)).await.is_err() {
                                break None;
                            }
                        }
                        Ok(None) => {}
                        Err(close) => break Some(close),
                    }
                }
            }
        };
        for (_, (_, handle)) in self.operations.drain() {
            handle.abort();
        }
        if let Some(Close(code, reason)) = close {
            tracing::debug!(code, %reason, "closing websocket");
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: close_reason(&reason).into(),
                })))
                .await;
        }
        let _ = sink.close().await;
    }

    /// Authenticates by the connection's token, or by its session when it has no token.
    async fn authenticate(&self, token: Option<&str>) -> Result<Principal, crate::ApiError> {
        match (token, &self.session) {
            (None, Some(session)) => {
                crate::session::authenticate_session(self.state.store(), session).await
            }
            _ => auth::authenticate(self.state.store(), token).await,
        }
    }

    fn is_current(&self, id: &str, generation: u64) -> bool {
        self.operations
            .get(id)
            .is_some_and(|(g, _)| *g == generation)
    }

    /// Handles one client message: a reply to send, nothing, or a reason to close.
    async fn handle(
        &mut self,
        raw: &str,
        tx: &mpsc::Sender<Outgoing>,
    ) -> Result<Option<Value>, Close> {
        let invalid = |why: &str| Close(4400, format!("Invalid message received: {why}"));
        let message: Value = serde_json::from_str(raw).map_err(|_| invalid("not JSON"))?;
        let kind = message
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("no type"))?;
        match kind {
            "connection_init" => {
                if self.init_received {
                    return Err(Close(4429, "Too many initialisation requests".into()));
                }
                self.init_received = true;
                let token = message.get("payload").and_then(init_token);
                match self.authenticate(token.as_deref()).await {
                    Ok(principal) => {
                        self.principal = Some(principal);
                        self.token = token;
                        Ok(Some(json!({"type": "connection_ack"})))
                    }
                    Err(e) if e.code() == ErrorCode::Unauthenticated => {
                        // Counted against the address; once its budget is spent the next
                        // upgrade from it is answered 429.
                        let _ = self.state.inner.failures.failed(self.client.0);
                        Err(Close(4403, "Forbidden".into()))
                    }
                    Err(e) if e.code() == ErrorCode::ServiceUnavailable => {
                        Err(Close(1013, "database unavailable; retry".into()))
                    }
                    Err(_) => Err(Close(1011, "internal server error".into())),
                }
            }
            "ping" => Ok(Some(json!({"type": "pong"}))),
            "pong" => Ok(None),
            "subscribe" => {
                let id = message
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| invalid("subscribe needs an id"))?
                    .to_owned();
                let payload = message
                    .get("payload")
                    .cloned()
                    .ok_or_else(|| invalid("subscribe needs a payload"))?;
                let request: async_graphql::Request = serde_json::from_value(payload)
                    .map_err(|_| invalid("the payload is not a GraphQL request"))?;
                if self.principal.is_none() {
                    return Err(Close(4401, "Unauthorized".into()));
                }
                if self.operations.contains_key(&id) {
                    return Err(Close(4409, format!("Subscriber for {id} already exists")));
                }
                let max = self.state.limits().max_subscriptions_per_connection;
                if self.operations.len() >= max {
                    let error = ApiError::new(
                        ErrorCode::BadRequest,
                        format!("at most {max} operations may run on one connection"),
                    );
                    return Ok(Some(json!({
                        "type": "error",
                        "id": id,
                        "payload": [error.to_json(self.request_id.as_deref())],
                    })));
                }
                let principal = match self.authenticate(self.token.as_deref()).await {
                    Ok(principal) => principal,
                    Err(e) if e.code() == ErrorCode::Unauthenticated => {
                        return Err(Close(4403, "Forbidden".into()));
                    }
                    Err(e) if e.code() == ErrorCode::ServiceUnavailable => {
                        return Err(Close(1013, "database unavailable; retry".into()));
                    }
                    Err(_) => return Err(Close(1011, "internal server error".into())),
                };
                self.principal = Some(principal.clone());
                self.start(id, request, principal, tx);
                Ok(None)
            }
            "complete" => {
                let id = message
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("complete needs an id"))?;
                if let Some((_, handle)) = self.operations.remove(id) {
                    handle.abort();
                }
                Ok(None)
            }
            other => Err(invalid(&format!("unknown type {other:?}"))),
        }
    }

    /// Starts one operation in its own task, which reports through `tx`.
    fn start(
        &mut self,
        id: String,
        request: async_graphql::Request,
        principal: Principal,
        tx: &mpsc::Sender<Outgoing>,
    ) {
        self.generation += 1;
        let generation = self.generation;
        let tx = tx.clone();
        let state = self.state.clone();
        let request_id = self.request_id.clone();
        let op_id = id.clone();
        let task = tokio::spawn(async move {
            let rid = request_id.as_deref();
            let fail = |errors: Vec<Value>| {
                Outgoing::Error(op_id.clone(), generation, Value::Array(errors))
            };
            if let Err(wait) = state.inner.limiter.check(principal.id()) {
                let _ = tx
                    .send(fail(vec![auth::rate_limited(wait).to_json(rid)]))
                    .await;
                return;
            }
            let prepared = match prepare(request, state.limits().max_aliases, state.documents()) {
                Ok(p) => p,
                Err(r) => {
                    let _ = tx
                        .send(fail(r.errors.iter().map(|e| e.to_json(rid)).collect()))
                        .await;
                    return;
                }
            };
            let kind = crate::http::operation_kind(prepared.kind);
            let span = tracing::info_span!("graphql", operation = kind, field = %prepared.root_field, user = %principal.user.name);
            metrics::counter!("graphql_operations_total", "type" => kind, "field" => state.field_label(&prepared.root_field), "outcome" => "started").increment(1);
            let is_subscription = prepared.kind == OperationType::Subscription;
            let request = prepared
                .request
                .data(RequestContext {
                    principal,
                    request_id: request_id.clone(),
                })
                .data(Loaders::new(state.store()));
            let mut responses = state.schema().execute_stream(request);
            let mut first = true;
            while let Some(response) = responses.next().instrument(span.clone()).await {
                let (_, mut body, outcome) =
                    crate::http::shape_response(response, MediaType::Json, rid);
                if first && outcome == "rejected"
                    || (first && is_subscription && body.get("data").is_none_or(Value::is_null))
                {
                    let errors = body
                        .get_mut("errors")
                        .map(Value::take)
                        .unwrap_or_else(|| Value::Array(Vec::new()));
                    if let Value::Array(mut errors) = errors {
                        for e in &mut errors {
                            decorate_error(e, true, rid);
                        }
                        let _ = tx.send(fail(errors)).await;
                    }
                    return;
                }
                first = false;
                if tx
                    .send(Outgoing::Next(op_id.clone(), generation, body))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let _ = tx.send(Outgoing::Complete(op_id, generation)).await;
        });
        self.operations
            .insert(id, (generation, task.abort_handle()));
    }
}

/// The token from a connection_init payload: `{"token": "…"}` or
/// `{"Authorization": "Bearer …"}` (any case).
fn init_token(payload: &Value) -> Option<String> {
    let object = payload.as_object()?;
    if let Some(token) = object.get("token").and_then(Value::as_str) {
        return Some(token.to_owned());
    }
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.as_str())
        .map(|v| auth::bearer_token(v).unwrap_or(v).to_owned())
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

fn text_msg(value: Value) -> Message {
    text(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_either_form_of_the_init_payload() {
        assert_eq!(init_token(&json!({"token": "t1"})).as_deref(), Some("t1"));
        assert_eq!(
            init_token(&json!({"Authorization": "Bearer t2"})).as_deref(),
            Some("t2")
        );
        assert_eq!(
            init_token(&json!({"authorization": "Bearer t3"})).as_deref(),
            Some("t3")
        );
        assert_eq!(init_token(&json!({})), None);
        assert_eq!(init_token(&Value::Null), None);
    }
}
