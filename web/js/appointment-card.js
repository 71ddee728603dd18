// @ts-check
/**
 * One dashboard entry: when, with whom, why, whether the other side is
 * already in the room, and what can be done (join, move, cancel). Parts
 * that depend on the clock are redrawn by `tick` without a new request.
 */

import { h, replace } from './dom.js';
import { duration } from './time.js';

/** @typedef {import('./types.js').DashboardItem} DashboardItem */
/** @typedef {import('./time.js').ZoneFormat} ZoneFormat */

const STATUS_LABELS = { scheduled: 'Scheduled', cancelled: 'Cancelled', completed: 'Completed' };

/**
 * @typedef {object} CardActions
 * @property {(item: DashboardItem) => void} cancel
 * @property {(item: DashboardItem) => void} reschedule
 */

/**
 * @param {DashboardItem} item
 * @param {ZoneFormat} fmt
 * @param {CardActions} actions
 * @returns {{element: HTMLLIElement, tick: (now: number) => void}}
 */
export function appointmentCard(item, fmt, actions) {
  const live = item.status === 'scheduled';
  const otherLabel = item.other.role === 'doctor' ? 'With' : 'Patient';
  const waitingText = item.other.role === 'patient' ? 'Patient is waiting in the room' : `${item.other.name} is in the room`;
  const join = h('span', { class: 'join' });
  const relative = h('span', { class: 'relative muted' });

  const element = h('li', { class: `card appointment is-${item.status}`, id: `appointment-${item.id}`, 'data-id': item.id },
    h('div', { class: 'card-head' },
      h('p', { class: 'when' },
        h('time', { datetime: item.start }, fmt.dateTime(item.start)), '–',
        h('time', { datetime: item.end }, fmt.time(item.end)), ' ', relative),
      h('span', { class: `badge status-${item.status}` }, STATUS_LABELS[item.status] || item.status)),
    h('p', { class: 'with' }, `${otherLabel}: `, h('strong', {}, item.other.name)),
    item.reason ? h('p', { class: 'reason' }, h('span', { class: 'muted' }, 'Reason: '), item.reason) : null,
    item.status === 'cancelled' && item.cancel_reason
      ? h('p', { class: 'reason' }, h('span', { class: 'muted' }, 'Cancelled because: '), item.cancel_reason)
      : null,
    live && item.other_in_room ? h('p', { class: 'waiting', 'data-waiting': 'true' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), waitingText) : null,
    live ? h('div', { class: 'actions' }, join, ...changeButtons(item, actions)) : null);

  let joinOpen = /** @type {boolean | null} */ (null);
  /** @param {number} now */
  const tick = (now) => {
    const start = Date.parse(item.start);
    const end = Date.parse(item.end);
    relative.textContent = !live ? '' : now < start ? `(in ${duration(start - now)})` : now < end ? '(now)' : '(ended)';
    if (!live) return;
    const open = now >= Date.parse(item.join_opens_at) && now < Date.parse(item.join_closes_at);
    if (open === joinOpen) return;
    joinOpen = open;
    // Redraw only on a change, so keyboard focus on the control survives ticks.
    const hadFocus = join.contains(document.activeElement);
    if (open) {
      replace(join, h('a', { class: 'button primary', href: `/room/${encodeURIComponent(item.id)}`, id: `join-${item.id}` }, 'Join'));
    } else {
      const opens = Date.parse(item.join_opens_at);
      const hintId = `join-hint-${item.id}`;
      replace(join,
        h('button', { type: 'button', class: 'primary', disabled: true, id: `join-${item.id}`, 'aria-describedby': hintId }, 'Join'),
        h('span', { class: 'hint', id: hintId }, now < opens ? `Opens ${fmt.dateTime(opens)}` : 'The room has closed'));
    }
    const control = join.firstElementChild;
    if (hadFocus && control instanceof HTMLElement) control.focus();
  };
  return { element, tick };
}

/**
 * @param {DashboardItem} item
 * @param {CardActions} actions
 */
function changeButtons(item, actions) {
  const move = h('button', { type: 'button', class: 'secondary', id: `reschedule-${item.id}` }, 'Reschedule');
  const cancel = h('button', { type: 'button', class: 'danger-outline', id: `cancel-${item.id}` }, 'Cancel');
  // The names alone repeat on every card; say which appointment they act on.
  move.setAttribute('aria-label', `Reschedule the appointment with ${item.other.name}`);
  cancel.setAttribute('aria-label', `Cancel the appointment with ${item.other.name}`);
  move.addEventListener('click', () => actions.reschedule(item));
  cancel.addEventListener('click', () => actions.cancel(item));
  return [move, cancel];
}
