//! Consulta's media plane: a small selective forwarding unit (SFU) on one UDP socket.
//!
//! Each participant has two peer connections: a *publisher* (the client offers, sends its
//! microphone, camera and optionally a screen share) and a *subscriber* (the SFU offers, sends
//! the other participants' tracks). RTP is forwarded without transcoding; only SSRC and payload
//! type are rewritten. The WebRTC stack (`rtc`, sans-I/O) is an implementation detail: no type
//! of it appears in this API.
//!
//! Wiring (from the hub): call [`Sfu::join`] for an authorized user with an event channel,
//! relay the client's messages with [`Sfu::signal`], forward every [`SfuEvent`] from the channel
//! to the client, and call [`Sfu::leave`] when the WebSocket closes.
//!
//! All state lives in one media-loop task (see `engine`); `Sfu` is a cheap handle that sends it
//! commands. Methods are cancel-safe: dropping a call's future never corrupts the loop.

mod demux;
mod engine;
mod forward;
mod peer;
mod room;
mod rtcp_tap;
pub use rtcp_tap::DeliverRtcp;
mod signal;
mod stats;

pub use engine::TableSizes;
pub use signal::{ClientSignal, CloseReason, Participant, ParticipantId, PcKind, SfuEvent, SfuStats};

use engine::{Command, LoopConfig, MediaLoop, Shared};
use peer::PeerSettings;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Commands waiting for the media loop. Callers wait (asynchronously) when it is full, which
/// back-pressures a flood of signaling without touching the media path.
const COMMAND_QUEUE: usize = 1024;

/// Configuration of the SFU.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Where the one media socket binds, e.g. `0.0.0.0:8443`, or `127.0.0.1:0` in tests.
    pub udp_bind: SocketAddr,
    /// The address clients reach us at, advertised instead of the bound IP (behind 1:1 NAT, or
    /// when binding a wildcard). Required when `udp_bind` is a wildcard and loopback is off.
    pub public_ip: Option<IpAddr>,
    /// Advertise a loopback candidate (tests, local development). With a loopback bind this
    /// must be on.
    pub include_loopback: bool,
    /// Bitrate cap announced to video publishers with REMB; 0 disables it.
    pub max_bitrate_bps: u32,
    /// How long an empty room is kept before it is dropped.
    pub empty_room_grace: Duration,
    /// A peer connection that has not completed ICE+DTLS this long after it was created
    /// drops its participant (with `SfuEvent::Error { code: "connect_timeout" }`).
    pub connect_timeout: Duration,
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            udp_bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8443)),
            public_ip: None,
            include_loopback: false,
            max_bitrate_bps: 1_500_000,
            empty_room_grace: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

impl SfuConfig {
    /// Loopback-only settings for tests: `127.0.0.1:0`, loopback candidates on.
    pub fn loopback() -> Self {
        Self { udp_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), include_loopback: true, ..Self::default() }
    }

    /// The host candidate addresses to advertise for a socket bound at `bound`.
    fn candidates(&self, bound: SocketAddr) -> Result<Vec<SocketAddr>, SfuError> {
        let port = bound.port();
        let loopback = if bound.is_ipv4() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(Ipv6Addr::LOCALHOST) };
        let primary = match self.public_ip {
            Some(ip) => ip,
            None if !bound.ip().is_unspecified() => bound.ip(),
            None if self.include_loopback => loopback,
            None => {
                return Err(SfuError::Config("udp_bind is a wildcard address: set public_ip".to_owned()));
            }
        };
        if primary.is_loopback() && !self.include_loopback {
            return Err(SfuError::Config("the advertised address is loopback but include_loopback is off".to_owned()));
        }
        let mut out = vec![SocketAddr::new(primary, port)];
        // A wildcard bind also receives on loopback; offer it when asked to.
        if self.include_loopback && !primary.is_loopback() && bound.ip().is_unspecified() {
            out.push(SocketAddr::new(loopback, port));
        }
        Ok(out)
    }
}

/// Errors of the SFU API. Signaling errors are also reported to the participant as
/// `SfuEvent::Error`, so the hub may simply log them.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// The media socket could not be bound.
    #[error("failed to bind the media socket: {0}")]
    Bind(#[from] std::io::Error),
    /// The configuration is inconsistent.
    #[error("invalid SFU configuration: {0}")]
    Config(String),
    /// The participant id is not (or no longer) joined.
    #[error("unknown participant")]
    UnknownParticipant,
    /// The client's SDP was rejected, or arrived in the wrong state.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// The SFU has shut down.
    #[error("the SFU has stopped")]
    Stopped,
    /// An unexpected failure inside the WebRTC stack.
    #[error("internal SFU error: {0}")]
    Internal(String),
}

/// Handle to a running SFU. Cheap to clone; all clones talk to the same media loop.
///
/// When the last handle is dropped the media loop closes every peer connection and exits.
#[derive(Clone)]
pub struct Sfu {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

/// Kernel buffers asked for on the media socket. Every participant's media
/// shares this one socket, and the default (~200 KB, about 90 full-size
/// packets) overflows when the media loop is descheduled for a few tens of
/// milliseconds. The kernel caps the request at `net.core.rmem_max`.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

fn bind_media_socket(addr: SocketAddr) -> Result<tokio::net::UdpSocket, SfuError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works, it only drops sooner.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let recv = socket.recv_buffer_size().unwrap_or(0);
    if recv < SOCKET_BUFFER_BYTES {
        tracing::warn!(
            granted = recv,
            wanted = SOCKET_BUFFER_BYTES,
            "the media socket got a small receive buffer; raise net.core.rmem_max to avoid drops under load"
        );
    }
    Ok(tokio::net::UdpSocket::from_std(socket.into())?)
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu").field("local_addr", &self.local_addr()).finish_non_exhaustive()
    }
}

impl Sfu {
    /// Binds the media socket and spawns the media loop on the current Tokio runtime.
    pub async fn start(config: SfuConfig) -> Result<Sfu, SfuError> {
        let socket = bind_media_socket(config.udp_bind)?;
        let local_addr = socket.local_addr()?;
        let candidates = config.candidates(local_addr)?;
        tracing::info!(%local_addr, ?candidates, "SFU media socket bound");
        let shared = Arc::new(Shared { counters: Default::default(), presence: Default::default(), local_addr });
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let media_loop = MediaLoop::new(
            socket,
            LoopConfig {
                peer: PeerSettings { candidates, include_loopback: config.include_loopback },
                max_bitrate_bps: config.max_bitrate_bps,
                empty_room_grace: config.empty_room_grace,
                connect_timeout: config.connect_timeout,
            },
            shared.clone(),
            rx,
        );
        tokio::spawn(media_loop.run());
        Ok(Sfu { shared, commands: tx })
    }

    /// The bound media socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, SfuError> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| SfuError::Stopped)?;
        rx.await.map_err(|_| SfuError::Stopped)
    }

    /// Joins an already-authorized participant to `room` (created on first join).
    ///
    /// Every [`SfuEvent`] for this participant is sent on `events` with `try_send`: give it
    /// room (64+). A second join of the same `user_id` to the same room replaces the first: the
    /// old connection gets `SfuEvent::Replaced` and is dropped. Everyone in the room, the new
    /// participant included, then gets `SfuEvent::Presence`.
    pub async fn join(
        &self,
        room: Uuid,
        who: Participant,
        events: mpsc::Sender<SfuEvent>,
    ) -> Result<ParticipantId, SfuError> {
        self.call(|reply| Command::Join { room, who, events, reply }).await
    }

    /// Applies one client message. Answers and offers arrive as events, not as return values.
    pub async fn signal(&self, participant: ParticipantId, msg: ClientSignal) -> Result<(), SfuError> {
        self.call(|reply| Command::Signal { participant, msg, reply }).await?
    }

    /// Removes a participant and frees all its resources. Idempotent; returns once done.
    pub async fn leave(&self, participant: ParticipantId) {
        let _ = self.call(|reply| Command::Leave { participant, reply }).await;
    }

    /// Closes a room: everyone gets `SfuEvent::RoomClosed` and all their connections close.
    pub async fn close_room(&self, room: Uuid, reason: CloseReason) {
        let _ = self.call(|reply| Command::CloseRoom { room, reason, reply }).await;
    }

    /// Who is in `room` now, in join order (empty for an unknown room).
    pub fn participants(&self, room: Uuid) -> Vec<Participant> {
        self.shared.presence.get(&room).map(|p| p.value().clone()).unwrap_or_default()
    }

    /// Closes every room (`CloseReason::Shutdown`) and peer connection, then stops the loop.
    pub async fn shutdown(&self) {
        let _ = self.call(|reply| Command::Shutdown { reply }).await;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SfuStats {
        self.shared.counters.snapshot()
    }

    /// Sizes of the media loop's internal tables (for leak tests and debugging).
    pub async fn table_sizes(&self) -> Result<TableSizes, SfuError> {
        self.call(|reply| Command::Sizes { reply }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_the_config() {
        let bound: SocketAddr = "0.0.0.0:8443".parse().unwrap_or_else(|_| unreachable!());
        let mut c = SfuConfig::default();
        assert!(c.candidates(bound).is_err());
        c.public_ip = Some("203.0.113.5".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(c.candidates(bound).ok().map(|v| v.len()), Some(1));
        c.include_loopback = true;
        let v = c.candidates(bound).unwrap_or_default();
        assert_eq!(v.len(), 2);
        assert!(v[1].ip().is_loopback());

        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!());
        let mut c = SfuConfig::default();
        assert!(c.candidates(lo).is_err());
        c.include_loopback = true;
        assert_eq!(c.candidates(lo).unwrap_or_default(), vec![lo]);
    }

    #[test]
    fn events_serialize_with_a_type_tag() {
        let e = SfuEvent::RoomClosed { reason: CloseReason::Cancelled };
        let json = serde_json::to_string(&e).unwrap_or_default();
        assert_eq!(json, r#"{"type":"room_closed","reason":"cancelled"}"#);
        let s: ClientSignal = serde_json::from_str(r#"{"type":"candidate","target":"subscriber","candidate":"c"}"#)
            .unwrap_or(ClientSignal::RequestKeyframe);
        assert!(matches!(s, ClientSignal::Candidate { target: PcKind::Subscriber, .. }));
    }
}
