use super::{Role, TimeZone, UserId};

/// An account as the rest of the program sees it (never with its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub timezone: TimeZone,
}
