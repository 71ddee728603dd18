// @ts-check
/**
 * Forms: problem+json field errors shown beside the control at fault,
 * busy buttons while a request runs, and a form-level alert for the rest.
 *
 * A field path from the API (`email`, `weekly[2].end`) finds its control
 * by `data-field` first, then by `name`; a path with no control of its own
 * falls back to its parent (`weekly[2]`), and finally to the form's alert.
 */

import { ApiError } from './api.js';
import { h } from './dom.js';

/**
 * @param {HTMLFormElement} form
 * @param {string} path
 * @returns {HTMLElement | null}
 */
function targetFor(form, path) {
  for (let key = path; key; key = parentPath(key)) {
    const marked = form.querySelector(`[data-field="${CSS.escape(key)}"]`);
    if (marked instanceof HTMLElement) return marked;
    const named = form.elements.namedItem(key);
    if (named instanceof RadioNodeList) {
      const first = named[0];
      const group = first instanceof HTMLElement ? first.closest('fieldset') : null;
      if (group) return group;
    } else if (named instanceof HTMLElement) {
      return named;
    }
  }
  return null;
}

/** `weekly[2].end` → `weekly[2]` → `weekly` → ''. @param {string} path */
function parentPath(path) {
  const match = /^(.*)(\.[^.[\]]+|\[\d+\])$/.exec(path);
  return match ? match[1] : '';
}

/** The visible name of a control, for "Password must be …". @param {HTMLElement} target */
function labelOf(target) {
  let text = '';
  if (target instanceof HTMLFieldSetElement) {
    text = target.querySelector('legend')?.textContent || '';
  } else if ('labels' in target && target.labels instanceof NodeList && target.labels.length > 0) {
    text = target.labels[0].textContent || '';
  }
  if (!text) text = target.getAttribute('aria-label') || target.dataset.label || '';
  return text.replace(/\(optional\)/i, '').replace(/[:*]\s*$/, '').trim();
}

/**
 * Messages from the API follow the field name ("must be at least 8 …");
 * a complete sentence is shown as it is.
 * @param {string} label
 * @param {string} message
 */
export function phrase(label, message) {
  if (!label || /^[A-Z]/.test(message)) return message;
  return `${label} ${message}`;
}

/** @param {HTMLElement} target */
function errorSlot(target) {
  if (!target.id) target.id = `f-${Math.random().toString(36).slice(2)}`;
  const id = `${target.id}-error`;
  let slot = document.getElementById(id);
  if (!slot) {
    slot = h('p', { class: 'field-error', id, hidden: true });
    // Inside a fieldset the message goes at its end; otherwise right after
    // the control, inside the `.field` wrapper, so it sits beside its field.
    if (target instanceof HTMLFieldSetElement) target.append(slot);
    else target.insertAdjacentElement('afterend', slot);
  }
  return slot;
}

/**
 * @param {HTMLFormElement} form
 * @returns {HTMLElement}
 */
function formAlert(form) {
  const existing = form.querySelector('.form-error');
  if (existing instanceof HTMLElement) return existing;
  const alert = h('div', { class: 'form-error notice is-error', role: 'alert', hidden: true });
  form.prepend(alert);
  return alert;
}

/** @param {HTMLFormElement} form */
export function clearErrors(form) {
  for (const slot of form.querySelectorAll('.field-error')) {
    slot.textContent = '';
    if (slot instanceof HTMLElement) slot.hidden = true;
  }
  for (const invalid of form.querySelectorAll('[aria-invalid="true"]')) invalid.removeAttribute('aria-invalid');
  const alert = formAlert(form);
  alert.textContent = '';
  alert.hidden = true;
}

/**
 * Shows each message beside its control; returns the messages that found
 * no control (already shown in the form's alert).
 * @param {HTMLFormElement} form
 * @param {Record<string, string>} errors
 * @returns {string[]}
 */
export function showFieldErrors(form, errors) {
  /** @type {string[]} */
  const unplaced = [];
  /** @type {HTMLElement | null} */
  let first = null;
  for (const [path, message] of Object.entries(errors)) {
    const target = targetFor(form, path);
    if (!target) {
      unplaced.push(`${path} ${message}`);
      continue;
    }
    const slot = errorSlot(target);
    const text = phrase(labelOf(target), message);
    slot.textContent = slot.textContent ? `${slot.textContent} ${text}` : text;
    slot.hidden = false;
    target.setAttribute('aria-invalid', 'true');
    const described = new Set((target.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean));
    described.add(slot.id);
    target.setAttribute('aria-describedby', [...described].join(' '));
    first ??= target;
  }
  if (unplaced.length > 0) {
    const alert = formAlert(form);
    alert.textContent = unplaced.join(' ');
    alert.hidden = false;
  }
  const focusable = first instanceof HTMLFieldSetElement ? first.querySelector('input, select, textarea, button') : first;
  if (focusable instanceof HTMLElement) focusable.focus();
  return unplaced;
}

/**
 * Shows any error: field messages beside fields, everything else in the
 * form's alert.
 * @param {HTMLFormElement} form
 * @param {unknown} error
 */
export function showError(form, error) {
  clearErrors(form);
  const fields = error instanceof ApiError ? error.fields : {};
  const hasFields = Object.keys(fields).length > 0;
  if (hasFields) showFieldErrors(form, fields);
  if (!hasFields) {
    const alert = formAlert(form);
    alert.textContent = error instanceof Error ? error.message : 'Something went wrong.';
    alert.hidden = false;
    alert.focus?.();
  }
}

/**
 * Runs `action` for a submit: clears old errors, marks the button busy,
 * shows errors when it fails. Resolves to whether it succeeded.
 * @param {HTMLFormElement} form
 * @param {string} busyText e.g. "Saving…"
 * @param {() => Promise<void>} action
 */
export async function submitting(form, busyText, action) {
  const button = form.querySelector('button[type="submit"], button:not([type])');
  const idle = button?.textContent || '';
  clearErrors(form);
  form.setAttribute('aria-busy', 'true');
  if (button instanceof HTMLButtonElement) {
    button.disabled = true;
    button.textContent = busyText;
  }
  try {
    await action();
    return true;
  } catch (error) {
    showError(form, error);
    return false;
  } finally {
    form.removeAttribute('aria-busy');
    if (button instanceof HTMLButtonElement) {
      button.disabled = false;
      button.textContent = idle;
    }
  }
}

/**
 * The value of a named control, trimmed unless `raw` (passwords keep
 * their spaces).
 * @param {HTMLFormElement} form
 * @param {string} name
 * @param {{raw?: boolean}} [options]
 */
export function value(form, name, { raw = false } = {}) {
  const control = form.elements.namedItem(name);
  if (control instanceof HTMLInputElement || control instanceof HTMLSelectElement || control instanceof HTMLTextAreaElement) {
    return raw ? control.value : control.value.trim();
  }
  if (control instanceof RadioNodeList) return control.value;
  return '';
}
