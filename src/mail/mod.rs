//! Email notifications through a transactional outbox.
//!
//! `scheduling` calls [`enqueue`] inside each appointment change's
//! transaction, so mails commit (or roll back) with the change, then
//! [`MailContext::wake`]s the worker. The [`MailWorker`] started by `serve`
//! delivers rows over SMTP (or into `.eml` files), retrying transient
//! failures with backoff and marking permanent ones `dead`. Nothing in the
//! booking path waits on a mail server. See `docs/mail.md`.

mod account;
mod compose;
mod invite;
mod outbox;
mod templates;
mod transport;
mod worker;

use std::sync::Arc;

use tokio::sync::Notify;

pub use account::{PasswordResetPayload, enqueue_password_reset};
pub use compose::{ComposeError, Composer, display_name};
pub use outbox::{MailEvent, Payload, Recipients, enqueue};
pub use templates::{TemplateError, Templates};
pub use transport::{SendError, Transport, TransportError};
pub use worker::{MailWorker, WorkerHandle, WorkerSettings, backoff};

use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;

/// Why mail could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("CONSULTA_MAIL_FROM: {0:?} is not one mailbox such as Consulta <no-reply@clinic.example>")]
    From(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// What an appointment change needs to write its mails: the reminder
/// offsets, and the worker's doorbell. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MailContext {
    reminders: Arc<[chrono::Duration]>,
    wake: Arc<Notify>,
}

impl MailContext {
    /// Offsets longer than chrono can hold are dropped (config allows at most 30 days).
    pub fn new(reminders: &[std::time::Duration]) -> Self {
        let reminders: Vec<chrono::Duration> =
            reminders.iter().filter_map(|d| chrono::Duration::from_std(*d).ok()).collect();
        Self { reminders: reminders.into(), wake: Arc::new(Notify::new()) }
    }

    pub fn from_config(config: &Config) -> Self {
        Self::new(&config.mail_reminders)
    }

    /// How long before the start each reminder goes out.
    pub fn reminders(&self) -> &[chrono::Duration] {
        &self.reminders
    }

    /// Tells the worker that new rows are waiting. Never blocks; call it
    /// after the transaction that wrote them has committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }
}

/// The transport the configuration names, in words for the start-up log.
pub fn describe(config: &Config) -> String {
    match &config.smtp_url {
        Some(url) => format!("SMTP ({})", crate::startup::redact_url(url)),
        None => format!(".eml files in {}", config.data_dir.join("mail").display()),
    }
}

/// A worker for `config` over `db`, woken through `context`. Fails on an
/// unusable sender, SMTP URL or mail folder, naming the variable.
pub fn worker_from_config(
    config: &Config,
    db: Db,
    clock: Clock,
    context: MailContext,
) -> Result<MailWorker, MailError> {
    let from = config.mail_from.parse().map_err(|_| MailError::From(config.mail_from.clone()))?;
    let composer = Composer::new(from, config.public_url.clone(), Templates::new()?);
    let transport = Transport::from_config(config.smtp_url.as_deref(), &config.data_dir)?;
    Ok(MailWorker::new(db, clock, composer, transport, context, WorkerSettings::new(config.mail_retry_min)))
}
