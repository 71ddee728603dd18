//! A patient's way through the pages: register, sign in, book, see it.

use serde_json::{Value, json};

use crate::driver::{Browser, browser_tools, with_deadline};
use crate::helpers::STRONG_PASSWORD;
use crate::steps::{assert_fits, sign_in, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_registers_books_a_slot_and_sees_it_on_the_dashboard() {
    let Some(tools) = browser_tools() else { return };
    with_deadline(async {
        let app = spawn().await;
        app.doctor("doc@clinic.example").await;
        let browser = Browser::launch(&tools, &app.base).await;

        // Signed out, `/` leads to the sign-in page.
        browser.goto("/").await;
        browser.wait_path("/login").await;

        browser.goto("/register").await;
        browser.fill("#name", "Pat Patient").await;
        browser.fill("#email", "pat@example.com").await;
        browser.fill("#password", STRONG_PASSWORD).await;
        browser.select("#timezone", "America/New_York").await;
        browser.click("#register-form button[type=submit]").await;
        browser.wait_path("/dashboard").await;
        browser.wait_text("#status", "Welcome, Pat Patient").await;
        browser.wait_text("#upcoming-body", "No upcoming appointments").await;
        browser.wait_text("#site-header", "America/New_York").await;

        // Out, and in again through the sign-in form.
        browser.click("#sign-out").await;
        browser.wait_path("/login").await;
        sign_in(&browser, "pat@example.com", "/dashboard").await;

        browser.click("#book-link").await;
        browser.wait_path("/book").await;
        // One doctor: chosen already; the note names both zones.
        browser.wait_text("#zone-note", "America/New_York").await;
        browser.wait_text("#zone-note", "Europe/Berlin").await;
        browser.find(".slot input").await;
        // A slot a few minutes out, so it cannot slip into the past while the test types.
        let values = browser.js("return [...document.querySelectorAll('.slot input')].map(i => i.value)", vec![]).await;
        let values: Vec<String> = serde_json::from_value(values).unwrap();
        let soonest = chrono::Utc::now() + chrono::Duration::minutes(5);
        let index = values.iter().position(|v| parse(&Value::String(v.clone())) > soonest).expect("a free slot");
        let start = values[index].clone();
        let labels = browser.client.find_all(fantoccini::Locator::Css(".slot")).await.unwrap();
        labels[index].click().await.unwrap();
        browser.wait_text("#selection", "Selected:").await;
        // Markup in a reason must come back as text, never as markup.
        let reason = "Sore throat <b>since Monday</b>";
        browser.fill("#reason", reason).await;
        browser.js("window.scrollTo(0, 0)", vec![]).await;
        browser.screenshot("book.png").await;
        browser.click("#book-form button[type=submit]").await;

        browser.wait_path("/dashboard").await;
        browser.wait_text("#status", "Booked:").await;
        let card = browser.wait_text("#upcoming-list", "Dr. Dolittle").await;
        assert!(card.contains(reason), "the reason is shown as typed: {card}");
        let bold = browser.js("return document.querySelectorAll('#upcoming-list b').length", vec![]).await;
        assert_eq!(bold, json!(0), "no markup from user text");
        let shown =
            browser.js("return document.querySelector('#upcoming-list time').getAttribute('datetime')", vec![]).await;
        assert_eq!(parse(&shown), parse(&Value::String(start.clone())), "the card shows the booked slot");

        // The server agrees.
        let session = app.session("pat@example.com").await;
        let list: Vec<Value> = app.get_as(&session.token, "/api/appointments").await.json().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(parse(&list[0]["start"]), parse(&Value::String(start)));
        assert_eq!(list[0]["reason"], reason);

        browser.screenshot("patient-dashboard.png").await;
        browser.resize(375, 900).await;
        assert_fits(&browser, 375).await;
        browser.screenshot("patient-dashboard-375.png").await;

        // Signed in, `/` leads to the dashboard.
        browser.goto("/").await;
        browser.wait_path("/dashboard").await;
        browser.close().await;
    })
    .await;
}

fn parse(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).unwrap().to_utc()
}
