//! The `users` table.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, to_millis};
use crate::domain::{Email, PersonName, Role, TimeZone, User, UserId};

/// What creating an account needs; the password is already hashed.
pub struct NewUser<'a> {
    pub email: &'a Email,
    pub name: &'a PersonName,
    pub role: Role,
    pub timezone: TimeZone,
    pub password_hash: &'a str,
}

const COLUMNS: &str = "id, email, name, role, timezone";

pub(super) fn user_from_row(row: &AnyRow) -> Result<User, DbError> {
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    let timezone: String = row.try_get("timezone")?;
    Ok(User {
        id: id.parse().map_err(|_| DbError::Corrupt(format!("user id {id}")))?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: role.parse().map_err(|_| DbError::Corrupt(format!("role {role}")))?,
        timezone: TimeZone::parse(&timezone).map_err(|_| DbError::Corrupt(format!("time zone {timezone}")))?,
    })
}

impl Db {
    /// Fails with [`DbError::Conflict`] when the email is taken.
    pub async fn insert_user(&self, new: NewUser<'_>, now: DateTime<Utc>) -> Result<User, DbError> {
        let id = UserId::new();
        sqlx::query(
            "INSERT INTO users (id, email, name, role, timezone, password_hash, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(new.email.as_str())
        .bind(new.name.as_str())
        .bind(new.role.as_str())
        .bind(new.timezone.name())
        .bind(new.password_hash)
        .bind(to_millis(now))
        .bind(to_millis(now))
        .execute(self.pool())
        .await?;
        Ok(User {
            id,
            email: new.email.as_str().to_owned(),
            name: new.name.as_str().to_owned(),
            role: new.role,
            timezone: new.timezone,
        })
    }

    /// The user and their password hash, for signing in.
    pub async fn user_with_hash_by_email(&self, email: &Email) -> Result<Option<(User, String)>, DbError> {
        let row = sqlx::query("SELECT id, email, name, role, timezone, password_hash FROM users WHERE email = ?")
            .bind(email.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Ok((user_from_row(&row)?, row.try_get("password_hash")?))).transpose()
    }

    pub async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users WHERE id = ?")))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// All users with `role`, by name.
    pub async fn users_by_role(&self, role: Role) -> Result<Vec<User>, DbError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users WHERE role = ? ORDER BY name, id")))
                .bind(role.as_str())
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Every user, by role then name (the admin's list).
    pub async fn all_users(&self) -> Result<Vec<User>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users ORDER BY role, name, id")))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn update_password_hash(&self, id: UserId, hash: &str, now: DateTime<Utc>) -> Result<(), DbError> {
        sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(hash)
            .bind(to_millis(now))
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
