//! Turning a request into a signed-in user: the token (Bearer header or
//! session cookie), its session row, and the cross-site check for cookies.

use chrono::Duration;
use http::{HeaderMap, Method};

use crate::domain::{Role, SessionId, User};
use crate::error::ApiError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "consulta_session";

/// A refresh of `last_seen_at` more often than this buys nothing but writes.
const TOUCH_EVERY_SECS: i64 = 30;

#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: User,
    pub session_id: SessionId,
}

impl CurrentUser {
    /// 403 unless the user has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.user.role) { Ok(()) } else { Err(ApiError::Forbidden("Your role may not do this.")) }
    }
}

enum Credential<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
}

fn credential(headers: &HeaderMap) -> Result<Option<Credential<'_>>, ApiError> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::Unauthorized)?;
        let token =
            value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).ok_or(ApiError::Unauthorized)?;
        return Ok(Some(Credential::Bearer(token.trim())));
    }
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((name, token)) = pair.trim().split_once('=')
                && name == SESSION_COOKIE
                && !token.is_empty()
            {
                return Ok(Some(Credential::Cookie(token)));
            }
        }
    }
    Ok(None)
}

/// Whether a cookie-authenticated request that changes state really comes
/// from our own pages (`Origin`, else `Referer`).
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    if let Some(o) = headers.get(http::header::ORIGIN) {
        return o.to_str().is_ok_and(|o| o == origin);
    }
    headers
        .get(http::header::REFERER)
        .and_then(|r| r.to_str().ok())
        .is_some_and(|r| r == origin || r.starts_with(&format!("{origin}/")))
}

/// The signed-in user of a request, or 401 (403 for a cross-site cookie
/// request that would change state).
pub async fn authenticate(state: &AppState, method: &Method, headers: &HeaderMap) -> Result<CurrentUser, ApiError> {
    let credential = credential(headers)?.ok_or(ApiError::Unauthorized)?;
    let token = match credential {
        Credential::Bearer(token) => token,
        Credential::Cookie(token) => {
            let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
            if !safe && !same_origin(headers, state.config.public_url.origin()) {
                return Err(ApiError::Forbidden("This request must come from Consulta's own pages."));
            }
            token
        }
    };
    let claims = state.tokens.verify(token).map_err(|_| ApiError::Unauthorized)?;
    let (session, user) = state.db.session_with_user(claims.sid).await?.ok_or(ApiError::Unauthorized)?;
    let now = state.clock.now();
    let idle = Duration::from_std(state.config.session_idle).unwrap_or(Duration::minutes(30));
    if session.revoked || session.user_id != claims.sub || now >= session.expires_at {
        return Err(ApiError::Unauthorized);
    }
    if now - session.last_seen_at > idle {
        state.db.revoke_session(session.id, now).await?;
        return Err(ApiError::Unauthorized);
    }
    if (now - session.last_seen_at).num_seconds() >= TOUCH_EVERY_SECS {
        state.db.touch_session(session.id, now).await?;
    }
    Ok(CurrentUser { user, session_id: session.id })
}

/// `Set-Cookie` value for a fresh session.
pub fn session_cookie(token: &str, max_age_secs: u64) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict")
}

pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}
