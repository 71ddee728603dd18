//! The `sessions` table: one row per sign-in. A token is only as good as
//! its row, which is what makes logout and expiry immediate.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::users::user_from_row;
use super::{Db, DbError, from_millis, to_millis};
use crate::domain::{SessionId, User, UserId};

#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

impl Db {
    pub async fn insert_session(
        &self,
        id: SessionId,
        user_id: UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        client_ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(user_id.to_string())
        .bind(to_millis(now))
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .bind(client_ip)
        .bind(user_agent.map(|ua| ua.chars().take(400).collect::<String>()))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session and its user in one round trip (every request asks).
    pub async fn session_with_user(&self, id: SessionId) -> Result<Option<(SessionRecord, User)>, DbError> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.name, u.role, u.timezone, s.user_id, s.created_at, s.last_seen_at, \
             s.expires_at, s.revoked_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row)?;
        let revoked_at: Option<i64> = row.try_get("revoked_at")?;
        let session = SessionRecord {
            id,
            user_id: user.id,
            created_at: from_millis(row.try_get("created_at")?)?,
            last_seen_at: from_millis(row.try_get("last_seen_at")?)?,
            expires_at: from_millis(row.try_get("expires_at")?)?,
            revoked: revoked_at.is_some(),
        };
        Ok(Some((session, user)))
    }

    /// Which of `ids` are still usable at `now` (not revoked, not expired,
    /// not idle longer than `idle`).
    pub async fn live_sessions(
        &self,
        ids: &[SessionId],
        now: DateTime<Utc>,
        idle: std::time::Duration,
    ) -> Result<std::collections::HashSet<SessionId>, DbError> {
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        let mut live = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > ? AND last_seen_at > ? \
                 AND id IN ({placeholders})"
            );
            let mut query =
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to_millis(now)).bind(to_millis(now).saturating_sub(idle_ms));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(self.pool()).await? {
                let id: String = row.try_get("id")?;
                if let Ok(id) = id.parse() {
                    live.insert(id);
                }
            }
        }
        Ok(live)
    }

    pub async fn touch_session(&self, id: SessionId, now: DateTime<Utc>) -> Result<(), DbError> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?")
            .bind(to_millis(now))
            .bind(id.to_string())
            .bind(to_millis(now))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn revoke_session(&self, id: SessionId, now: DateTime<Utc>) -> Result<(), DbError> {
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(to_millis(now))
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends every session of `user_id` except `keep` (after a password change).
    pub async fn revoke_other_sessions(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        let keep = keep.map(|k| k.to_string()).unwrap_or_default();
        let done =
            sqlx::query("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND id <> ? AND revoked_at IS NULL")
                .bind(to_millis(now))
                .bind(user_id.to_string())
                .bind(keep)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }
}

/// A session as its owner sees it in "where am I signed in".
#[derive(Clone, Debug)]
pub struct SessionSummary {
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Db {
    /// The sessions of `user_id` still usable at `now`, newest first.
    pub async fn user_sessions(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
        idle: std::time::Duration,
    ) -> Result<Vec<SessionSummary>, DbError> {
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT id, created_at, last_seen_at, client_ip, user_agent FROM sessions WHERE user_id = ? \
             AND revoked_at IS NULL AND expires_at > ? AND last_seen_at > ? ORDER BY created_at DESC, id",
        )
        .bind(user_id.to_string())
        .bind(to_millis(now))
        .bind(to_millis(now).saturating_sub(idle_ms))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                Ok(SessionSummary {
                    id: id.parse().map_err(|_| DbError::Corrupt(format!("session id {id}")))?,
                    created_at: from_millis(row.try_get("created_at")?)?,
                    last_seen_at: from_millis(row.try_get("last_seen_at")?)?,
                    client_ip: row.try_get("client_ip")?,
                    user_agent: row.try_get("user_agent")?,
                })
            })
            .collect()
    }

    /// Ends one session of `user_id`; false when it is not theirs or
    /// already ended (so another user's id is indistinguishable from none).
    pub async fn revoke_own_session(
        &self,
        user_id: UserId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let done =
            sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL")
                .bind(to_millis(now))
                .bind(id.to_string())
                .bind(user_id.to_string())
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every session of `user_id`; returns their ids (to close sockets).
    pub async fn revoke_all_sessions(&self, user_id: UserId, now: DateTime<Utc>) -> Result<Vec<SessionId>, DbError> {
        let rows = sqlx::query("SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL")
            .bind(user_id.to_string())
            .fetch_all(self.pool())
            .await?;
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL")
            .bind(to_millis(now))
            .bind(user_id.to_string())
            .execute(self.pool())
            .await?;
        Ok(rows.iter().filter_map(|r| r.try_get::<String, _>("id").ok()).filter_map(|id| id.parse().ok()).collect())
    }
}
