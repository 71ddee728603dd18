//! Shapes of the JSON the API sends.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Role, User};

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// IANA time zone name.
    pub timezone: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
            timezone: u.timezone.name().to_owned(),
        }
    }
}

/// `{user}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserEnvelope {
    pub user: UserView,
}

impl From<&User> for UserEnvelope {
    fn from(u: &User) -> Self {
        Self { user: u.into() }
    }
}
