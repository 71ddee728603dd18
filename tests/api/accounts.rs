use serde_json::{Value, json};

use crate::helpers::{Backend, Options, STRONG_PASSWORD, problem, spawn_app, spawn_app_with};
use crate::on_both_backends;

async fn register_login_me(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.register("  Pat@Example.ORG ", "Pat Patient").await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["email"], "pat@example.org");
    assert_eq!(body["user"]["role"], "patient");
    assert_eq!(body["user"]["timezone"], "Europe/Berlin");
    assert!(body["user"].get("password_hash").is_none());

    let session = app.session("pat@example.org").await;
    let me: Value = app.get_as(&session.token, "/api/me").await.json().await.unwrap();
    assert_eq!(me["email"], "pat@example.org");
    assert_eq!(me["name"], "Pat Patient");
    assert_eq!(me["role"], "patient");
    assert_eq!(me["id"], body["user"]["id"]);
}
on_both_backends!(register_login_me);

async fn stored_hash_is_bcrypt_of_the_configured_cost(backend: Backend) {
    let app = spawn_app_with(backend, Options { bcrypt_cost: 12, ..Options::default() }).await;
    assert_eq!(app.register("pat@example.org", "Pat").await.status(), 201);
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = ?")
        .bind("pat@example.org")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$2b$12$"), "{hash}");
    assert!(bcrypt::verify(STRONG_PASSWORD, &hash).unwrap());
}
on_both_backends!(stored_hash_is_bcrypt_of_the_configured_cost);

async fn duplicate_email_is_409_whatever_the_case(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.register("pat@example.org", "Pat").await.status(), 201);
    problem(app.register("PAT@example.org", "Other Pat").await, 409).await;
}
on_both_backends!(duplicate_email_is_409_whatever_the_case);

async fn registration_names_every_bad_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"email": "not-an-email", "password": "password", "name": "", "timezone": "Mars/Base"}),
        )
        .await;
    let body = problem(r, 422).await;
    for field in ["email", "password", "name", "timezone"] {
        assert!(body["errors"][field].is_string(), "{field} missing in {body}");
    }
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"email": "pat@example.org", "password": STRONG_PASSWORD, "name": "Eve\r\nBcc: x@y.z", "timezone": "UTC"}),
        )
        .await;
    assert!(problem(r, 422).await["errors"]["name"].is_string());
}
on_both_backends!(registration_names_every_bad_field);

async fn passwords_over_72_bytes_are_refused_with_the_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    let long = format!("{STRONG_PASSWORD}-{}", "x".repeat(60));
    assert!(long.len() > 72);
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"email": "pat@example.org", "password": long, "name": "Pat", "timezone": "UTC"}),
        )
        .await;
    let body = problem(r, 422).await;
    let message = body["errors"]["password"].as_str().unwrap();
    assert!(message.contains("72 bytes"), "{message}");
}
on_both_backends!(passwords_over_72_bytes_are_refused_with_the_reason);

async fn a_longer_password_sharing_the_first_72_bytes_does_not_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let exact = format!("{STRONG_PASSWORD}-{}", "q7".repeat(23));
    assert_eq!(exact.len(), 72);
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"email": "pat@example.org", "password": exact, "name": "Pat", "timezone": "UTC"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.login("pat@example.org", &exact).await.status(), 200);
    let longer = format!("{exact}and-more");
    problem(app.login("pat@example.org", &longer).await, 401).await;
}
on_both_backends!(a_longer_password_sharing_the_first_72_bytes_does_not_sign_in);

async fn unknown_email_and_wrong_password_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.patient("pat@example.org").await;
    let wrong_password = app.login("pat@example.org", "not-the-password-at-all").await;
    let unknown_email = app.login("nobody@example.org", "not-the-password-at-all").await;
    let headers = |r: &reqwest::Response| {
        let mut h: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date" && *k != "x-request-id")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        h.sort();
        h
    };
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(headers(&wrong_password), headers(&unknown_email));
    assert_eq!(wrong_password.bytes().await.unwrap(), unknown_email.bytes().await.unwrap());
}
on_both_backends!(unknown_email_and_wrong_password_get_the_same_answer);

async fn repeated_failures_are_rate_limited(backend: Backend) {
    let app = spawn_app_with(backend, Options { login_account_per_minute: 5, ..Options::default() }).await;
    app.patient("pat@example.org").await; // one attempt used
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(app.login("pat@example.org", "wrong-password-guess").await);
    }
    let last = statuses.pop().unwrap();
    assert!(statuses.iter().all(|r| r.status() == 401), "the first attempts are plain refusals");
    let retry_after: u64 = last.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    problem(last, 429).await;
    // Even the right password waits now: the limit is on attempts.
    assert_eq!(app.login("pat@example.org", STRONG_PASSWORD).await.status(), 429);
}
on_both_backends!(repeated_failures_are_rate_limited);

async fn admins_create_doctors_patients_may_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let patient = app.patient("pat@example.org").await;
    let doctor = json!({"email": "dr.who@clinic.example", "name": "Dr. Who", "role": "doctor",
                        "password": STRONG_PASSWORD, "timezone": "Europe/London"});

    problem(app.post_json_as(&patient.token, "/api/admin/users", &doctor).await, 403).await;
    problem(app.post_json("/api/admin/users", &doctor).await, 401).await;
    problem(app.get_as(&patient.token, "/api/admin/users").await, 403).await;

    let r = app.post_json_as(&admin.token, "/api/admin/users", &doctor).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["user"]["role"], "doctor");
    let dr = app.session("dr.who@clinic.example").await;
    assert_eq!(dr.user["role"], "doctor");

    let mut bad = doctor.clone();
    bad["role"] = json!("superuser");
    bad["email"] = json!("other@clinic.example");
    assert!(
        problem(app.post_json_as(&admin.token, "/api/admin/users", &bad).await, 422).await["errors"]["role"]
            .is_string()
    );

    let users: Vec<Value> = app.get_as(&admin.token, "/api/admin/users").await.json().await.unwrap();
    assert_eq!(users.len(), 3);
}
on_both_backends!(admins_create_doctors_patients_may_not);

async fn register_cannot_make_doctors(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post_json(
            "/api/auth/register",
            &json!({"email": "x@example.org", "password": STRONG_PASSWORD, "name": "X", "timezone": "UTC", "role": "admin"}),
        )
        .await;
    assert_eq!(problem(r, 422).await["errors"]["role"], "is not an accepted field");
}
on_both_backends!(register_cannot_make_doctors);
