// @ts-check
/** Sign-in page: on success the server sets the session cookie; we only navigate. */

import { api } from '../api.js';
import { byId } from '../dom.js';
import { say, takeFlash } from '../feedback.js';
import { showFieldErrors, submitting, value } from '../form.js';
import { safeNext } from '../session.js';

const form = byId('login-form', HTMLFormElement);
const status = byId('status', HTMLElement);
const next = safeNext(new URLSearchParams(location.search).get('next'));

const flash = takeFlash();
if (flash) say(status, flash, 'success');

// Someone already signed in has nothing to do here.
api.me().then(() => location.replace(next), () => {});

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
  const ok = await submitting(form, 'Signing in…', async () => {
    await api.login({ email, password });
  });
  if (ok) location.assign(next);
});
