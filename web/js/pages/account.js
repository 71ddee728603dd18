// @ts-check
/**
 * The signed-in user's own account: two-step sign-in (TOTP) enrolment,
 * changing the password, and the list of sessions with a way to end them.
 */

import { api, ApiError } from '../api.js';
import { byId, h, replace } from '../dom.js';
import { failure, loading, say, takeFlash } from '../feedback.js';
import { showFieldErrors, submitting, value } from '../form.js';
import { requireUser } from '../session.js';
import { inZone } from '../time.js';

/** @typedef {import('../types.js').SessionView} SessionView */

const user = await requireUser();
if (user) {
  const fmt = inZone(user.timezone);
  const accountStatus = byId('account-status', HTMLElement);
  const flash = takeFlash();
  if (flash) say(accountStatus, flash, 'info');

  // --- two-step sign-in ---------------------------------------------------
  const twofaStatus = byId('twofa-status', HTMLElement);
  const start = byId('twofa-start', HTMLButtonElement);
  const setup = byId('twofa-setup', HTMLElement);
  const secret = byId('twofa-secret', HTMLElement);
  const uri = byId('twofa-uri', HTMLAnchorElement);
  const twofaForm = byId('twofa-form', HTMLFormElement);
  const recovery = byId('recovery', HTMLElement);
  const recoveryCodes = byId('recovery-codes', HTMLElement);

  function showEnabled() {
    start.hidden = true;
    setup.hidden = true;
    say(twofaStatus, 'Two-step sign-in is on for your account.', 'success');
  }

  async function loadTwoFactor() {
    try {
      const { enabled, required } = await api.twoFactorStatus();
      if (enabled) showEnabled();
      else if (required) say(twofaStatus, 'Two-step sign-in is off. Administrators must turn it on before using the administration page.', 'error');
      else say(twofaStatus, 'Two-step sign-in is off.');
    } catch (error) {
      say(twofaStatus, `Could not load the two-step sign-in status: ${error instanceof Error ? error.message : String(error)}`, 'error');
    }
  }

  start.addEventListener('click', async () => {
    start.disabled = true;
    say(twofaStatus, 'Starting…');
    try {
      const answer = await api.setupTwoFactor();
      secret.textContent = answer.secret;
      uri.href = answer.otpauth_uri;
      setup.hidden = false;
      start.hidden = true;
      say(twofaStatus, '');
      byId('twofa-code', HTMLInputElement).focus();
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) showEnabled();
      else say(twofaStatus, `Could not start: ${error instanceof Error ? error.message : String(error)}`, 'error');
    } finally {
      start.disabled = false;
    }
  });

  twofaForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const code = value(twofaForm, 'code').replace(/\s+/g, '');
    if (!/^\d{6}$/.test(code)) {
      showFieldErrors(twofaForm, { code: 'must be the 6 digits your app shows' });
      return;
    }
    /** @type {{codes: string[]}} */
    const result = { codes: [] };
    const ok = await submitting(twofaForm, 'Checking…', async () => {
      result.codes = (await api.enableTwoFactor(code)).recovery_codes;
    });
    if (!ok) return;
    showEnabled();
    say(accountStatus, '');
    replace(recoveryCodes, ...result.codes.map((c) => h('li', {}, c)));
    recovery.hidden = false;
    byId('recovery-warning', HTMLElement).setAttribute('tabindex', '-1');
    byId('recovery-warning', HTMLElement).focus();
    // Enabling ended every other session.
    await loadSessions();
  });

  // --- password -------------------------------------------------------------
  const passwordForm = byId('password-form', HTMLFormElement);
  const passwordStatus = byId('password-status', HTMLElement);
  passwordForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const current = value(passwordForm, 'current_password', { raw: true });
    const next = value(passwordForm, 'new_password', { raw: true });
    const repeat = value(passwordForm, 'repeat_password', { raw: true });
    /** @type {Record<string, string>} */
    const missing = {};
    if (!current) missing.current_password = 'is required';
    if (!next) missing.new_password = 'is required';
    else if (next !== repeat) missing.repeat_password = 'does not match the new password';
    if (Object.keys(missing).length > 0) {
      showFieldErrors(passwordForm, missing);
      return;
    }
    say(passwordStatus, '');
    const ok = await submitting(passwordForm, 'Saving…', async () => {
      await api.changePassword({ current_password: current, new_password: next });
    });
    if (ok) {
      passwordForm.reset();
      say(passwordStatus, 'Your password is changed. Your other sessions have ended.', 'success');
      await loadSessions();
    }
  });

  // --- sessions -------------------------------------------------------------
  const sessionsBody = byId('sessions-body', HTMLElement);
  const sessionsStatus = byId('sessions-status', HTMLElement);

  /** @param {SessionView} s */
  function sessionItem(s) {
    const what = h('div', { class: 'session-what' },
      h('strong', {}, describeAgent(s.user_agent)),
      s.current ? ' ' : null,
      s.current ? h('span', { class: 'badge' }, 'This session') : null,
      h('p', { class: 'hint' },
        `Signed in ${fmt.dateTime(s.created_at)} · last active ${fmt.dateTime(s.last_seen_at)}`,
        s.client_ip ? ` · from ${s.client_ip}` : ''));
    /** @type {HTMLButtonElement | null} */
    let end = null;
    if (!s.current) {
      end = h('button', {
        type: 'button', class: 'danger-outline small', 'data-session': s.id,
        'aria-label': `End the session signed in ${fmt.dateTime(s.created_at)}`,
      }, 'End');
      const button = end;
      button.addEventListener('click', async () => {
        button.disabled = true;
        button.textContent = 'Ending…';
        try {
          await api.endSession(s.id);
          say(sessionsStatus, 'The session has ended.', 'success');
        } catch (error) {
          say(sessionsStatus, `Could not end it: ${error instanceof Error ? error.message : String(error)}`, 'error');
        }
        await loadSessions();
        sessionsBody.querySelector('button')?.focus();
      });
    }
    return h('li', { 'data-current': s.current ? 'true' : null }, what, end);
  }

  async function loadSessions() {
    replace(sessionsBody, loading('Loading your sessions…'));
    try {
      const sessions = await api.sessions();
      replace(sessionsBody, h('ul', { class: 'session-list', id: 'session-list' }, ...sessions.map(sessionItem)));
    } catch (error) {
      replace(sessionsBody, failure(error, 'Could not load your sessions.'));
    }
  }

  await loadTwoFactor();
  await loadSessions();
}

/**
 * A short name for a browser from its User-Agent, e.g. "Chrome on Linux".
 * @param {string | null} agent
 */
function describeAgent(agent) {
  if (!agent) return 'Unknown device';
  const browser = /Edg\//.test(agent) ? 'Edge'
    : /Firefox\//.test(agent) ? 'Firefox'
      : /Chrom(e|ium)\//.test(agent) ? 'Chrome'
        : /Safari\//.test(agent) ? 'Safari' : '';
  const system = /Android/.test(agent) ? 'Android'
    : /iPhone|iPad/.test(agent) ? 'iOS'
      : /Windows/.test(agent) ? 'Windows'
        : /Mac OS X/.test(agent) ? 'macOS'
          : /Linux/.test(agent) ? 'Linux' : '';
  if (browser && system) return `${browser} on ${system}`;
  return browser || system || agent.slice(0, 60);
}
