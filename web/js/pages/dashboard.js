// @ts-check
/**
 * The dashboard: upcoming appointments (patients), today's queue and the
 * countdown to the next one (doctors), who is waiting in a room, and the
 * cancel and reschedule dialogs.
 *
 * Data comes from one function, `refresh`, registered with refresh.js: a
 * timer, tab focus, the page's own actions and hub.js pushes (a booking,
 * a change, someone entering a room; and every reconnect) all go through it.
 */

import { api, ApiError } from '../api.js';
import { appointmentCard } from '../appointment-card.js';
import { byId, h, replace } from '../dom.js';
import { failure, say, takeFlash } from '../feedback.js';
import { clearErrors, showError, submitting, value } from '../form.js';
import { startLiveUpdates } from '../hub.js';
import { keepFresh, refreshNow } from '../refresh.js';
import { requireUser } from '../session.js';
import { slotPicker } from '../slot-picker.js';
import { duration, inZone, serverClock } from '../time.js';

/** @typedef {import('../types.js').DashboardItem} DashboardItem */

const status = byId('status', HTMLElement);
const title = byId('dashboard-title', HTMLElement);
const bookLink = byId('book-link', HTMLAnchorElement);
const nextUp = byId('next-up', HTMLElement);
const countdown = byId('countdown', HTMLElement);
const waitingSummary = byId('waiting-summary', HTMLElement);
const todaySection = byId('today', HTMLElement);
const todayList = byId('today-list', HTMLOListElement);
const upcomingTitle = byId('upcoming-title', HTMLElement);
const upcomingBody = byId('upcoming-body', HTMLElement);

const user = await requireUser();
if (user) {
  const fmt = inZone(user.timezone);
  const isDoctor = user.role === 'doctor';
  const flash = takeFlash();
  if (flash) say(status, flash, 'success');

  if (user.role === 'patient') bookLink.hidden = false;
  if (isDoctor) {
    title.textContent = 'Your practice';
    upcomingTitle.textContent = 'Later';
  }
  if (user.role === 'admin') {
    title.textContent = 'Dashboard';
  }

  /** @type {DashboardItem[]} */
  let items = [];
  /** @type {{tick: (now: number) => void}[]} */
  let cards = [];
  let signature = '';
  let lastWaiting = '';
  const actions = { cancel: openCancel, reschedule: openReschedule };

  /** @param {string} reason */
  async function refresh(reason) {
    const data = await api.dashboard();
    serverClock.sync(data.now);
    const next = JSON.stringify(data.appointments);
    // Unchanged data keeps the DOM as it is, so focus and reading position stay.
    if (next !== signature || reason === 'load') {
      signature = next;
      items = data.appointments;
      render();
    }
    tick();
  }

  function render() {
    const focusedId = document.activeElement?.id || '';
    const now = serverClock.now();
    const today = fmt.dayKey(now);
    const todays = isDoctor ? items.filter((item) => fmt.dayKey(item.start) === today) : [];
    const later = items.filter((item) => !todays.includes(item));
    cards = [];
    /** @param {DashboardItem} item */
    const card = (item) => {
      const built = appointmentCard(item, fmt, actions);
      cards.push(built);
      return built.element;
    };
    todaySection.hidden = !isDoctor;
    if (isDoctor) {
      replace(todayList, ...todays.map(card));
      if (todays.length === 0) replace(todayList, h('li', { class: 'empty muted' }, 'No appointments today.'));
    }
    if (later.length > 0) {
      replace(upcomingBody, h('ol', { class: 'cards', id: 'upcoming-list' }, ...later.map(card)));
    } else if (user?.role === 'admin') {
      replace(upcomingBody, h('p', { class: 'muted' }, 'Administrators have no appointments. ',
        h('a', { href: '/admin' }, 'Manage accounts and read the audit trail')));
    } else {
      replace(upcomingBody, h('p', { class: 'empty muted' }, isDoctor ? 'Nothing booked after today.' : 'No upcoming appointments. ',
        isDoctor ? null : h('a', { href: '/book' }, 'Book one')));
    }
    const again = focusedId ? document.getElementById(focusedId) : null;
    if (again && !(again instanceof HTMLButtonElement && again.disabled)) again.focus();
  }

  function tick() {
    const now = serverClock.now();
    for (const c of cards) c.tick(now);
    const upcoming = items
      .filter((item) => item.status === 'scheduled' && Date.parse(item.end) > now)
      .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
    const next = upcoming[0];
    nextUp.hidden = !next;
    if (next) {
      const start = Date.parse(next.start);
      countdown.replaceChildren(...(start > now
        ? ['Next: ', h('strong', {}, next.other.name), ` at ${fmt.time(start)} — starts in `, h('strong', { class: 'countdown-value' }, duration(start - now))]
        : ['Now: ', h('strong', {}, next.other.name), `, until ${fmt.time(next.end)}`]));
    }
    const waiting = upcoming.filter((item) => item.other_in_room).map((item) => item.other.name);
    const text = waiting.length === 0 ? '' : isDoctor
      ? `Waiting in the room: ${waiting.join(', ')}.`
      : `${waiting.join(', ')} ${waiting.length === 1 ? 'is' : 'are'} in the room.`;
    // A live region: write only on a change, or it is read out every second.
    if (text !== lastWaiting) {
      lastWaiting = text;
      waitingSummary.textContent = text;
    }
  }

  // --- cancel -------------------------------------------------------------
  const cancelDialog = byId('cancel-dialog', HTMLDialogElement);
  const cancelForm = byId('cancel-form', HTMLFormElement);
  const cancelSummary = byId('cancel-summary', HTMLElement);
  /** @type {DashboardItem | null} */
  let cancelling = null;

  /** @param {DashboardItem} item */
  function openCancel(item) {
    cancelling = item;
    cancelForm.reset();
    clearErrors(cancelForm);
    cancelSummary.textContent = `${fmt.dateTime(item.start)} with ${item.other.name}.`;
    cancelDialog.showModal();
    byId('cancel-reason', HTMLTextAreaElement).focus();
  }

  cancelForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const item = cancelling;
    if (!item) return;
    const reason = value(cancelForm, 'reason');
    const ok = await submitting(cancelForm, 'Cancelling…', async () => {
      await api.cancel(item.id, reason || undefined);
    });
    if (ok) {
      cancelDialog.close();
      say(status, `Cancelled the appointment on ${fmt.dateTime(item.start)} with ${item.other.name}.`, 'success');
      await refreshNow('action');
    }
  });

  // --- reschedule ---------------------------------------------------------
  const rescheduleDialog = byId('reschedule-dialog', HTMLDialogElement);
  const rescheduleForm = byId('reschedule-form', HTMLFormElement);
  const rescheduleSummary = byId('reschedule-summary', HTMLElement);
  const rescheduleSlots = byId('reschedule-slots', HTMLElement);
  /** @type {DashboardItem | null} */
  let moving = null;
  /** @type {ReturnType<typeof slotPicker> | null} */
  let picker = null;

  /** @param {DashboardItem} item */
  function openReschedule(item) {
    moving = item;
    clearErrors(rescheduleForm);
    rescheduleSummary.textContent = `Now: ${fmt.dateTime(item.start)} with ${item.other.name}. Times are in your time zone, ${fmt.zone}.`;
    picker = slotPicker({ container: rescheduleSlots, doctorId: item.doctor.id, fmt, exclude: item.start });
    rescheduleDialog.showModal();
  }

  rescheduleForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const item = moving;
    const slot = picker?.selected() || null;
    if (!item) return;
    if (!slot) {
      showError(rescheduleForm, new ApiError(422, { errors: { start: 'Choose one of the free times.' } }));
      return;
    }
    const ok = await submitting(rescheduleForm, 'Moving…', async () => {
      await api.reschedule(item.id, slot.start);
    });
    if (ok) {
      rescheduleDialog.close();
      say(status, `Moved to ${fmt.dateTime(slot.start)}.`, 'success');
      await refreshNow('action');
    } else {
      picker?.reload();
    }
  });

  for (const dialog of [cancelDialog, rescheduleDialog]) {
    for (const button of dialog.querySelectorAll('[data-close]')) {
      button.addEventListener('click', () => dialog.close());
    }
  }

  // --- start --------------------------------------------------------------
  try {
    await refresh('load');
  } catch (error) {
    const retry = h('button', { type: 'button', class: 'secondary' }, 'Try again');
    retry.addEventListener('click', () => location.reload());
    replace(upcomingBody, failure(error, 'Could not load your appointments.'), retry);
  }
  keepFresh(refresh, { everyMs: 30_000 });
  // Pushes over /ws re-run `refresh` (and so does every reconnect).
  const live = startLiveUpdates();
  document.body.dataset.hub = live.state;
  live.onState((state) => { document.body.dataset.hub = state; });
  setInterval(tick, 1000);
}
