// @ts-check
/**
 * The video room's page. This slice shows which appointment it belongs to;
 * media and signaling arrive with the room slice (no fake video here).
 */

import { api, ApiError } from '../api.js';
import { byId, h, replace } from '../dom.js';
import { failure } from '../feedback.js';
import { requireUser } from '../session.js';
import { inZone } from '../time.js';

const STATUS_LABELS = { scheduled: 'Scheduled', cancelled: 'Cancelled', completed: 'Completed' };
const body = byId('room-body', HTMLElement);
const appointmentId = decodeURIComponent(location.pathname.split('/').pop() || '');

const user = await requireUser();
if (user) {
  const fmt = inZone(user.timezone);
  try {
    const { appointment } = await api.appointment(appointmentId);
    const other = appointment.doctor.id === user.id ? appointment.patient : appointment.doctor;
    document.title = `Room: ${other.name} · Consulta`;
    replace(body,
      h('dl', { class: 'facts' },
        h('dt', {}, 'With'), h('dd', {}, other.name),
        h('dt', {}, 'When'), h('dd', {}, `${fmt.dateTime(appointment.start)}–${fmt.time(appointment.end)} (${fmt.zone})`),
        h('dt', {}, 'Status'), h('dd', {}, STATUS_LABELS[appointment.status] || appointment.status)),
      h('div', { class: 'notice room-soon', role: 'status' },
        h('strong', {}, 'Video rooms arrive soon.'),
        ' This page will hold the call for this appointment. Until then, please use the contact details your practice gave you.'));
  } catch (error) {
    replace(body, error instanceof ApiError && error.status === 404
      ? h('p', { class: 'notice is-error', role: 'alert' }, 'There is no appointment here, or it is not one of yours.')
      : failure(error, 'Could not load the appointment.'));
  }
}
