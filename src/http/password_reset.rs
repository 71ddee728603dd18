//! Password reset by email: a single-use token, stored as its SHA-256,
//! valid 30 minutes, that ends every session of the account when used.

use std::net::IpAddr;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply as _};

use super::filters::{client_ip, json_body, with_state};
use super::json_reply;
use crate::db::audit::AuditEntry;
use crate::db::password_resets;
use crate::domain::{Email, FieldErrors, Password, UserId};
use crate::error::ApiError;
use crate::mail::{PasswordResetPayload, enqueue_password_reset};
use crate::state::AppState;

/// How long a reset link works.
pub const RESET_VALID_MINUTES: i64 = 30;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let request = warp::path!("api" / "auth" / "password-reset")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client_ip(state.clone()))
        .and(json_body())
        .and_then(request_password_reset);
    let confirm = warp::path!("api" / "auth" / "password-reset" / "confirm")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client_ip(state))
        .and(json_body())
        .and_then(confirm_password_reset);
    request.or(confirm).unify().boxed()
}

/// SHA-256 in hex: what is stored of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordResetAccepted {
    pub status: String,
    pub detail: String,
}

/// Mails a reset link if an account uses this address. The answer is the
/// same whether or not one does, and comes before any lookup is done, so
/// neither its content nor its timing tells.
#[utoipa::path(post, path = "/api/auth/password-reset", tag = "accounts", request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Always the same answer", body = PasswordResetAccepted),
        (status = 400, description = "Malformed request", body = crate::error::Problem),
        (status = 429, description = "Too many attempts", body = crate::error::Problem)))]
pub async fn request_password_reset(
    state: AppState,
    ip: IpAddr,
    input: PasswordResetRequest,
) -> Result<Response, Rejection> {
    state.limits.check_ip(ip).map_err(ApiError::from)?;
    if let Ok(email) = Email::parse(&input.email) {
        state.limits.check_account(email.as_str()).map_err(ApiError::from)?;
        tokio::spawn(async move {
            if let Err(e) = send_reset_link(&state, &email).await {
                tracing::warn!(error = %e, "password reset mail not written");
            }
        });
    }
    let body = PasswordResetAccepted {
        status: "accepted".to_owned(),
        detail: "If an account uses this address, a link to reset its password is on its way.".to_owned(),
    };
    Ok(json_reply(&body, http::StatusCode::ACCEPTED))
}

async fn send_reset_link(state: &AppState, email: &Email) -> Result<(), crate::db::DbError> {
    let Some((user, _)) = state.db.user_with_hash_by_email(email).await? else {
        tracing::info!("password reset asked for an unknown address");
        return Ok(());
    };
    let token = hex::encode(rand::random::<[u8; 32]>());
    let now = state.clock.now();
    let expires_at = now + Duration::minutes(RESET_VALID_MINUTES);
    let payload = PasswordResetPayload {
        recipient_name: user.name.clone(),
        link: state.config.public_url.join(&format!("/reset#token={token}")),
        expires_at,
    };
    let mut tx = state.db.begin_write().await?;
    password_resets::insert(&mut tx, &token_hash(&token), user.id, now, expires_at).await?;
    enqueue_password_reset(&mut tx, &user, &payload, now).await?;
    tx.commit().await?;
    state.mail.wake();
    tracing::info!(user_id = %user.id, "password reset link mailed");
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The token from the mailed link.
    pub token: String,
    /// 8–72 bytes; common or personal passwords are refused.
    pub new_password: String,
}

fn invalid_token() -> ApiError {
    ApiError::Validation(FieldErrors::single("token", "is invalid, used or expired; ask for a new link"))
}

/// Sets a new password with a mailed token; the token is then used up and
/// every session of the account ends.
#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "accounts", request_body = PasswordResetConfirm,
    responses(
        (status = 204, description = "Password changed; every session ended"),
        (status = 400, description = "Malformed request", body = crate::error::Problem),
        (status = 422, description = "Invalid or expired token, or a weak password", body = crate::error::Problem),
        (status = 429, description = "Too many attempts", body = crate::error::Problem)))]
pub async fn confirm_password_reset(
    state: AppState,
    ip: IpAddr,
    input: PasswordResetConfirm,
) -> Result<Response, Rejection> {
    state.limits.check_ip(ip).map_err(ApiError::from)?;
    let hash = token_hash(input.token.trim());
    let now = state.clock.now();
    let user_id: UserId =
        state.db.password_reset_user(&hash, now).await.map_err(ApiError::from)?.ok_or_else(invalid_token)?;
    let user = state.db.user_by_id(user_id).await.map_err(ApiError::from)?.ok_or_else(invalid_token)?;
    let new = Password::parse(&input.new_password, &[&user.email, &user.name])
        .map_err(|e| ApiError::Validation(FieldErrors::single("new_password", e.to_string())))?;
    let password_hash = state.hasher.hash(&new).await.map_err(ApiError::from)?;
    let role = user.role;
    let done = state
        .db
        .complete_password_reset(&hash, &password_hash, state.clock.now(), |user_id| AuditEntry {
            at: now,
            user_id: Some(user_id),
            role: Some(role),
            action: "password_reset",
            appointment_id: None,
            outcome: "ok",
            client_ip: Some(ip.to_string()),
            request_id: None,
        })
        .await
        .map_err(ApiError::from)?
        .ok_or_else(invalid_token)?;
    for session in &done.ended_sessions {
        state.hub.close_session(*session);
    }
    tracing::info!(user_id = %done.user_id, sessions_ended = done.ended_sessions.len(), "password reset");
    Ok(warp::reply::with_status(warp::reply(), http::StatusCode::NO_CONTENT).into_response())
}
