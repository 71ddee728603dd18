//! The delivery worker: claims due outbox rows under a lease, composes and
//! sends each in a task of its own, and records the outcome.
//!
//! - At least once: a row is marked `sent` only after the transport took
//!   it; a worker that dies mid-send leaves the row `sending`, and any
//!   worker takes it over when the lease runs out.
//! - Never twice from two servers: claims are conditional updates (see
//!   `db::outbox`); the lease is far longer than one delivery may take.
//! - One bad row stops nothing: composing runs under `catch_unwind`, each
//!   send is a task of its own, and a task that fails in any way ends its
//!   row as `dead` with the reason, never the loop.
//! - The booking path never waits on this: it only writes rows and pokes
//!   a `Notify`.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::MailContext;
use super::compose::Composer;
use super::outbox::Payload;
use super::transport::{SEND_TIMEOUT, SendError, Transport};
use crate::clock::Clock;
use crate::db::outbox::ClaimedMail;
use crate::db::{Db, DbError};
use crate::domain::{MailId, MailKind, MailStatus};

/// Retries never wait longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// A mail the server keeps refusing with temporary errors is given up
/// (marked dead) this long after it was due.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// Tuning of one worker.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// First retry delay (`CONSULTA_MAIL_RETRY_MIN_SECS`); doubles per attempt.
    pub retry_min: Duration,
    /// How often the outbox is looked at without a wake-up (rows written
    /// by another server, reminders coming due).
    pub poll: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How long a claim holds.
    pub lease: Duration,
}

impl WorkerSettings {
    pub fn new(retry_min: Duration) -> Self {
        Self { retry_min, poll: Duration::from_secs(5), concurrency: 4, lease: SEND_TIMEOUT * 4 }
    }
}

/// The delay before attempt `attempts + 1`: `retry_min · 2^(attempts-1)`,
/// at most an hour, spread ±20 % so that mails refused together do not
/// all come back in the same second.
pub fn backoff(retry_min: Duration, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 24)).unwrap_or(24);
    let base = retry_min.saturating_mul(2u32.saturating_pow(doublings)).min(MAX_BACKOFF);
    base.mul_f64(rand::random_range(0.8..1.2)).min(MAX_BACKOFF)
}

/// What the worker shares with its delivery tasks.
#[derive(Debug)]
struct Shared {
    db: Db,
    clock: Clock,
    composer: Composer,
    transport: Transport,
    settings: WorkerSettings,
    /// Names this worker's claims (one per process start).
    owner: String,
}

/// A worker, built and not yet running.
#[derive(Debug)]
pub struct MailWorker {
    shared: Arc<Shared>,
    context: MailContext,
}

/// A running worker.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops claiming, lets deliveries in flight finish for up to `grace`,
    /// then abandons them (their rows are taken over after the lease).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            tracing::warn!("mail worker stopped with deliveries in flight; they will be retried");
        }
    }
}

enum Outcome {
    Sent,
    Retry(DateTime<Utc>, String),
    Final(MailStatus, String),
}

impl MailWorker {
    pub fn new(
        db: Db,
        clock: Clock,
        composer: Composer,
        transport: Transport,
        context: MailContext,
        settings: WorkerSettings,
    ) -> Self {
        let owner = uuid::Uuid::new_v4().to_string();
        Self { shared: Arc::new(Shared { db, clock, composer, transport, settings, owner }), context }
    }

    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(stopped));
        WorkerHandle { stop, task }
    }

    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let shared = self.shared;
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut in_flight: HashMap<tokio::task::Id, MailId> = HashMap::new();
        loop {
            let free = shared.settings.concurrency.saturating_sub(tasks.len());
            if free > 0 {
                match claim(&shared, free).await {
                    Ok(batch) => {
                        for mail in batch {
                            let id = mail.id;
                            let handle = tasks.spawn(deliver(shared.clone(), mail));
                            in_flight.insert(handle.id(), id);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "mail worker could not read the outbox"),
                }
            }
            let wait = if tasks.len() >= shared.settings.concurrency {
                shared.settings.poll
            } else {
                wait_for_next(&shared).await
            };
            tokio::select! {
                _ = stopped.changed() => break,
                () = self.context.notified() => {}
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    settle_task(&shared, &mut in_flight, joined).await;
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
        while let Some(joined) = tasks.join_next_with_id().await {
            settle_task(&shared, &mut in_flight, joined).await;
        }
        tracing::debug!("mail worker stopped");
    }
}

/// How long to sleep: until the next row comes due, at most one poll
/// interval, at least a moment (so a row that cannot be claimed right now
/// does not make the loop spin).
async fn wait_for_next(shared: &Shared) -> Duration {
    let poll = shared.settings.poll;
    match shared.db.next_mail_due().await {
        Ok(Some(due)) => {
            let until = (due - shared.clock.now()).to_std().unwrap_or(Duration::ZERO);
            until.clamp(Duration::from_millis(50), poll)
        }
        Ok(None) => poll,
        Err(e) => {
            tracing::warn!(error = %e, "mail worker could not read the outbox");
            poll
        }
    }
}

/// Claims up to `max` due rows.
async fn claim(shared: &Shared, max: usize) -> Result<Vec<ClaimedMail>, DbError> {
    let now = shared.clock.now();
    let lease_until = now + chrono::Duration::from_std(shared.settings.lease).unwrap_or(chrono::Duration::minutes(6));
    // Ask for a few more than needed: another worker may win some of them.
    let ids = shared.db.due_mail(now, u32::try_from(max * 2).unwrap_or(u32::MAX)).await?;
    let mut claimed = Vec::with_capacity(max);
    for id in ids {
        if claimed.len() >= max {
            break;
        }
        match shared.db.claim_mail(id, &shared.owner, lease_until, now).await {
            Ok(Some(mail)) => claimed.push(mail),
            Ok(None) => {}
            // Busy or deadlocked: another worker is at it; the next round sees the row again.
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(claimed)
}

/// A delivery task ended: if it panicked, its row is dead (retrying would
/// panic again).
async fn settle_task(
    shared: &Shared,
    in_flight: &mut HashMap<tokio::task::Id, MailId>,
    joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    let task = match &joined {
        Ok((task, ())) => *task,
        Err(e) => e.id(),
    };
    let Some(id) = in_flight.remove(&task) else { return };
    if let Err(e) = joined
        && e.is_panic()
    {
        tracing::error!(mail_id = %id, "mail delivery panicked; the mail is dead");
        record(shared, id, Outcome::Final(MailStatus::Dead, "the delivery failed unexpectedly".into())).await;
    }
}

/// Composes and sends one claimed row, then records what happened.
async fn deliver(shared: Arc<Shared>, mail: ClaimedMail) {
    let outcome = attempt(&shared, &mail).await;
    match &outcome {
        Outcome::Sent => tracing::info!(mail_id = %mail.id, kind = %mail.kind, attempts = mail.attempts, "mail sent"),
        Outcome::Retry(at, error) => tracing::info!(
            mail_id = %mail.id, kind = %mail.kind, attempts = mail.attempts, retry_at = %at, %error,
            "mail not delivered; will retry"
        ),
        Outcome::Final(MailStatus::Skipped, why) => tracing::info!(mail_id = %mail.id, %why, "reminder skipped"),
        Outcome::Final(status, error) => tracing::warn!(
            mail_id = %mail.id, kind = %mail.kind, appointment_id = ?mail.appointment_id,
            recipient_id = %mail.recipient_id, attempts = mail.attempts, %status, %error,
            "mail is dead and will not be retried (see GET /api/admin/mail?status=dead)"
        ),
    }
    record(&shared, mail.id, outcome).await;
}

async fn attempt(shared: &Shared, mail: &ClaimedMail) -> Outcome {
    let now = shared.clock.now();
    if mail.kind == MailKind::Reminder {
        match serde_json::from_str::<Payload>(&mail.payload) {
            Ok(p) if p.start <= now => {
                return Outcome::Final(MailStatus::Skipped, "the appointment had already started".into());
            }
            Ok(_) => {}
            Err(e) => return Outcome::Final(MailStatus::Dead, format!("the stored mail cannot be read: {e}")),
        }
    }
    // lettre panics on some malformed input; a panic here must end this
    // row, not the task that other rows share.
    let composed = match catch_unwind(AssertUnwindSafe(|| shared.composer.compose(mail))) {
        Ok(Ok(composed)) => composed,
        Ok(Err(e)) => return Outcome::Final(MailStatus::Dead, e.to_string()),
        Err(_) => return Outcome::Final(MailStatus::Dead, "the message could not be built (panic)".into()),
    };
    match shared.transport.send(mail.id, &composed).await {
        Ok(()) => Outcome::Sent,
        Err(SendError::Permanent(e)) => Outcome::Final(MailStatus::Dead, e),
        Err(SendError::Transient(e)) => {
            let now = shared.clock.now();
            let overdue = (now - mail.send_after).to_std().unwrap_or(Duration::ZERO);
            if overdue >= GIVE_UP_AFTER {
                return Outcome::Final(MailStatus::Dead, format!("gave up after 3 days of failures; last: {e}"));
            }
            let delay = backoff(shared.settings.retry_min, mail.attempts);
            Outcome::Retry(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1)), e)
        }
    }
}

/// Writes an outcome, retrying briefly: a mail that went out but could not
/// be marked would be sent again when its lease ends.
async fn record(shared: &Shared, id: MailId, outcome: Outcome) {
    let owner = &shared.owner;
    for round in 0..5u32 {
        let result = match &outcome {
            Outcome::Sent => shared.db.mark_mail_sent(id, owner, shared.clock.now()).await,
            Outcome::Retry(at, error) => shared.db.mark_mail_retry(id, owner, *at, error).await,
            Outcome::Final(status, error) => shared.db.mark_mail_final(id, owner, *status, error).await,
        };
        match result {
            Ok(true) => return,
            // Another worker took the row over after our lease ran out, or
            // the appointment change removed it (a moved reminder).
            Ok(false) => {
                tracing::debug!(mail_id = %id, "outbox row changed hands before its outcome was recorded");
                return;
            }
            Err(e) => {
                tracing::warn!(mail_id = %id, error = %e, "could not record a mail's outcome; retrying");
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(round))).await;
            }
        }
    }
    tracing::error!(mail_id = %id, "could not record a mail's outcome; it will be retried after its lease");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_an_hour() {
        let min = Duration::from_secs(60);
        for _ in 0..50 {
            let first = backoff(min, 1);
            assert!((48..=72).contains(&first.as_secs()), "{first:?}");
            let third = backoff(min, 3);
            assert!((192..=288).contains(&third.as_secs()), "{third:?}");
            assert!(backoff(min, 40) <= MAX_BACKOFF);
            assert!(backoff(min, 10) >= Duration::from_secs(2880));
        }
    }

    #[test]
    fn the_lease_outlives_a_whole_delivery() {
        assert!(WorkerSettings::new(Duration::from_secs(1)).lease >= SEND_TIMEOUT * 2);
    }
}
