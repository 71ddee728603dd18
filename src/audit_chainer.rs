//! The background task that links appended audit rows into the hash chain
//! (started by `serve`, like the mail worker).
//!
//! Requests only insert their audit rows (`db::audit::append`), in their
//! own transactions, so a row is never lost once its request has returned;
//! this task gives them their chain position and hash within about a
//! second. Passes hold the `audit_head` lock for one short transaction
//! each, so two servers on one database simply take turns (see
//! `db::audit_chain`). `consulta audit verify` reports rows this task has
//! left unlinked beyond a grace period.

use std::time::Duration;

use tokio::sync::watch;

use crate::db::{Db, DbError};

/// How often unchained rows are looked for.
pub const INTERVAL: Duration = Duration::from_millis(500);
/// Rows linked per transaction (one multi-row UPDATE of ~7 values a row).
pub const BATCH: u32 = 200;
/// Longest pause after failures (a lock-wait timeout, the database down, a
/// trigger that refuses the update): retried, logged each time.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The running task.
pub struct ChainerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the chainer on `db`.
pub fn spawn(db: Db) -> ChainerHandle {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(db, stopped));
    ChainerHandle { stop, task }
}

impl ChainerHandle {
    /// Links what is waiting one last time (rows of the requests that were
    /// just drained), for up to `grace`; whatever is left is linked by the
    /// next start.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            tracing::warn!("audit chainer stopped with rows unlinked; the next start links them");
        }
    }
}

/// Links everything waiting, a batch per transaction; how many it linked.
pub async fn drain(db: &Db) -> Result<usize, DbError> {
    let mut total = 0;
    loop {
        let linked = db.chain_pending_audit(BATCH).await?;
        total += linked;
        if linked < BATCH as usize {
            return Ok(total);
        }
    }
}

async fn run(db: Db, mut stopped: watch::Receiver<bool>) {
    let mut failures: u32 = 0;
    loop {
        match drain(&db).await {
            Ok(_) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, failures, "audit chainer could not link rows; retrying");
            }
        }
        let pause = if failures == 0 { INTERVAL } else { (INTERVAL * 2u32.saturating_pow(failures)).min(MAX_BACKOFF) };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => break,
        }
    }
    if let Err(e) = drain(&db).await {
        tracing::warn!(error = %e, "audit chainer could not link the last rows; the next start links them");
    }
}
