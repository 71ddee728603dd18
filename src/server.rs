//! The HTTP(S) accept loop: warp 0.4 has no TLS of its own, so connections
//! are accepted here, TLS-handshaken with a deadline, and served by hyper
//! (HTTP/1.1 and HTTP/2, WebSocket upgrades included) over warp's service.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use http::{HeaderValue, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use warp::filters::BoxedFilter;

use crate::error::ApiError;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// The TCP peer of a request, put into its extensions for rate limiting and
/// audit (warp's own `remote()` is empty under a custom accept loop).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// A fresh id per request, echoed as `X-Request-Id` and kept in the audit
/// trail, so one request can be followed through logs.
#[derive(Clone, Copy, Debug)]
pub struct RequestId(pub uuid::Uuid);

/// Handles WebSocket upgrades itself, with the raw hyper request (warp's
/// own `ws()` filter hides the socket buffer settings).
pub type UpgradeHook = Arc<
    dyn Fn(Request<Incoming>) -> std::pin::Pin<Box<dyn Future<Output = warp::reply::Response> + Send>> + Send + Sync,
>;

pub struct ServeOptions {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The public origin, for the Content-Security-Policy.
    pub public_origin: String,
    /// A path whose requests go to the hook instead of the routes.
    pub websocket: Option<(&'static str, UpgradeHook)>,
}

/// The Content-Security-Policy: our own origin only, plus WebSockets to
/// ourselves (older browsers do not count `wss:` as `'self'`).
pub fn content_security_policy(public_origin: &str) -> String {
    let socket_origin = public_origin.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
    format!(
        "default-src 'self'; connect-src 'self' {socket_origin}; img-src 'self' data: blob:; \
         media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self'"
    )
}

fn security_headers(headers: &mut http::HeaderMap, csp: &HeaderValue, tls: bool, api: bool) {
    use http::header as h;
    if tls {
        headers.insert(h::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    headers.insert(h::CONTENT_SECURITY_POLICY, csp.clone());
    headers.insert(h::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(h::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(h::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if api {
        headers.insert(h::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves, then lets
/// requests in flight finish (up to a grace period).
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(warp::reply::Response,)>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) {
    let service = warp::service(routes);
    let acceptor = options.tls.map(TlsAcceptor::from);
    let websocket = options.websocket;
    let csp = HeaderValue::from_str(&content_security_policy(&options.public_origin))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    let graceful = GracefulShutdown::new();
    let tls_on = acceptor.is_some();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors (or a similar transient refusal):
                    // pause instead of spinning; the connection is refused, the
                    // server keeps running.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let acceptor = acceptor.clone();
        let websocket = websocket.clone();
        let csp = csp.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => serve_connection(tls, peer, service, websocket, csp, tls_on, watcher).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
                None => serve_connection(stream, peer, service, websocket, csp, tls_on, watcher).await,
            }
        });
    }
    drop(listener);
    tracing::info!("stopped accepting connections; finishing requests in flight");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections did not finish within the grace period");
    }
}

async fn serve_connection<I, S>(
    io: I,
    peer: SocketAddr,
    service: S,
    websocket: Option<(&'static str, UpgradeHook)>,
    csp: HeaderValue,
    tls_on: bool,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower_service::Service<Request<Incoming>, Response = warp::reply::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let hyper_service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(PeerAddr(peer));
        let request_id = uuid::Uuid::new_v4();
        request.extensions_mut().insert(RequestId(request_id));
        let api = request.uri().path().starts_with("/api");
        let mut service = service.clone();
        let csp = csp.clone();
        let hook = websocket.as_ref().filter(|(path, _)| request.uri().path() == *path).map(|(_, hook)| hook.clone());
        async move {
            let handled = match hook {
                Some(hook) => AssertUnwindSafe(hook(request)).catch_unwind().await.map(Ok),
                None => AssertUnwindSafe(service.call(request)).catch_unwind().await,
            };
            let mut response = match handled {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response(),
            };
            security_headers(response.headers_mut(), &csp, tls_on, api);
            if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
                response.headers_mut().insert("x-request-id", value);
            }
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(200);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), hyper_service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
