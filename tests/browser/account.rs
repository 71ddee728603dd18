//! The account page, two-step sign-in and password reset, through the pages.

use std::time::Duration;

use serde_json::json;

use crate::driver::{Browser, browser_tools, with_deadline};
use crate::helpers::{Backend, Options, STRONG_PASSWORD, TestApp, spawn_app_with};
use crate::steps::{assert_fits, sign_in, spawn};

const NEW_PASSWORD: &str = "quartz-lantern-meadow-77";

/// The reset token of the newest reset mail to `to` in the `.eml` folder,
/// waiting for the mail worker to write it.
async fn mailed_token(app: &TestApp, to: &str) -> String {
    let folder = app.dir.join("data/mail");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
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
            return text[start..].chars().take_while(char::is_ascii_hexdigit).collect();
        }
        assert!(tokio::time::Instant::now() < deadline, "no reset mail for {to} within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types the email and a password into the sign-in page and submits.
async fn submit_password(browser: &Browser, email: &str, password: &str) {
    browser.fill("#email", email).await;
    browser.fill("#password", password).await;
    browser.click("#login-form button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_is_sent_to_enrol_then_signs_in_with_a_code() {
    let Some(tools) = browser_tools() else { return };
    with_deadline(async {
        // The server's default: admins must have two-step sign-in on.
        let app =
            spawn_app_with(Backend::Sqlite, Options { real_origin: true, admin_2fa: true, ..Options::default() }).await;
        app.create_user("admin", "admin@clinic.example", "Ada Admin").await;
        // One undelivered mail for the admin page: a reset mail, written
        // to the outbox folder, then marked dead as a refused one would be.
        let r = app.post_json("/api/auth/password-reset", &json!({"email": "admin@clinic.example"})).await;
        assert_eq!(r.status(), 202);
        mailed_token(&app, "admin@clinic.example").await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let done = sqlx::query(
                "UPDATE mail_outbox SET status = 'dead', last_error = '550 5.1.1 mailbox unavailable' \
                 WHERE kind = 'password_reset' AND status = 'sent'",
            )
            .execute(app.state.db.pool())
            .await
            .unwrap()
            .rows_affected();
            if done == 1 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the reset mail was not marked sent within 15 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let browser = Browser::launch(&tools, &app.base).await;
        browser.goto("/login?next=/admin").await;
        submit_password(&browser, "admin@clinic.example", STRONG_PASSWORD).await;
        // The admin page's 403 leads to the account page, saying why.
        browser.wait_path("/account").await;
        browser.wait_text("#account-status", "must turn on two-step sign-in").await;
        browser.wait_text("#twofa-status", "Two-step sign-in is off").await;

        browser.click("#twofa-start").await;
        let secret = browser.wait_for("the TOTP key", "document.querySelector('#twofa-secret').textContent").await;
        let secret = secret.as_str().unwrap().to_owned();
        let uri = browser.js("return document.querySelector('#twofa-uri').href", vec![]).await;
        assert!(uri.as_str().unwrap().starts_with("otpauth://totp/"), "{uri}");
        // A wrong code is said beside the field.
        browser.fill("#twofa-code", "12345").await;
        browser.click("#twofa-form button[type=submit]").await;
        browser.wait_text("#twofa-form .field-error", "6 digits").await;
        browser.fill("#twofa-code", &app.totp_code(&secret, 0)).await;
        browser.click("#twofa-form button[type=submit]").await;
        browser.wait_text("#recovery-warning", "Store these recovery codes now").await;
        browser.wait_text("#twofa-status", "Two-step sign-in is on").await;
        let codes = browser.js("return document.querySelectorAll('#recovery-codes li').length", vec![]).await;
        assert_eq!(codes, json!(10));
        browser.screenshot("account-recovery-codes.png").await;

        browser.click("#sign-out").await;
        browser.wait_path("/login").await;
        browser.goto("/login?next=/admin").await;
        submit_password(&browser, "admin@clinic.example", STRONG_PASSWORD).await;
        browser.wait_for("the code step", "!document.querySelector('#code-form').hidden").await;
        browser.fill("#code", "99999x").await;
        browser.click("#code-form button[type=submit]").await;
        browser.wait_text("#code-form .field-error", "6 digits").await;
        // The next window's code: this window's was used to enable.
        browser.fill("#code", &app.totp_code(&secret, 1)).await;
        browser.click("#code-form button[type=submit]").await;
        browser.wait_path("/admin").await;
        browser.wait_text("#users-table", "admin@clinic.example").await;
        let dead = browser.wait_text("#mail-table", "admin@clinic.example").await;
        assert!(dead.contains("550 5.1.1 mailbox unavailable") && dead.contains("password reset"), "{dead}");
        browser.screenshot("admin-dead-mail.png").await;
        browser.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let Some(tools) = browser_tools() else { return };
    with_deadline(async {
        let app = spawn().await;
        app.patient("pat@example.com").await;
        let browser = Browser::launch(&tools, &app.base).await;
        browser.goto("/login").await;
        browser.click("a[href='/forgot']").await;
        browser.wait_path("/forgot").await;
        browser.fill("#email", "pat@example.com").await;
        browser.click("#forgot-form button[type=submit]").await;
        browser.wait_text("#status", "If an account uses pat@example.com").await;
        let token = mailed_token(&app, "pat@example.com").await;

        browser.goto(&format!("/reset#token={token}")).await;
        browser.wait_path("/reset").await;
        let hash = browser.js("return location.hash", vec![]).await;
        assert_eq!(hash, json!(""), "the token is taken out of the address bar");
        browser.fill("#new_password", NEW_PASSWORD).await;
        browser.fill("#repeat_password", "something-else-entirely-1").await;
        browser.click("#reset-form button[type=submit]").await;
        browser.wait_text("#reset-form .field-error", "does not match").await;
        browser.fill("#repeat_password", NEW_PASSWORD).await;
        browser.click("#reset-form button[type=submit]").await;
        browser.wait_path("/login").await;
        browser.wait_text("#status", "Your password is changed").await;
        submit_password(&browser, "pat@example.com", NEW_PASSWORD).await;
        browser.wait_path("/dashboard").await;

        // The link works once.
        browser.goto(&format!("/reset#token={token}")).await;
        browser.fill("#new_password", "another-strong-phrase-93").await;
        browser.fill("#repeat_password", "another-strong-phrase-93").await;
        browser.click("#reset-form button[type=submit]").await;
        browser.wait_text("#reset-form .form-error", "expired or was already used").await;
        browser.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_lists_sessions_and_ends_another() {
    let Some(tools) = browser_tools() else { return };
    with_deadline(async {
        let app = spawn().await;
        let other = app.patient("pat@example.com").await;
        let browser = Browser::launch(&tools, &app.base).await;
        sign_in(&browser, "pat@example.com", "/dashboard").await;
        browser.click("a[href='/account']").await;
        browser.wait_path("/account").await;
        browser.wait_for("two sessions", "document.querySelectorAll('#session-list li').length === 2").await;
        let current =
            browser.js("return document.querySelector('#session-list li[data-current]').innerText", vec![]).await;
        assert!(current.as_str().unwrap().contains("This session"), "{current}");
        browser.wait_text("#twofa-status", "Two-step sign-in is off.").await;
        browser.resize(375, 800).await;
        assert_fits(&browser, 375).await;
        browser.screenshot("account-375.png").await;
        browser.click("#session-list li:not([data-current]) button").await;
        browser.wait_text("#sessions-status", "The session has ended").await;
        browser.wait_for("one session", "document.querySelectorAll('#session-list li').length === 1").await;
        assert_eq!(app.get_as(&other.token, "/api/me").await.status(), 401, "the ended session no longer works");

        // Changing the password: a wrong current one is said beside its field.
        browser.fill("#current_password", "not-my-password-at-all").await;
        browser.fill("#new_password", NEW_PASSWORD).await;
        browser.fill("#repeat_password", NEW_PASSWORD).await;
        browser.click("#password-form button[type=submit]").await;
        browser.wait_text("#password-form .field-error", "is not your current password").await;
        browser.fill("#current_password", STRONG_PASSWORD).await;
        browser.click("#password-form button[type=submit]").await;
        browser.wait_text("#password-status", "Your password is changed").await;
        assert_eq!(app.login("pat@example.com", NEW_PASSWORD).await.status(), 200, "the new password works");
        browser.close().await;
    })
    .await;
}
