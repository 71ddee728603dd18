//! HTTPS, HTTP/2, security headers and panic containment.

use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;

async fn https_with_the_generated_certificate_and_http2(backend: Backend) {
    let app = spawn_app(backend).await;
    // The client trusts only the certificate generated at start, for "localhost".
    let r = app.client.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let h = r.headers().clone();
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self' wss://localhost:8443;"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    let h1 = crate::helpers::client_trusting(app.cert_pem(), false);
    let r = reqwest::Client::builder().build().unwrap().get(app.url("/api/health")).send().await;
    assert!(r.is_err(), "a client that does not trust the certificate must fail");
    assert_eq!(h1.get(app.url("/api/health")).send().await.unwrap().status(), 200);
}
on_both_backends!(https_with_the_generated_certificate_and_http2);

/// A panicking handler becomes a 500 problem and the server keeps serving.
#[tokio::test]
async fn a_panic_in_a_handler_is_a_500_and_the_server_lives_on() {
    use warp::Filter as _;
    consulta::tls::install_crypto_provider();
    let routes = warp::path("boom")
        .map(|| -> warp::reply::Response { panic!("handler bug") })
        .or(warp::path("fine").map(|| warp::reply::Response::new("ok".into())))
        .unify()
        .boxed();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(consulta::server::serve(
        listener,
        routes,
        consulta::server::ServeOptions { tls: None, public_origin: "http://localhost".into(), websocket: None },
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let r = client.get(format!("http://{addr}/boom")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body = r.text().await.unwrap();
    assert!(!body.contains("handler bug"), "the panic message must not leak: {body}");
    let r = client.get(format!("http://{addr}/fine")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
