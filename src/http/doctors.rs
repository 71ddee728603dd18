//! Doctors and their availability and free slots.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::filters::{json_body, with_state, with_user};
use super::json_reply;
use super::query::QueryParams;
use super::time_query::{Bound, parse_bound};
use crate::auth::CurrentUser;
use crate::domain::availability::{Availability, AvailabilityInput};
use crate::domain::{FieldErrors, Role, UserId};
use crate::error::ApiError;
use crate::state::AppState;

/// The longest range one slot query may cover.
const MAX_SLOT_RANGE_DAYS: i64 = 366;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let list = warp::path!("api" / "doctors")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and_then(list_doctors);
    let put = warp::path!("api" / "doctors" / "me" / "availability")
        .and(warp::put())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(json_body())
        .and_then(put_availability);
    let get = warp::path!("api" / "doctors" / String / "availability")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and_then(get_availability);
    let slots = warp::path!("api" / "doctors" / String / "slots")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state))
        .and(warp::query::<HashMap<String, String>>())
        .and_then(list_slots);
    list.or(put).unify().or(get).unify().or(slots).unify().boxed()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DoctorView {
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
    pub name: String,
    pub timezone: String,
}

/// Every doctor, by name.
#[utoipa::path(get, path = "/api/doctors", tag = "scheduling", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Doctors", body = [DoctorView]),
              (status = 401, description = "Not signed in", body = crate::error::Problem)))]
pub async fn list_doctors(state: AppState, _caller: CurrentUser) -> Result<Response, Rejection> {
    let doctors = state.db.users_by_role(Role::Doctor).await.map_err(ApiError::from)?;
    let views: Vec<DoctorView> = doctors
        .iter()
        .map(|d| DoctorView { id: d.id.to_string(), name: d.name.clone(), timezone: d.timezone.name().to_owned() })
        .collect();
    Ok(json_reply(&views, http::StatusCode::OK))
}

/// A doctor's id from the path; `me` is the caller. Unknown → 404.
async fn doctor_id(state: &AppState, caller: &CurrentUser, raw: &str) -> Result<UserId, ApiError> {
    if raw == "me" && caller.user.role == Role::Doctor {
        return Ok(caller.user.id);
    }
    let id: UserId = raw.parse().map_err(|_| ApiError::NotFound)?;
    match state.db.user_by_id(id).await? {
        Some(user) if user.role == Role::Doctor => Ok(id),
        _ => Err(ApiError::NotFound),
    }
}

/// Replaces the caller's weekly availability. Existing appointments stay.
#[utoipa::path(put, path = "/api/doctors/me/availability", tag = "scheduling", request_body = AvailabilityInput,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The stored availability", body = AvailabilityInput),
              (status = 403, description = "Not a doctor", body = crate::error::Problem),
              (status = 422, description = "Invalid fields", body = crate::error::Problem)))]
pub async fn put_availability(
    state: AppState,
    caller: CurrentUser,
    input: AvailabilityInput,
) -> Result<Response, Rejection> {
    caller.require(&[Role::Doctor])?;
    let availability = Availability::try_from(input).map_err(|errors| {
        let mut fields = FieldErrors::new();
        for (field, message) in errors.0 {
            fields.add(field, message);
        }
        ApiError::Validation(fields)
    })?;
    let rules = serde_json::to_string(&availability).map_err(|e| ApiError::Internal(e.into()))?;
    state.db.put_availability(caller.user.id, &rules, state.clock.now()).await.map_err(ApiError::from)?;
    tracing::info!(doctor_id = %caller.user.id, "availability updated");
    Ok(json_reply(&availability, http::StatusCode::OK))
}

/// A doctor's availability (`me` for the caller).
#[utoipa::path(get, path = "/api/doctors/{id}/availability", tag = "scheduling",
    params(("id" = String, Path, description = "Doctor id, or `me`")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The availability", body = AvailabilityInput),
              (status = 404, description = "No such doctor, or none published yet", body = crate::error::Problem)))]
pub async fn get_availability(raw_id: String, state: AppState, caller: CurrentUser) -> Result<Response, Rejection> {
    let doctor = doctor_id(&state, &caller, &raw_id).await?;
    let rules = state.db.availability(doctor).await.map_err(ApiError::from)?.ok_or(ApiError::NotFound)?;
    let availability: Availability =
        serde_json::from_str(&rules).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored availability: {e}")))?;
    Ok(json_reply(&availability, http::StatusCode::OK))
}

/// Free, bookable slots in a range, in UTC (computed in the doctor's zone).
#[utoipa::path(get, path = "/api/doctors/{id}/slots", tag = "scheduling",
    params(("id" = String, Path, description = "Doctor id"),
           ("from" = Option<String>, Query, description = "Date or RFC 3339 time; default now"),
           ("to" = Option<String>, Query, description = "Date (inclusive) or RFC 3339 time; default from + 14 days")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Free slots", body = [crate::domain::availability::SlotView]),
              (status = 404, description = "No such doctor", body = crate::error::Problem),
              (status = 422, description = "Bad range", body = crate::error::Problem)))]
pub async fn list_slots(
    raw_id: String,
    state: AppState,
    caller: CurrentUser,
    query: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let doctor = doctor_id(&state, &caller, &raw_id).await?;
    let now = state.clock.now();
    let mut q = QueryParams::new(&query, &["from", "to"]);
    let from = q.parsed("from", |v| parse_bound(v, Bound::From)).unwrap_or(now);
    let to = q.parsed("to", |v| parse_bound(v, Bound::To)).unwrap_or(from + chrono::Duration::days(14));
    q.finish()?;
    if to <= from {
        return Err(ApiError::Validation(FieldErrors::single("to", "must be after from")).into());
    }
    if to - from > chrono::Duration::days(MAX_SLOT_RANGE_DAYS) {
        let message = format!("must be at most {MAX_SLOT_RANGE_DAYS} days after from");
        return Err(ApiError::Validation(FieldErrors::single("to", message)).into());
    }
    let slots = crate::scheduling::free_slots(&state.db, doctor, from, to, now)
        .await
        .map_err(super::appointments::scheduling_error)?;
    Ok(json_reply(&slots, http::StatusCode::OK))
}
