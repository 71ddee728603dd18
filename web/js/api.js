// @ts-check
/**
 * The one way pages talk to the server. JSON in and out; problem+json
 * answers become an {@link ApiError} whose `fields` name the inputs at fault.
 *
 * The session lives only in the HttpOnly cookie that login sets: nothing
 * here stores a token, so script injected into a page could not steal one.
 */

/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').LoginResult} LoginResult */
/** @typedef {import('./types.js').Doctor} Doctor */
/** @typedef {import('./types.js').Slot} Slot */
/** @typedef {import('./types.js').Appointment} Appointment */
/** @typedef {import('./types.js').Dashboard} Dashboard */
/** @typedef {import('./types.js').Availability} Availability */
/** @typedef {import('./types.js').AuditRecord} AuditRecord */
/** @typedef {import('./types.js').Problem} Problem */
/** @typedef {import('./types.js').SecondFactorRequired} SecondFactorRequired */
/** @typedef {import('./types.js').TwoFactorSetup} TwoFactorSetup */
/** @typedef {import('./types.js').SessionView} SessionView */
/** @typedef {import('./types.js').MailRecord} MailRecord */

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status; 0 when the server could not be reached.
   * @param {Partial<Problem>} problem
   */
  constructor(status, problem) {
    super(problem.detail || problem.title || `Request failed (${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.type = problem.type || '';
    this.title = problem.title || '';
    /** @type {Record<string, string>} */
    this.fields = problem.errors || {};
  }
}

/** @type {(() => void) | null} */
let onUnauthorized = null;

/**
 * Signed-in pages send the user to sign in again when the session ends
 * mid-use; the sign-in page itself leaves 401 to its form.
 * @param {() => void} handler
 */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * @template T
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<T>}
 */
export async function request(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json, application/problem+json' };
  /** @type {RequestInit} */
  const init = {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    // The pages are served with `Referrer-Policy: no-referrer`, under which
    // browsers send `Origin: null` on a POST; the server's cross-site check
    // needs the real origin, and a same-origin policy sends it only to us.
    referrerPolicy: 'same-origin',
  };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  /** @type {Response} */
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, {
      title: 'Network error',
      detail: 'The server could not be reached. Check your connection and try again.',
    });
  }
  const type = response.headers.get('content-type') || '';
  /** @type {any} */
  let data = undefined;
  if (response.status !== 204 && type.includes('json')) {
    try {
      data = await response.json();
    } catch {
      data = undefined;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && onUnauthorized) onUnauthorized();
    throw new ApiError(response.status, data && typeof data === 'object' ? data : {});
  }
  return /** @type {T} */ (data);
}

/** @param {Record<string, string | number | undefined>} params */
function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

const id = encodeURIComponent;

export const api = {
  /** @returns {Promise<User>} */
  me: () => request('GET', '/api/me'),
  /** @param {{email: string, password: string}} input @returns {Promise<LoginResult | SecondFactorRequired>} */
  login: (input) => request('POST', '/api/auth/login', input),
  /**
   * The second step of a sign-in: the challenge with a code or a recovery code.
   * @param {{challenge: string, code?: string, recovery_code?: string}} input
   * @returns {Promise<LoginResult>}
   */
  loginSecondFactor: (input) => request('POST', '/api/auth/login/2fa', input),
  /** @param {string} email @returns {Promise<{status: string, detail: string}>} */
  requestPasswordReset: (email) => request('POST', '/api/auth/password-reset', { email }),
  /** @param {{token: string, new_password: string}} input @returns {Promise<void>} */
  confirmPasswordReset: (input) => request('POST', '/api/auth/password-reset/confirm', input),
  /** @param {{current_password: string, new_password: string}} input @returns {Promise<void>} */
  changePassword: (input) => request('POST', '/api/me/password', input),
  /** @returns {Promise<{enabled: boolean, required: boolean}>} */
  twoFactorStatus: () => request('GET', '/api/me/2fa'),
  /** @returns {Promise<TwoFactorSetup>} */
  setupTwoFactor: () => request('POST', '/api/me/2fa/setup', {}),
  /** @param {string} code @returns {Promise<{recovery_codes: string[]}>} */
  enableTwoFactor: (code) => request('POST', '/api/me/2fa/enable', { code }),
  /** @returns {Promise<SessionView[]>} */
  sessions: () => request('GET', '/api/me/sessions'),
  /** @param {string} sessionId @returns {Promise<void>} */
  endSession: (sessionId) => request('DELETE', `/api/me/sessions/${id(sessionId)}`),
  /** @returns {Promise<void>} */
  logout: () => request('POST', '/api/auth/logout'),
  /**
   * @param {{email: string, password: string, name: string, timezone: string}} input
   * @returns {Promise<{user: User}>}
   */
  register: (input) => request('POST', '/api/auth/register', input),

  /** @returns {Promise<Doctor[]>} */
  doctors: () => request('GET', '/api/doctors'),
  /** @param {string} doctorId `me` for the signed-in doctor. @returns {Promise<Availability>} */
  availability: (doctorId) => request('GET', `/api/doctors/${id(doctorId)}/availability`),
  /** @param {Availability} value @returns {Promise<Availability>} */
  putAvailability: (value) => request('PUT', '/api/doctors/me/availability', value),
  /**
   * @param {string} doctorId
   * @param {string} from date or RFC 3339 instant
   * @param {string} to
   * @returns {Promise<Slot[]>}
   */
  slots: (doctorId, from, to) => request('GET', `/api/doctors/${id(doctorId)}/slots${query({ from, to })}`),

  /** @param {{doctor_id: string, start: string, reason?: string}} input @returns {Promise<{appointment: Appointment}>} */
  book: (input) => request('POST', '/api/appointments', input),
  /** @param {string} appointmentId @returns {Promise<{appointment: Appointment}>} */
  appointment: (appointmentId) => request('GET', `/api/appointments/${id(appointmentId)}`),
  /** @param {string} appointmentId @param {string} [reason] @returns {Promise<{appointment: Appointment}>} */
  cancel: (appointmentId, reason) =>
    request('POST', `/api/appointments/${id(appointmentId)}/cancel`, reason ? { reason } : {}),
  /** @param {string} appointmentId @param {string} start @returns {Promise<{appointment: Appointment}>} */
  reschedule: (appointmentId, start) => request('POST', `/api/appointments/${id(appointmentId)}/reschedule`, { start }),
  /** @returns {Promise<Dashboard>} */
  dashboard: () => request('GET', '/api/dashboard'),

  /** @returns {Promise<User[]>} */
  users: () => request('GET', '/api/admin/users'),
  /**
   * @param {{email: string, name: string, role: string, password: string, timezone: string}} input
   * @returns {Promise<{user: User}>}
   */
  createUser: (input) => request('POST', '/api/admin/users', input),
  /** @param {{after?: number, limit?: number, appointment_id?: string}} params @returns {Promise<AuditRecord[]>} */
  audit: (params) => request('GET', `/api/admin/audit${query(params)}`),
  /** @param {string} status e.g. `dead` @returns {Promise<MailRecord[]>} */
  mail: (status) => request('GET', `/api/admin/mail${query({ status })}`),
};
