// @ts-check
/**
 * The repeated rows of the availability editor: weekly hours and date
 * exceptions. Each control's `name` is its API field path, which is how
 * server errors find it; rows are redrawn (renumbered) on add and remove.
 */

import { h } from './dom.js';

/** @typedef {import('./types.js').WeeklyWindow} WeeklyWindow */
/** @typedef {import('./types.js').DateException} DateException */

const weekdayName = new Intl.DateTimeFormat(undefined, { weekday: 'long', timeZone: 'UTC' });
/** 1 = Monday … 7 = Sunday (1 January 2024 was a Monday). */
const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7].map((n) => ({ n, name: weekdayName.format(Date.UTC(2024, 0, n)) }));

/**
 * A labelled text input for "HH:MM".
 * @param {string} id
 * @param {string} name
 * @param {string} label
 * @param {string} current
 */
function timeField(id, name, label, current) {
  return h('div', { class: 'field time-field' },
    h('label', { for: id }, label),
    h('input', {
      id, name, type: 'text', value: current, inputmode: 'numeric', autocomplete: 'off', placeholder: '09:00',
      pattern: '[0-2][0-9]:[0-5][0-9]', maxlength: 5, size: 5, 'aria-describedby': 'time-format-hint',
    }));
}

/**
 * @param {string} label
 * @param {() => void} onRemove
 */
function removeButton(label, onRemove) {
  const button = h('button', { type: 'button', class: 'link-button remove', 'aria-label': `Remove ${label}` }, 'Remove');
  button.addEventListener('click', onRemove);
  return button;
}

/**
 * @param {WeeklyWindow} w
 * @param {number} i
 * @param {(index: number) => void} onRemove
 */
export function weeklyRow(w, i, onRemove) {
  const path = `weekly[${i}]`;
  const id = `weekly-${i}`;
  const label = `hours ${i + 1}`;
  const day = h('select', { id: `${id}-weekday`, name: `${path}.weekday` },
    ...WEEKDAYS.map(({ n, name }) => h('option', { value: n, selected: n === w.weekday }, name)));
  return h('li', {},
    h('fieldset', { class: 'row', 'data-field': path },
      h('legend', { class: 'visually-hidden' }, `Hours ${i + 1}`),
      h('div', { class: 'field' }, h('label', { for: day.id }, 'Day'), day),
      timeField(`${id}-start`, `${path}.start`, 'From', w.start),
      timeField(`${id}-end`, `${path}.end`, 'To', w.end),
      removeButton(label, () => onRemove(i))));
}

/** @returns {DateException} */
export function emptyException() {
  return { date: '' };
}

/**
 * @param {DateException} x
 * @param {number} i
 * @param {(index: number) => void} onRemove
 */
export function exceptionRow(x, i, onRemove) {
  const path = `exceptions[${i}]`;
  const id = `exceptions-${i}`;
  const dayOff = !x.start && !x.end;
  const date = h('input', { id: `${id}-date`, name: `${path}.date`, type: 'date', value: x.date, required: true });
  const off = h('input', { id: `${id}-off`, type: 'checkbox', checked: dayOff, class: 'day-off' });
  const times = h('div', { class: 'times', hidden: dayOff },
    timeField(`${id}-start`, `${path}.start`, 'From', x.start || '09:00'),
    timeField(`${id}-end`, `${path}.end`, 'To', x.end || '13:00'));
  off.addEventListener('change', () => {
    times.hidden = off.checked;
  });
  return h('li', {},
    h('fieldset', { class: 'row', 'data-field': path },
      h('legend', { class: 'visually-hidden' }, `Exception ${i + 1}`),
      h('div', { class: 'field' }, h('label', { for: date.id }, 'Date'), date),
      h('div', { class: 'field checkbox-field' }, off, h('label', { for: off.id }, 'Whole day off')),
      times,
      removeButton(`exception ${i + 1}`, () => onRemove(i))));
}

/**
 * @param {HTMLElement} row
 * @param {string} selector
 */
function field(row, selector) {
  const control = row.querySelector(selector);
  return control instanceof HTMLInputElement || control instanceof HTMLSelectElement ? control.value.trim() : '';
}

/** @param {HTMLElement} list @returns {WeeklyWindow[]} */
export function readWeekly(list) {
  return [...list.querySelectorAll('fieldset.row')].map((row) => ({
    weekday: Number(field(/** @type {HTMLElement} */ (row), 'select')),
    start: field(/** @type {HTMLElement} */ (row), 'input[name$=".start"]'),
    end: field(/** @type {HTMLElement} */ (row), 'input[name$=".end"]'),
  }));
}

/** @param {HTMLElement} list @returns {DateException[]} */
export function readExceptions(list) {
  return [...list.querySelectorAll('fieldset.row')].map((node) => {
    const row = /** @type {HTMLElement} */ (node);
    const date = field(row, 'input[type="date"]');
    const off = row.querySelector('input.day-off');
    if (off instanceof HTMLInputElement && off.checked) return { date };
    return { date, start: field(row, 'input[name$=".start"]'), end: field(row, 'input[name$=".end"]') };
  });
}
