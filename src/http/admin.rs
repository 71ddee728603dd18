//! Administration: how doctors and admins come to exist; the audit trail
//! and the mail outbox.

use serde::Deserialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::accounts::account_error;
use super::filters::{json_body, with_state, with_user};
use super::json_reply;
use super::query::QueryParams;
use super::views::{UserEnvelope, UserView};
use crate::accounts::{AccountInput, create_account};
use crate::auth::CurrentUser;
use crate::db::audit::AuditRecord;
use crate::db::outbox::MailRecord;
use crate::domain::{AppointmentId, MailStatus, Role};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let create = warp::path!("api" / "admin" / "users")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(json_body())
        .and_then(create_user);
    let list = warp::path!("api" / "admin" / "users")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and_then(list_users);
    let audit = warp::path!("api" / "admin" / "audit")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and_then(read_audit);
    let mail = warp::path!("api" / "admin" / "mail")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state))
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and_then(list_mail);
    create.or(list).unify().or(audit).unify().or(mail).unify().boxed()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUserInput {
    pub email: String,
    pub name: String,
    /// `admin`, `doctor` or `patient`.
    pub role: String,
    pub password: String,
    pub timezone: String,
}

/// Creates an account of any role.
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", request_body = AdminUserInput,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "The account", body = UserEnvelope),
        (status = 403, description = "Not an admin", body = crate::error::Problem),
        (status = 409, description = "The email is taken", body = crate::error::Problem),
        (status = 422, description = "Invalid fields", body = crate::error::Problem)))]
pub async fn create_user(state: AppState, caller: CurrentUser, input: AdminUserInput) -> Result<Response, Rejection> {
    super::second_factor::require_admin(&state, &caller).await?;
    let role = input.role.parse::<Role>();
    let account_input =
        AccountInput { email: input.email, password: input.password, name: input.name, timezone: input.timezone };
    let account = match (role, account_input.parse(Role::Patient)) {
        (Ok(role), Ok(mut account)) => {
            account.role = role;
            account
        }
        (role, parsed) => {
            let mut errors = parsed.err().unwrap_or_default();
            if let Err(e) = role {
                errors.add("role", e.to_string());
            }
            return Err(ApiError::Validation(errors).into());
        }
    };
    let user = create_account(&state.db, &state.hasher, &account, state.clock.now()).await.map_err(account_error)?;
    tracing::info!(admin_id = %caller.user.id, user_id = %user.id, role = %user.role, "admin created an account");
    Ok(json_reply(&UserEnvelope::from(&user), http::StatusCode::CREATED))
}

/// Every account.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "All accounts", body = [UserView]),
        (status = 403, description = "Not an admin", body = crate::error::Problem)))]
pub async fn list_users(state: AppState, caller: CurrentUser) -> Result<Response, Rejection> {
    super::second_factor::require_admin(&state, &caller).await?;
    let users = state.db.all_users().await.map_err(ApiError::from)?;
    let views: Vec<UserView> = users.iter().map(UserView::from).collect();
    Ok(json_reply(&views, http::StatusCode::OK))
}

/// The audit trail, oldest first; filter by appointment, page with `after`.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin",
    params(("appointment_id" = Option<String>, Query, description = "Only this appointment"),
           ("after" = Option<i64>, Query, description = "Only rows with a larger seq (paging)"),
           ("limit" = Option<u32>, Query, description = "1–1000, default 200")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Audit rows", body = [AuditRecord]),
              (status = 403, description = "Not an admin", body = crate::error::Problem)))]
pub async fn read_audit(
    state: AppState,
    caller: CurrentUser,
    query: std::collections::HashMap<String, String>,
) -> Result<Response, Rejection> {
    super::second_factor::require_admin(&state, &caller).await?;
    let mut q = QueryParams::new(&query, &["appointment_id", "after", "limit"]);
    let appointment =
        q.parsed("appointment_id", |v| v.parse::<AppointmentId>().map_err(|_| "must be an appointment id"));
    let after = q.number("after", 0..=i64::MAX, 0);
    let limit = q.number("limit", 1..=1000u32, 200);
    q.finish()?;
    let rows = state.db.audit_trail(appointment, limit, after).await.map_err(ApiError::from)?;
    Ok(json_reply(&rows, http::StatusCode::OK))
}

/// Mails in the outbox, newest first, without their content: `dead` ones
/// (refused for good, or given up after three days) are what to look at.
#[utoipa::path(get, path = "/api/admin/mail", tag = "admin",
    params(("status" = Option<String>, Query, description = "pending, sending, sent, dead or skipped; all when absent"),
           ("limit" = Option<u32>, Query, description = "1–1000, default 200")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Outbox rows", body = [MailRecord]),
              (status = 403, description = "Not an admin", body = crate::error::Problem),
              (status = 422, description = "Bad query", body = crate::error::Problem)))]
pub async fn list_mail(
    state: AppState,
    caller: CurrentUser,
    query: std::collections::HashMap<String, String>,
) -> Result<Response, Rejection> {
    super::second_factor::require_admin(&state, &caller).await?;
    let mut q = QueryParams::new(&query, &["status", "limit"]);
    let status =
        q.parsed("status", |v| v.parse::<MailStatus>().map_err(|_| "must be pending, sending, sent, dead or skipped"));
    let limit = q.number("limit", 1..=1000u32, 200);
    q.finish()?;
    let rows = state.db.mail_records(status, limit).await.map_err(ApiError::from)?;
    Ok(json_reply(&rows, http::StatusCode::OK))
}
