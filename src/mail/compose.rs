//! One outbox row → one MIME message: multipart text + HTML, and for
//! confirmations, updates and cancellations a `text/calendar` invite.
//!
//! Every header goes through lettre's typed builders; display names are
//! cleaned first because lettre 0.11 panics on CR/LF in a display name.
//! Composing is deterministic for a row (same `Message-ID`, `Date` and
//! body on every attempt), so a receiving server or client can drop the
//! duplicate that at-least-once delivery may produce.

use std::time::SystemTime;

use chrono_tz::Tz;
use lettre::Address;
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, Message, MultiPart};

use super::invite::{self, Invite, Method};
use super::outbox::Payload;
use super::templates::{MailView, TemplateError, Templates, lead_time, local_times, subject};
use crate::config::PublicUrl;
use crate::db::outbox::ClaimedMail;
use crate::domain::{MailKind, Role};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("the stored mail cannot be read: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    #[error("the recipient address {0:?} is not valid")]
    Address(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("the message cannot be built: {0}")]
    Build(String),
}

/// A message ready for any transport.
#[derive(Clone, Debug)]
pub struct Composed {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
    pub message_id: String,
}

/// Builds messages; one per worker, shared by its tasks.
#[derive(Debug)]
pub struct Composer {
    pub(super) from: Mailbox,
    pub(super) public_url: PublicUrl,
    templates: Templates,
}

/// A display name that is safe in a header: control characters (CR, LF,
/// tab, …) and Unicode line separators become spaces, runs of spaces
/// collapse, at most 100 characters. Quotes and non-ASCII stay: lettre
/// quotes and RFC 2047-encodes them.
pub fn display_name(raw: &str) -> Option<String> {
    let cleaned: String =
        raw.chars().map(|c| if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') { ' ' } else { c }).collect();
    let name: String = cleaned.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(100).collect();
    (!name.is_empty()).then_some(name)
}

impl Composer {
    pub fn new(from: Mailbox, public_url: PublicUrl, templates: Templates) -> Self {
        Self { from, public_url, templates }
    }

    pub fn from_address(&self) -> &Address {
        &self.from.email
    }

    /// `<mail-id@sender-domain>`: derived from the outbox id, so every
    /// attempt of one row carries the same id.
    pub fn message_id(&self, mail: &ClaimedMail) -> String {
        format!("<{}@{}>", mail.id, self.from.email.domain())
    }

    pub fn compose(&self, mail: &ClaimedMail) -> Result<Composed, ComposeError> {
        if mail.kind == MailKind::PasswordReset {
            return self.compose_password_reset(mail);
        }
        let payload: Payload = serde_json::from_str(&mail.payload)?;
        let tz: Tz = payload
            .recipient_timezone
            .parse()
            .map_err(|_| ComposeError::TimeZone(payload.recipient_timezone.clone()))?;
        let address: Address =
            mail.recipient_email.parse().map_err(|_| ComposeError::Address(mail.recipient_email.clone()))?;
        let times = local_times(payload.start, payload.end, tz);
        let room_url = self.public_url.join(&format!("/room/{}", payload.appointment_id));
        let other_name = display_name(&payload.other_name).unwrap_or_else(|| "your appointment".to_owned());
        let recipient_name = display_name(&payload.recipient_name);
        let view = MailView {
            kind: mail.kind,
            subject: subject(mail.kind, &times.short),
            recipient_name: recipient_name.clone().unwrap_or_else(|| "there".to_owned()),
            other_name: other_name.clone(),
            other_is_doctor: payload.other_role == Role::Doctor,
            when: times.when,
            zone: times.zone,
            opens: times.opens,
            lead: payload.reminder_minutes.map(lead_time),
            room_url: room_url.clone(),
            dashboard_url: self.public_url.join("/dashboard"),
        };
        let rendered = self.templates.render(&view)?;
        let message_id = self.message_id(mail);
        let builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(recipient_name, address.clone()))
            .subject(rendered.subject)
            .message_id(Some(message_id.clone()))
            .date(SystemTime::from(mail.created_at));
        let body = MultiPart::alternative_plain_html(rendered.text, rendered.html);
        let method = match mail.kind {
            MailKind::Confirmation | MailKind::Update => Some(Method::Request),
            MailKind::Cancellation => Some(Method::Cancel),
            MailKind::Reminder | MailKind::PasswordReset => None,
        };
        let build = |e: lettre::error::Error| ComposeError::Build(e.to_string());
        let message = match method {
            None => builder.multipart(body).map_err(build)?,
            Some(method) => {
                let summary = format!("Video consultation with {other_name}");
                let description = format!(
                    "Join in a browser: {room_url}\nAllow camera and microphone when asked. The room opens 15 \
                     minutes before the start.\nCancel or reschedule: {}",
                    self.public_url.join("/dashboard")
                );
                let ics = invite::render(&Invite {
                    method,
                    appointment_id: payload.appointment_id,
                    sequence: payload.sequence,
                    start: payload.start,
                    end: payload.end,
                    stamp: payload.changed_at,
                    summary: &summary,
                    description: &description,
                    room_url: &room_url,
                    organizer_email: self.from.email.as_ref(),
                    attendee_email: address.as_ref(),
                    attendee_name: view.recipient_name.as_str(),
                });
                let content_type =
                    ContentType::parse(&format!("text/calendar; charset=utf-8; method={}", method.as_str()))
                        .map_err(|e| ComposeError::Build(e.to_string()))?;
                let attachment = Attachment::new("invite.ics".to_owned()).body(ics, content_type);
                builder.multipart(MultiPart::mixed().multipart(body).singlepart(attachment)).map_err(build)?
            }
        };
        Ok(Composed { envelope: message.envelope().clone(), bytes: message.formatted(), message_id })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeZone as _, Utc};

    use super::*;
    use crate::domain::{AppointmentId, MailId, UserId};

    fn composer() -> Composer {
        Composer::new(
            "Consulta <no-reply@clinic.example>".parse().unwrap(),
            PublicUrl::parse("https://clinic.example").unwrap(),
            Templates::new().unwrap(),
        )
    }

    fn claimed(kind: MailKind, recipient_name: &str, other_name: &str) -> ClaimedMail {
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let payload = Payload {
            appointment_id: AppointmentId::new(),
            sequence: 0,
            start,
            end: start + chrono::Duration::minutes(30),
            recipient_name: recipient_name.into(),
            recipient_timezone: "America/New_York".into(),
            other_name: other_name.into(),
            other_role: Role::Doctor,
            changed_at: start - chrono::Duration::days(2),
            reminder_minutes: None,
        };
        ClaimedMail {
            id: MailId::new(),
            kind,
            appointment_id: Some(payload.appointment_id),
            recipient_id: UserId::new(),
            recipient_email: "pat@example.org".into(),
            payload: serde_json::to_string(&payload).unwrap(),
            attempts: 1,
            send_after: start,
            created_at: start - chrono::Duration::days(2),
        }
    }

    fn headers(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes).to_string();
        text.split("\r\n\r\n").next().unwrap().to_owned()
    }

    #[test]
    fn hostile_display_names_neither_panic_nor_inject_headers() {
        let c = composer();
        for name in [
            "Eve\r\nBcc: victim@example.org",
            "Eve\nSubject: pwned",
            "\"Quoted\" \\ Name, <x@y.z>; Bcc: a@b.c",
            "Zoë Ñúñez-O'Brien 李小龍",
            "\r\n\t",
            "\u{2028}Line\u{2029}separator\u{85}",
        ] {
            let mail = claimed(MailKind::Confirmation, name, name);
            let composed = c.compose(&mail).unwrap();
            let head = headers(&composed.bytes);
            assert!(!head.contains("\r\nBcc:") && !head.contains("\r\nSubject: pwned"), "{name:?} injected:\n{head}");
            assert_eq!(head.matches("\r\nSubject:").count() + usize::from(head.starts_with("Subject:")), 1);
            assert_eq!(composed.envelope.to().len(), 1);
            assert_eq!(composed.envelope.to()[0].to_string(), "pat@example.org");
        }
    }

    #[test]
    fn message_id_and_date_are_the_same_on_every_attempt() {
        let c = composer();
        let mail = claimed(MailKind::Update, "Pat", "Dr. Who");
        let (a, b) = (c.compose(&mail).unwrap(), c.compose(&mail).unwrap());
        assert_eq!(a.message_id, format!("<{}@clinic.example>", mail.id));
        let (ha, hb) = (headers(&a.bytes), headers(&b.bytes));
        let line = |h: &str, name: &str| h.lines().find(|l| l.starts_with(name)).map(str::to_owned);
        assert_eq!(line(&ha, "Message-ID:"), Some(format!("Message-ID: {}", a.message_id)));
        assert_eq!(line(&ha, "Date:"), line(&hb, "Date:"));
    }

    #[test]
    fn reminders_carry_no_invite_and_cancellations_a_cancel() {
        let c = composer();
        let reminder = c.compose(&claimed(MailKind::Reminder, "Pat", "Dr. Who")).unwrap();
        assert!(!String::from_utf8_lossy(&reminder.bytes).contains("text/calendar"));
        let cancel = c.compose(&claimed(MailKind::Cancellation, "Pat", "Dr. Who")).unwrap();
        assert!(String::from_utf8_lossy(&cancel.bytes).contains("method=CANCEL"));
    }

    #[test]
    fn bad_rows_are_errors_not_panics() {
        let c = composer();
        let mut mail = claimed(MailKind::Confirmation, "Pat", "Dr. Who");
        mail.recipient_email = "not an address".into();
        assert!(matches!(c.compose(&mail), Err(ComposeError::Address(_))));
        mail.payload = "{".into();
        assert!(matches!(c.compose(&mail), Err(ComposeError::Payload(_))));
    }

    #[test]
    fn display_names_are_cleaned() {
        assert_eq!(display_name(" Eve\r\nBcc: x@y "), Some("Eve Bcc: x@y".to_owned()));
        assert_eq!(display_name("\r\n"), None);
        assert_eq!(display_name(&"é".repeat(300)).map(|n| n.chars().count()), Some(100));
    }
}
