//! The `mail_outbox` table: mails written by appointment changes, claimed
//! and marked by the delivery worker (see `mail::worker`).
//!
//! Claiming works the same on SQLite and MariaDB without `FOR UPDATE` or
//! `SKIP LOCKED`: a worker reads candidate ids, then claims each with one
//! conditional `UPDATE`; only the worker whose `UPDATE` changed the row
//! (rows affected = 1) owns it until `lease_until`. Every later mark names
//! the owner, so a worker whose lease ran out cannot overwrite the outcome
//! of the worker that took the row over.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Db, DbError, from_millis, to_millis};
use crate::domain::{AppointmentId, MailId, MailKind, MailStatus, UserId};

/// A mail to write in the caller's transaction.
pub struct NewMail<'a> {
    pub id: MailId,
    pub kind: MailKind,
    /// `None` for mails about the account (password reset).
    pub appointment_id: Option<AppointmentId>,
    pub recipient_id: UserId,
    pub recipient_email: &'a str,
    /// JSON snapshot of what the mail says.
    pub payload: &'a str,
    pub send_after: DateTime<Utc>,
}

/// A row the worker has claimed.
#[derive(Clone, Debug)]
pub struct ClaimedMail {
    pub id: MailId,
    pub kind: MailKind,
    pub appointment_id: Option<AppointmentId>,
    pub recipient_id: UserId,
    pub recipient_email: String,
    pub payload: String,
    /// Including the attempt this claim starts.
    pub attempts: i64,
    pub send_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A row as admins see it: no payload, no body.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MailRecord {
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
    pub kind: MailKind,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub appointment_id: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub recipient_id: String,
    pub recipient_email: String,
    pub status: MailStatus,
    pub attempts: i64,
    pub send_after: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed (the SMTP server's answer or the build error).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

fn parse<T: std::str::FromStr>(what: &str, raw: &str) -> Result<T, DbError> {
    raw.parse().map_err(|_| DbError::Corrupt(format!("mail_outbox {what} {raw:?}")))
}

/// `mail_outbox.last_error` holds at most 1000 characters (strict mode
/// refuses longer values instead of truncating them).
fn clip(error: &str) -> String {
    error.chars().take(500).collect()
}

pub async fn insert(conn: &mut AnyConnection, mail: &NewMail<'_>, now: DateTime<Utc>) -> Result<(), DbError> {
    insert_many(conn, std::slice::from_ref(mail), now).await
}

/// Writes `mails` with one multi-row `INSERT` (one round trip however many
/// mails a change causes; a booking writes six with the default reminders).
pub async fn insert_many(conn: &mut AnyConnection, mails: &[NewMail<'_>], now: DateTime<Utc>) -> Result<(), DbError> {
    if mails.is_empty() {
        return Ok(());
    }
    let row = "(?, ?, ?, ?, ?, ?, 'pending', ?, ?, 0, ?)";
    let sql = format!(
        "INSERT INTO mail_outbox (id, kind, appointment_id, recipient_id, recipient_email, payload, status, \
         send_after, next_attempt_at, attempts, created_at) VALUES {}",
        vec![row; mails.len()].join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for mail in mails {
        query = query
            .bind(mail.id.to_string())
            .bind(mail.kind.as_str())
            .bind(mail.appointment_id.map(|a| a.to_string()))
            .bind(mail.recipient_id.to_string())
            .bind(mail.recipient_email)
            .bind(mail.payload)
            .bind(to_millis(mail.send_after))
            .bind(to_millis(mail.send_after))
            .bind(to_millis(now));
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Removes an appointment's reminders that have not gone out. `sending`
/// rows go too: a worker that dies mid-send would otherwise retry them
/// after its lease ends, for an appointment that has moved or is cancelled.
pub async fn delete_open_reminders(conn: &mut AnyConnection, appointment: AppointmentId) -> Result<u64, DbError> {
    let done = sqlx::query(
        "DELETE FROM mail_outbox WHERE appointment_id = ? AND kind = 'reminder' AND status IN ('pending', 'sending')",
    )
    .bind(appointment.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

const DUE: &str = "((status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until < ?))";

fn claimed_from_row(row: &AnyRow) -> Result<ClaimedMail, DbError> {
    Ok(ClaimedMail {
        id: parse("id", &row.try_get::<String, _>("id")?)?,
        kind: parse("kind", &row.try_get::<String, _>("kind")?)?,
        appointment_id: row
            .try_get::<Option<String>, _>("appointment_id")?
            .map(|a| parse("appointment_id", &a))
            .transpose()?,
        recipient_id: parse("recipient_id", &row.try_get::<String, _>("recipient_id")?)?,
        recipient_email: row.try_get("recipient_email")?,
        payload: row.try_get("payload")?,
        attempts: row.try_get("attempts")?,
        send_after: from_millis(row.try_get("send_after")?)?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

fn record_from_row(row: &AnyRow) -> Result<MailRecord, DbError> {
    Ok(MailRecord {
        id: row.try_get("id")?,
        kind: parse("kind", &row.try_get::<String, _>("kind")?)?,
        appointment_id: row.try_get("appointment_id")?,
        recipient_id: row.try_get("recipient_id")?,
        recipient_email: row.try_get("recipient_email")?,
        status: parse("status", &row.try_get::<String, _>("status")?)?,
        attempts: row.try_get("attempts")?,
        send_after: from_millis(row.try_get("send_after")?)?,
        next_attempt_at: from_millis(row.try_get("next_attempt_at")?)?,
        last_error: row.try_get("last_error")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        sent_at: row.try_get::<Option<i64>, _>("sent_at")?.map(from_millis).transpose()?,
    })
}

impl Db {
    /// Ids of rows due now: pending and due, or claimed by a worker whose
    /// lease has run out. Oldest due first.
    pub async fn due_mail(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<MailId>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM mail_outbox WHERE {DUE} ORDER BY next_attempt_at, id LIMIT ?"
        )))
        .bind(to_millis(now))
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| parse("id", &r.try_get::<String, _>("id")?)).collect()
    }

    /// Claims one row for `owner` until `lease_until`; `None` when another
    /// worker got it first or it is no longer due.
    pub async fn claim_mail(
        &self,
        id: MailId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedMail>, DbError> {
        let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE mail_outbox SET status = 'sending', lease_owner = ?, lease_until = ?, attempts = attempts + 1 \
             WHERE id = ? AND {DUE}"
        )))
        .bind(owner)
        .bind(to_millis(lease_until))
        .bind(id.to_string())
        .bind(to_millis(now))
        .bind(to_millis(now))
        .execute(self.pool())
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, kind, appointment_id, recipient_id, recipient_email, payload, attempts, send_after, created_at \
             FROM mail_outbox WHERE id = ? AND lease_owner = ?",
        )
        .bind(id.to_string())
        .bind(owner)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(claimed_from_row).transpose()
    }

    /// Delivered. False when the row is no longer this owner's.
    pub async fn mark_mail_sent(&self, id: MailId, owner: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE mail_outbox SET status = 'sent', sent_at = ?, lease_owner = NULL, lease_until = NULL, \
             last_error = NULL WHERE id = ? AND lease_owner = ? AND status = 'sending'",
        )
        .bind(to_millis(now))
        .bind(id.to_string())
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A transient failure: try again at `next_attempt_at`.
    pub async fn mark_mail_retry(
        &self,
        id: MailId,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE mail_outbox SET status = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, \
             last_error = ? WHERE id = ? AND lease_owner = ? AND status = 'sending'",
        )
        .bind(to_millis(next_attempt_at))
        .bind(clip(error))
        .bind(id.to_string())
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A final outcome other than delivery: `dead` (with the reason) or `skipped`.
    pub async fn mark_mail_final(
        &self,
        id: MailId,
        owner: &str,
        status: MailStatus,
        error: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE mail_outbox SET status = ?, lease_owner = NULL, lease_until = NULL, last_error = ? \
             WHERE id = ? AND lease_owner = ? AND status = 'sending'",
        )
        .bind(status.as_str())
        .bind(clip(error))
        .bind(id.to_string())
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// When the next row comes due (a pending row's next attempt, or a
    /// lease running out); `None` when nothing is waiting.
    pub async fn next_mail_due(&self) -> Result<Option<DateTime<Utc>>, DbError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END) FROM mail_outbox \
             WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(self.pool())
        .await?;
        next.map(from_millis).transpose()
    }

    /// Outbox rows for admins, newest first.
    pub async fn mail_records(&self, status: Option<MailStatus>, limit: u32) -> Result<Vec<MailRecord>, DbError> {
        let columns = "id, kind, appointment_id, recipient_id, recipient_email, status, attempts, send_after, \
                       next_attempt_at, last_error, created_at, sent_at";
        let rows = match status {
            Some(status) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {columns} FROM mail_outbox WHERE status = ? ORDER BY created_at DESC, id LIMIT ?"
                )))
                .bind(status.as_str())
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {columns} FROM mail_outbox ORDER BY created_at DESC, id LIMIT ?"
                )))
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(record_from_row).collect()
    }
}
