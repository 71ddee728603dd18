//! Steps several browser tests share.

use crate::driver::Browser;
use crate::helpers::{Backend, Options, STRONG_PASSWORD, TestApp, spawn_app_with};

/// The app on SQLite, its public URL naming its real port (the browser's
/// `Origin` must match it for cookie-authenticated writes).
pub async fn spawn() -> TestApp {
    // Admins sign in with a password alone here; the second step and enrolment
    // through the pages are tested in `account.rs`, with the requirement on.
    spawn_app_with(Backend::Sqlite, Options { real_origin: true, admin_2fa: false, ..Options::default() }).await
}

/// Signs in through the sign-in page and waits for where it leads.
pub async fn sign_in(browser: &Browser, email: &str, next: &str) {
    let path = if next == "/dashboard" { "/login".to_owned() } else { format!("/login?next={next}") };
    browser.goto(&path).await;
    browser.fill("#email", email).await;
    browser.fill("#password", STRONG_PASSWORD).await;
    browser.click("#login-form button[type=submit]").await;
    browser.wait_path(next).await;
}

/// Asserts the page fits a `width`-pixel-wide window without sideways scrolling.
pub async fn assert_fits(browser: &Browser, width: u32) {
    let overflow = browser.js("return document.documentElement.scrollWidth - window.innerWidth", vec![]).await;
    assert!(overflow.as_i64().unwrap_or(1) <= 0, "the page scrolls sideways at {width} px by {overflow} px");
}
