// @ts-check
/**
 * Sign-in page: the password, then (for accounts with two-factor sign-in)
 * a code from the authenticator app or a recovery code. On success the
 * server sets the session cookie; we only navigate.
 */

import { api, ApiError } from '../api.js';
import { byId } from '../dom.js';
import { say, takeFlash } from '../feedback.js';
import { showFieldErrors, submitting, value } from '../form.js';
import { safeNext } from '../session.js';

const form = byId('login-form', HTMLFormElement);
const codeForm = byId('code-form', HTMLFormElement);
const codeField = byId('code-field', HTMLElement);
const recoveryField = byId('recovery-field', HTMLElement);
const useRecovery = byId('use-recovery', HTMLButtonElement);
const status = byId('status', HTMLElement);
const next = safeNext(new URLSearchParams(location.search).get('next'));

const flash = takeFlash();
if (flash) say(status, flash, 'success');

// Someone already signed in has nothing to do here.
api.me().then(() => location.replace(next), () => {});

/** The challenge from a right password, while the second step is asked. */
let challenge = '';
let recovery = false;

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = value(form, 'email');
  const password = value(form, 'password', { raw: true });
  /** @type {Record<string, string>} */
  const missing = {};
  if (!email) missing.email = 'is required';
  if (!password) missing.password = 'is required';
  if (Object.keys(missing).length > 0) {
    showFieldErrors(form, missing);
    return;
  }
  say(status, '');
  /** @type {{answer: import('../types.js').LoginResult | import('../types.js').SecondFactorRequired | null}} */
  const result = { answer: null };
  const ok = await submitting(form, 'Signing in…', async () => {
    result.answer = await api.login({ email, password });
  });
  if (!ok || !result.answer) return;
  if ('second_factor_required' in result.answer && result.answer.second_factor_required) {
    challenge = result.answer.challenge;
    askForCode();
    return;
  }
  location.assign(next);
});

function askForCode() {
  form.hidden = true;
  codeForm.hidden = false;
  say(status, 'Your password is right. Enter the code from your authenticator app to finish signing in.');
  byId('code', HTMLInputElement).focus();
}

useRecovery.addEventListener('click', () => {
  recovery = !recovery;
  codeField.hidden = recovery;
  recoveryField.hidden = !recovery;
  useRecovery.textContent = recovery ? 'Use a code from the app instead' : 'Use a recovery code instead';
  byId(recovery ? 'recovery_code' : 'code', HTMLInputElement).focus();
});

codeForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const field = recovery ? 'recovery_code' : 'code';
  const entered = value(codeForm, field).replace(/\s+/g, '');
  if (!recovery && !/^\d{6}$/.test(entered)) {
    showFieldErrors(codeForm, { code: 'must be the 6 digits your app shows' });
    return;
  }
  if (!entered) {
    showFieldErrors(codeForm, { [field]: 'is required' });
    return;
  }
  const ok = await submitting(codeForm, 'Checking…', async () => {
    try {
      await api.loginSecondFactor(recovery ? { challenge, recovery_code: entered } : { challenge, code: entered });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        // One message for a wrong code and a spent challenge: the server
        // does not say which, and both are fixed the same way.
        throw new ApiError(401, {
          errors: {
            [field]: recovery
              ? 'was not accepted. Check it, or sign in again if this took longer than 5 minutes.'
              : 'was not accepted. Use the code your app shows now, or sign in again if this took longer than 5 minutes.',
          },
        });
      }
      throw error;
    }
  });
  if (ok) location.assign(next);
});
