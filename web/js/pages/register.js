// @ts-check
/** Patient registration, then straight to a signed-in dashboard. */

import { api } from '../api.js';
import { byId, h } from '../dom.js';
import { flashNext } from '../feedback.js';
import { submitting, value } from '../form.js';
import { allZones, browserZone } from '../time.js';

const form = byId('register-form', HTMLFormElement);
const zoneSelect = byId('timezone', HTMLSelectElement);

const here = browserZone();
zoneSelect.replaceChildren(...allZones().map((zone) => h('option', { value: zone, selected: zone === here }, zone)));

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = {
    name: value(form, 'name'),
    email: value(form, 'email'),
    password: value(form, 'password', { raw: true }),
    timezone: value(form, 'timezone'),
  };
  const ok = await submitting(form, 'Creating your account…', async () => {
    await api.register(input);
    await api.login({ email: input.email, password: input.password });
  });
  if (ok) {
    flashNext(`Welcome, ${input.name}. Your account is ready.`);
    location.assign('/dashboard');
  }
});
