use chrono::Duration;
use serde_json::json;

use crate::helpers::{Backend, ORIGIN, STRONG_PASSWORD, problem, spawn_app};
use crate::on_both_backends;

async fn a_token_used_after_logout_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.patient("pat@example.org").await;
    assert_eq!(app.get_as(&session.token, "/api/me").await.status(), 200);
    let r = app.client.post(app.url("/api/auth/logout")).bearer_auth(&session.token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    problem(app.get_as(&session.token, "/api/me").await, 401).await;
    // Other sessions of the same user are not affected.
    let other = app.session("pat@example.org").await;
    assert_eq!(app.get_as(&other.token, "/api/me").await.status(), 200);
}
on_both_backends!(a_token_used_after_logout_is_refused);

async fn the_cookie_signs_in_and_logout_ends_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.patient("pat@example.org").await;
    let browser = app.browser();
    let r = browser
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": "pat@example.org", "password": STRONG_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert_eq!(browser.get(app.url("/api/me")).send().await.unwrap().status(), 200);

    // A state-changing cookie request from another origin (or none) is refused.
    let r = browser.post(app.url("/api/auth/logout")).send().await.unwrap();
    problem(r, 403).await;
    let r = browser.post(app.url("/api/auth/logout")).header("origin", "https://evil.example").send().await.unwrap();
    problem(r, 403).await;

    let r = browser.post(app.url("/api/auth/logout")).header("origin", ORIGIN).send().await.unwrap();
    assert_eq!(r.status(), 204);
    problem(browser.get(app.url("/api/me")).send().await.unwrap(), 401).await;
}
on_both_backends!(the_cookie_signs_in_and_logout_ends_it);

async fn sessions_end_after_the_idle_timeout(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.patient("pat@example.org").await;
    app.state.clock.advance(Duration::minutes(20));
    assert_eq!(app.get_as(&session.token, "/api/me").await.status(), 200, "activity keeps it alive");
    app.state.clock.advance(Duration::minutes(20));
    assert_eq!(app.get_as(&session.token, "/api/me").await.status(), 200, "20 minutes after the last request");
    app.state.clock.advance(Duration::minutes(31));
    problem(app.get_as(&session.token, "/api/me").await, 401).await;
    app.state.clock.advance(Duration::minutes(-60));
    problem(app.get_as(&session.token, "/api/me").await, 401).await;
}
on_both_backends!(sessions_end_after_the_idle_timeout);

async fn sessions_end_after_the_absolute_lifetime(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.patient("pat@example.org").await;
    let mut elapsed = Duration::zero();
    while elapsed + Duration::minutes(29) < Duration::hours(12) {
        app.state.clock.advance(Duration::minutes(29));
        elapsed += Duration::minutes(29);
        assert_eq!(app.get_as(&session.token, "/api/me").await.status(), 200, "active for {elapsed}");
    }
    app.state.clock.advance(Duration::minutes(29));
    problem(app.get_as(&session.token, "/api/me").await, 401).await;
}
on_both_backends!(sessions_end_after_the_absolute_lifetime);

async fn garbage_and_forged_tokens_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    problem(app.get_as("not-a-jwt", "/api/me").await, 401).await;
    let r = app.client.get(app.url("/api/me")).header("authorization", "Basic YTpi").send().await.unwrap();
    problem(r, 401).await;
    problem(app.client.get(app.url("/api/me")).send().await.unwrap(), 401).await;
}
on_both_backends!(garbage_and_forged_tokens_are_401);

async fn a_password_change_ends_every_other_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let here = app.patient("pat@example.org").await;
    let elsewhere = app.session("pat@example.org").await;
    let mut elsewhere_socket = app.ws_signed_in(&elsewhere).await;
    let new_password = "saffron-quartz-lagoon-77";

    let wrong = json!({"current_password": "not-it-at-all", "new_password": new_password});
    let body = problem(app.post_json_as(&here.token, "/api/me/password", &wrong).await, 422).await;
    assert!(body["errors"]["current_password"].is_string());
    let weak = json!({"current_password": STRONG_PASSWORD, "new_password": "password1"});
    let body = problem(app.post_json_as(&here.token, "/api/me/password", &weak).await, 422).await;
    assert!(body["errors"]["new_password"].is_string());

    let change = json!({"current_password": STRONG_PASSWORD, "new_password": new_password});
    assert_eq!(app.post_json_as(&here.token, "/api/me/password", &change).await.status(), 204);
    assert_eq!(app.get_as(&here.token, "/api/me").await.status(), 200, "this session goes on");
    problem(app.get_as(&elsewhere.token, "/api/me").await, 401).await;
    let code = crate::helpers::close_code(&mut elsewhere_socket, std::time::Duration::from_secs(3)).await;
    assert_eq!(code, Some(4001));
    assert_eq!(app.login("pat@example.org", STRONG_PASSWORD).await.status(), 401);
    assert_eq!(app.login("pat@example.org", new_password).await.status(), 200);
}
on_both_backends!(a_password_change_ends_every_other_session);
