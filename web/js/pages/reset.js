// @ts-check
/**
 * Choosing a new password with the mailed link `/reset#token=…`. The token
 * is in the fragment, so it never reaches a server log or a Referer; the
 * page removes it from the address bar once read.
 */

import { api, ApiError } from '../api.js';
import { byId } from '../dom.js';
import { flashNext, say } from '../feedback.js';
import { showFieldErrors, submitting, value } from '../form.js';

const form = byId('reset-form', HTMLFormElement);
const status = byId('status', HTMLElement);

const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
if (location.hash) history.replaceState(null, '', location.pathname);

if (!token) {
  form.hidden = true;
  say(status, 'This link is incomplete. Open the link from the email again, or ask for a new one.', 'error');
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const password = value(form, 'new_password', { raw: true });
  const repeat = value(form, 'repeat_password', { raw: true });
  if (!password) {
    showFieldErrors(form, { new_password: 'is required' });
    return;
  }
  if (password !== repeat) {
    showFieldErrors(form, { repeat_password: 'does not match the new password' });
    return;
  }
  say(status, '');
  const ok = await submitting(form, 'Saving…', async () => {
    try {
      await api.confirmPasswordReset({ token, new_password: password });
    } catch (error) {
      if (error instanceof ApiError && error.fields.token) {
        // The token has no field on the page: say what happened and what to do.
        throw new ApiError(error.status, {
          detail: 'This link has expired or was already used. Ask for a new link below.',
        });
      }
      throw error;
    }
  });
  if (ok) {
    flashNext('Your password is changed. Sign in with the new one.');
    location.assign('/login');
  }
});
