//! `user_totp`, `recovery_codes` and `login_challenges`: the second factor.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Db, DbError, to_millis};
use crate::domain::UserId;

/// A user's TOTP enrolment.
#[derive(Clone, Debug)]
pub struct TotpRecord {
    pub secret: String,
    pub enabled: bool,
    pub last_step: i64,
}

/// Wrong codes a sign-in challenge tolerates before it is void.
pub const CHALLENGE_ATTEMPTS: i64 = 5;

fn user_id(raw: &str) -> Result<UserId, DbError> {
    raw.parse().map_err(|_| DbError::Corrupt(format!("user id {raw}")))
}

impl Db {
    pub async fn totp(&self, user: UserId) -> Result<Option<TotpRecord>, DbError> {
        let row = sqlx::query("SELECT secret, enabled_at, last_step FROM user_totp WHERE user_id = ?")
            .bind(user.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(TotpRecord {
                secret: r.try_get("secret")?,
                enabled: r.try_get::<Option<i64>, _>("enabled_at")?.is_some(),
                last_step: r.try_get("last_step")?,
            })
        })
        .transpose()
    }

    pub async fn has_second_factor(&self, user: UserId) -> Result<bool, DbError> {
        Ok(self.totp(user).await?.is_some_and(|t| t.enabled))
    }

    /// Stores a new, not yet enabled secret (replacing an unconfirmed one).
    /// False if 2FA is already enabled.
    pub async fn start_totp_enrolment(&self, user: UserId, secret: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM user_totp WHERE user_id = ? AND enabled_at IS NULL")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?;
        let inserted =
            sqlx::query("INSERT INTO user_totp (user_id, secret, last_step, created_at) VALUES (?, ?, 0, ?)")
                .bind(user.to_string())
                .bind(secret)
                .bind(to_millis(now))
                .execute(&mut *tx)
                .await;
        match inserted {
            Ok(_) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(e) => match DbError::from(e) {
                DbError::Conflict => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Turns 2FA on with the step of the code that confirmed it, and
    /// replaces the recovery codes. False if it was not pending.
    pub async fn enable_totp(
        &self,
        user: UserId,
        step: i64,
        recovery_hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE user_totp SET enabled_at = ?, last_step = ? WHERE user_id = ? AND enabled_at IS NULL")
                .bind(to_millis(now))
                .bind(step)
                .bind(user.to_string())
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?").bind(user.to_string()).execute(&mut *tx).await?;
        for hash in recovery_hashes {
            sqlx::query("INSERT INTO recovery_codes (code_hash, user_id) VALUES (?, ?)")
                .bind(hash)
                .bind(user.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records `step` as used; false if it (or a later one) already was.
    pub async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE user_totp SET last_step = ? WHERE user_id = ? AND last_step < ?")
            .bind(step)
            .bind(user.to_string())
            .bind(step)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Uses up a recovery code; false if unknown or used.
    pub async fn use_recovery_code(&self, user: UserId, hash: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = ? WHERE code_hash = ? AND user_id = ? AND used_at IS NULL",
        )
        .bind(to_millis(now))
        .bind(hash)
        .bind(user.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_login_challenge(
        &self,
        hash: &str,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO login_challenges (challenge_hash, user_id, expires_at) VALUES (?, ?, ?)")
            .bind(hash)
            .bind(user.to_string())
            .bind(to_millis(expires_at))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Counts an attempt on a live challenge and returns its user; `None`
    /// when it is unknown, used, expired or out of attempts.
    pub async fn attempt_login_challenge(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<UserId>, DbError> {
        let done = sqlx::query(
            "UPDATE login_challenges SET attempts = attempts + 1 WHERE challenge_hash = ? AND used_at IS NULL \
             AND expires_at > ? AND attempts < ?",
        )
        .bind(hash)
        .bind(to_millis(now))
        .bind(CHALLENGE_ATTEMPTS)
        .execute(self.pool())
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT user_id FROM login_challenges WHERE challenge_hash = ?")
            .bind(hash)
            .fetch_one(self.pool())
            .await?;
        Ok(Some(user_id(&row.try_get::<String, _>("user_id")?)?))
    }

    /// Uses the challenge up; false if another request already did.
    pub async fn finish_login_challenge(&self, hash: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE login_challenges SET used_at = ? WHERE challenge_hash = ? AND used_at IS NULL")
            .bind(to_millis(now))
            .bind(hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
