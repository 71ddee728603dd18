//! Two-factor sign-in (TOTP): enrolment, the login's second step, and the
//! rule that admins must have it on before admin endpoints answer them.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::accounts::start_session;
use super::filters::{client_ip, json_body, with_state, with_user};
use super::json_reply;
use crate::auth::CurrentUser;
use crate::auth::second_factor::{self as totp, secret_hash};
use crate::domain::{FieldErrors, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// How long the second step of a sign-in may take.
pub const CHALLENGE_MINUTES: i64 = 5;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let status = warp::path!("api" / "me" / "2fa")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and_then(two_factor_status);
    let setup = warp::path!("api" / "me" / "2fa" / "setup")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and_then(setup_two_factor);
    let enable = warp::path!("api" / "me" / "2fa" / "enable")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(json_body())
        .and_then(enable_two_factor);
    let login = warp::path!("api" / "auth" / "login" / "2fa")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client_ip(state))
        .and(warp::header::optional::<String>("user-agent"))
        .and(json_body())
        .and_then(login_second_factor);
    status.or(setup).unify().or(enable).unify().or(login).unify().boxed()
}

/// 403 unless the caller is an admin who (when `CONSULTA_ADMIN_2FA` is on)
/// has two-factor sign-in enabled.
pub async fn require_admin(state: &AppState, caller: &CurrentUser) -> Result<(), ApiError> {
    caller.require(&[Role::Admin])?;
    if state.config.admin_2fa && !state.db.has_second_factor(caller.user.id).await? {
        return Err(ApiError::Forbidden(
            "Admins must turn on two-factor sign-in first: POST /api/me/2fa/setup, then POST /api/me/2fa/enable \
             with a code from your authenticator app.",
        ));
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TwoFactorStatus {
    /// Two-factor sign-in is on for the caller.
    pub enabled: bool,
    /// The caller must turn it on before admin endpoints answer (admins, with
    /// `CONSULTA_ADMIN_2FA` on).
    pub required: bool,
}

/// Whether the caller has two-factor sign-in on, and whether they must.
#[utoipa::path(get, path = "/api/me/2fa", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The caller's two-factor status", body = TwoFactorStatus),
              (status = 401, description = "Not signed in", body = crate::error::Problem)))]
pub async fn two_factor_status(state: AppState, caller: CurrentUser) -> Result<Response, Rejection> {
    let enabled = state.db.has_second_factor(caller.user.id).await.map_err(ApiError::from)?;
    let required = state.config.admin_2fa && caller.user.role == Role::Admin;
    Ok(json_reply(&TwoFactorStatus { enabled, required }, http::StatusCode::OK))
}

fn unix_secs(state: &AppState) -> u64 {
    u64::try_from(state.clock.now().timestamp()).unwrap_or(0)
}

fn internal(e: totp::SecretError) -> ApiError {
    ApiError::Internal(e.into())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TwoFactorSetup {
    /// Base32; for typing into an authenticator app by hand.
    pub secret: String,
    /// `otpauth://totp/…`; for a QR code.
    pub otpauth_uri: String,
}

/// Starts enrolment: a new secret, not yet in force until confirmed with a
/// code through `POST /api/me/2fa/enable`.
#[utoipa::path(post, path = "/api/me/2fa/setup", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "A new secret to add to an authenticator app", body = TwoFactorSetup),
              (status = 401, description = "Not signed in", body = crate::error::Problem),
              (status = 409, description = "Two-factor sign-in is already on", body = crate::error::Problem)))]
pub async fn setup_two_factor(state: AppState, caller: CurrentUser) -> Result<Response, Rejection> {
    let secret = totp::new_secret();
    let started =
        state.db.start_totp_enrolment(caller.user.id, &secret, state.clock.now()).await.map_err(ApiError::from)?;
    if !started {
        return Err(ApiError::Conflict("Two-factor sign-in is already on.".into()).into());
    }
    let otpauth_uri = totp::otpauth_uri(&secret, &caller.user.email).map_err(internal)?;
    Ok(json_reply(&TwoFactorSetup { secret, otpauth_uri }, http::StatusCode::OK))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwoFactorCode {
    /// The 6-digit code the app shows now.
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown this once; each signs in once in place of a code.
    pub recovery_codes: Vec<String>,
}

/// Confirms enrolment with a current code: two-factor sign-in is on from
/// now, the caller's other sessions end, and recovery codes are shown once.
#[utoipa::path(post, path = "/api/me/2fa/enable", tag = "accounts", request_body = TwoFactorCode,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "On; the recovery codes", body = RecoveryCodes),
              (status = 401, description = "Not signed in", body = crate::error::Problem),
              (status = 409, description = "No enrolment started, or already on", body = crate::error::Problem),
              (status = 422, description = "Not the current code", body = crate::error::Problem)))]
pub async fn enable_two_factor(
    state: AppState,
    caller: CurrentUser,
    input: TwoFactorCode,
) -> Result<Response, Rejection> {
    let pending = state.db.totp(caller.user.id).await.map_err(ApiError::from)?.filter(|t| !t.enabled);
    let Some(pending) = pending else {
        return Err(ApiError::Conflict("Start with POST /api/me/2fa/setup (or it is already on).".into()).into());
    };
    let Some(step) = totp::matching_step(&pending.secret, &input.code, unix_secs(&state)).map_err(internal)? else {
        return Err(ApiError::Validation(FieldErrors::single("code", "is not the current code")).into());
    };
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| secret_hash(c)).collect();
    let now = state.clock.now();
    if !state.db.enable_totp(caller.user.id, step, &hashes, now).await.map_err(ApiError::from)? {
        return Err(ApiError::Conflict("Two-factor sign-in is already on.".into()).into());
    }
    // Sessions that signed in with a password alone end here.
    state.db.revoke_other_sessions(caller.user.id, Some(caller.session_id), now).await.map_err(ApiError::from)?;
    tracing::info!(user_id = %caller.user.id, "two-factor sign-in enabled");
    Ok(json_reply(&RecoveryCodes { recovery_codes: codes }, http::StatusCode::OK))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorInput {
    /// From the login answer.
    pub challenge: String,
    /// The 6-digit code; or else `recovery_code`.
    pub code: Option<String>,
    pub recovery_code: Option<String>,
}

/// The second step of a sign-in: the challenge with a TOTP code or an
/// unused recovery code. Answers as a successful login does.
#[utoipa::path(post, path = "/api/auth/login/2fa", tag = "accounts", request_body = SecondFactorInput,
    responses(
        (status = 200, description = "Signed in; also sets the session cookie", body = super::accounts::LoginOutput),
        (status = 401, description = "Wrong code, or the challenge is used, expired or out of attempts", body = crate::error::Problem),
        (status = 429, description = "Too many attempts", body = crate::error::Problem)))]
pub async fn login_second_factor(
    state: AppState,
    ip: IpAddr,
    user_agent: Option<String>,
    input: SecondFactorInput,
) -> Result<Response, Rejection> {
    state.limits.check_ip(ip).map_err(ApiError::from)?;
    let challenge = secret_hash(input.challenge.trim());
    let now = state.clock.now();
    let user_id = state
        .db
        .attempt_login_challenge(&challenge, now)
        .await
        .map_err(ApiError::from)?
        .ok_or(ApiError::Unauthorized)?;
    let passed = match (&input.code, &input.recovery_code) {
        (Some(code), _) => {
            let totp = state.db.totp(user_id).await.map_err(ApiError::from)?.filter(|t| t.enabled);
            match totp {
                Some(totp) => match totp::matching_step(&totp.secret, code, unix_secs(&state)).map_err(internal)? {
                    Some(step) => state.db.use_totp_step(user_id, step).await.map_err(ApiError::from)?,
                    None => false,
                },
                None => false,
            }
        }
        (None, Some(recovery)) => {
            state.db.use_recovery_code(user_id, &secret_hash(recovery), now).await.map_err(ApiError::from)?
        }
        (None, None) => false,
    };
    if !passed {
        tracing::info!(%ip, user_id = %user_id, "second factor refused");
        return Err(ApiError::Unauthorized.into());
    }
    if !state.db.finish_login_challenge(&challenge, now).await.map_err(ApiError::from)? {
        return Err(ApiError::Unauthorized.into());
    }
    let user = state.db.user_by_id(user_id).await.map_err(ApiError::from)?.ok_or(ApiError::Unauthorized)?;
    Ok(start_session(&state, &user, ip, user_agent.as_deref()).await?)
}
