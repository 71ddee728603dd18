//! The caller's own sessions: where they are signed in, and ending any of them.

use serde::Serialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply as _};

use super::filters::{with_state, with_user};
use super::json_reply;
use crate::auth::CurrentUser;
use crate::db::sessions::SessionSummary;
use crate::domain::SessionId;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let list = warp::path!("api" / "me" / "sessions")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and_then(list_sessions);
    let end = warp::path!("api" / "me" / "sessions" / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(with_user(state))
        .and_then(end_session);
    list.or(end).unify().boxed()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_seen_at: chrono::DateTime<chrono::Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl SessionView {
    fn new(s: &SessionSummary, current: SessionId) -> Self {
        Self {
            id: s.id.to_string(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            client_ip: s.client_ip.clone(),
            user_agent: s.user_agent.clone(),
            current: s.id == current,
        }
    }
}

/// The caller's sessions that are still usable, newest first.
#[utoipa::path(get, path = "/api/me/sessions", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The caller's live sessions", body = [SessionView]),
              (status = 401, description = "Not signed in", body = crate::error::Problem)))]
pub async fn list_sessions(state: AppState, caller: CurrentUser) -> Result<Response, Rejection> {
    let now = state.clock.now();
    let sessions =
        state.db.user_sessions(caller.user.id, now, state.config.session_idle).await.map_err(ApiError::from)?;
    let views: Vec<SessionView> = sessions.iter().map(|s| SessionView::new(s, caller.session_id)).collect();
    Ok(json_reply(&views, http::StatusCode::OK))
}

/// Ends one of the caller's sessions (the current one included): its token
/// stops working and its WebSockets close.
#[utoipa::path(delete, path = "/api/me/sessions/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Ended"),
              (status = 401, description = "Not signed in", body = crate::error::Problem),
              (status = 404, description = "No such session of the caller's", body = crate::error::Problem)))]
pub async fn end_session(id: String, state: AppState, caller: CurrentUser) -> Result<Response, Rejection> {
    let id: SessionId = id.parse().map_err(|_| ApiError::NotFound)?;
    let ended = state.db.revoke_own_session(caller.user.id, id, state.clock.now()).await.map_err(ApiError::from)?;
    if !ended {
        return Err(ApiError::NotFound.into());
    }
    state.hub.close_session(id);
    tracing::info!(user_id = %caller.user.id, session = %id, "session ended by its owner");
    Ok(warp::reply::with_status(warp::reply(), http::StatusCode::NO_CONTENT).into_response())
}
