// @ts-check
/**
 * Asking for a password reset link. The answer is the same whether or not
 * an account uses the address, and so is what this page says.
 */

import { api } from '../api.js';
import { byId } from '../dom.js';
import { say } from '../feedback.js';
import { showFieldErrors, submitting, value } from '../form.js';

const form = byId('forgot-form', HTMLFormElement);
const status = byId('status', HTMLElement);

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = value(form, 'email');
  if (!email) {
    showFieldErrors(form, { email: 'is required' });
    return;
  }
  say(status, '');
  const ok = await submitting(form, 'Sending…', async () => {
    await api.requestPasswordReset(email);
  });
  if (ok) {
    form.reset();
    say(status,
      `If an account uses ${email}, we have sent it a link to choose a new password. ` +
      'Check your inbox (and spam folder); the link works for 30 minutes.', 'success');
  }
});
