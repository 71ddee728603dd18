//! Booking, reading, cancelling and rescheduling appointments.

use std::collections::HashMap;

use serde::Deserialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::filters::{RequestMeta, json_body, request_meta, with_state, with_user};
use super::json_reply;
use super::query::QueryParams;
use super::time_query::{Bound, parse_bound, parse_instant};
use super::views::{AppointmentEnvelope, AppointmentView};
use crate::auth::CurrentUser;
use crate::db::appointments::AppointmentQuery;
use crate::domain::availability::BookingRuleError;
use crate::domain::{AppointmentId, AppointmentStatus, FieldErrors, Note, Role, UserId};
use crate::error::ApiError;
use crate::hub::ServerMessage;
use crate::scheduling::{self, Actor, BookRequest, SchedulingError};
use crate::state::AppState;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let book = warp::path!("api" / "appointments")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(request_meta(state.clone()))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(json_body())
        .and_then(book_appointment);
    let list = warp::path!("api" / "appointments")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(request_meta(state.clone()))
        .and(warp::query::<HashMap<String, String>>())
        .and_then(list_appointments);
    let get = warp::path!("api" / "appointments" / String)
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(request_meta(state.clone()))
        .and_then(get_appointment);
    let cancel = warp::path!("api" / "appointments" / String / "cancel")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(request_meta(state.clone()))
        .and(json_body())
        .and_then(cancel_appointment);
    let reschedule = warp::path!("api" / "appointments" / String / "reschedule")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(request_meta(state))
        .and(json_body())
        .and_then(reschedule_appointment);
    book.or(list).unify().or(get).unify().or(cancel).unify().or(reschedule).unify().boxed()
}

pub(super) fn scheduling_error(e: SchedulingError) -> ApiError {
    match e {
        SchedulingError::DoctorNotFound | SchedulingError::NotFound => ApiError::NotFound,
        SchedulingError::NoAvailability => {
            ApiError::Unprocessable("This doctor has not published any availability yet.".into())
        }
        SchedulingError::Rule(BookingRuleError::Taken) => {
            ApiError::Conflict("This time is no longer available. Please choose another slot.".into())
        }
        SchedulingError::Rule(rule) => ApiError::Validation(FieldErrors::single("start", rule.to_string())),
        SchedulingError::PatientBusy => ApiError::Conflict("You already have another appointment at this time.".into()),
        SchedulingError::IdempotencyMismatch => ApiError::Validation(FieldErrors::single(
            "Idempotency-Key",
            "was already used for a different booking; use a new key for a new request",
        )),
        SchedulingError::AlreadyCancelled => ApiError::Conflict("This appointment is already cancelled.".into()),
        SchedulingError::AlreadyOver => ApiError::Conflict("This appointment is already over.".into()),
        SchedulingError::TooLateForPatient(minutes) => ApiError::Unprocessable(format!(
            "Appointments can be cancelled or moved online up to {minutes} minutes before they start. \
             Please contact the practice."
        )),
        SchedulingError::Db(e) => e.into(),
    }
}

fn actor<'a>(caller: &'a CurrentUser, meta: &RequestMeta) -> Actor<'a> {
    Actor { user: &caller.user, client_ip: Some(meta.ip.to_string()), request_id: meta.request_id.clone() }
}

/// Records a refused access to an appointment, then answers 404.
async fn refuse(state: &AppState, actor: &Actor<'_>, action: &'static str, id: Option<AppointmentId>) -> ApiError {
    let entry = actor.audit(action, id, "denied", state.clock.now());
    if let Err(e) = state.db.audit(&[entry]).await {
        return e.into();
    }
    ApiError::NotFound
}

/// Tells both participants' open sockets, after the change committed.
fn push(state: &AppState, appointment: &crate::domain::Appointment, message: ServerMessage) {
    state.hub.send_to_users(&[appointment.doctor.id, appointment.patient.id], &message);
}

fn parse_appointment_id(raw: &str) -> Option<AppointmentId> {
    raw.parse().ok()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookInput {
    #[schema(value_type = String, format = Uuid)]
    pub doctor_id: String,
    /// Start of one of the doctor's free slots (RFC 3339).
    pub start: String,
    /// Why the patient comes (at most 1000 characters); seen by the doctor only.
    pub reason: Option<String>,
}

/// Books a free slot (patients). Send an `Idempotency-Key` header to make retries safe.
#[utoipa::path(post, path = "/api/appointments", tag = "scheduling", request_body = BookInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the same appointment, no second booking")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, description = "Booked", body = AppointmentEnvelope),
              (status = 403, description = "Not a patient", body = crate::error::Problem),
              (status = 404, description = "No such doctor", body = crate::error::Problem),
              (status = 409, description = "Slot or patient's time taken", body = crate::error::Problem),
              (status = 422, description = "Not a bookable slot, or invalid fields", body = crate::error::Problem)))]
pub async fn book_appointment(
    state: AppState,
    caller: CurrentUser,
    meta: RequestMeta,
    idempotency_key: Option<String>,
    input: BookInput,
) -> Result<Response, Rejection> {
    caller.require(&[Role::Patient])?;
    let mut errors = FieldErrors::new();
    let doctor_id = errors.check("doctor_id", input.doctor_id.parse::<UserId>().map_err(|_| "must be a doctor's id"));
    let start = errors.check("start", parse_instant(&input.start));
    let reason = errors.check("reason", Note::parse(input.reason.as_deref()));
    if let Some(key) = &idempotency_key
        && (key.is_empty() || key.len() > 200 || !key.chars().all(|c| c.is_ascii_graphic()))
    {
        errors.add("Idempotency-Key", "must be 1–200 visible ASCII characters");
    }
    let (Some(doctor_id), Some(start), Some(reason)) = (doctor_id, start, reason) else {
        return Err(ApiError::Validation(errors).into());
    };
    errors.into_result().map_err(ApiError::from)?;
    let actor = actor(&caller, &meta);
    let now = state.clock.now();
    let request =
        BookRequest { doctor_id, start, reason: reason.as_ref(), idempotency_key: idempotency_key.as_deref() };
    let booked = scheduling::book(&state.db, &state.mail, &actor, &request, now).await.map_err(scheduling_error)?;
    let view = AppointmentView::new(&booked.appointment, &state.config.public_url, now);
    if booked.created {
        tracing::info!(appointment_id = %booked.appointment.id, "appointment booked");
        push(
            &state,
            &booked.appointment,
            ServerMessage::AppointmentCreated { appointment: view.clone(), committed_at: chrono::Utc::now() },
        );
    }
    Ok(json_reply(&AppointmentEnvelope { appointment: view }, http::StatusCode::CREATED))
}

/// The caller's own appointments (as doctor or patient), by start time.
#[utoipa::path(get, path = "/api/appointments", tag = "scheduling",
    params(("from" = Option<String>, Query, description = "Date or RFC 3339 time: appointments ending after it"),
           ("to" = Option<String>, Query, description = "Date (inclusive) or RFC 3339 time: appointments starting before it"),
           ("status" = Option<String>, Query, description = "scheduled, cancelled or completed"),
           ("limit" = Option<u32>, Query, description = "1–100, default 50"),
           ("offset" = Option<u32>, Query, description = "Skip this many, default 0")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Appointments", body = [AppointmentView]),
              (status = 422, description = "Bad query", body = crate::error::Problem)))]
pub async fn list_appointments(
    state: AppState,
    caller: CurrentUser,
    meta: RequestMeta,
    query: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let mut q = QueryParams::new(&query, &["from", "to", "status", "limit", "offset"]);
    let from = q.parsed("from", |v| parse_bound(v, Bound::From));
    let to = q.parsed("to", |v| parse_bound(v, Bound::To));
    let status = q.parsed("status", |v| AppointmentStatus::parse(v).ok_or("must be scheduled, cancelled or completed"));
    let limit = q.number("limit", 1..=100u32, 50);
    let offset = q.number("offset", 0..=1_000_000u32, 0);
    q.finish()?;
    let now = state.clock.now();
    let list = state
        .db
        .appointments_of(caller.user.id, &AppointmentQuery { from, to, status, limit, offset }, now)
        .await
        .map_err(ApiError::from)?;
    let actor = actor(&caller, &meta);
    let entries: Vec<_> = list.iter().map(|a| actor.audit("view", Some(a.id), "ok", now)).collect();
    state.db.audit(&entries).await.map_err(ApiError::from)?;
    let views: Vec<AppointmentView> =
        list.iter().map(|a| AppointmentView::new(a, &state.config.public_url, now)).collect();
    Ok(json_reply(&views, http::StatusCode::OK))
}

/// One appointment; 404 for anyone but its two participants.
#[utoipa::path(get, path = "/api/appointments/{id}", tag = "scheduling",
    params(("id" = String, Path, description = "Appointment id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The appointment", body = AppointmentEnvelope),
              (status = 404, description = "Not found (or not yours)", body = crate::error::Problem)))]
pub async fn get_appointment(
    raw_id: String,
    state: AppState,
    caller: CurrentUser,
    meta: RequestMeta,
) -> Result<Response, Rejection> {
    let actor = actor(&caller, &meta);
    let Some(id) = parse_appointment_id(&raw_id) else {
        return Err(refuse(&state, &actor, "view", None).await.into());
    };
    let now = state.clock.now();
    let appointment = match state.db.appointment(id).await.map_err(ApiError::from)? {
        Some(a) if a.is_participant(caller.user.id) => a,
        _ => return Err(refuse(&state, &actor, "view", Some(id)).await.into()),
    };
    state.db.audit(&[actor.audit("view", Some(id), "ok", now)]).await.map_err(ApiError::from)?;
    let view = AppointmentView::new(&appointment, &state.config.public_url, now);
    Ok(json_reply(&AppointmentEnvelope { appointment: view }, http::StatusCode::OK))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    /// Shown to the other participant (at most 1000 characters).
    pub reason: Option<String>,
}

/// Cancels (either participant). Patients may not inside the doctor's cancellation window.
#[utoipa::path(post, path = "/api/appointments/{id}/cancel", tag = "scheduling", request_body = CancelInput,
    params(("id" = String, Path, description = "Appointment id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Cancelled", body = AppointmentEnvelope),
              (status = 404, description = "Not found (or not yours)", body = crate::error::Problem),
              (status = 409, description = "Already cancelled or over", body = crate::error::Problem),
              (status = 422, description = "Too late for the patient to cancel online", body = crate::error::Problem)))]
pub async fn cancel_appointment(
    raw_id: String,
    state: AppState,
    caller: CurrentUser,
    meta: RequestMeta,
    input: CancelInput,
) -> Result<Response, Rejection> {
    let actor = actor(&caller, &meta);
    let Some(id) = parse_appointment_id(&raw_id) else {
        return Err(refuse(&state, &actor, "cancel", None).await.into());
    };
    let reason = Note::parse(input.reason.as_deref())
        .map_err(|e| ApiError::Validation(FieldErrors::single("reason", e.to_string())))?;
    let now = state.clock.now();
    let appointment = match scheduling::cancel(&state.db, &state.mail, &actor, id, reason.as_ref(), now).await {
        Err(SchedulingError::NotFound) => return Err(refuse(&state, &actor, "cancel", Some(id)).await.into()),
        other => other.map_err(scheduling_error)?,
    };
    tracing::info!(appointment_id = %id, "appointment cancelled");
    let view = AppointmentView::new(&appointment, &state.config.public_url, now);
    push(
        &state,
        &appointment,
        ServerMessage::AppointmentCancelled { appointment: view.clone(), committed_at: chrono::Utc::now() },
    );
    // Anyone in the video room leaves it now.
    state.sfu.close_room(id.0, crate::sfu::CloseReason::Cancelled).await;
    Ok(json_reply(&AppointmentEnvelope { appointment: view }, http::StatusCode::OK))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleInput {
    /// Start of another free slot of the same doctor (RFC 3339).
    pub start: String,
}

/// Moves to another free slot; keeps the id and room link.
#[utoipa::path(post, path = "/api/appointments/{id}/reschedule", tag = "scheduling", request_body = RescheduleInput,
    params(("id" = String, Path, description = "Appointment id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Rescheduled", body = AppointmentEnvelope),
              (status = 404, description = "Not found (or not yours)", body = crate::error::Problem),
              (status = 409, description = "Slot taken, or appointment cancelled/over", body = crate::error::Problem),
              (status = 422, description = "Not a bookable slot, or too late for the patient", body = crate::error::Problem)))]
pub async fn reschedule_appointment(
    raw_id: String,
    state: AppState,
    caller: CurrentUser,
    meta: RequestMeta,
    input: RescheduleInput,
) -> Result<Response, Rejection> {
    let actor = actor(&caller, &meta);
    let Some(id) = parse_appointment_id(&raw_id) else {
        return Err(refuse(&state, &actor, "reschedule", None).await.into());
    };
    let start = parse_instant(&input.start).map_err(|e| ApiError::Validation(FieldErrors::single("start", e)))?;
    let now = state.clock.now();
    let appointment = match scheduling::reschedule(&state.db, &state.mail, &actor, id, start, now).await {
        Err(SchedulingError::NotFound) => return Err(refuse(&state, &actor, "reschedule", Some(id)).await.into()),
        other => other.map_err(scheduling_error)?,
    };
    tracing::info!(appointment_id = %id, "appointment rescheduled");
    let view = AppointmentView::new(&appointment, &state.config.public_url, now);
    push(
        &state,
        &appointment,
        ServerMessage::AppointmentUpdated { appointment: view.clone(), committed_at: chrono::Utc::now() },
    );
    Ok(json_reply(&AppointmentEnvelope { appointment: view }, http::StatusCode::OK))
}
