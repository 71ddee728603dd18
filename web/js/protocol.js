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
 *
 * @typedef {{type: 'hello', user: User, server_time: string, connection_id: string}} Hello
 * @typedef {{type: 'appointment.created'|'appointment.updated'|'appointment.cancelled', appointment: Appointment}} AppointmentChange
 * @typedef {{type: 'room.presence', appointment_id: string, participants: PresentUser[]}} RoomPresence
 * @typedef {{type: 'pong', id?: unknown}} Pong
 * @typedef {{type: 'error', code: ErrorCode, message: string, refers_to?: string}} ErrorFrame
 * @typedef {Hello|AppointmentChange|RoomPresence|Pong|ErrorFrame} ServerMessage
 *
 * @typedef {{type: 'ping', id?: unknown}} Ping
 * @typedef {Ping} ClientMessage
 *
 * @typedef {'bad_message'|'unknown_type'} ErrorCode
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
