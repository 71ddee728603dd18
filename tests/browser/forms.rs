//! Problems the API reports per field show beside the field at fault.

use serde_json::json;

use crate::driver::{Browser, browser_tools, with_deadline};
use crate::steps::spawn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_shows_each_api_field_error_beside_its_field() {
    let Some(tools) = browser_tools() else { return };
    with_deadline(async {
        let app = spawn().await;
        let browser = Browser::launch(&tools, &app.base).await;
        browser.goto("/register").await;
        browser.fill("#name", "Weak Walter").await;
        browser.fill("#email", "not-an-email").await;
        browser.fill("#password", "password1").await;
        browser.click("#register-form button[type=submit]").await;

        let password = browser.wait_text("#password-error", "Password").await;
        assert!(password.contains("too easy to guess"), "{password}");
        let email = browser.wait_text("#email-error", "Email").await;
        assert!(!email.contains("Password"), "{email}");
        // Nothing wrong with the name: no message there.
        let name = browser.js("return document.getElementById('name-error')", vec![]).await;
        assert_eq!(name, json!(null));
        // Tied to the inputs for assistive technology, and focus goes to the first.
        let wiring = browser
            .js(
                "const p = document.getElementById('password'); \
                 return [p.getAttribute('aria-invalid'), p.getAttribute('aria-describedby').includes('password-error'), \
                         document.activeElement.id]",
                vec![],
            )
            .await;
        assert_eq!(wiring[0], json!("true"));
        assert_eq!(wiring[1], json!(true));
        assert!(wiring[2] == json!("email") || wiring[2] == json!("password"), "focus: {wiring}");
        browser.screenshot("register-errors.png").await;

        // Fixing the password and email clears the messages.
        browser.fill("#email", "walter@example.com").await;
        browser.fill("#password", crate::helpers::STRONG_PASSWORD).await;
        browser.click("#register-form button[type=submit]").await;
        browser.wait_path("/dashboard").await;
        browser.close().await;
    })
    .await;
}
