//! Writing mails into the outbox, inside the transaction of the
//! appointment change that causes them.
//!
//! Each row stores a snapshot (`Payload`) of what the mail must say, taken
//! in that transaction; the worker renders the message from it at send
//! time. Why a snapshot and not the appointment's current state: a mail is
//! the record of one event. A confirmation that waits out an SMTP outage
//! while the appointment is rescheduled must still carry `SEQUENCE` 0, so
//! that calendars order it before the update (sequence 1) instead of
//! treating two invites with the new time as the same revision — and a
//! confirmation must never turn into a `REQUEST` for an appointment that
//! was cancelled meanwhile. Why render at send time and not at enqueue:
//! the booking transaction stays a handful of INSERTs, a message that
//! cannot be built fails alone in the worker (marked `dead`) instead of
//! failing the booking, and links use the current public URL.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::MailContext;
use crate::db::DbError;
use crate::db::outbox::{self as repo, NewMail};
use crate::domain::{Appointment, AppointmentId, MailId, MailKind, Role, User};

/// The appointment change that causes mails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailEvent {
    /// Confirmation to both participants, plus their reminders.
    Booked,
    /// Update to both; their pending reminders move to the new time.
    Rescheduled,
    /// Cancellation to both; their pending reminders are dropped.
    Cancelled,
}

/// What one mail says, as it was when the change committed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payload {
    pub appointment_id: AppointmentId,
    /// The appointment's sequence at the change (calendar `SEQUENCE`).
    pub sequence: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub recipient_name: String,
    /// IANA name; times in the mail are shown in this zone.
    pub recipient_timezone: String,
    pub other_name: String,
    pub other_role: Role,
    /// When the change happened (the invite's DTSTAMP).
    pub changed_at: DateTime<Utc>,
    /// Reminders only: how long before the start it goes out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_minutes: Option<i64>,
}

fn payload_for(appointment: &Appointment, me: &User, other: &User, now: DateTime<Utc>) -> Payload {
    Payload {
        appointment_id: appointment.id,
        sequence: appointment.sequence,
        start: appointment.start,
        end: appointment.end,
        recipient_name: me.name.clone(),
        recipient_timezone: me.timezone.name().to_owned(),
        other_name: other.name.clone(),
        other_role: other.role,
        changed_at: now,
        reminder_minutes: None,
    }
}

/// The row for one mail; `json` is its serialised payload.
fn new_mail<'a>(
    kind: MailKind,
    recipient: &'a User,
    payload: &Payload,
    json: &'a str,
    send_after: DateTime<Utc>,
) -> NewMail<'a> {
    NewMail {
        id: MailId::new(),
        kind,
        appointment_id: Some(payload.appointment_id),
        recipient_id: recipient.id,
        recipient_email: &recipient.email,
        payload: json,
        send_after,
    }
}

fn to_json(payload: &Payload) -> Result<String, DbError> {
    serde_json::to_string(payload).map_err(|e| DbError::Corrupt(format!("mail payload: {e}")))
}

/// The two participants as they are in the change's transaction (read
/// there by the caller, together with whatever else it needed).
#[derive(Clone, Copy, Debug)]
pub struct Recipients<'a> {
    pub doctor: &'a User,
    pub patient: &'a User,
}

/// Writes the mails `event` causes for `appointment` (as it is after the
/// change) into the outbox, on `conn`, which must be the change's open
/// transaction: the mails commit or roll back with the change. Call
/// [`MailContext::wake`] after the commit. Returns how many rows it wrote.
///
/// All rows go in one `INSERT`; a reschedule or cancel first drops the
/// reminders that have not gone out.
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    event: MailEvent,
    appointment: &Appointment,
    recipients: Recipients<'_>,
    context: &MailContext,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let Recipients { doctor, patient } = recipients;
    if event != MailEvent::Booked {
        repo::delete_open_reminders(conn, appointment.id).await?;
    }
    let kind = match event {
        MailEvent::Booked => MailKind::Confirmation,
        MailEvent::Rescheduled => MailKind::Update,
        MailEvent::Cancelled => MailKind::Cancellation,
    };
    // (kind, recipient, payload, its JSON, send_after): the JSON is owned
    // here so that the rows can borrow it until the one INSERT.
    let mut planned: Vec<(MailKind, &User, Payload, String, DateTime<Utc>)> = Vec::new();
    for (me, other) in [(patient, doctor), (doctor, patient)] {
        let payload = payload_for(appointment, me, other, now);
        let json = to_json(&payload)?;
        planned.push((kind, me, payload.clone(), json, now));
        if event == MailEvent::Cancelled {
            continue;
        }
        for lead in context.reminders() {
            let at = appointment.start - *lead;
            // A reminder whose moment has already passed would arrive
            // together with the confirmation: leave it out.
            if at <= now {
                continue;
            }
            let reminder = Payload { reminder_minutes: Some(lead.num_minutes()), ..payload.clone() };
            let json = to_json(&reminder)?;
            planned.push((MailKind::Reminder, me, reminder, json, at));
        }
    }
    let rows: Vec<NewMail<'_>> =
        planned.iter().map(|(kind, me, payload, json, at)| new_mail(*kind, me, payload, json, *at)).collect();
    repo::insert_many(conn, &rows, now).await?;
    Ok(rows.len())
}
