//! What the mail outbox stores about a mail: its kind and where it is in
//! delivery.

use std::fmt;
use std::str::FromStr;

/// Why a mail is sent. Stored as text in `mail_outbox.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailKind {
    /// The appointment was booked.
    Confirmation,
    /// The appointment moved to another time.
    Update,
    /// The appointment was cancelled.
    Cancellation,
    /// The appointment starts soon.
    Reminder,
    /// A password-reset link (no appointment).
    #[serde(rename = "password_reset")]
    PasswordReset,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Confirmation => "confirmation",
            MailKind::Update => "update",
            MailKind::Cancellation => "cancellation",
            MailKind::Reminder => "reminder",
            MailKind::PasswordReset => "password_reset",
        }
    }
}

/// Delivery state of an outbox row. Stored as text in `mail_outbox.status`.
///
/// `pending` → `sending` (claimed under a lease) → `sent`, back to `pending`
/// after a transient failure, or `dead` after a permanent one. A reminder
/// whose appointment had already started when it came due is `skipped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailStatus {
    Pending,
    Sending,
    Sent,
    Dead,
    Skipped,
}

impl MailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Pending => "pending",
            MailStatus::Sending => "sending",
            MailStatus::Sent => "sent",
            MailStatus::Dead => "dead",
            MailStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown value {0:?}")]
pub struct UnknownMailValue(pub String);

impl FromStr for MailKind {
    type Err = UnknownMailValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [MailKind::Confirmation, MailKind::Update, MailKind::Cancellation, MailKind::Reminder, MailKind::PasswordReset]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownMailValue(s.to_owned()))
    }
}

impl FromStr for MailStatus {
    type Err = UnknownMailValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [MailStatus::Pending, MailStatus::Sending, MailStatus::Sent, MailStatus::Dead, MailStatus::Skipped]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownMailValue(s.to_owned()))
    }
}

impl fmt::Display for MailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for MailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_round_trip_through_text() {
        for kind in [MailKind::Confirmation, MailKind::Update, MailKind::Cancellation, MailKind::Reminder] {
            assert_eq!(kind.as_str().parse::<MailKind>(), Ok(kind));
        }
        for status in
            [MailStatus::Pending, MailStatus::Sending, MailStatus::Sent, MailStatus::Dead, MailStatus::Skipped]
        {
            assert_eq!(status.as_str().parse::<MailStatus>(), Ok(status));
        }
        assert!("lost".parse::<MailStatus>().is_err());
    }
}
