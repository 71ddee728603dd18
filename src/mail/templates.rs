//! Subject, plain text and HTML of a mail, from the templates beside this
//! file (embedded at build time). The HTML template escapes every value
//! (minijinja escapes by the `.html` name), so a name like
//! `<script>` shows as text.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, Error, Output, State, UndefinedBehavior, escape_formatter};
use serde::Serialize;

use crate::domain::MailKind;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("mail template: {0}")]
    Render(#[from] minijinja::Error),
}

/// What the templates may show. Deliberately no reason for the visit and
/// no other health detail: mail is not a confidential channel.
#[derive(Clone, Debug, Serialize)]
pub struct MailView {
    pub kind: MailKind,
    pub subject: String,
    pub recipient_name: String,
    pub other_name: String,
    pub other_is_doctor: bool,
    /// "Tuesday, 1 December 2026, 10:00–10:30" in the recipient's zone.
    pub when: String,
    /// "Europe/Berlin (CET)".
    pub zone: String,
    /// Local time the room opens.
    pub opens: String,
    /// "24 hours" (reminders only).
    pub lead: Option<String>,
    pub room_url: String,
    pub dashboard_url: String,
}

/// The rendered parts of one mail.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The appointment's times as the recipient reads them.
pub struct LocalTimes {
    pub when: String,
    pub zone: String,
    pub opens: String,
    /// Short form for the subject: "Tue 1 Dec 2026, 10:00 Europe/Berlin".
    pub short: String,
}

pub fn local_times(start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> LocalTimes {
    let (s, e) = (start.with_timezone(&tz), end.with_timezone(&tz));
    let when = if s.date_naive() == e.date_naive() {
        format!("{}–{}", s.format("%A, %-d %B %Y, %H:%M"), e.format("%H:%M"))
    } else {
        format!("{} – {}", s.format("%A, %-d %B %Y, %H:%M"), e.format("%A, %-d %B %Y, %H:%M"))
    };
    let abbreviation = s.format("%Z").to_string();
    let zone = if abbreviation == tz.name() { abbreviation } else { format!("{} ({abbreviation})", tz.name()) };
    let opens = (s - chrono::Duration::minutes(15)).format("%H:%M").to_string();
    let short = format!("{} {}", s.format("%a %-d %b %Y, %H:%M"), tz.name());
    LocalTimes { when, zone, opens, short }
}

/// "24 hours", "1 hour", "90 minutes", "2 days".
pub fn lead_time(minutes: i64) -> String {
    let plural = |n: i64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    if minutes % (24 * 60) == 0 && minutes > 24 * 60 {
        plural(minutes / (24 * 60), "day")
    } else if minutes % 60 == 0 {
        plural(minutes / 60, "hour")
    } else {
        plural(minutes, "minute")
    }
}

/// Subjects name the event and the time, never the other person or the
/// reason: subjects show on lock screens and in notification banners.
pub fn subject(kind: MailKind, short_when: &str) -> String {
    match kind {
        MailKind::Confirmation => format!("Appointment confirmed: {short_when}"),
        MailKind::Update => format!("Appointment moved: {short_when}"),
        MailKind::Cancellation => format!("Appointment cancelled: {short_when}"),
        MailKind::Reminder => format!("Reminder: appointment {short_when}"),
        MailKind::PasswordReset => "Reset your Consulta password".to_owned(),
    }
}

/// HTML escaping of `&`, `<`, `>`, `"` and `'`: enough inside element
/// text and quoted attributes. Unlike minijinja's default it leaves `/`
/// alone, so links stay readable in the source of the mail.
fn html_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if *state.auto_escape() == AutoEscape::Html
        && !value.is_safe()
        && let Some(text) = value.as_str()
    {
        for c in text.chars() {
            match c {
                '&' => out.write_str("&amp;")?,
                '<' => out.write_str("&lt;")?,
                '>' => out.write_str("&gt;")?,
                '"' => out.write_str("&quot;")?,
                '\'' => out.write_str("&#39;")?,
                c => out.write_char(c)?,
            }
        }
        return Ok(());
    }
    escape_formatter(out, state, value)
}

/// The compiled templates; built once at start so a broken template stops
/// start-up instead of killing mails one by one.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build()?);
        // A typo in a template is an error, not an empty string in a patient's mail.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_formatter(html_formatter);
        env.add_template("mail.txt", include_str!("templates/mail.txt"))?;
        env.add_template("mail.html", include_str!("templates/mail.html"))?;
        Ok(Self { env })
    }

    pub fn render(&self, view: &MailView) -> Result<Rendered, TemplateError> {
        let context = Value::from(Serde(view));
        let text = self.env.get_template("mail.txt")?.render(context.clone())?;
        let html = self.env.get_template("mail.html")?.render(context)?;
        Ok(Rendered { subject: view.subject.clone(), text, html })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::TimeZone as _;

    fn view(kind: MailKind) -> MailView {
        MailView {
            kind,
            subject: "s".into(),
            recipient_name: "Pat <b>Patient</b>".into(),
            other_name: "Dr. O'Neil & \"Sons\"".into(),
            other_is_doctor: true,
            when: "Tuesday, 1 December 2026, 10:00–10:30".into(),
            zone: "Europe/Berlin (CET)".into(),
            opens: "09:45".into(),
            lead: Some("1 hour".into()),
            room_url: "https://clinic.example/room/abc?x=1&y=2".into(),
            dashboard_url: "https://clinic.example/dashboard".into(),
        }
    }

    #[test]
    fn html_escapes_names_and_text_keeps_them() {
        let t = Templates::new().unwrap();
        let r = t.render(&view(MailKind::Confirmation)).unwrap();
        assert!(r.html.contains("Pat &lt;b&gt;Patient&lt;/b&gt;"), "{}", r.html);
        assert!(r.html.contains("O&#39;Neil &amp; &quot;Sons&quot;"), "{}", r.html);
        assert!(r.html.contains("href=\"https://clinic.example/room/abc?x=1&amp;y=2\""), "{}", r.html);
        assert!(r.text.contains("Hello Pat <b>Patient</b>,"));
        assert!(r.text.contains("Room: https://clinic.example/room/abc?x=1&y=2"));
        assert!(r.text.contains("camera and microphone"));
        assert!(r.text.contains("opens at 09:45"));
    }

    #[test]
    fn every_kind_renders() {
        let t = Templates::new().unwrap();
        for kind in [MailKind::Confirmation, MailKind::Update, MailKind::Cancellation, MailKind::Reminder] {
            let r = t.render(&view(kind)).unwrap();
            assert!(r.text.contains("Dr. O'Neil"), "{kind}: {}", r.text);
            assert_eq!(r.text.contains("Room:"), kind != MailKind::Cancellation, "{kind}");
            assert!(r.text.contains("https://clinic.example/dashboard"));
        }
        let reminder = t.render(&view(MailKind::Reminder)).unwrap();
        assert!(reminder.text.contains("starts in 1 hour"));
    }

    #[test]
    fn times_are_local_with_the_zone_named() {
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let end = start + chrono::Duration::minutes(30);
        let berlin = local_times(start, end, chrono_tz::Europe::Berlin);
        assert_eq!(berlin.when, "Tuesday, 1 December 2026, 10:00–10:30");
        assert_eq!(berlin.zone, "Europe/Berlin (CET)");
        assert_eq!(berlin.opens, "09:45");
        assert_eq!(berlin.short, "Tue 1 Dec 2026, 10:00 Europe/Berlin");
        let utc = local_times(start, end, chrono_tz::UTC);
        assert_eq!(utc.zone, "UTC");
        let summer = local_times(
            start + chrono::Duration::days(180),
            end + chrono::Duration::days(180),
            chrono_tz::Europe::Berlin,
        );
        assert!(summer.zone.ends_with("(CEST)"), "{}", summer.zone);
    }

    #[test]
    fn lead_times_read_naturally() {
        assert_eq!(lead_time(60), "1 hour");
        assert_eq!(lead_time(24 * 60), "24 hours");
        assert_eq!(lead_time(48 * 60), "2 days");
        assert_eq!(lead_time(90), "90 minutes");
    }

    #[test]
    fn subjects_hold_no_names_or_reasons() {
        assert_eq!(
            subject(MailKind::Update, "Tue 1 Dec 2026, 10:00 UTC"),
            "Appointment moved: Tue 1 Dec 2026, 10:00 UTC"
        );
    }
}
