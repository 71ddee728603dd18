//! One socket's life: `hello`, then pushes out and client messages in,
//! with a heartbeat, a flood limit and a bounded queue. One task per
//! socket, which never panics on client input.

use std::num::NonZeroU32;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use governor::{Quota, RateLimiter};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::messages::{ClientMessage, ErrorCode, ServerMessage};
use super::{Outbound, Registration, close_code};
use crate::auth::CurrentUser;
use crate::http::UserView;
use crate::state::AppState;

const PING_EVERY: Duration = Duration::from_secs(20);
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// A write that takes longer means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Client activity refreshes the session at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(30);

type Socket = WebSocketStream<TokioIo<Upgraded>>;

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }))
}

async fn send(socket: &mut Socket, message: Message) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, socket.send(message)).await, Ok(Ok(())))
}

async fn send_json(socket: &mut Socket, message: &ServerMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => send(socket, Message::text(text)).await,
        Err(_) => false,
    }
}

/// Reads and discards what the client is still sending (the rest of an
/// oversized message), so closing does not reset the connection and lose
/// the close frame in flight.
async fn drain(socket: &mut Socket) {
    use tokio::io::AsyncReadExt as _;
    let io = socket.get_mut();
    let mut buf = [0u8; 8192];
    let mut budget = 1024 * 1024;
    let deadline = Instant::now() + Duration::from_secs(2);
    while budget > 0 {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => budget -= n.min(budget),
            _ => break,
        }
    }
}

/// What a client frame asks for; bad input becomes an `error` frame.
fn handle_text(text: &str) -> ServerMessage {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            return ServerMessage::Error {
                code: ErrorCode::BadMessage,
                message: "Frames must be JSON objects with a \"type\" field.".into(),
                refers_to: None,
            };
        }
    };
    let kind = value.get("type").and_then(|t| t.as_str()).map(str::to_owned);
    match serde_json::from_value::<ClientMessage>(value) {
        Ok(ClientMessage::Ping { id }) => ServerMessage::Pong { id },
        Err(_) => match kind {
            Some(kind) if matches!(kind.as_str(), "ping") => ServerMessage::Error {
                code: ErrorCode::BadMessage,
                message: format!("The {kind} message has missing or invalid fields."),
                refers_to: Some(kind),
            },
            Some(kind) => ServerMessage::Error {
                code: ErrorCode::UnknownType,
                message: "This message type is not known.".into(),
                refers_to: Some(kind.chars().take(64).collect()),
            },
            None => ServerMessage::Error {
                code: ErrorCode::BadMessage,
                message: "Frames must be JSON objects with a \"type\" field.".into(),
                refers_to: None,
            },
        },
    }
}

pub(super) async fn run(
    mut socket: Socket,
    state: AppState,
    user: CurrentUser,
    registration: Registration,
    mut outbound: mpsc::Receiver<Outbound>,
) {
    let hello = ServerMessage::Hello {
        user: UserView::from(&user.user),
        server_time: state.clock.now(),
        connection_id: registration.id.to_string(),
    };
    if !send_json(&mut socket, &hello).await {
        return;
    }
    // 20 frames a second with bursts of 40 is far beyond any real client.
    let flood = RateLimiter::direct(
        Quota::per_second(NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(40).unwrap_or(NonZeroU32::MIN)),
    );
    let mut heartbeat = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let mut last_touch = Instant::now();
    loop {
        tokio::select! {
            out = outbound.recv() => match out {
                Some(Outbound::Text(text)) => {
                    if !send(&mut socket, Message::text(text.as_ref())).await {
                        break;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let _ = send(&mut socket, close(code, reason)).await;
                    break;
                }
                // Unregistered by the hub (too slow, or the session ended with a full queue).
                None => break,
            },
            frame = socket.next() => {
                let message = match frame {
                    None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => break,
                    Some(Err(WsError::Capacity(_))) => {
                        let _ = send(&mut socket, close(close_code::TOO_BIG, "message too big")).await;
                        drain(&mut socket).await;
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "socket read failed");
                        break;
                    }
                    Some(Ok(message)) => message,
                };
                last_heard = Instant::now();
                if flood.check().is_err() {
                    tracing::info!(user_id = %user.user.id, "socket flooding; closing");
                    let _ = send(&mut socket, close(close_code::POLICY, "too many messages")).await;
                    drain(&mut socket).await;
                    break;
                }
                let reply = match message {
                    Message::Text(text) => Some(handle_text(text.as_str())),
                    Message::Binary(_) => Some(ServerMessage::Error {
                        code: ErrorCode::BadMessage,
                        message: "Binary frames are not accepted.".into(),
                        refers_to: None,
                    }),
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
                };
                if let Some(reply) = reply {
                    if !matches!(reply, ServerMessage::Error { .. }) && last_touch.elapsed() >= TOUCH_EVERY {
                        last_touch = Instant::now();
                        let _ = state.db.touch_session(user.session_id, state.clock.now()).await;
                    }
                    if !send_json(&mut socket, &reply).await {
                        break;
                    }
                }
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    let _ = send(&mut socket, close(close_code::POLICY, "no answer to pings")).await;
                    break;
                }
                if !send(&mut socket, Message::Ping(Vec::new().into())).await {
                    break;
                }
            },
        }
    }
    drop(registration);
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_frames_get_stable_error_codes() {
        let code = |text: &str| match handle_text(text) {
            ServerMessage::Error { code, .. } => Some(code),
            _ => None,
        };
        assert_eq!(code("not json"), Some(ErrorCode::BadMessage));
        assert_eq!(code("[1,2]"), Some(ErrorCode::BadMessage));
        assert_eq!(code(r#"{"type":"launch.missiles"}"#), Some(ErrorCode::UnknownType));
        assert_eq!(code(r#"{"type":"ping","id":7}"#), None);
    }
}
