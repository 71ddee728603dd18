// @ts-check
/**
 * The JSON shapes of the API (see `GET /api/openapi.json`), as JSDoc types
 * so that `checkJs` catches a misspelt field. This module has no code.
 *
 * @typedef {'patient' | 'doctor' | 'admin'} Role
 *
 * @typedef {object} User
 * @property {string} id
 * @property {string} email
 * @property {string} name
 * @property {Role} role
 * @property {string} timezone IANA name, e.g. `Europe/Berlin`.
 *
 * @typedef {object} LoginResult
 * @property {string} token Not kept: the HttpOnly cookie carries the session.
 * @property {string} expires_at
 * @property {User} user
 *
 * @typedef {object} Doctor
 * @property {string} id
 * @property {string} name
 * @property {string} timezone
 *
 * @typedef {object} Slot
 * @property {string} start RFC 3339, UTC.
 * @property {string} end
 *
 * @typedef {object} Party
 * @property {string} id
 * @property {string} name
 *
 * @typedef {'scheduled' | 'cancelled' | 'completed'} AppointmentStatus
 *
 * @typedef {object} Appointment
 * @property {string} id
 * @property {Party} doctor
 * @property {Party} patient
 * @property {string} start
 * @property {string} end
 * @property {AppointmentStatus} status
 * @property {string | null} reason
 * @property {string | null} [cancel_reason]
 * @property {string | null} [cancelled_by]
 * @property {string} room_url
 * @property {string} created_at
 * @property {string} updated_at
 *
 * @typedef {Appointment & {
 *   other: Party & {role: Role},
 *   other_in_room: boolean,
 *   join_opens_at: string,
 *   join_closes_at: string,
 * }} DashboardItem
 *
 * @typedef {object} Dashboard
 * @property {string} now The server's clock, to count down against.
 * @property {DashboardItem[]} appointments
 *
 * @typedef {object} WeeklyWindow
 * @property {number} weekday 1 (Monday) to 7 (Sunday).
 * @property {string} start "HH:MM"
 * @property {string} end "HH:MM", up to "24:00"
 *
 * @typedef {object} DateException
 * @property {string} date "YYYY-MM-DD"
 * @property {string} [start] Without times the day is off.
 * @property {string} [end]
 *
 * @typedef {object} Availability
 * @property {string} timezone
 * @property {number} slot_minutes
 * @property {WeeklyWindow[]} weekly
 * @property {DateException[]} exceptions
 * @property {number} [buffer_minutes]
 * @property {number} [min_notice_minutes]
 * @property {number} [horizon_days]
 * @property {number} [patient_cancel_notice_minutes]
 *
 * @typedef {object} AuditRecord
 * @property {number} seq
 * @property {string} at
 * @property {string | null} user_id
 * @property {string | null} role
 * @property {string} action
 * @property {string | null} appointment_id
 * @property {string} outcome
 * @property {string | null} client_ip
 * @property {string | null} request_id
 *
 * @typedef {object} SecondFactorRequired The password was right; a code is needed next.
 * @property {true} second_factor_required
 * @property {string} challenge Sent back with the code to `/api/auth/login/2fa`.
 * @property {string} expires_at
 *
 * @typedef {object} TwoFactorSetup
 * @property {string} secret Base32, for typing into an authenticator app.
 * @property {string} otpauth_uri `otpauth://totp/…`
 *
 * @typedef {object} SessionView One place the user is signed in.
 * @property {string} id
 * @property {string} created_at
 * @property {string} last_seen_at
 * @property {string | null} client_ip
 * @property {string | null} user_agent
 * @property {boolean} current The session making the request.
 *
 * @typedef {object} MailRecord An outbox row, without its content.
 * @property {string} id
 * @property {string} kind
 * @property {string | null} appointment_id
 * @property {string} recipient_id
 * @property {string} recipient_email
 * @property {string} status pending, sending, sent, dead or skipped
 * @property {number} attempts
 * @property {string} send_after
 * @property {string} next_attempt_at
 * @property {string | null} last_error
 * @property {string} created_at
 * @property {string | null} sent_at
 *
 * @typedef {object} Problem RFC 9457 problem details.
 * @property {string} type
 * @property {string} title
 * @property {number} status
 * @property {string} detail
 * @property {Record<string, string>} [errors] Field path → message.
 */

export {};
