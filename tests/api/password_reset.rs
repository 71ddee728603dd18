//! Password reset by email: same answer for any address, a single-use
//! token stored hashed, valid 30 minutes, that ends every session.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, STRONG_PASSWORD, TestApp, close_code, problem, spawn_app};
use crate::on_both_backends;

const NEW_PASSWORD: &str = "quartz-lantern-meadow-77";

/// The token of the one reset mail in the `.eml` folder, waiting for the worker.
async fn mailed_token(app: &TestApp, to: &str) -> String {
    let folder = app.dir.join("data/mail");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let raw = std::fs::read(entry.path()).unwrap();
            let Some(message) = mail_parser::MessageParser::default().parse(&raw) else { continue };
            let addressed = message.to().and_then(|t| t.first()).and_then(|a| a.address()).is_some_and(|a| a == to);
            if !addressed || message.subject() != Some("Reset your Consulta password") {
                continue;
            }
            let text = message.body_text(0).unwrap().into_owned();
            let start = text.find("/reset#token=").expect("link in the mail") + "/reset#token=".len();
            let token: String = text[start..].chars().take_while(char::is_ascii_hexdigit).collect();
            assert!(text.contains("https://localhost:8443/reset#token="), "{text}");
            return token;
        }
        assert!(tokio::time::Instant::now() < deadline, "no reset mail for {to}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ask(app: &TestApp, email: &str) -> (u16, String) {
    let r = app.post_json("/api/auth/password-reset", &json!({"email": email})).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn confirm(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post_json("/api/auth/password-reset/confirm", &json!({"token": token, "new_password": password})).await
}

async fn the_answer_is_the_same_whether_or_not_the_email_exists(backend: Backend) {
    let app = spawn_app(backend).await;
    app.patient("pat@example.org").await;
    let known = ask(&app, "pat@example.org").await;
    let unknown = ask(&app, "nobody@example.org").await;
    assert_eq!(known.0, 202);
    assert_eq!(known, unknown);
    assert_eq!(ask(&app, "not an address").await, known);
    mailed_token(&app, "pat@example.org").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = std::fs::read_dir(app.dir.join("data/mail")).unwrap().count();
    assert_eq!(mails, 1, "only the existing account gets a mail");
}
on_both_backends!(the_answer_is_the_same_whether_or_not_the_email_exists);

async fn a_token_resets_once_and_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.patient("pat@example.org").await;
    let mut socket = app.ws_signed_in(&session).await;
    assert_eq!(ask(&app, "pat@example.org").await.0, 202);
    let token = mailed_token(&app, "pat@example.org").await;
    assert_eq!(token.len(), 64);

    // Only its SHA-256 is stored.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM password_resets").fetch_all(app.state.db.pool()).await.unwrap();
    assert_eq!(stored, vec![consulta_sha256(&token)]);

    // A weak password is refused without using the token up.
    let weak = problem(confirm(&app, &token, "password").await, 422).await;
    assert!(weak["errors"]["new_password"].is_string(), "{weak}");

    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
    problem(app.get_as(&session.token, "/api/me").await, 401).await;
    assert_eq!(close_code(&mut socket, Duration::from_secs(5)).await, Some(4001));
    problem(app.login("pat@example.org", STRONG_PASSWORD).await, 401).await;
    assert_eq!(app.login("pat@example.org", NEW_PASSWORD).await.status(), 200);

    let again = problem(confirm(&app, &token, "another-fine-passphrase-9").await, 422).await;
    assert!(again["errors"]["token"].is_string(), "{again}");
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log").fetch_all(app.state.db.pool()).await.unwrap();
    assert!(audit.contains(&"password_reset".to_owned()), "{audit:?}");
}
on_both_backends!(a_token_resets_once_and_ends_every_session);

async fn a_token_expires_after_30_minutes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.patient("pat@example.org").await;
    ask(&app, "pat@example.org").await;
    let token = mailed_token(&app, "pat@example.org").await;
    app.state.clock.advance(chrono::Duration::minutes(31));
    let body: Value = problem(confirm(&app, &token, NEW_PASSWORD).await, 422).await;
    assert!(body["errors"]["token"].is_string(), "{body}");
    assert_eq!(app.login("pat@example.org", STRONG_PASSWORD).await.status(), 200);
    problem(confirm(&app, "not-a-token", NEW_PASSWORD).await, 422).await;
}
on_both_backends!(a_token_expires_after_30_minutes);

fn consulta_sha256(token: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}
