//! The dashboard: what is coming up for the caller, and who is waiting.

use serde::Serialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::filters::{RequestMeta, request_meta, with_state, with_user};
use super::json_reply;
use super::views::AppointmentView;
use crate::auth::CurrentUser;
use crate::db::appointments::AppointmentQuery;
use crate::domain::Role;
use crate::error::ApiError;
use crate::scheduling::Actor;
use crate::state::AppState;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "dashboard")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(request_meta(state))
        .and_then(dashboard)
        .boxed()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtherParty {
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardItem {
    #[serde(flatten)]
    pub appointment: AppointmentView,
    /// The other participant.
    pub other: OtherParty,
    /// Whether the other participant is in the video room now.
    pub other_in_room: bool,
    pub join_opens_at: chrono::DateTime<chrono::Utc>,
    pub join_closes_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    /// The server's time, to count down against.
    pub now: chrono::DateTime<chrono::Utc>,
    /// Appointments whose room has not closed yet, by start (cancelled ones included).
    pub appointments: Vec<DashboardItem>,
}

/// Upcoming appointments with the other participant and their presence.
#[utoipa::path(get, path = "/api/dashboard", tag = "scheduling", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The caller's dashboard", body = Dashboard),
              (status = 401, description = "Not signed in", body = crate::error::Problem)))]
pub async fn dashboard(state: AppState, caller: CurrentUser, meta: RequestMeta) -> Result<Response, Rejection> {
    let now = state.clock.now();
    // A room stays open 60 minutes past the end; keep those on the dashboard.
    let query = AppointmentQuery {
        from: Some(now - chrono::Duration::minutes(60)),
        to: None,
        status: None,
        limit: 100,
        offset: 0,
    };
    let list = state.db.appointments_of(caller.user.id, &query, now).await.map_err(ApiError::from)?;
    let actor = Actor { user: &caller.user, client_ip: Some(meta.ip.to_string()), request_id: meta.request_id.clone() };
    let entries: Vec<_> = list.iter().map(|a| actor.audit("view", Some(a.id), "ok", now)).collect();
    state.db.audit(&entries).await.map_err(ApiError::from)?;
    let appointments = list
        .iter()
        .map(|a| {
            let other = a.other_party(caller.user.id);
            let other_role = if a.doctor.id == other.id { Role::Doctor } else { Role::Patient };
            let (join_opens_at, join_closes_at) = a.join_window();
            DashboardItem {
                appointment: AppointmentView::new(a, &state.config.public_url, now),
                other: OtherParty { id: other.id.to_string(), name: other.name.clone(), role: other_role },
                other_in_room: state.presence.is_present(a.id, other.id),
                join_opens_at,
                join_closes_at,
            }
        })
        .collect();
    Ok(json_reply(&Dashboard { now, appointments }, http::StatusCode::OK))
}
