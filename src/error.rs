//! The one place errors become HTTP responses: RFC 9457 problem details.
//! Internal causes are logged here and never reach the client.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use http::StatusCode;
use serde::Serialize;
use warp::Reply;
use warp::reject::Rejection;

use crate::auth::{HashError, RateLimited, TokenError};
use crate::db::DbError;
use crate::domain::FieldErrors;

/// Every way a request can fail, as the client is allowed to see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRequest(&'static str),
    #[error("authentication required")]
    Unauthorized,
    #[error("invalid email or password")]
    BadCredentials,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid fields")]
    Validation(FieldErrors),
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    #[error("too many requests")]
    TooManyRequests(Duration),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

impl warp::reject::Reject for ApiError {}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict => ApiError::Conflict("the resource already exists".into()),
            DbError::Unavailable(_) => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "database unavailable");
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<RateLimited> for ApiError {
    fn from(e: RateLimited) -> Self {
        ApiError::TooManyRequests(e.retry_after)
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::Validation(e)
    }
}

/// The RFC 9457 body.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; stable, for programs.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For invalid input: field path → what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, String>>,
}

pub fn problem(status: StatusCode, slug: &str, detail: impl Into<String>) -> Problem {
    Problem {
        kind: format!("urn:consulta:problem:{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.into(),
        errors: None,
    }
}

pub fn problem_response(p: &Problem, extra: Option<(&'static str, String)>) -> warp::reply::Response {
    let body = serde_json::to_vec(p).unwrap_or_default();
    let mut response = warp::reply::Response::new(body.into());
    *response.status_mut() = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/problem+json"));
    if let Some((name, value)) = extra
        && let Ok(value) = http::HeaderValue::from_str(&value)
    {
        headers.insert(name, value);
    }
    response
}

impl ApiError {
    fn to_problem(&self) -> (Problem, Option<(&'static str, String)>) {
        use StatusCode as S;
        match self {
            ApiError::BadRequest(what) => (problem(S::BAD_REQUEST, "bad-request", *what), None),
            ApiError::Unauthorized => (
                problem(S::UNAUTHORIZED, "unauthenticated", "Sign in to continue."),
                Some(("www-authenticate", "Bearer".to_owned())),
            ),
            ApiError::BadCredentials => {
                (problem(S::UNAUTHORIZED, "bad-credentials", "The email or password is not correct."), None)
            }
            ApiError::Forbidden(why) => (problem(S::FORBIDDEN, "forbidden", *why), None),
            ApiError::NotFound => (problem(S::NOT_FOUND, "not-found", "There is nothing here."), None),
            ApiError::Conflict(why) => (problem(S::CONFLICT, "conflict", why.clone()), None),
            ApiError::Validation(errors) => {
                let mut p = problem(S::UNPROCESSABLE_ENTITY, "validation", "Some fields are not valid; see errors.");
                p.errors = Some(errors.clone().into_map());
                (p, None)
            }
            ApiError::Unprocessable(why) => (problem(S::UNPROCESSABLE_ENTITY, "unprocessable", why.clone()), None),
            ApiError::TooManyRequests(wait) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                (
                    problem(
                        S::TOO_MANY_REQUESTS,
                        "rate-limited",
                        format!("Too many attempts. Try again in {} seconds.", secs.max(1)),
                    ),
                    Some(("retry-after", secs.max(1).to_string())),
                )
            }
            ApiError::PayloadTooLarge => {
                (problem(S::PAYLOAD_TOO_LARGE, "payload-too-large", "The request body is larger than 64 KiB."), None)
            }
            ApiError::UnsupportedMediaType => (
                problem(
                    S::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "Send the request body as application/json.",
                ),
                None,
            ),
            ApiError::Unavailable => (
                problem(
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The service is temporarily unavailable. Try again shortly.",
                ),
                Some(("retry-after", "5".to_owned())),
            ),
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "request failed");
                (problem(S::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side."), None)
            }
        }
    }

    pub fn into_response(self) -> warp::reply::Response {
        let (p, extra) = self.to_problem();
        problem_response(&p, extra)
    }
}

impl Reply for ApiError {
    fn into_response(self) -> warp::reply::Response {
        ApiError::into_response(self)
    }
}

/// Turns every rejection into a problem response: our own errors first, then
/// warp's specific ones, then the generic 404/405.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    if let Some(e) = rejection.find::<ApiError>() {
        let (p, extra) = e.to_problem();
        return Ok(problem_response(&p, extra));
    }
    use StatusCode as S;
    let p = if rejection.is_not_found() {
        problem(S::NOT_FOUND, "not-found", "There is nothing here.")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        problem(S::METHOD_NOT_ALLOWED, "method-not-allowed", "This method is not allowed here.")
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return Ok(ApiError::PayloadTooLarge.into_response());
    } else if rejection.find::<warp::reject::UnsupportedMediaType>().is_some() {
        return Ok(ApiError::UnsupportedMediaType.into_response());
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        problem(S::BAD_REQUEST, "bad-query", "The query string is not valid.")
    } else if let Some(h) = rejection.find::<warp::reject::InvalidHeader>() {
        problem(S::BAD_REQUEST, "bad-header", format!("The {} header is not valid.", h.name()))
    } else if let Some(h) = rejection.find::<warp::reject::MissingHeader>() {
        problem(S::BAD_REQUEST, "missing-header", format!("The {} header is required.", h.name()))
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        problem(S::LENGTH_REQUIRED, "length-required", "Send a Content-Length header.")
    } else if rejection.find::<warp::filters::body::BodyDeserializeError>().is_some() {
        problem(S::BAD_REQUEST, "malformed-json", "The request body is not valid JSON.")
    } else if rejection.find::<warp::filters::ws::MissingConnectionUpgrade>().is_some() {
        problem(S::BAD_REQUEST, "upgrade-required", "This endpoint expects a WebSocket upgrade.")
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        problem(S::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side.")
    };
    Ok(problem_response(&p, None).into_response())
}
