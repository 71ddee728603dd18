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

use super::messages::{ClientMessage, ErrorCode, RoomClosedReason, ServerMessage};
use super::room::{self, Membership, SocketMeta};
use super::{Outbound, Registration, close_code};
use crate::auth::CurrentUser;
use crate::http::UserView;
use crate::sfu::SfuEvent;
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

/// A client frame, parsed; bad input becomes an `error` frame to send back.
fn parse(text: &str) -> Result<ClientMessage, Box<ServerMessage>> {
    let bad = |refers_to| {
        Box::new(ServerMessage::Error {
            code: ErrorCode::BadMessage,
            message: "Frames must be JSON objects with a known \"type\" and its fields.".into(),
            refers_to,
        })
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| bad(None))?;
    let kind = value.get("type").and_then(|t| t.as_str()).map(str::to_owned);
    serde_json::from_value::<ClientMessage>(value).map_err(|_| match kind {
        Some(kind) if ClientMessage::TYPES.contains(&kind.as_str()) => bad(Some(kind)),
        Some(kind) => Box::new(ServerMessage::Error {
            code: ErrorCode::UnknownType,
            message: "This message type is not known.".into(),
            refers_to: Some(kind.chars().take(64).collect()),
        }),
        None => bad(None),
    })
}

fn not_in_room(kind: &str) -> ServerMessage {
    ServerMessage::Error {
        code: ErrorCode::NotInRoom,
        message: "Join a room first.".into(),
        refers_to: Some(kind.to_owned()),
    }
}

async fn next_event(membership: &mut Option<Membership>) -> Option<SfuEvent> {
    match membership {
        Some(m) => m.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves when the joined room's window closes (never when not in a room).
async fn window_closes(closes_at: Option<chrono::DateTime<chrono::Utc>>, state: &AppState) {
    match closes_at {
        Some(closes_at) => loop {
            let now = state.clock.now();
            if now >= closes_at {
                return;
            }
            // Re-checked at least every second, so a moved test clock is noticed.
            let left = (closes_at - now).to_std().unwrap_or_default();
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        },
        None => std::future::pending().await,
    }
}

/// What a client message does; the frames to send back.
async fn dispatch(
    state: &AppState,
    user: &CurrentUser,
    meta: &SocketMeta,
    membership: &mut Option<Membership>,
    message: ClientMessage,
) -> Vec<ServerMessage> {
    match message {
        ClientMessage::Ping { id } => vec![ServerMessage::Pong { id }],
        ClientMessage::RoomJoin { appointment_id } => {
            if membership.is_some() {
                return vec![ServerMessage::Error {
                    code: ErrorCode::AlreadyInRoom,
                    message: "This connection is already in a room; leave it first.".into(),
                    refers_to: Some("room.join".into()),
                }];
            }
            match room::join(state, user, meta, &appointment_id).await {
                Ok((joined, frame)) => {
                    *membership = Some(joined);
                    vec![frame]
                }
                Err(refusal) => vec![refusal],
            }
        }
        ClientMessage::RoomLeave {} => match membership.take() {
            Some(m) => {
                let appointment_id = m.appointment.id.to_string();
                room::leave(state, user.user.id, m, true).await;
                vec![ServerMessage::RoomLeft { appointment_id }]
            }
            None => vec![not_in_room("room.leave")],
        },
        other => {
            let kind = match &other {
                ClientMessage::RtcPublishOffer { .. } => "rtc.publish_offer",
                ClientMessage::RtcSubscribeAnswer { .. } => "rtc.subscribe_answer",
                ClientMessage::RtcCandidate { .. } => "rtc.candidate",
                ClientMessage::RtcMedia { .. } => "rtc.media",
                _ => "rtc.keyframe",
            };
            let (Some(m), Some(signal)) = (membership.as_ref(), room::signal(other)) else {
                return vec![not_in_room(kind)];
            };
            match state.sfu.signal(m.participant, signal).await {
                Ok(()) => Vec::new(),
                Err(crate::sfu::SfuError::UnknownParticipant) => {
                    if let Some(m) = membership.take() {
                        room::leave(state, user.user.id, m, false).await;
                    }
                    vec![not_in_room(kind)]
                }
                Err(e) => {
                    tracing::warn!(error = %e, "signal refused by the media server");
                    vec![ServerMessage::Error {
                        code: ErrorCode::Internal,
                        message: "The video service could not take this message.".into(),
                        refers_to: Some(kind.to_owned()),
                    }]
                }
            }
        }
    }
}

/// What a socket's task does after handling one event.
enum Flow {
    Continue,
    Stop,
}

/// The parts of a socket's state that its handlers need.
struct Conn {
    state: AppState,
    user: CurrentUser,
    meta: SocketMeta,
    membership: Option<Membership>,
    last_heard: Instant,
    last_touch: Instant,
}

async fn send_all(socket: &mut Socket, frames: &[ServerMessage]) -> Flow {
    for frame in frames {
        if !send_json(socket, frame).await {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// A frame (or a read error) from the client.
async fn on_frame(
    socket: &mut Socket,
    conn: &mut Conn,
    flood: &Flood,
    frame: Option<Result<Message, WsError>>,
) -> Flow {
    let message = match frame {
        None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => return Flow::Stop,
        Some(Err(WsError::Capacity(_))) => {
            let _ = send(socket, close(close_code::TOO_BIG, "message too big")).await;
            drain(socket).await;
            return Flow::Stop;
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "socket read failed");
            return Flow::Stop;
        }
        Some(Ok(message)) => message,
    };
    conn.last_heard = Instant::now();
    if flood.check().is_err() {
        tracing::info!(user_id = %conn.user.user.id, "socket flooding; closing");
        let _ = send(socket, close(close_code::POLICY, "too many messages")).await;
        drain(socket).await;
        return Flow::Stop;
    }
    let replies = match message {
        Message::Text(text) => match parse(text.as_str()) {
            Ok(client) => {
                if conn.last_touch.elapsed() >= TOUCH_EVERY {
                    conn.last_touch = Instant::now();
                    let _ = conn.state.db.touch_session(conn.user.session_id, conn.state.clock.now()).await;
                }
                dispatch(&conn.state, &conn.user, &conn.meta, &mut conn.membership, client).await
            }
            Err(error) => vec![*error],
        },
        Message::Binary(_) => vec![ServerMessage::Error {
            code: ErrorCode::BadMessage,
            message: "Binary frames are not accepted.".into(),
            refers_to: None,
        }],
        Message::Close(_) => return Flow::Stop,
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Vec::new(),
    };
    send_all(socket, &replies).await
}

/// An event from the media server for the joined room.
async fn on_event(socket: &mut Socket, conn: &mut Conn, event: Option<SfuEvent>) -> Flow {
    let Some(room_id) = conn.membership.as_ref().map(|m| m.appointment.id) else { return Flow::Continue };
    let translated = match event {
        Some(event) => room::translate(room_id, event),
        // The media server dropped this participant's channel.
        None => room::Translated::Gone { frames: Vec::new(), presence_changed: true },
    };
    let frames = match translated {
        room::Translated::Send(frame) => vec![*frame],
        room::Translated::Ignore => Vec::new(),
        room::Translated::Gone { frames, presence_changed } => {
            if let Some(m) = conn.membership.take()
                && presence_changed
            {
                room::leave(&conn.state, conn.user.user.id, m, false).await;
            }
            frames
        }
    };
    send_all(socket, &frames).await
}

/// The joined room's window has closed.
async fn on_window_closed(socket: &mut Socket, conn: &mut Conn) -> Flow {
    let Some(m) = conn.membership.take() else { return Flow::Continue };
    let appointment_id = m.appointment.id.to_string();
    room::leave(&conn.state, conn.user.user.id, m, true).await;
    let frame = ServerMessage::RoomClosed { appointment_id, reason: RoomClosedReason::Ended };
    send_all(socket, &[frame]).await
}

type Flood = governor::DefaultDirectRateLimiter;

pub(super) async fn run(
    mut socket: Socket,
    state: AppState,
    user: CurrentUser,
    meta: SocketMeta,
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
    let now = Instant::now();
    let mut conn = Conn { state, user, meta, membership: None, last_heard: now, last_touch: now };
    // This task lives as long as the socket, and its future is allocated
    // whole for that time: as large as the largest state of any `.await` in
    // it. The handlers of client frames, room events and room closing await
    // database and media-server calls whose states run to kilobytes, so
    // they are boxed: the box exists only while one of them runs, and an
    // idle socket's task holds just this loop.
    loop {
        let closes_at = conn.membership.as_ref().map(|m| m.closes_at);
        let flow = tokio::select! {
            out = outbound.recv() => match out {
                Some(Outbound::Text(text)) => {
                    if send(&mut socket, Message::text(text.as_ref())).await { Flow::Continue } else { Flow::Stop }
                }
                Some(Outbound::Close(closing)) => {
                    let _ = send(&mut socket, close(closing.code(), closing.reason())).await;
                    Flow::Stop
                }
                // Unregistered by the hub (too slow, or the session ended with a full queue).
                None => Flow::Stop,
            },
            frame = socket.next() => Box::pin(on_frame(&mut socket, &mut conn, &flood, frame)).await,
            event = next_event(&mut conn.membership) => Box::pin(on_event(&mut socket, &mut conn, event)).await,
            () = window_closes(closes_at, &conn.state) => Box::pin(on_window_closed(&mut socket, &mut conn)).await,
            _ = heartbeat.tick() => {
                if conn.last_heard.elapsed() > SILENCE_LIMIT {
                    let _ = send(&mut socket, close(close_code::POLICY, "no answer to pings")).await;
                    Flow::Stop
                } else if send(&mut socket, Message::Ping(Vec::new().into())).await {
                    Flow::Continue
                } else {
                    Flow::Stop
                }
            },
        };
        if let Flow::Stop = flow {
            break;
        }
    }
    if let Some(m) = conn.membership.take() {
        Box::pin(room::leave(&conn.state, conn.user.user.id, m, true)).await;
    }
    drop(registration);
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_frames_get_stable_error_codes() {
        let code = |text: &str| match parse(text) {
            Err(error) => match *error {
                ServerMessage::Error { code, .. } => Some(code),
                _ => None,
            },
            _ => None,
        };
        assert_eq!(code("not json"), Some(ErrorCode::BadMessage));
        assert_eq!(code("[1,2]"), Some(ErrorCode::BadMessage));
        assert_eq!(code(r#"{"type":"launch.missiles"}"#), Some(ErrorCode::UnknownType));
        assert_eq!(code(r#"{"type":"ping","id":7}"#), None);
        assert_eq!(code(r#"{"type":"room.join"}"#), Some(ErrorCode::BadMessage), "known type, missing field");
        assert_eq!(code(r#"{"type":"room.leave"}"#), None);
    }
}
