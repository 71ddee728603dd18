// @ts-check
/**
 * The doctor's availability editor and a preview of the slots it yields.
 *
 * Rows are named by their API path (`weekly[2].end`), so the server's
 * field errors land beside the right input without any mapping table. The
 * preview asks the server for the real slots after saving, so it shows
 * exactly what patients will be offered (DST, notice and horizon included).
 */

import { api, ApiError } from '../api.js';
import { byId, h, replace } from '../dom.js';
import { failure, loading, say } from '../feedback.js';
import { showError, submitting, value } from '../form.js';
import { requireUser } from '../session.js';
import { allZones, inZone } from '../time.js';
import { emptyException, exceptionRow, readExceptions, readWeekly, weeklyRow } from '../availability-rows.js';

/** @typedef {import('../types.js').Availability} Availability */
/** @typedef {import('../types.js').Slot} Slot */

const form = byId('availability-form', HTMLFormElement);
const status = byId('status', HTMLElement);
const weeklyList = byId('weekly-rows', HTMLOListElement);
const exceptionList = byId('exception-rows', HTMLOListElement);
const preview = byId('preview', HTMLElement);
const previewNote = byId('preview-note', HTMLElement);
const previewBody = byId('preview-body', HTMLElement);

/** Numeric settings: field → optional (sent only when filled in). */
const NUMBERS = /** @type {const} */ ([
  ['slot_minutes', false],
  ['buffer_minutes', true],
  ['min_notice_minutes', true],
  ['horizon_days', true],
  ['patient_cancel_notice_minutes', true],
]);

const user = await requireUser(['doctor']);
if (user) {
  const fmt = inZone(user.timezone);
  const zoneSelect = byId('timezone', HTMLSelectElement);
  replace(zoneSelect, ...allZones().map((zone) => h('option', { value: zone }, zone)));

  /** @type {Availability} */
  let current;
  let published = true;
  say(status, 'Loading your availability…');
  try {
    current = await api.availability('me');
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) {
      say(status, `Could not load your availability. ${error instanceof Error ? error.message : ''}`, 'error');
      throw error;
    }
    // Nothing published yet: start from office hours the doctor can adjust.
    published = false;
    current = {
      timezone: user.timezone,
      slot_minutes: 30,
      weekly: [1, 2, 3, 4, 5].map((weekday) => ({ weekday, start: '09:00', end: '17:00' })),
      exceptions: [],
      buffer_minutes: 0,
      min_notice_minutes: 120,
      horizon_days: 60,
      patient_cancel_notice_minutes: 120,
    };
  }
  say(status, published ? '' : 'You have not published any hours yet. Adjust these suggestions and save.');
  fill(current);
  form.hidden = false;
  if (published) showPreview();

  /** @param {Availability} a */
  function fill(a) {
    if (![...zoneSelect.options].some((o) => o.value === a.timezone)) zoneSelect.append(h('option', { value: a.timezone }, a.timezone));
    zoneSelect.value = a.timezone;
    for (const [name] of NUMBERS) {
      const input = byId(name, HTMLInputElement);
      const v = a[name];
      input.value = v === undefined || v === null ? '' : String(v);
    }
    replace(weeklyList, ...a.weekly.map((w, i) => weeklyRow(w, i, removeWeekly)));
    replace(exceptionList, ...a.exceptions.map((x, i) => exceptionRow(x, i, removeException)));
  }

  /** @param {number} index */
  function removeWeekly(index) {
    const rows = readWeekly(weeklyList).filter((_, i) => i !== index);
    replace(weeklyList, ...rows.map((w, i) => weeklyRow(w, i, removeWeekly)));
    byId('add-window', HTMLButtonElement).focus();
  }

  /** @param {number} index */
  function removeException(index) {
    const rows = readExceptions(exceptionList).filter((_, i) => i !== index);
    replace(exceptionList, ...rows.map((x, i) => exceptionRow(x, i, removeException)));
    byId('add-exception', HTMLButtonElement).focus();
  }

  byId('add-window', HTMLButtonElement).addEventListener('click', () => {
    const rows = readWeekly(weeklyList);
    const last = rows[rows.length - 1];
    rows.push({ weekday: last ? (last.weekday % 7) + 1 : 1, start: last?.start || '09:00', end: last?.end || '17:00' });
    replace(weeklyList, ...rows.map((w, i) => weeklyRow(w, i, removeWeekly)));
    byId(`weekly-${rows.length - 1}-weekday`, HTMLSelectElement).focus();
  });

  byId('add-exception', HTMLButtonElement).addEventListener('click', () => {
    const rows = readExceptions(exceptionList);
    rows.push(emptyException());
    replace(exceptionList, ...rows.map((x, i) => exceptionRow(x, i, removeException)));
    byId(`exceptions-${rows.length - 1}-date`, HTMLInputElement).focus();
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    /** @type {Record<string, string>} */
    const problems = {};
    /** @type {Availability} */
    const next = {
      timezone: value(form, 'timezone'),
      slot_minutes: 0,
      weekly: readWeekly(weeklyList),
      exceptions: readExceptions(exceptionList),
    };
    for (const [name, optional] of NUMBERS) {
      const text = value(form, name);
      if (text === '' && optional) continue;
      const n = Number(text);
      if (text === '' || !Number.isInteger(n)) problems[name] = 'must be a whole number';
      else next[name] = n;
    }
    if (Object.keys(problems).length > 0) {
      showError(form, new ApiError(422, { errors: problems }));
      return;
    }
    say(status, 'Saving…');
    const ok = await submitting(form, 'Saving…', async () => {
      current = await api.putAvailability(next);
    });
    if (ok) {
      fill(current);
      say(status, 'Saved. Patients can now book the slots shown below.', 'success');
      await showPreview();
    } else {
      say(status, 'Not saved: please correct the marked fields.', 'error');
    }
  });

  async function showPreview() {
    preview.hidden = false;
    previewNote.textContent = `Times in your time zone, ${fmt.zone}. Slots already booked are not shown.`;
    replace(previewBody, loading('Loading the preview…'));
    const from = Date.now();
    const to = from + 7 * 24 * 3600 * 1000;
    try {
      const slots = await api.slots('me', new Date(from).toISOString(), new Date(to).toISOString());
      renderPreview(slots);
    } catch (error) {
      replace(previewBody, failure(error, 'Could not load the preview.'));
    }
  }

  /** @param {Slot[]} slots */
  function renderPreview(slots) {
    if (slots.length === 0) {
      replace(previewBody, h('p', { class: 'muted', id: 'preview-empty' }, 'No free slots in the next 7 days.'));
      return;
    }
    /** @type {Map<string, Slot[]>} */
    const days = new Map();
    for (const slot of slots) {
      const key = fmt.dayKey(slot.start);
      days.set(key, [...(days.get(key) || []), slot]);
    }
    replace(previewBody,
      h('p', { id: 'preview-count' }, `${slots.length} free ${slots.length === 1 ? 'slot' : 'slots'} on ${days.size} ${days.size === 1 ? 'day' : 'days'}.`),
      h('dl', { class: 'preview-days' }, ...[...days.values()].flatMap((daySlots) => [
        h('dt', {}, `${fmt.day(daySlots[0].start)} (${daySlots.length})`),
        h('dd', {}, h('ul', { class: 'chips' }, ...daySlots.map((slot) => h('li', { class: 'chip' }, fmt.time(slot.start))))),
      ])));
  }
}
