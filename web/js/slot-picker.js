// @ts-check
/**
 * Free slots of one doctor, a week at a time, as one radio group grouped by
 * day in the viewer's time zone. Used to book and to reschedule.
 */

import { api } from './api.js';
import { h, replace } from './dom.js';
import { failure, loading } from './feedback.js';

/** @typedef {import('./types.js').Slot} Slot */
/** @typedef {import('./time.js').ZoneFormat} ZoneFormat */

const WEEK_MS = 7 * 24 * 3600 * 1000;

/**
 * @param {object} options
 * @param {HTMLElement} options.container where the picker draws itself
 * @param {string} options.doctorId
 * @param {ZoneFormat} options.fmt the viewer's zone
 * @param {string} [options.name] radio group name (the API field), `start`
 * @param {string} [options.exclude] a slot start not to offer (the current time when rescheduling)
 * @param {(slot: Slot | null) => void} [options.onChange]
 */
export function slotPicker({ container, doctorId, fmt, name = 'start', exclude, onChange }) {
  let from = Date.now();
  const firstFrom = from;
  /** @type {Slot[]} */
  let slots = [];
  let generation = 0;

  const range = h('p', { class: 'week-range', 'aria-live': 'polite' });
  const earlier = h('button', { type: 'button', class: 'secondary small' }, '← Earlier');
  const later = h('button', { type: 'button', class: 'secondary small' }, 'Later →');
  const list = h('div', { class: 'slot-days' });
  replace(container, h('div', { class: 'week-nav' }, earlier, range, later), list);

  earlier.addEventListener('click', () => {
    from = Math.max(firstFrom, from - WEEK_MS);
    load();
  });
  later.addEventListener('click', () => {
    from += WEEK_MS;
    load();
  });

  async function load() {
    const mine = ++generation;
    const to = from + WEEK_MS;
    earlier.disabled = from <= firstFrom;
    range.textContent = `${fmt.day(from)} – ${fmt.day(to - 1)}`;
    replace(list, loading('Loading free times…'));
    onChange?.(null);
    try {
      const found = await api.slots(doctorId, new Date(from).toISOString(), new Date(to).toISOString());
      // An older request that answers late must not replace a newer week.
      if (mine !== generation) return;
      const skip = exclude ? Date.parse(exclude) : NaN;
      slots = found.filter((slot) => Date.parse(slot.start) !== skip);
      render();
    } catch (error) {
      if (mine !== generation) return;
      const retry = h('button', { type: 'button', class: 'secondary small' }, 'Try again');
      retry.addEventListener('click', load);
      replace(list, failure(error, 'Could not load free times.'), retry);
    }
  }

  function render() {
    if (slots.length === 0) {
      replace(list, h('p', { class: 'muted' }, 'No free times in this week. Try later dates.'));
      return;
    }
    /** @type {Map<string, Slot[]>} */
    const days = new Map();
    for (const slot of slots) {
      const key = fmt.dayKey(slot.start);
      days.set(key, [...(days.get(key) || []), slot]);
    }
    replace(list, ...[...days.values()].map((daySlots) =>
      h('div', { class: 'slot-day' },
        h('h3', { class: 'slot-day-title' }, fmt.day(daySlots[0].start)),
        h('div', { class: 'slot-grid' }, ...daySlots.map((slot) => {
          const input = h('input', { type: 'radio', name, value: slot.start, class: 'slot-radio' });
          input.addEventListener('change', () => onChange?.(slot));
          return h('label', { class: 'slot' }, input, h('span', {}, fmt.time(slot.start)));
        })))));
  }

  load();
  return {
    reload: load,
    /** The chosen slot, or null. */
    selected() {
      const checked = list.querySelector(`input[name="${name}"]:checked`);
      const start = checked instanceof HTMLInputElement ? checked.value : '';
      return slots.find((slot) => slot.start === start) || null;
    },
  };
}
