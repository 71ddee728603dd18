//! Mails about the account rather than an appointment: the password-reset
//! link. Written through the same outbox, so a reset requested while the
//! mail server is down is still delivered when it returns.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::Address;
use lettre::message::{Mailbox, Message, MultiPart};
use serde::{Deserialize, Serialize};

use super::compose::{ComposeError, Composed, Composer, display_name};
use crate::db::DbError;
use crate::db::outbox::{self as repo, ClaimedMail, NewMail};
use crate::domain::{MailId, MailKind, User};

/// What a password-reset mail says. `link` carries the token in its
/// fragment (`…/reset#token=…`): browsers never send a fragment to the
/// server, so the token stays out of access logs and `Referer` headers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PasswordResetPayload {
    pub recipient_name: String,
    pub link: String,
    pub expires_at: DateTime<Utc>,
}

/// Writes a password-reset mail into the outbox on `conn` (the caller's
/// transaction). Call [`super::MailContext::wake`] after the commit.
pub async fn enqueue_password_reset(
    conn: &mut sqlx::AnyConnection,
    user: &User,
    payload: &PasswordResetPayload,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let json = serde_json::to_string(payload).map_err(|e| DbError::Corrupt(format!("mail payload: {e}")))?;
    let mail = NewMail {
        id: MailId::new(),
        kind: MailKind::PasswordReset,
        appointment_id: None,
        recipient_id: user.id,
        recipient_email: &user.email,
        payload: &json,
        send_after: now,
    };
    repo::insert(conn, &mail, now).await
}

impl Composer {
    pub(super) fn compose_password_reset(&self, mail: &ClaimedMail) -> Result<Composed, ComposeError> {
        let payload: PasswordResetPayload = serde_json::from_str(&mail.payload)?;
        let address: Address =
            mail.recipient_email.parse().map_err(|_| ComposeError::Address(mail.recipient_email.clone()))?;
        let name = display_name(&payload.recipient_name);
        let greeting = name.clone().unwrap_or_else(|| "there".to_owned());
        let until = payload.expires_at.format("%H:%M UTC");
        let text = format!(
            "Hello {greeting},\n\nSomeone (hopefully you) asked to reset the password of your Consulta account.\n\
             Choose a new password here:\n\n{link}\n\nThe link works once, until {until} (30 minutes). Using it \
             signs you out everywhere.\nIf you did not ask for this, ignore this mail: your password stays as it \
             is.\n",
            link = payload.link
        );
        let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        let html = format!(
            "<p>Hello {greeting},</p><p>Someone (hopefully you) asked to reset the password of your Consulta \
             account.</p><p><a href=\"{link}\">Choose a new password</a></p><p>The link works once, until {until} \
             (30 minutes). Using it signs you out everywhere.</p><p>If you did not ask for this, ignore this mail: \
             your password stays as it is.</p>",
            greeting = escape(&greeting),
            link = escape(&payload.link),
        );
        let message_id = self.message_id(mail);
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, address))
            .subject("Reset your Consulta password")
            .message_id(Some(message_id.clone()))
            .date(SystemTime::from(mail.created_at))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| ComposeError::Build(e.to_string()))?;
        Ok(Composed { envelope: message.envelope().clone(), bytes: message.formatted(), message_id })
    }
}
