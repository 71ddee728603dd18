//! The `audit_log` table: append-only and hash-chained (see
//! [`super::audit_chain`]). There is deliberately no update or delete
//! function here; on SQLite triggers refuse both.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use super::audit_chain::ChainedFields;
use super::{Db, DbError, from_millis, to_millis};
use crate::domain::{AppointmentId, Role, UserId};

/// One access to (or refusal of) an appointment. No health details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub user_id: Option<UserId>,
    pub role: Option<Role>,
    pub action: &'static str,
    pub appointment_id: Option<AppointmentId>,
    pub outcome: &'static str,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

/// A stored row, as admins read it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub user_id: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub appointment_id: Option<String>,
    pub outcome: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

/// Appends `entries` to the hash chain, inside the caller's transaction.
///
/// The first statement is a write on the one `audit_head` row: it takes
/// that row's lock (InnoDB) or the write lock (SQLite) before anything is
/// read, so concurrent appends queue up and never chain onto the same
/// predecessor. Seqs are assigned here, under that lock, so each hash can
/// cover its own seq.
pub async fn append(conn: &mut AnyConnection, entries: &[AuditEntry]) -> Result<(), DbError> {
    if entries.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(entries.len()).unwrap_or(i64::MAX);
    sqlx::query("UPDATE audit_head SET last_seq = last_seq + ? WHERE id = 1").bind(n).execute(&mut *conn).await?;
    let head = sqlx::query("SELECT last_seq, last_hash FROM audit_head WHERE id = 1").fetch_one(&mut *conn).await?;
    let last_seq: i64 = head.try_get("last_seq")?;
    let mut prev_hash: String = head.try_get("last_hash")?;
    let mut seq = last_seq - n;
    for e in entries {
        seq += 1;
        let fields = ChainedFields {
            seq,
            at: to_millis(e.at),
            user_id: e.user_id.map(|u| u.to_string()),
            role: e.role.map(|r| r.as_str().to_owned()),
            action: e.action.to_owned(),
            appointment_id: e.appointment_id.map(|a| a.to_string()),
            outcome: e.outcome.to_owned(),
            client_ip: e.client_ip.clone(),
            request_id: e.request_id.clone(),
        };
        let hash = fields.hash(&prev_hash);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, user_id, role, action, appointment_id, outcome, client_ip, request_id, \
             prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(fields.at)
        .bind(fields.user_id.as_deref())
        .bind(fields.role.as_deref())
        .bind(e.action)
        .bind(fields.appointment_id.as_deref())
        .bind(e.outcome)
        .bind(e.client_ip.as_deref())
        .bind(e.request_id.as_deref())
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
        prev_hash = hash;
    }
    sqlx::query("UPDATE audit_head SET last_hash = ? WHERE id = 1").bind(&prev_hash).execute(&mut *conn).await?;
    Ok(())
}

impl Db {
    /// Appends outside any other transaction (views and refusals).
    pub async fn audit(&self, entries: &[AuditEntry]) -> Result<(), DbError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        append(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn audit_trail(
        &self,
        appointment: Option<AppointmentId>,
        limit: u32,
        after_seq: i64,
    ) -> Result<Vec<AuditRecord>, DbError> {
        let base = "SELECT seq, at, user_id, role, action, appointment_id, outcome, client_ip, request_id FROM audit_log WHERE seq > ?";
        let rows = match appointment {
            Some(id) => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{base} AND appointment_id = ? ORDER BY seq LIMIT ?")))
                    .bind(after_seq)
                    .bind(id.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{base} ORDER BY seq LIMIT ?")))
                    .bind(after_seq)
                    .bind(i64::from(limit))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    seq: r.try_get("seq")?,
                    at: from_millis(r.try_get("at")?)?,
                    user_id: r.try_get("user_id")?,
                    role: r.try_get("role")?,
                    action: r.try_get("action")?,
                    appointment_id: r.try_get("appointment_id")?,
                    outcome: r.try_get("outcome")?,
                    client_ip: r.try_get("client_ip")?,
                    request_id: r.try_get("request_id")?,
                })
            })
            .collect()
    }
}
