//! Video rooms on the hub: who may join which appointment's room and when,
//! presence, and the translation between `/ws` frames and the SFU.
//!
//! The SFU never sees a join this module has not authorised.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::messages::{ErrorCode, PcTarget, PresentUser, RoomClosedReason, ServerMessage};
use crate::auth::CurrentUser;
use crate::db::audit::AuditEntry;
use crate::domain::{Appointment, AppointmentId, Role, UserId};
use crate::sfu::{ClientSignal, CloseReason, Participant, ParticipantId, PcKind, SfuEvent};
use crate::state::AppState;

/// Events the SFU may queue for one socket before it drops them.
const EVENT_QUEUE: usize = 256;

/// A socket's place in a room.
pub(super) struct Membership {
    pub appointment: Appointment,
    pub participant: ParticipantId,
    pub events: mpsc::Receiver<SfuEvent>,
    /// When the join window ends and the room closes for this socket.
    pub closes_at: DateTime<Utc>,
}

/// Where a socket's requests come from, for the audit trail.
#[derive(Clone, Debug, Default)]
pub(crate) struct SocketMeta {
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

fn refusal(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error { code, message: message.into(), refers_to: Some("room.join".into()) }
}

fn audit(state: &AppState, user: &CurrentUser, meta: &SocketMeta, room: Option<AppointmentId>, outcome: &'static str) {
    let entry = AuditEntry {
        at: state.clock.now(),
        user_id: Some(user.user.id),
        role: Some(user.user.role),
        action: "join",
        appointment_id: room,
        outcome,
        client_ip: meta.client_ip.clone(),
        request_id: meta.request_id.clone(),
    };
    let db = state.db.clone();
    // The join must not wait on the audit write; a failure is logged.
    tokio::spawn(async move {
        if let Err(e) = db.audit(&[entry]).await {
            tracing::warn!(error = %e, "could not write an audit row for a room join");
        }
    });
}

/// Checks the caller may enter `raw_id`'s room now, then joins the SFU.
pub(super) async fn join(
    state: &AppState,
    user: &CurrentUser,
    meta: &SocketMeta,
    raw_id: &str,
) -> Result<(Membership, ServerMessage), ServerMessage> {
    let not_found = || refusal(ErrorCode::RoomNotFound, "There is no such appointment room for you.");
    let Ok(id) = raw_id.parse::<AppointmentId>() else {
        audit(state, user, meta, None, "denied");
        return Err(not_found());
    };
    let appointment = match state.db.appointment(id).await {
        Ok(Some(a)) if a.is_participant(user.user.id) => a,
        Ok(_) => {
            audit(state, user, meta, Some(id), "denied");
            return Err(not_found());
        }
        Err(e) => {
            tracing::warn!(error = %e, "room join: appointment lookup failed");
            return Err(refusal(ErrorCode::Internal, "The room cannot be opened right now. Try again shortly."));
        }
    };
    let now = state.clock.now();
    let (opens_at, closes_at) = appointment.join_window();
    let refused = if appointment.cancelled {
        Some(refusal(ErrorCode::AppointmentCancelled, "This appointment was cancelled."))
    } else if now < opens_at {
        Some(refusal(
            ErrorCode::RoomNotOpenYet,
            format!("The room opens at {}, 15 minutes before the appointment.", opens_at.to_rfc3339()),
        ))
    } else if now > closes_at {
        Some(refusal(ErrorCode::RoomClosed, "This appointment's room has closed."))
    } else {
        None
    };
    if let Some(refused) = refused {
        audit(state, user, meta, Some(id), "denied");
        return Err(refused);
    }
    let (tx, events) = mpsc::channel(EVENT_QUEUE);
    let who = Participant { user_id: user.user.id.0, name: user.user.name.clone(), role: user.user.role.to_string() };
    let participant = state.sfu.join(id.0, who, tx).await.map_err(|e| {
        tracing::warn!(error = %e, "room join: the media server refused");
        refusal(ErrorCode::Internal, "The video service is not available right now. Try again shortly.")
    })?;
    audit(state, user, meta, Some(id), "ok");
    state.presence.enter(id, user.user.id);
    let participants = present(state, &appointment);
    announce(state, &appointment, participants.clone());
    let other = appointment.other_party(user.user.id).id;
    let waiting_for = (!state.presence.is_present(id, other)).then_some(if user.user.role == Role::Doctor {
        "patient"
    } else {
        "doctor"
    });
    let joined = ServerMessage::RoomJoined {
        appointment_id: id.to_string(),
        participant_id: participant.to_string(),
        participants,
        waiting_for,
        ice_servers: state.config.ice_servers.clone(),
        max_bitrate_bps: state.config.rtc_max_bitrate_bps,
    };
    Ok((Membership { appointment, participant, events, closes_at }, joined))
}

/// Who is in the room, with names and roles from the appointment.
fn present(state: &AppState, appointment: &Appointment) -> Vec<PresentUser> {
    let describe = |id: UserId| {
        let (party, role) = if id == appointment.doctor.id {
            (&appointment.doctor, Role::Doctor)
        } else {
            (&appointment.patient, Role::Patient)
        };
        PresentUser { id: party.id.to_string(), name: party.name.clone(), role: role.to_string() }
    };
    state
        .presence
        .present(appointment.id)
        .into_iter()
        .filter(|u| appointment.is_participant(*u))
        .map(describe)
        .collect()
}

/// Tells every socket of both participants (their dashboards too).
fn announce(state: &AppState, appointment: &Appointment, participants: Vec<PresentUser>) {
    let message = ServerMessage::RoomPresence { appointment_id: appointment.id.to_string(), participants };
    state.hub.send_to_users(&[appointment.doctor.id, appointment.patient.id], &message);
}

/// Takes the socket out of its room: the SFU (unless it already did) and presence.
pub(super) async fn leave(state: &AppState, user: UserId, membership: Membership, tell_sfu: bool) {
    if tell_sfu {
        state.sfu.leave(membership.participant).await;
    }
    if state.presence.leave(membership.appointment.id, user) {
        announce(state, &membership.appointment, present(state, &membership.appointment));
    }
}

fn pc_kind(target: PcTarget) -> PcKind {
    match target {
        PcTarget::Publisher => PcKind::Publisher,
        PcTarget::Subscriber => PcKind::Subscriber,
    }
}

fn pc_target(kind: PcKind) -> PcTarget {
    match kind {
        PcKind::Publisher => PcTarget::Publisher,
        PcKind::Subscriber => PcTarget::Subscriber,
    }
}

/// A client's `rtc.*` frame, as the SFU takes it.
pub(super) fn signal(message: super::ClientMessage) -> Option<ClientSignal> {
    use super::ClientMessage as C;
    Some(match message {
        C::RtcPublishOffer { sdp } => ClientSignal::PublishOffer { sdp },
        C::RtcSubscribeAnswer { sdp } => ClientSignal::SubscribeAnswer { sdp },
        C::RtcCandidate { target, candidate, sdp_mid, sdp_mline_index } => {
            ClientSignal::Candidate { target: pc_kind(target), candidate, sdp_mid, sdp_mline_index }
        }
        C::RtcMedia { audio, video, screen } => ClientSignal::Media { audio, video, screen },
        C::RtcKeyframe {} => ClientSignal::RequestKeyframe,
        C::Ping { .. } | C::RoomJoin { .. } | C::RoomLeave {} => return None,
    })
}

/// What an SFU event means for the socket: a frame to send, and whether the
/// socket has left the room (and how).
pub(super) enum Translated {
    Send(Box<ServerMessage>),
    Ignore,
    /// The SFU removed the participant; send the frames and drop the membership.
    Gone {
        frames: Vec<ServerMessage>,
        presence_changed: bool,
    },
}

pub(super) fn translate(appointment_id: AppointmentId, event: SfuEvent) -> Translated {
    let closed = |reason| ServerMessage::RoomClosed { appointment_id: appointment_id.to_string(), reason };
    match event {
        SfuEvent::PublishAnswer { sdp } => Translated::Send(Box::new(ServerMessage::RtcPublishAnswer { sdp })),
        SfuEvent::SubscribeOffer { sdp } => Translated::Send(Box::new(ServerMessage::RtcSubscribeOffer { sdp })),
        SfuEvent::Candidate { target, candidate, sdp_mid, sdp_mline_index } => {
            Translated::Send(Box::new(ServerMessage::RtcCandidate {
                target: pc_target(target),
                candidate,
                sdp_mid,
                sdp_mline_index,
            }))
        }
        SfuEvent::PeerMedia { user_id, audio, video, screen } => {
            Translated::Send(Box::new(ServerMessage::RtcPeerMedia {
                user_id: user_id.to_string(),
                audio,
                video,
                screen,
            }))
        }
        // The hub announces presence itself, to dashboards as well.
        SfuEvent::Presence { .. } => Translated::Ignore,
        // The same user is in the room on another socket: presence stays.
        SfuEvent::Replaced => {
            Translated::Gone { frames: vec![closed(RoomClosedReason::Replaced)], presence_changed: false }
        }
        SfuEvent::RoomClosed { reason } => {
            let reason = match reason {
                CloseReason::Cancelled => RoomClosedReason::Cancelled,
                CloseReason::Ended => RoomClosedReason::Ended,
                CloseReason::Admin => RoomClosedReason::Admin,
                CloseReason::Shutdown => RoomClosedReason::Shutdown,
            };
            Translated::Gone { frames: vec![closed(reason)], presence_changed: true }
        }
        SfuEvent::Error { code, message } => {
            let (code, fatal) = match code {
                "bad_sdp" | "negotiation_failed" => (ErrorCode::BadSdp, false),
                "connect_timeout" => (ErrorCode::ConnectTimeout, true),
                "connection_failed" => (ErrorCode::Internal, true),
                _ => (ErrorCode::Internal, true),
            };
            tracing::debug!(%message, "media error");
            let frame = ServerMessage::Error {
                code,
                message: match code {
                    ErrorCode::BadSdp => "The session description was not accepted.".to_owned(),
                    ErrorCode::ConnectTimeout => "The media connection did not come up in time. Join again.".to_owned(),
                    _ => "The media connection failed. Join again.".to_owned(),
                },
                refers_to: None,
            };
            if fatal {
                Translated::Gone { frames: vec![frame, closed(RoomClosedReason::Failed)], presence_changed: true }
            } else {
                Translated::Send(Box::new(frame))
            }
        }
    }
}
