//! Appointments as the rules see them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AppointmentId, UserId};

/// The status a reader sees. `Completed` is derived (a scheduled
/// appointment whose end has passed); only the other two are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppointmentStatus {
    Scheduled,
    Cancelled,
    Completed,
}

impl AppointmentStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scheduled" => Some(Self::Scheduled),
            "cancelled" => Some(Self::Cancelled),
            "completed" => Some(Self::Completed),
            _ => None,
        }
    }
}

/// One side of an appointment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    pub id: UserId,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appointment {
    pub id: AppointmentId,
    pub doctor: Party,
    pub patient: Party,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub cancelled: bool,
    pub reason: Option<String>,
    pub cancel_reason: Option<String>,
    pub cancelled_by: Option<UserId>,
    /// Raised on every reschedule (calendar invites' SEQUENCE).
    pub sequence: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Appointment {
    pub fn status(&self, now: DateTime<Utc>) -> AppointmentStatus {
        if self.cancelled {
            AppointmentStatus::Cancelled
        } else if self.end <= now {
            AppointmentStatus::Completed
        } else {
            AppointmentStatus::Scheduled
        }
    }

    pub fn is_participant(&self, user: UserId) -> bool {
        self.doctor.id == user || self.patient.id == user
    }

    /// When the video room opens and closes: 15 minutes before the start
    /// until 60 minutes after the end.
    pub fn join_window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.start - chrono::Duration::minutes(15), self.end + chrono::Duration::minutes(60))
    }

    /// The participant who is not `user`.
    pub fn other_party(&self, user: UserId) -> &Party {
        if self.doctor.id == user { &self.patient } else { &self.doctor }
    }
}

/// Free text a patient or doctor attaches (why they come, why they cancel).
/// Trimmed; at most 1000 characters; line breaks allowed, other control
/// characters not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("must be at most 1000 characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl Note {
    /// `None` for an absent or blank note.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, NoteError> {
        let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if text.chars().count() > 1000 {
            return Err(NoteError::TooLong);
        }
        if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(NoteError::ControlCharacter);
        }
        Ok(Some(Self(text.replace("\r\n", "\n"))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_trimmed_bounded_and_clean() {
        assert_eq!(Note::parse(None), Ok(None));
        assert_eq!(Note::parse(Some("   ")), Ok(None));
        assert_eq!(Note::parse(Some(" cough\nfever ")).map(|n| n.map(|n| n.0)), Ok(Some("cough\nfever".into())));
        assert_eq!(Note::parse(Some(&"a".repeat(1001))), Err(NoteError::TooLong));
        assert_eq!(Note::parse(Some("a\u{7}b")), Err(NoteError::ControlCharacter));
    }
}
