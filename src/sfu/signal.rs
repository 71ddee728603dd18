//! Wire types exchanged between the hub and the SFU.
//!
//! Everything here is plain data with serde derives so the hub can carry it as JSON over its
//! WebSocket (`#[serde(tag = "type")]`, snake_case). No WebRTC library type appears here: the
//! SDP and candidate strings are opaque text for the hub.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// An already-authorized participant, as the hub knows them.
///
/// `user_id` is the stable account id; the SFU never checks it against anything, it only uses it
/// to detect a second join of the same user to the same room (which replaces the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Stable account id of the user.
    pub user_id: Uuid,
    /// Display name, shown to the other participants.
    pub name: String,
    /// Free-form role label from the hub (e.g. `"doctor"`, `"patient"`).
    pub role: String,
}

/// Id of one *connection* of a participant to a room, distinct from the stable `user_id`.
///
/// A new id is minted on every `join`; after a leave or a replacement the old id is dead and any
/// call with it fails with [`crate::sfu::SfuError::UnknownParticipant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantId(pub Uuid);

impl ParticipantId {
    pub(crate) fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which of a participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcKind {
    /// Client → SFU media. The client offers, the SFU answers.
    Publisher,
    /// SFU → client media. The SFU offers, the client answers.
    Subscriber,
}

/// Why a room was closed by [`crate::sfu::Sfu::close_room`] or [`crate::sfu::Sfu::shutdown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The appointment was cancelled.
    Cancelled,
    /// The appointment ended normally.
    Ended,
    /// An operator closed the room.
    Admin,
    /// The server is shutting down.
    Shutdown,
}

/// A message from a client, relayed by the hub.
///
/// Invariant kept by the SFU: a `PublishOffer` always gets exactly one `PublishAnswer` or one
/// `Error` event; a `SubscribeAnswer` is only valid while a `SubscribeOffer` is outstanding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientSignal {
    /// Offer for the publisher peer connection (first one, renegotiation, or ICE restart with a
    /// new ufrag: all handled the same way).
    PublishOffer {
        /// SDP text.
        sdp: String,
    },
    /// Answer to the last `SubscribeOffer`.
    SubscribeAnswer {
        /// SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate of the client. An empty `candidate` means end-of-candidates.
    Candidate {
        /// Which peer connection it belongs to.
        target: PcKind,
        /// The `candidate:` attribute text.
        candidate: String,
        /// `sdpMid`, if the client gave one.
        #[serde(default)]
        sdp_mid: Option<String>,
        /// `sdpMLineIndex`, if the client gave one.
        #[serde(default)]
        sdp_mline_index: Option<u16>,
    },
    /// The client's mute state, relayed to the others as [`SfuEvent::PeerMedia`].
    Media {
        /// Microphone on.
        audio: bool,
        /// Camera on.
        video: bool,
        /// Screen share on.
        screen: bool,
    },
    /// Ask every publisher this client receives video from for a keyframe.
    RequestKeyframe,
}

/// A message from the SFU to one participant, to be relayed by the hub.
///
/// Delivered with `try_send` on the channel given to `join`: the media loop never waits for a
/// slow hub. A full channel drops the event (counted in [`SfuStats::events_dropped`]); a closed
/// channel makes the SFU treat the participant as gone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SfuEvent {
    /// Answer to a `PublishOffer`.
    PublishAnswer {
        /// SDP text; contains the SFU's single host candidate (ICE-lite).
        sdp: String,
    },
    /// A new offer for the subscriber peer connection; the client must reply with
    /// `SubscribeAnswer`. Each media section's msid stream id is the publisher's `user_id`, and
    /// its track id starts with `audio-`, `camera-` or `screen-`.
    SubscribeOffer {
        /// SDP text; contains the SFU's single host candidate (ICE-lite).
        sdp: String,
    },
    /// A server-side ICE candidate (also present in the SDP; sent for trickle-only clients).
    Candidate {
        /// Which peer connection it belongs to.
        target: PcKind,
        /// The `candidate:` attribute text.
        candidate: String,
        /// `sdpMid`.
        sdp_mid: Option<String>,
        /// `sdpMLineIndex`.
        sdp_mline_index: Option<u16>,
    },
    /// Another participant's mute state.
    PeerMedia {
        /// Whose state this is.
        user_id: Uuid,
        /// Microphone on.
        audio: bool,
        /// Camera on.
        video: bool,
        /// Screen share on.
        screen: bool,
    },
    /// Who is in the room now (sent to everyone on every join and leave).
    Presence {
        /// Current participants, in join order.
        participants: Vec<Participant>,
    },
    /// The same user joined again elsewhere; this connection is dropped.
    Replaced,
    /// The room was closed; all peer connections are closed.
    RoomClosed {
        /// Why.
        reason: CloseReason,
    },
    /// Something went wrong for this participant. `code` is stable, `message` is for logs.
    Error {
        /// Stable machine-readable code, e.g. `"bad_sdp"`, `"connect_timeout"`.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
}

/// A snapshot of the SFU's counters and gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SfuStats {
    /// UDP datagrams received on the media socket.
    pub datagrams_in: u64,
    /// UDP datagrams sent on the media socket.
    pub datagrams_out: u64,
    /// Datagrams dropped because their first byte is no STUN/DTLS/RTP class, or malformed STUN.
    pub dropped_garbage: u64,
    /// Datagrams dropped because neither their STUN username nor their source address is known.
    pub dropped_unknown: u64,
    /// Datagrams that could not be sent (socket buffer full or send error).
    pub send_errors: u64,
    /// RTP packets forwarded to subscribers (one per subscriber copy).
    pub rtp_forwarded: u64,
    /// Keyframe requests (PLI) sent to publishers.
    pub keyframe_requests: u64,
    /// Events dropped because a participant's event channel was full.
    pub events_dropped: u64,
    /// Rooms currently open (including empty ones in their grace period).
    pub rooms: u64,
    /// Participants currently joined.
    pub participants: u64,
    /// Peer connections currently open.
    pub peer_connections: u64,
}
