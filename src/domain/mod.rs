//! Parsed domain values and pure rules. Nothing here knows about HTTP, SQL
//! or WebRTC; a value of these types is valid by construction.

mod appointment;
pub mod availability;
mod email;
mod field_errors;
mod ids;
mod mail;
mod name;
mod password;
mod role;
mod timezone;
mod user;

pub use appointment::{Appointment, AppointmentStatus, Note, NoteError, Party};
pub use email::Email;
pub use field_errors::FieldErrors;
pub use ids::{AppointmentId, MailId, SessionId, UserId};
pub use mail::{MailKind, MailStatus, UnknownMailValue};
pub use name::PersonName;
pub use password::Password;
pub use role::Role;
pub use timezone::TimeZone;
pub use user::User;
