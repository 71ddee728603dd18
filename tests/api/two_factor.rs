//! Two-factor sign-in: TOTP enrolment, the login's second step, recovery
//! codes, and admins refused until they enrol. Codes are computed with
//! `totp-rs` at the app clock's time.

use serde_json::{Value, json};

use crate::helpers::{Backend, STRONG_PASSWORD, TestApp, problem, spawn_app};
use crate::on_both_backends;

/// Signs in with the password; returns the challenge of the second step.
async fn challenge(app: &TestApp, email: &str) -> String {
    let r = app.login(email, STRONG_PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none(), "no cookie before the second factor");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["second_factor_required"], true, "{body}");
    assert!(body.get("token").is_none(), "{body}");
    body["challenge"].as_str().unwrap().to_owned()
}

async fn second(app: &TestApp, challenge: &str, field: &str, value: &str) -> reqwest::Response {
    app.post_json("/api/auth/login/2fa", &json!({"challenge": challenge, field: value})).await
}

async fn an_admin_without_2fa_is_refused_until_enrolled(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user("admin", "root@clinic.example", "Root").await;
    let body = problem(app.get_as(&admin.token, "/api/admin/users").await, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("two-factor"), "{body}");
    let status: Value = app.get_as(&admin.token, "/api/me/2fa").await.json().await.unwrap();
    assert_eq!(status, json!({"enabled": false, "required": true}));
    app.enrol_2fa(&admin).await;
    assert_eq!(app.get_as(&admin.token, "/api/admin/users").await.status(), 200);
    let status: Value = app.get_as(&admin.token, "/api/me/2fa").await.json().await.unwrap();
    assert_eq!(status, json!({"enabled": true, "required": true}));
    // Doctors and patients may enrol but need not.
    let patient = app.patient("pat@example.org").await;
    assert_eq!(app.get_as(&patient.token, "/api/me").await.status(), 200);
    let status: Value = app.get_as(&patient.token, "/api/me/2fa").await.json().await.unwrap();
    assert_eq!(status, json!({"enabled": false, "required": false}));
    problem(app.client.get(app.url("/api/me/2fa")).send().await.unwrap(), 401).await;
}
on_both_backends!(an_admin_without_2fa_is_refused_until_enrolled);

async fn a_login_with_2fa_needs_a_fresh_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let patient = app.patient("pat@example.org").await;
    let (secret, _) = app.enrol_2fa(&patient).await;

    let c = challenge(&app, "pat@example.org").await;
    problem(second(&app, &c, "code", "000000").await, 401).await;
    // The code that enabled 2FA was this window's: the next one signs in.
    let code = app.totp_code(&secret, 1);
    let r = second(&app, &c, "code", &code).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_some());
    let body: Value = r.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(app.get_as(token, "/api/me").await.status(), 200);
    // A used challenge and a replayed code are refused.
    problem(second(&app, &c, "code", &app.totp_code(&secret, 1)).await, 401).await;
    let c2 = challenge(&app, "pat@example.org").await;
    problem(second(&app, &c2, "code", &code).await, 401).await;
}
on_both_backends!(a_login_with_2fa_needs_a_fresh_code);

async fn a_recovery_code_signs_in_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.create_user("doctor", "doc@clinic.example", "Dr. Who").await;
    let (_, codes) = app.enrol_2fa(&doctor).await;
    assert_eq!(codes.len(), 10);
    let c = challenge(&app, "doc@clinic.example").await;
    assert_eq!(second(&app, &c, "recovery_code", &codes[3].to_uppercase()).await.status(), 200);
    let c = challenge(&app, "doc@clinic.example").await;
    problem(second(&app, &c, "recovery_code", &codes[3]).await, 401).await;
}
on_both_backends!(a_recovery_code_signs_in_once);

async fn a_challenge_dies_after_five_wrong_codes(backend: Backend) {
    let app = spawn_app(backend).await;
    let patient = app.patient("pat@example.org").await;
    let (secret, _) = app.enrol_2fa(&patient).await;
    let c = challenge(&app, "pat@example.org").await;
    for _ in 0..5 {
        problem(second(&app, &c, "code", "123456").await, 401).await;
    }
    problem(second(&app, &c, "code", &app.totp_code(&secret, 1)).await, 401).await;
    // And it expires after five minutes.
    let c = challenge(&app, "pat@example.org").await;
    app.state.clock.advance(chrono::Duration::minutes(6));
    problem(second(&app, &c, "code", &app.totp_code(&secret, 0)).await, 401).await;
}
on_both_backends!(a_challenge_dies_after_five_wrong_codes);
