//! A graphql-transport-ws client.

use futures::{SinkExt, StreamExt};
use galley::RunningServer;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::GUARD;

/// A graphql-transport-ws client.
#[derive(Debug)]
pub struct Ws {
    /// The socket.
    pub socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// What the server sent next: a protocol message, or the close code.
pub type Received = Result<Value, u16>;

impl Ws {
    /// Opens a socket with the graphql-transport-ws subprotocol (no connection_init yet).
    pub async fn connect(server: &RunningServer) -> Ws {
        let mut request = server.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, response) =
            tokio::time::timeout(GUARD, tokio_tungstenite::connect_async(request))
                .await
                .expect("the socket opens in time")
                .expect("the socket opens");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Ws { socket }
    }

    /// Connects and initialises with a token; the server must acknowledge.
    pub async fn init(server: &RunningServer, token: &str) -> Ws {
        let mut ws = Ws::connect(server).await;
        ws.send(json!({"type": "connection_init", "payload": {"token": token}}))
            .await;
        let ack = ws.recv().await;
        assert_eq!(
            ack.as_ref().map(|m| &m["type"]),
            Ok(&json!("connection_ack"))
        );
        ws
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, message: Value) {
        self.send_frame(Message::Text(message.to_string().into()))
            .await;
    }

    /// Sends any frame.
    pub async fn send_frame(&mut self, frame: Message) {
        self.socket.send(frame).await.expect("the frame is sent");
    }

    /// Sends a text frame as it is (it need not be JSON).
    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(Message::Text(text.to_owned().into())).await;
    }

    /// Subscribes under `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({
            "id": id,
            "type": "subscribe",
            "payload": { "query": query, "variables": variables }
        }))
        .await;
    }

    /// The next protocol message, or the close code (1006 when the connection just ends).
    pub async fn recv(&mut self) -> Received {
        loop {
            match self.next_frame().await {
                Some(Message::Text(t)) => {
                    return Ok(serde_json::from_str(&t).expect("a JSON message"))
                }
                Some(Message::Close(frame)) => {
                    return Err(frame.map(|f| u16::from(f.code)).unwrap_or(1005))
                }
                Some(_) => continue,
                None => return Err(1006),
            }
        }
    }

    /// The next frame of any kind (`None` when the connection ends).
    pub async fn next_frame(&mut self) -> Option<Message> {
        let next = tokio::time::timeout(GUARD, self.socket.next())
            .await
            .expect("a frame in time");
        match next {
            Some(Ok(frame)) => Some(frame),
            Some(Err(_)) | None => None,
        }
    }

    /// The next message, which must be a `next` for `id`; returns its `payload.data`.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let message = self.recv().await.expect("a message, not a close");
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], id, "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        message["payload"]["data"].clone()
    }

    /// Reads until the server closes; returns the close code.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            if let Err(code) = self.recv().await {
                return code;
            }
        }
    }
}
