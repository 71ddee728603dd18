//! The `audit_log` table: append-only and hash-chained (see
//! [`super::audit_chain`]). There is deliberately no update or delete
//! function here; the only update anywhere is the chainer filling in the
//! chain columns of a row that has none (SQLite's triggers allow exactly that).

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

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

/// Appends `entries`, inside the caller's transaction, with one multi-row
/// `INSERT`: they commit or roll back with the change they record.
///
/// The rows go in unchained (no `chain_seq`, `prev_hash`, `hash`); the
/// background chainer ([`Db::chain_pending_audit`]) links them within about
/// a second. So no request waits on the chain's one head row: before, every
/// append locked `audit_head` until its transaction committed, which queued
/// every booking and every appointment view on the whole machine.
pub async fn append(conn: &mut AnyConnection, entries: &[AuditEntry]) -> Result<(), DbError> {
    if entries.is_empty() {
        return Ok(());
    }
    let row = "(?, ?, ?, ?, ?, ?, ?, ?)";
    let sql = format!(
        "INSERT INTO audit_log (at, user_id, role, action, appointment_id, outcome, client_ip, request_id) VALUES {}",
        vec![row; entries.len()].join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in entries {
        query = query
            .bind(to_millis(e.at))
            .bind(e.user_id.map(|u| u.to_string()))
            .bind(e.role.map(|r| r.as_str()))
            .bind(e.action)
            .bind(e.appointment_id.map(|a| a.to_string()))
            .bind(e.outcome)
            .bind(e.client_ip.as_deref())
            .bind(e.request_id.as_deref());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

impl Db {
    /// Appends outside any other transaction (views and refusals): one
    /// statement, committed before this returns.
    pub async fn audit(&self, entries: &[AuditEntry]) -> Result<(), DbError> {
        let mut conn = self.pool().acquire().await?;
        append(&mut conn, entries).await
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
