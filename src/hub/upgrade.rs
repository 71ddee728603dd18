//! `GET /ws`: authentication and origin check before the upgrade, then the
//! WebSocket handshake with buffers sized for many idle sockets.

use http::{HeaderValue, Method, Request, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::auth;
use crate::error::{ApiError, problem, problem_response};
use crate::state::AppState;

/// Largest client message: 64 KiB (larger closes the socket with 1009).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Bytes tungstenite reads from TLS at a time. Its read buffer starts at
/// this size, is zero-filled to it on every read and is never shrunk, so
/// every idle socket holds it (4 KiB was a quarter of the per-socket memory
/// budget). 1 KiB takes every dashboard frame (pings, joins, ICE candidates:
/// under 300 bytes) in one read; a larger frame grows the buffer to its own
/// length when its header arrives and is read in 1 KiB steps, each a copy
/// out of rustls's decrypted plaintext (rustls reads the network itself, in
/// 4 KiB steps, whatever this size).
const READ_CHUNK: usize = 1024;

/// Tungstenite's defaults reserve ~128 KiB of buffers per socket; an idle
/// dashboard needs about 1 KiB.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

fn bad_request(detail: &'static str) -> warp::reply::Response {
    problem_response(&problem(StatusCode::BAD_REQUEST, "upgrade-required", detail), None)
}

/// Handles the upgrade request; the socket itself runs in its own task.
pub async fn upgrade(state: AppState, mut request: Request<Incoming>) -> warp::reply::Response {
    let headers = request.headers();
    if request.method() != Method::GET {
        return problem_response(
            &problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Open /ws with GET."),
            None,
        );
    }
    let is_upgrade =
        headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).map(|k| k.as_bytes().to_vec()) else {
        return bad_request("This endpoint expects a WebSocket upgrade.");
    };
    if !is_upgrade || headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
        return bad_request("This endpoint expects a WebSocket (version 13) upgrade.");
    }
    // Browsers always send Origin on WebSocket upgrades; another site's page
    // must not ride on the user's cookie (cross-site WebSocket hijacking).
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.to_str().ok() != Some(state.config.public_url.origin())
    {
        return ApiError::Forbidden("WebSocket connections must come from Consulta's own pages.").into_response();
    }
    let user = match auth::authenticate(&state, &Method::GET, headers).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let Some((registration, outbound)) = state.hub.register(user.user.id, user.session_id) else {
        return problem_response(
            &problem(StatusCode::TOO_MANY_REQUESTS, "too-many-sockets", "Close some tabs and try again."),
            Some(("retry-after", "10".to_owned())),
        );
    };
    let meta = super::room::SocketMeta {
        client_ip: request.extensions().get::<crate::server::PeerAddr>().map(|p| p.0.ip().to_string()),
        request_id: request.extensions().get::<crate::server::RequestId>().map(|r| r.0.to_string()),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(socket_config())).await;
                super::connection::run(socket, state, user, meta, registration, outbound).await;
            }
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut response = warp::reply::Response::new(Default::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(&key)) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}
