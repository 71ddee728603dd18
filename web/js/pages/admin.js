// @ts-check
/** Administration: create doctors and admins, list accounts, read the audit trail. */

import { api, ApiError } from '../api.js';
import { byId, h, replace } from '../dom.js';
import { failure, flashNext, loading, say } from '../feedback.js';
import { showError, submitting, value } from '../form.js';
import { requireUser } from '../session.js';
import { allZones, inZone } from '../time.js';

/** @typedef {import('../types.js').User} User */
/** @typedef {import('../types.js').AuditRecord} AuditRecord */
/** @typedef {import('../types.js').MailRecord} MailRecord */

const AUDIT_PAGE = 100;

/**
 * The server refuses admin endpoints (403) to admins who have not turned
 * on two-step sign-in yet: send them to do that rather than show a wall.
 * @param {unknown} error
 */
function sendToEnrol(error) {
  if (!(error instanceof ApiError) || error.status !== 403) return false;
  flashNext('Administrators must turn on two-step sign-in before using the administration page. ' +
    'Set it up below, then go back to Admin.');
  location.assign('/account');
  return true;
}

const user = await requireUser(['admin']);
if (user) {
  const fmt = inZone(user.timezone);
  const createForm = byId('create-form', HTMLFormElement);
  const createStatus = byId('create-status', HTMLElement);
  const usersBody = byId('users-body', HTMLElement);
  const auditFilter = byId('audit-filter', HTMLFormElement);
  const auditBody = byId('audit-body', HTMLElement);
  const auditMore = byId('audit-more', HTMLButtonElement);
  const zoneSelect = byId('timezone', HTMLSelectElement);
  replace(zoneSelect, ...allZones().map((zone) => h('option', { value: zone, selected: zone === user.timezone }, zone)));

  /** Names by id, so audit rows say who. @type {Map<string, User>} */
  let usersById = new Map();

  async function loadUsers() {
    replace(usersBody, loading('Loading accounts…'));
    try {
      const users = await api.users();
      usersById = new Map(users.map((u) => [u.id, u]));
      replace(usersBody, table('Accounts', ['Name', 'Email', 'Role', 'Time zone'],
        users.map((u) => [u.name, u.email, u.role, u.timezone]), 'users-table'));
      return true;
    } catch (error) {
      if (sendToEnrol(error)) return false;
      replace(usersBody, failure(error, 'Could not load the accounts.'));
      return true;
    }
  }

  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = {
      name: value(createForm, 'name'),
      email: value(createForm, 'email'),
      role: value(createForm, 'role'),
      password: value(createForm, 'password', { raw: true }),
      timezone: value(createForm, 'timezone'),
    };
    say(createStatus, '');
    /** @type {{created: User | null}} */
    const result = { created: null };
    const ok = await submitting(createForm, 'Creating…', async () => {
      result.created = (await api.createUser(input)).user;
    });
    if (ok && result.created) {
      const { name, role } = result.created;
      say(createStatus, `Created ${role} account for ${name}. Give them the initial password in person.`, 'success');
      createForm.reset();
      zoneSelect.value = user.timezone;
      await loadUsers();
    }
  });

  // --- audit trail (oldest first, paged by `after` = last seq) -----------
  let after = 0;
  let appointmentId = '';
  /** @type {HTMLTableSectionElement | null} */
  let auditRows = null;

  /** @param {AuditRecord} r */
  const auditRow = (r) => [
    fmt.dateTime(r.at),
    r.user_id ? usersById.get(r.user_id)?.name || r.user_id : '—',
    r.role || '—',
    r.action,
    r.appointment_id || '—',
    r.outcome,
    r.client_ip || '—',
  ];

  /** @param {boolean} fresh */
  async function loadAudit(fresh) {
    if (fresh) {
      after = 0;
      auditRows = null;
      replace(auditBody, loading('Loading the audit trail…'));
    }
    auditMore.disabled = true;
    auditMore.textContent = 'Loading…';
    try {
      const rows = await api.audit({ after, limit: AUDIT_PAGE, appointment_id: appointmentId || undefined });
      if (!auditRows) {
        const built = table('Audit trail, oldest first', ['When', 'Who', 'Role', 'Action', 'Appointment', 'Outcome', 'Address'], [], 'audit-table');
        auditRows = built.querySelector('tbody');
        replace(auditBody, built);
      }
      for (const r of rows) auditRows?.append(tr(auditRow(r)));
      if (rows.length > 0) after = rows[rows.length - 1].seq;
      if (after === 0) {
        auditRows = null;
        replace(auditBody, h('p', { class: 'muted' }, 'Nothing recorded yet.'));
      }
      auditMore.hidden = rows.length < AUDIT_PAGE;
    } catch (error) {
      if (error instanceof ApiError && Object.keys(error.fields).length > 0) showError(auditFilter, error);
      else replace(auditBody, failure(error, 'Could not load the audit trail.'));
    } finally {
      auditMore.disabled = false;
      auditMore.textContent = 'Load more';
    }
  }

  auditMore.addEventListener('click', () => loadAudit(false));
  auditFilter.addEventListener('submit', async (event) => {
    event.preventDefault();
    appointmentId = value(auditFilter, 'appointment_id');
    await submitting(auditFilter, 'Loading…', () => loadAudit(true));
  });

  // --- mail that could not be delivered ------------------------------------
  const mailBody = byId('mail-body', HTMLElement);
  async function loadDeadMail() {
    replace(mailBody, loading('Loading undelivered mail…'));
    try {
      const rows = await api.mail('dead');
      if (rows.length === 0) {
        replace(mailBody, h('p', { class: 'muted', id: 'mail-empty' }, 'No undelivered mail.'));
        return;
      }
      replace(mailBody, table('Undelivered mail, newest first', ['Recipient', 'Kind', 'When', 'Attempts', 'Last error'],
        rows.map((m) => [m.recipient_email, m.kind.replace(/_/g, ' '), fmt.dateTime(m.created_at), String(m.attempts), m.last_error || '—']),
        'mail-table'));
    } catch (error) {
      replace(mailBody, failure(error, 'Could not load the undelivered mail.'));
    }
  }

  if (await loadUsers()) {
    await loadAudit(true);
    await loadDeadMail();
  }
}

/** @param {string[]} cells */
function tr(cells) {
  return h('tr', {}, ...cells.map((c) => h('td', {}, c)));
}

/**
 * A captioned table in a scrolling wrapper (narrow screens scroll it sideways).
 * @param {string} caption
 * @param {string[]} headings
 * @param {string[][]} rows
 * @param {string} id
 */
function table(caption, headings, rows, id) {
  return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', { id },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, ...headings.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...rows.map(tr))));
}
