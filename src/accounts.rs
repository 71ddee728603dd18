//! Creating accounts, the one path shared by registration, the admin API,
//! `consulta user create` and `consulta demo`.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::auth::{HashError, PasswordHasher};
use crate::db::{Db, DbError, users::NewUser};
use crate::domain::{Email, FieldErrors, Password, PersonName, Role, TimeZone, User};

/// An account request as it arrives, before parsing.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    pub email: String,
    /// 8–72 bytes; common or personal passwords are refused.
    pub password: String,
    /// 1–100 characters.
    pub name: String,
    /// IANA time zone name, e.g. `Europe/Berlin`.
    pub timezone: String,
}

/// A valid account request.
#[derive(Debug)]
pub struct NewAccount {
    pub email: Email,
    pub name: PersonName,
    pub timezone: TimeZone,
    pub password: Password,
    pub role: Role,
}

impl AccountInput {
    pub fn parse(&self, role: Role) -> Result<NewAccount, FieldErrors> {
        let mut errors = FieldErrors::new();
        let email = errors.check("email", Email::parse(&self.email));
        let name = errors.check("name", PersonName::parse(&self.name));
        let timezone = errors.check("timezone", TimeZone::parse(&self.timezone));
        let personal = [self.email.as_str(), self.name.as_str()];
        let password = errors.check("password", Password::parse(&self.password, &personal));
        match (email, name, timezone, password) {
            (Some(email), Some(name), Some(timezone), Some(password)) => {
                Ok(NewAccount { email, name, timezone, password, role })
            }
            _ => Err(errors),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Db(DbError),
}

impl From<DbError> for CreateAccountError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict => CreateAccountError::EmailTaken,
            other => CreateAccountError::Db(other),
        }
    }
}

pub async fn create_account(
    db: &Db,
    hasher: &PasswordHasher,
    account: &NewAccount,
    now: DateTime<Utc>,
) -> Result<User, CreateAccountError> {
    let hash = hasher.hash(&account.password).await?;
    let user = db
        .insert_user(
            NewUser {
                email: &account.email,
                name: &account.name,
                role: account.role,
                timezone: account.timezone,
                password_hash: &hash,
            },
            now,
        )
        .await?;
    tracing::info!(user_id = %user.id, role = %user.role, "account created");
    Ok(user)
}
