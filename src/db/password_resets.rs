//! The `password_resets` table: SHA-256 of single-use reset tokens.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use super::audit::{self, AuditEntry};
use super::{Db, DbError, to_millis};
use crate::domain::{SessionId, UserId};

pub async fn insert(
    conn: &mut AnyConnection,
    token_hash: &str,
    user_id: UserId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
        .bind(token_hash)
        .bind(user_id.to_string())
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What using a reset token changed.
#[derive(Debug)]
pub struct ResetDone {
    pub user_id: UserId,
    pub ended_sessions: Vec<SessionId>,
}

impl Db {
    /// The user a token would reset, if it is unused and unexpired at `now`.
    pub async fn password_reset_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<UserId>, DbError> {
        let row = sqlx::query(
            "SELECT user_id FROM password_resets WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(to_millis(now))
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let id: String = r.try_get("user_id")?;
            id.parse().map_err(|_| DbError::Corrupt(format!("user id {id}")))
        })
        .transpose()
    }

    /// In one transaction: uses up the token (the first write, so two
    /// concurrent uses cannot both succeed), sets the new password hash,
    /// voids the user's other reset tokens, ends all their sessions and
    /// records it in the audit trail. `None` if the token is no longer
    /// valid.
    pub async fn complete_password_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
        audit_entry: impl FnOnce(UserId) -> AuditEntry,
    ) -> Result<Option<ResetDone>, DbError> {
        let mut tx = self.begin_write().await?;
        let used = sqlx::query(
            "UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(to_millis(now))
        .bind(token_hash)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Ok(None);
        }
        let user: String = sqlx::query("SELECT user_id FROM password_resets WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_one(&mut *tx)
            .await?
            .try_get("user_id")?;
        let user_id: UserId = user.parse().map_err(|_| DbError::Corrupt(format!("user id {user}")))?;
        sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(password_hash)
            .bind(to_millis(now))
            .bind(&user)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE password_resets SET used_at = ? WHERE user_id = ? AND used_at IS NULL")
            .bind(to_millis(now))
            .bind(&user)
            .execute(&mut *tx)
            .await?;
        let sessions = sqlx::query("SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL")
            .bind(&user)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL")
            .bind(to_millis(now))
            .bind(&user)
            .execute(&mut *tx)
            .await?;
        audit::append(&mut tx, &[audit_entry(user_id)]).await?;
        tx.commit().await?;
        let ended_sessions = sessions
            .iter()
            .filter_map(|r| r.try_get::<String, _>("id").ok())
            .filter_map(|id| id.parse().ok())
            .collect();
        Ok(Some(ResetDone { user_id, ended_sessions }))
    }
}
