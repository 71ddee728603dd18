//! Filters shared by the resource modules: state, JSON bodies with field
//! errors, the signed-in user, the client address.

use std::net::IpAddr;

use bytes::BytesMut;
use futures_util::TryStreamExt as _;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use crate::auth::{self, CurrentUser};
use crate::domain::FieldErrors;
use crate::error::ApiError;
use crate::server::{PeerAddr, RequestId};
use crate::state::AppState;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The signed-in user, or a 401/403 rejection.
pub fn with_user(state: AppState) -> impl Filter<Extract = (CurrentUser,), Error = Rejection> + Clone {
    with_state(state).and(warp::method()).and(warp::header::headers_cloned()).and_then(
        |state: AppState, method, headers| async move {
            auth::authenticate(&state, &method, &headers).await.map_err(Rejection::from)
        },
    )
}

/// The client's IP: the TCP peer, or the first `X-Forwarded-For` hop when
/// the operator said a proxy sets it.
pub fn client_ip(state: AppState) -> impl Filter<Extract = (IpAddr,), Error = Rejection> + Clone {
    warp::ext::optional::<PeerAddr>().and(warp::header::optional::<String>("x-forwarded-for")).map(
        move |peer: Option<PeerAddr>, forwarded: Option<String>| {
            let from_proxy = state
                .config
                .trust_proxy
                .then(|| forwarded.and_then(|f| f.split(',').next().and_then(|ip| ip.trim().parse().ok())))
                .flatten();
            from_proxy.or(peer.map(|p| p.0.ip())).unwrap_or(IpAddr::from([127, 0, 0, 1]))
        },
    )
}

/// Where a request comes from, for the audit trail.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    pub ip: IpAddr,
    pub request_id: Option<String>,
}

pub fn request_meta(state: AppState) -> impl Filter<Extract = (RequestMeta,), Error = Rejection> + Clone {
    client_ip(state)
        .and(warp::ext::optional::<RequestId>())
        .map(|ip, id: Option<RequestId>| RequestMeta { ip, request_id: id.map(|r| r.0.to_string()) })
}

/// A JSON body of at most 64 KiB, typed: malformed JSON is a 400, JSON of
/// the wrong shape a 422 naming the field, anything but JSON a 415.
pub fn json_body<T: DeserializeOwned + Send>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .and_then(|length: Option<u64>, content_type: Option<String>, body| async move {
            let is_json = content_type.as_deref().is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
            if !is_json {
                return Err(Rejection::from(ApiError::UnsupportedMediaType));
            }
            if length.is_some_and(|l| l > MAX_BODY_BYTES as u64) {
                return Err(ApiError::PayloadTooLarge.into());
            }
            let bytes = read_limited(body).await?;
            parse_json(&bytes).map_err(Rejection::from)
        })
}

async fn read_limited<S, B>(body: S) -> Result<BytesMut, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    let mut collected = BytesMut::new();
    let mut body = std::pin::pin!(body);
    while let Some(mut chunk) =
        body.try_next().await.map_err(|_| ApiError::BadRequest("The request body could not be read."))?
    {
        if collected.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            collected.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(collected)
}

/// Deserializes with the path of the failing field, and words the problem
/// without serde's internals.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = result.map_err(|e| {
        let inner = e.inner();
        if !matches!(inner.classify(), serde_json::error::Category::Data) {
            return ApiError::BadRequest("The request body is not valid JSON.");
        }
        let path = e.path().to_string();
        let message = inner.to_string();
        let join = |field: &str| match path.as_str() {
            "." => field.to_owned(),
            // serde_path_to_error already points at an unknown field itself.
            p if p == field || p.ends_with(&format!(".{field}")) => p.to_owned(),
            p => format!("{p}.{field}"),
        };
        let quoted =
            |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned);
        let errors = if let Some(field) = quoted("missing field `") {
            FieldErrors::single(join(&field), "is required")
        } else if let Some(field) = quoted("unknown field `") {
            FieldErrors::single(join(&field), "is not an accepted field")
        } else {
            let expected =
                message.split_once("expected ").map(|(_, e)| e.split(" at line").next().unwrap_or(e).to_owned());
            let what = match expected {
                Some(e) if message.starts_with("invalid type") => format!("must be {e}"),
                _ => "has a value that is not accepted".to_owned(),
            };
            FieldErrors::single(if path == "." { "body".to_owned() } else { path }, what)
        };
        ApiError::Validation(errors)
    })?;
    deserializer.end().map_err(|_| ApiError::BadRequest("The request body is not valid JSON."))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    fn field_errors(json: &str) -> Option<std::collections::BTreeMap<String, String>> {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::Validation(e)) => Some(e.into_map()),
            _ => None,
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field_errors("{}").and_then(|e| e.get("email").cloned()), Some("is required".into()));
        assert!(field_errors(r#"{"email":"a","x":1}"#).is_some_and(|e| e.contains_key("x")));
        assert!(field_errors(r#"{"email":5}"#).is_some_and(|e| e["email"].contains("must be")));
        assert!(field_errors(r#"{"email":"a","inner":{"n":"x"}}"#).is_some_and(|e| e.contains_key("inner.n")));
    }

    #[test]
    fn syntax_errors_are_400_without_serde_text() {
        for bad in ["{", "not json", r#"{"email":"a"} trailing"#, ""] {
            assert!(matches!(parse_json::<Body>(bad.as_bytes()), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }
}
