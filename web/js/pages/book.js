// @ts-check
/** Booking: choose a doctor, a free slot (in the patient's zone), a reason. */

import { api, ApiError } from '../api.js';
import { byId, h, replace } from '../dom.js';
import { failure, flashNext, say } from '../feedback.js';
import { showError, submitting, value } from '../form.js';
import { requireUser } from '../session.js';
import { slotPicker } from '../slot-picker.js';
import { inZone } from '../time.js';

/** @typedef {import('../types.js').Doctor} Doctor */
/** @typedef {import('../types.js').Slot} Slot */

const form = byId('book-form', HTMLFormElement);
const doctorSelect = byId('doctor', HTMLSelectElement);
const doctorZone = byId('doctor-zone', HTMLElement);
const zoneNote = byId('zone-note', HTMLElement);
const pickerBox = byId('slot-picker', HTMLElement);
const selection = byId('selection', HTMLElement);
const status = byId('status', HTMLElement);

const user = await requireUser(['patient']);
if (user) {
  const fmt = inZone(user.timezone);
  /** @type {Doctor[]} */
  let doctors = [];
  /** @type {ReturnType<typeof slotPicker> | null} */
  let picker = null;

  /** @returns {Doctor | undefined} */
  const chosenDoctor = () => doctors.find((d) => d.id === doctorSelect.value);

  /** @param {Slot | null} slot */
  const describe = (slot) => {
    const doctor = chosenDoctor();
    if (!slot || !doctor) {
      selection.textContent = '';
      return;
    }
    let text = `Selected: ${fmt.dateTime(slot.start)}–${fmt.time(slot.end)} your time.`;
    if (doctor.timezone !== fmt.zone) {
      text += ` That is ${inZone(doctor.timezone).dateTime(slot.start)} for ${doctor.name}.`;
    }
    selection.textContent = text;
  };

  const showDoctor = () => {
    const doctor = chosenDoctor();
    describe(null);
    if (!doctor) {
      doctorZone.textContent = '';
      zoneNote.textContent = '';
      replace(pickerBox, h('p', { class: 'muted' }, 'Choose a doctor to see free times.'));
      picker = null;
      return;
    }
    doctorZone.textContent = `${doctor.name} works in the ${doctor.timezone} time zone.`;
    zoneNote.textContent = doctor.timezone === fmt.zone
      ? `Times are in your time zone, ${fmt.zone}.`
      : `Times are in your time zone, ${fmt.zone} (the doctor’s is ${doctor.timezone}).`;
    picker = slotPicker({ container: pickerBox, doctorId: doctor.id, fmt, onChange: describe });
  };

  try {
    doctors = await api.doctors();
    const wanted = new URLSearchParams(location.search).get('doctor');
    const preselect = doctors.length === 1 ? doctors[0].id : wanted;
    replace(doctorSelect,
      h('option', { value: '' }, doctors.length ? 'Choose a doctor' : 'No doctors yet'),
      ...doctors.map((d) => h('option', { value: d.id, selected: d.id === preselect }, d.name)));
    doctorSelect.addEventListener('change', showDoctor);
    showDoctor();
  } catch (error) {
    replace(pickerBox, failure(error, 'Could not load the doctors.'));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const slot = picker?.selected() || null;
    if (!chosenDoctor()) {
      showError(form, new ApiError(422, { errors: { doctor_id: 'is required: choose a doctor' } }));
      return;
    }
    if (!slot) {
      showError(form, new ApiError(422, { errors: { start: 'Choose one of the free times.' } }));
      return;
    }
    const reason = value(form, 'reason');
    say(status, '');
    const ok = await submitting(form, 'Booking…', async () => {
      await api.book({ doctor_id: doctorSelect.value, start: slot.start, ...(reason ? { reason } : {}) });
    });
    if (ok) {
      flashNext(`Booked: ${fmt.dateTime(slot.start)} with ${chosenDoctor()?.name || 'your doctor'}.`);
      location.assign('/dashboard');
    } else {
      // Someone else may have taken the slot meanwhile: show what is free now.
      picker?.reload();
    }
  });
}
