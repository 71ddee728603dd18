//! Registration, sign-in, sign-out and the caller's own account.

use std::net::IpAddr;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply as _};

use super::filters::{client_ip, json_body, with_state, with_user};
use super::json_reply;
use super::views::{UserEnvelope, UserView};
use crate::accounts::{AccountInput, CreateAccountError, create_account};
use crate::auth::second_factor::secret_hash;
use crate::auth::{CurrentUser, clear_session_cookie, session_cookie};
use crate::domain::{Email, FieldErrors, Password, Role, SessionId};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let register = warp::path!("api" / "auth" / "register")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client_ip(state.clone()))
        .and(json_body())
        .and_then(register);
    let login = warp::path!("api" / "auth" / "login")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client_ip(state.clone()))
        .and(warp::header::optional::<String>("user-agent"))
        .and(json_body())
        .and_then(login);
    let logout = warp::path!("api" / "auth" / "logout")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and_then(logout);
    let password = warp::path!("api" / "me" / "password")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(with_user(state.clone()))
        .and(json_body())
        .and_then(change_password);
    let me = warp::path!("api" / "me").and(warp::get()).and(with_user(state)).map(me);
    register.or(login).unify().or(logout).unify().or(me).unify().or(password).unify().boxed()
}

pub(super) fn account_error(e: CreateAccountError) -> ApiError {
    match e {
        CreateAccountError::EmailTaken => ApiError::Conflict("An account with this email already exists.".into()),
        CreateAccountError::Hash(e) => e.into(),
        CreateAccountError::Db(e) => e.into(),
    }
}

/// Creates a patient account.
#[utoipa::path(post, path = "/api/auth/register", tag = "accounts", request_body = AccountInput,
    responses(
        (status = 201, description = "The patient account", body = UserEnvelope),
        (status = 409, description = "The email is taken", body = crate::error::Problem),
        (status = 422, description = "Invalid fields", body = crate::error::Problem),
        (status = 429, description = "Too many attempts from this address", body = crate::error::Problem)))]
pub async fn register(state: AppState, ip: IpAddr, input: AccountInput) -> Result<Response, Rejection> {
    state.limits.check_ip(ip).map_err(ApiError::from)?;
    let account = input.parse(Role::Patient).map_err(ApiError::from)?;
    let user = create_account(&state.db, &state.hasher, &account, state.clock.now()).await.map_err(account_error)?;
    Ok(json_reply(&UserEnvelope::from(&user), http::StatusCode::CREATED))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

/// The answer to a correct password: signed in, or the second step.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    SignedIn(LoginOutput),
    SecondFactor(SecondFactorRequired),
}

/// The password was right and the account has two-factor sign-in on: send
/// `challenge` with a code to `POST /api/auth/login/2fa`. No token yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorRequired {
    /// Always true.
    pub second_factor_required: bool,
    pub challenge: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginOutput {
    /// Send as `Authorization: Bearer <token>`; the same value is set as the session cookie.
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub user: UserView,
}

/// Signs in; answers the same 401 for an unknown email and a wrong password.
/// With two-factor sign-in on, a right password answers the second step
/// (`second_factor_required`, `challenge`) instead of a token.
#[utoipa::path(post, path = "/api/auth/login", tag = "accounts", request_body = LoginInput,
    responses(
        (status = 200, description = "Signed in (also sets the session cookie), or the second step", body = LoginAnswer),
        (status = 401, description = "Wrong email or password", body = crate::error::Problem),
        (status = 429, description = "Too many attempts", body = crate::error::Problem)))]
pub async fn login(
    state: AppState,
    ip: IpAddr,
    user_agent: Option<String>,
    input: LoginInput,
) -> Result<Response, Rejection> {
    state.limits.check_ip(ip).map_err(ApiError::from)?;
    let email = Email::parse(&input.email).ok();
    if let Some(email) = &email {
        state.limits.check_account(email.as_str()).map_err(ApiError::from)?;
    }
    let found = match &email {
        Some(email) => state.db.user_with_hash_by_email(email).await.map_err(ApiError::from)?,
        None => None,
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let ok = state.hasher.verify(&input.password, hash).await.map_err(ApiError::from)?;
    let user = match user {
        Some(user) if ok => user,
        _ => {
            tracing::info!(%ip, "sign-in refused");
            return Err(ApiError::BadCredentials.into());
        }
    };
    if state.db.has_second_factor(user.id).await.map_err(ApiError::from)? {
        let challenge = hex::encode(rand::random::<[u8; 32]>());
        let expires_at = state.clock.now() + Duration::minutes(super::second_factor::CHALLENGE_MINUTES);
        state.db.insert_login_challenge(&secret_hash(&challenge), user.id, expires_at).await.map_err(ApiError::from)?;
        tracing::info!(user_id = %user.id, "password accepted; second factor required");
        let body =
            LoginAnswer::SecondFactor(SecondFactorRequired { second_factor_required: true, challenge, expires_at });
        return Ok(json_reply(&body, http::StatusCode::OK));
    }
    Ok(start_session(&state, &user, ip, user_agent.as_deref()).await?)
}

/// A new session for `user`, answered as a successful sign-in (token,
/// cookie, user).
pub(super) async fn start_session(
    state: &AppState,
    user: &crate::domain::User,
    ip: IpAddr,
    user_agent: Option<&str>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let max = Duration::from_std(state.config.session_max).unwrap_or(Duration::hours(12));
    let expires_at = now + max;
    let session = SessionId::new();
    state.db.insert_session(session, user.id, now, expires_at, Some(&ip.to_string()), user_agent).await?;
    let token = state.tokens.issue(
        user.id,
        session,
        chrono::Utc::now().timestamp(),
        chrono::Utc::now().timestamp() + max.num_seconds(),
    )?;
    tracing::info!(user_id = %user.id, "signed in");
    let body = LoginAnswer::SignedIn(LoginOutput { token: token.clone(), expires_at, user: UserView::from(user) });
    let mut response = json_reply(&body, http::StatusCode::OK);
    let cookie = session_cookie(&token, state.config.session_max.as_secs());
    if let Ok(value) = http::HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(http::header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Ends this session at once: its token and cookie stop working.
#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Signed out"),
              (status = 401, description = "Not signed in", body = crate::error::Problem)))]
pub async fn logout(state: AppState, user: CurrentUser) -> Result<Response, Rejection> {
    state.db.revoke_session(user.session_id, state.clock.now()).await.map_err(ApiError::from)?;
    state.hub.close_session(user.session_id);
    tracing::info!(user_id = %user.user.id, "signed out");
    let mut response = warp::reply::with_status(warp::reply(), http::StatusCode::NO_CONTENT).into_response();
    if let Ok(value) = http::HeaderValue::from_str(&clear_session_cookie()) {
        response.headers_mut().insert(http::header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/me", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The caller's account", body = UserView),
              (status = 401, description = "Not signed in", body = crate::error::Problem)))]
pub fn me(user: CurrentUser) -> Response {
    json_reply(&UserView::from(&user.user), http::StatusCode::OK)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeInput {
    pub current_password: String,
    /// 8–72 bytes; common or personal passwords are refused.
    pub new_password: String,
}

/// Changes the caller's password and ends every other session of theirs.
#[utoipa::path(post, path = "/api/me/password", tag = "accounts", request_body = PasswordChangeInput,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Changed; other sessions ended"),
              (status = 422, description = "Wrong current password, or a weak new one", body = crate::error::Problem),
              (status = 429, description = "Too many attempts", body = crate::error::Problem)))]
pub async fn change_password(
    state: AppState,
    caller: CurrentUser,
    input: PasswordChangeInput,
) -> Result<Response, Rejection> {
    let email = Email::parse(&caller.user.email).map_err(|_| ApiError::Unauthorized)?;
    state.limits.check_account(email.as_str()).map_err(ApiError::from)?;
    let hash = state.db.user_with_hash_by_email(&email).await.map_err(ApiError::from)?.map(|(_, hash)| hash);
    if !state.hasher.verify(&input.current_password, hash).await.map_err(ApiError::from)? {
        return Err(
            ApiError::Validation(FieldErrors::single("current_password", "is not your current password")).into()
        );
    }
    let new = Password::parse(&input.new_password, &[&caller.user.email, &caller.user.name])
        .map_err(|e| ApiError::Validation(FieldErrors::single("new_password", e.to_string())))?;
    let hash = state.hasher.hash(&new).await.map_err(ApiError::from)?;
    let now = state.clock.now();
    state.db.update_password_hash(caller.user.id, &hash, now).await.map_err(ApiError::from)?;
    let ended =
        state.db.revoke_other_sessions(caller.user.id, Some(caller.session_id), now).await.map_err(ApiError::from)?;
    // Their sockets close at the hub's next session sweep (within a second).
    tracing::info!(user_id = %caller.user.id, sessions_ended = ended, "password changed");
    Ok(warp::reply::with_status(warp::reply(), http::StatusCode::NO_CONTENT).into_response())
}
