//! The calendar invite attached to confirmations, updates and
//! cancellations (iCalendar, RFC 5545, with iTIP methods from RFC 5546).
//!
//! Calendars match invites by `UID` and keep the one with the highest
//! `SEQUENCE`, so the UID is the appointment id (stable across
//! reschedules) and the sequence is the appointment's, raised by every
//! reschedule. A cancellation counts as one more revision (its STATUS
//! changes), so a late-arriving older `REQUEST` cannot bring the event back.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component as _, EventLike as _, EventStatus, Property};

use crate::domain::AppointmentId;

/// iTIP method of the invite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Request,
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

pub struct Invite<'a> {
    pub method: Method,
    pub appointment_id: AppointmentId,
    /// The appointment's sequence (0 at booking, +1 per reschedule).
    pub sequence: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// When the change happened (DTSTAMP).
    pub stamp: DateTime<Utc>,
    pub summary: &'a str,
    pub description: &'a str,
    pub room_url: &'a str,
    pub organizer_email: &'a str,
    pub attendee_email: &'a str,
    pub attendee_name: &'a str,
}

/// The same UID for every invite of one appointment.
pub fn uid(appointment_id: AppointmentId) -> String {
    format!("{appointment_id}@consulta")
}

/// iCalendar parameter values cannot hold `"` at all, and control
/// characters would break the line.
fn parameter_text(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control() && *c != '"').collect()
}

/// The `text/calendar` body.
pub fn render(invite: &Invite<'_>) -> String {
    let sequence = match invite.method {
        Method::Request => invite.sequence,
        Method::Cancel => invite.sequence + 1,
    };
    let status = match invite.method {
        Method::Request => EventStatus::Confirmed,
        Method::Cancel => EventStatus::Cancelled,
    };
    let event = icalendar::Event::new()
        .uid(&uid(invite.appointment_id))
        .sequence(u32::try_from(sequence).unwrap_or(u32::MAX))
        .timestamp(invite.stamp)
        .starts(invite.start)
        .ends(invite.end)
        .summary(invite.summary)
        .description(invite.description)
        .location(invite.room_url)
        .url(invite.room_url)
        .status(status)
        .append_property(
            Property::new("ORGANIZER", format!("mailto:{}", invite.organizer_email))
                .add_parameter("CN", "Consulta")
                .done(),
        )
        .append_property(
            Property::new("ATTENDEE", format!("mailto:{}", invite.attendee_email))
                .add_parameter("CN", &parameter_text(invite.attendee_name))
                .add_parameter("ROLE", "REQ-PARTICIPANT")
                .add_parameter("PARTSTAT", "ACCEPTED")
                .add_parameter("RSVP", "FALSE")
                .done(),
        )
        .done();
    let mut calendar = Calendar::empty();
    calendar
        .append_property(Property::new("VERSION", "2.0"))
        .append_property(Property::new("PRODID", "-//Consulta//Appointments//EN"))
        .append_property(Property::new("CALSCALE", "GREGORIAN"))
        .append_property(Property::new("METHOD", invite.method.as_str()))
        .push(event);
    calendar.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone as _;

    use super::*;

    fn invite(method: Method, name: &str) -> String {
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let id: AppointmentId = "0b6b2a5e-8c1f-4a57-9d8e-1f2a3b4c5d6e".parse().unwrap();
        render(&Invite {
            method,
            appointment_id: id,
            sequence: 2,
            start,
            end: start + chrono::Duration::minutes(30),
            stamp: start - chrono::Duration::days(3),
            summary: "Video consultation with Dr. Who; room, 1",
            description: "Join in a browser.\nAllow camera and microphone.",
            room_url: "https://clinic.example/room/0b6b2a5e-8c1f-4a57-9d8e-1f2a3b4c5d6e",
            organizer_email: "no-reply@clinic.example",
            attendee_email: "pat@example.org",
            attendee_name: name,
        })
    }

    #[test]
    fn request_carries_uid_sequence_and_utc_times() {
        let ics = invite(Method::Request, "Pat Patient");
        for line in [
            "METHOD:REQUEST",
            "UID:0b6b2a5e-8c1f-4a57-9d8e-1f2a3b4c5d6e@consulta",
            "SEQUENCE:2",
            "DTSTART:20261201T090000Z",
            "DTEND:20261201T093000Z",
            "DTSTAMP:20261128T090000Z",
            "STATUS:CONFIRMED",
            "SUMMARY:Video consultation with Dr. Who\\; room\\, 1",
        ] {
            assert!(ics.lines().any(|l| l == line), "{line} missing in\n{ics}");
        }
        assert!(ics.contains("\r\n"), "lines end in CRLF");
    }

    #[test]
    fn cancel_raises_the_sequence() {
        let ics = invite(Method::Cancel, "Pat");
        assert!(ics.lines().any(|l| l == "METHOD:CANCEL"));
        assert!(ics.lines().any(|l| l == "SEQUENCE:3"));
        assert!(ics.lines().any(|l| l == "STATUS:CANCELLED"));
    }

    #[test]
    fn hostile_names_cannot_add_properties() {
        let ics = invite(Method::Request, "Eve\"\r\nMETHOD:CANCEL");
        assert_eq!(ics.lines().filter(|l| l.starts_with("METHOD:")).count(), 1, "{ics}");
        let parsed: Calendar = ics.parse().unwrap();
        assert_eq!(parsed.property_value("METHOD"), Some("REQUEST"));
    }
}
