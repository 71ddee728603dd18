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
    #[serde(rename = "appointment.created")]
    AppointmentCreated { appointment: AppointmentView },
    #[serde(rename = "appointment.updated")]
    AppointmentUpdated { appointment: AppointmentView },
    #[serde(rename = "appointment.cancelled")]
    AppointmentCancelled { appointment: AppointmentView },
    #[serde(rename = "room.presence")]
    RoomPresence { appointment_id: String, participants: Vec<PresentUser> },
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
}
