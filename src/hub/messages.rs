//! The frames of `/ws`, as typed messages. `web/js/protocol.js` mirrors
//! these for the browser; `docs/signaling.md` documents them.

use serde::{Deserialize, Serialize};

use crate::http::{AppointmentView, UserView};

/// A participant of a room, as presence reports them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresentUser {
    pub id: String,
    pub name: String,
    pub role: String,
}

/// What the server sends.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub enum ServerMessage {
    /// First frame of every connection.
    #[serde(rename = "hello")]
    Hello { user: UserView, server_time: chrono::DateTime<chrono::Utc>, connection_id: String },
    /// `committed_at`: when the change's transaction committed (server clock).
    #[serde(rename = "appointment.created")]
    AppointmentCreated { appointment: AppointmentView, committed_at: chrono::DateTime<chrono::Utc> },
    #[serde(rename = "appointment.updated")]
    AppointmentUpdated { appointment: AppointmentView, committed_at: chrono::DateTime<chrono::Utc> },
    #[serde(rename = "appointment.cancelled")]
    AppointmentCancelled { appointment: AppointmentView, committed_at: chrono::DateTime<chrono::Utc> },
    #[serde(rename = "room.presence")]
    RoomPresence { appointment_id: String, participants: Vec<PresentUser> },
    /// The socket joined the appointment's video room.
    #[serde(rename = "room.joined")]
    RoomJoined {
        appointment_id: String,
        participant_id: String,
        participants: Vec<PresentUser>,
        /// `doctor` or `patient` while the other side is absent.
        waiting_for: Option<&'static str>,
        ice_servers: Vec<crate::config::IceServer>,
        max_bitrate_bps: u32,
    },
    /// Answer to `room.leave`.
    #[serde(rename = "room.left")]
    RoomLeft { appointment_id: String },
    /// The socket is no longer in the room, and why.
    #[serde(rename = "room.closed")]
    RoomClosed { appointment_id: String, reason: RoomClosedReason },
    #[serde(rename = "rtc.publish_answer")]
    RtcPublishAnswer { sdp: String },
    #[serde(rename = "rtc.subscribe_offer")]
    RtcSubscribeOffer { sdp: String },
    #[serde(rename = "rtc.candidate")]
    RtcCandidate { target: PcTarget, candidate: String, sdp_mid: Option<String>, sdp_mline_index: Option<u16> },
    #[serde(rename = "rtc.peer_media")]
    RtcPeerMedia { user_id: String, audio: bool, video: bool, screen: bool },
    /// Answer to the client's `ping`.
    #[serde(rename = "pong")]
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
    },
    /// Something the client sent was refused; the socket stays open.
    #[serde(rename = "error")]
    Error {
        code: ErrorCode,
        message: String,
        /// The `type` of the refused message, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        refers_to: Option<String>,
    },
}

/// Stable error codes for `error` frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not an object with a known `type`.
    BadMessage,
    UnknownType,
    NotInRoom,
    RoomNotFound,
    AppointmentCancelled,
    RoomNotOpenYet,
    RoomClosed,
    AlreadyInRoom,
    BadSdp,
    ConnectTimeout,
    Internal,
}

/// Why a socket left a room without asking to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomClosedReason {
    Cancelled,
    Ended,
    Replaced,
    Shutdown,
    Admin,
    Failed,
}

/// Which of a participant's two peer connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcTarget {
    Publisher,
    Subscriber,
}

/// What the client may send.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    /// Keeps the session alive while the user is active; answered by `pong`.
    #[serde(rename = "ping")]
    Ping {
        #[serde(default)]
        id: Option<serde_json::Value>,
    },
    #[serde(rename = "room.join")]
    RoomJoin { appointment_id: String },
    #[serde(rename = "room.leave")]
    RoomLeave {},
    #[serde(rename = "rtc.publish_offer")]
    RtcPublishOffer { sdp: String },
    #[serde(rename = "rtc.subscribe_answer")]
    RtcSubscribeAnswer { sdp: String },
    #[serde(rename = "rtc.candidate")]
    RtcCandidate {
        target: PcTarget,
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
        #[serde(default)]
        sdp_mline_index: Option<u16>,
    },
    #[serde(rename = "rtc.media")]
    RtcMedia { audio: bool, video: bool, screen: bool },
    #[serde(rename = "rtc.keyframe")]
    RtcKeyframe {},
}

impl ClientMessage {
    /// Every `type` a client may send, for telling unknown types from bad fields.
    pub const TYPES: &'static [&'static str] = &[
        "ping",
        "room.join",
        "room.leave",
        "rtc.publish_offer",
        "rtc.subscribe_answer",
        "rtc.candidate",
        "rtc.media",
        "rtc.keyframe",
    ];
}
