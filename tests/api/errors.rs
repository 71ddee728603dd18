use serde_json::json;

use crate::helpers::{Backend, problem, spawn_app};
use crate::on_both_backends;

async fn malformed_requests_get_problem_responses(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = &app.client;

    problem(c.get(app.url("/api/no-such-thing")).send().await.unwrap(), 404).await;
    problem(c.delete(app.url("/api/health")).send().await.unwrap(), 405).await;

    let big = json!({"email": "x".repeat(70 * 1024), "password": "p", "name": "n", "timezone": "UTC"});
    problem(c.post(app.url("/api/auth/register")).json(&big).send().await.unwrap(), 413).await;

    let r = c
        .post(app.url("/api/auth/register"))
        .header("content-type", "text/plain")
        .body("email=x")
        .send()
        .await
        .unwrap();
    problem(r, 415).await;

    let r = c
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@b.c", "password": "#)
        .send()
        .await
        .unwrap();
    let body = problem(r, 400).await;
    let text = body.to_string();
    assert!(!text.contains("EOF") && !text.contains("line 1"), "serde's words leaked: {text}");

    let r = c.post(app.url("/api/auth/login")).json(&json!({"email": 5})).send().await.unwrap();
    let body = problem(r, 422).await;
    assert!(body["errors"]["email"].is_string() || body["errors"]["password"].is_string(), "{body}");
}
on_both_backends!(malformed_requests_get_problem_responses);

async fn chunked_bodies_over_the_limit_are_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    problem(r, 413).await;
}
on_both_backends!(chunked_bodies_over_the_limit_are_413);

async fn the_openapi_document_covers_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc: serde_json::Value =
        app.client.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in
        ["/api/health", "/api/auth/register", "/api/auth/login", "/api/auth/logout", "/api/me", "/api/admin/users"]
    {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
}
on_both_backends!(the_openapi_document_covers_every_endpoint);
