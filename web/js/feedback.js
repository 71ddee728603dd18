// @ts-check
/**
 * Telling people what is going on: a polite live region for progress and
 * success, an alert for failures. Screen readers announce both.
 */

import { h } from './dom.js';

/**
 * @param {Element} region an element with role="status" (or "alert")
 * @param {string} message empty clears the region
 * @param {'info' | 'success' | 'error'} [kind]
 */
export function say(region, message, kind = 'info') {
  region.textContent = message;
  region.classList.toggle('is-error', kind === 'error');
  region.classList.toggle('is-success', kind === 'success');
  // The region stays in the page (CSS collapses it while empty): a live
  // region that appears together with its text is often not announced.
}

/**
 * A "Loading…" line to put where content will appear.
 * @param {string} [what]
 */
export function loading(what = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, what);
}

/**
 * An error line to put where content failed to appear.
 * @param {unknown} error
 * @param {string} [prefix]
 */
export function failure(error, prefix = 'Could not load this.') {
  const detail = error instanceof Error ? error.message : String(error);
  return h('p', { class: 'notice is-error', role: 'alert' }, `${prefix} ${detail}`);
}

const FLASH_KEY = 'consulta.flash';

/**
 * A message to show on the next page (after a redirect). Kept in
 * sessionStorage: it is plain feedback text, never a credential.
 * @param {string} message
 */
export function flashNext(message) {
  try {
    sessionStorage.setItem(FLASH_KEY, message);
  } catch {
    // Storage may be disabled; the message is a nicety.
  }
}

/** The message left by the previous page, once. */
export function takeFlash() {
  try {
    const message = sessionStorage.getItem(FLASH_KEY);
    sessionStorage.removeItem(FLASH_KEY);
    return message || '';
  } catch {
    return '';
  }
}
