// @ts-check
// The frames of /ws, mirroring src/hub/messages.rs (see docs/signaling.md).

/**
 * @typedef {{id: string, email: string, name: string, role: 'admin'|'doctor'|'patient', timezone: string}} User
 * @typedef {{id: string, name: string}} Party
 * @typedef {{
 *   id: string, doctor: Party, patient: Party, start: string, end: string,
 *   status: 'scheduled'|'cancelled'|'completed', reason: string|null,
 *   cancel_reason: string|null, cancelled_by: string|null, room_url: string,
 *   created_at: string, updated_at: string
 * }} Appointment
 * @typedef {{id: string, name: string, role: string}} PresentUser
 * @typedef {'publisher'|'subscriber'} PcTarget
 * @typedef {{urls: string | string[], username?: string, credential?: string}} IceServer
 *
 * @typedef {{type: 'hello', user: User, server_time: string, connection_id: string}} Hello
 * @typedef {{type: 'appointment.created'|'appointment.updated'|'appointment.cancelled', appointment: Appointment, committed_at: string}} AppointmentChange
 * @typedef {{type: 'room.presence', appointment_id: string, participants: PresentUser[]}} RoomPresence
 * @typedef {{type: 'pong', id?: unknown}} Pong
 * @typedef {{type: 'error', code: ErrorCode, message: string, refers_to?: string}} ErrorFrame
 * @typedef {{
 *   type: 'room.joined', appointment_id: string, participant_id: string,
 *   participants: PresentUser[], waiting_for: 'doctor'|'patient'|null,
 *   ice_servers: IceServer[], max_bitrate_bps: number
 * }} RoomJoined
 * @typedef {{type: 'room.left', appointment_id: string}} RoomLeft
 * @typedef {'cancelled'|'ended'|'replaced'|'shutdown'|'admin'|'failed'} CloseReason
 * @typedef {{type: 'room.closed', appointment_id: string, reason: CloseReason}} RoomClosed
 * @typedef {{type: 'rtc.publish_answer', sdp: string}} PublishAnswer
 * @typedef {{type: 'rtc.subscribe_offer', sdp: string}} SubscribeOffer
 * @typedef {{
 *   type: 'rtc.candidate', target: PcTarget, candidate: string,
 *   sdp_mid?: string|null, sdp_mline_index?: number|null
 * }} Candidate
 * @typedef {{type: 'rtc.peer_media', user_id: string, audio: boolean, video: boolean, screen: boolean}} PeerMedia
 * @typedef {Hello|AppointmentChange|RoomPresence|Pong|ErrorFrame|RoomJoined|RoomLeft|RoomClosed
 *   |PublishAnswer|SubscribeOffer|Candidate|PeerMedia} ServerMessage
 *
 * @typedef {{type: 'ping', id?: unknown}} Ping
 * @typedef {{type: 'room.join', appointment_id: string}} RoomJoin
 * @typedef {{type: 'room.leave'}} RoomLeave
 * @typedef {{type: 'rtc.publish_offer', sdp: string}} PublishOffer
 * @typedef {{type: 'rtc.subscribe_answer', sdp: string}} SubscribeAnswer
 * @typedef {{type: 'rtc.media', audio: boolean, video: boolean, screen: boolean}} Media
 * @typedef {{type: 'rtc.keyframe'}} Keyframe
 * @typedef {Ping|RoomJoin|RoomLeave|PublishOffer|SubscribeAnswer|Candidate|Media|Keyframe} ClientMessage
 *
 * @typedef {'bad_message'|'unknown_type'|'not_in_room'|'room_not_found'|'appointment_cancelled'
 *   |'room_not_open_yet'|'room_closed'|'already_in_room'|'bad_sdp'|'connect_timeout'|'internal'} ErrorCode
 */

/** Close codes the server uses. */
export const CloseCode = Object.freeze({
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  /** The session ended: sign in again instead of reconnecting. */
  SESSION_ENDED: 4001,
});

/** Largest frame the server accepts, in bytes. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** The codes that refuse a `room.join`: no media starts after one of these. */
export const JOIN_REFUSALS = Object.freeze(
  /** @type {ErrorCode[]} */ (['room_not_found', 'appointment_cancelled', 'room_not_open_yet', 'room_closed', 'already_in_room']),
);

/**
 * Parses a server frame; `null` for anything that is not a typed object.
 * @param {string} text
 * @returns {ServerMessage | null}
 */
export function parseServerMessage(text) {
  try {
    const value = JSON.parse(text);
    return value && typeof value === 'object' && typeof value.type === 'string' ? value : null;
  } catch {
    return null;
  }
}

/**
 * @param {ClientMessage} message
 * @returns {string}
 */
export function encodeClientMessage(message) {
  return JSON.stringify(message);
}
