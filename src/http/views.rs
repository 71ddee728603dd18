//! Shapes of the JSON the API sends.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Role, User};

/// A user as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserEnvelope {
    pub user: UserView,
}

impl From<&User> for UserEnvelope {
    fn from(u: &User) -> Self {
        Self { user: u.into() }
    }
}

/// `{id, name}` of one side of an appointment.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PartyView {
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
    pub name: String,
}

/// An appointment as the API shows it to a participant.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AppointmentView {
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
    pub doctor: PartyView,
    pub patient: PartyView,
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
    pub status: crate::domain::AppointmentStatus,
    /// Why the patient comes; visible to both participants only.
    pub reason: Option<String>,
    pub cancel_reason: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub cancelled_by: Option<String>,
    /// `{CONSULTA_PUBLIC_URL}/room/{id}`.
    pub room_url: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl AppointmentView {
    pub fn new(
        a: &crate::domain::Appointment,
        public: &crate::config::PublicUrl,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self {
            id: a.id.to_string(),
            doctor: PartyView { id: a.doctor.id.to_string(), name: a.doctor.name.clone() },
            patient: PartyView { id: a.patient.id.to_string(), name: a.patient.name.clone() },
            start: a.start,
            end: a.end,
            status: a.status(now),
            reason: a.reason.clone(),
            cancel_reason: a.cancel_reason.clone(),
            cancelled_by: a.cancelled_by.map(|u| u.to_string()),
            room_url: public.join(&format!("/room/{}", a.id)),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// `{appointment}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AppointmentEnvelope {
    pub appointment: AppointmentView,
}
