//! The doctor's availability editor: errors per row, saving, the preview.

use serde_json::{Value, json};

use crate::driver::{Browser, browser_tools, with_deadline};
use crate::steps::{sign_in, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_saves_availability_and_sees_the_preview() {
    let Some(tools) = browser_tools() else { return };
    with_deadline(async {
        let app = spawn().await;
        app.create_user("doctor", "doc@clinic.example", "Dr. Dolittle").await;
        let browser = Browser::launch(&tools, &app.base).await;
        sign_in(&browser, "doc@clinic.example", "/availability").await;

        // Nothing published yet: office hours are suggested.
        browser.wait_text("#status", "not published").await;
        browser.find("#weekly-4-weekday").await;
        browser.fill("#slot_minutes", "20").await;

        // An end before its start: the message sits beside that row's "To".
        browser.fill("#weekly-0-end", "08:00").await;
        browser.click("#availability-form button[type=submit]").await;
        let error = browser.wait_text("#weekly-0-end-error", "To").await;
        assert!(error.contains("later than the start"), "{error}");
        browser.wait_text("#status", "Not saved").await;
        let preview_hidden = browser.js("return document.getElementById('preview').hidden", vec![]).await;
        assert_eq!(preview_hidden, json!(true), "no preview of rules that were not saved");

        // A day off two days ahead, added through the exception row.
        browser.click("#add-exception").await;
        let day_off = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive().to_string();
        // Typing into a date input depends on the browser's locale; set it directly.
        browser.js("document.getElementById('exceptions-0-date').value = arguments[0]", vec![json!(day_off)]).await;

        browser.fill("#weekly-0-end", "12:00").await;
        browser.click("#availability-form button[type=submit]").await;
        browser.wait_text("#status", "Saved").await;
        let count = browser.wait_text("#preview-count", "free slots").await;
        assert!(!count.starts_with("0 "), "{count}");
        // 20-minute slots from 09:00 in the doctor's own zone (also the viewer's).
        browser
            .wait_for(
                "a 09:20 slot in the preview",
                "[...document.querySelectorAll('.chip')].some(c => c.innerText.includes('09:20'))",
            )
            .await;
        let error_gone =
            browser.js("return document.getElementById('weekly-0-end-error')?.hidden ?? true", vec![]).await;
        assert_eq!(error_gone, json!(true));

        // The server stored what the form showed.
        let doctor = app.session("doc@clinic.example").await;
        let stored: Value = app.get_as(&doctor.token, "/api/doctors/me/availability").await.json().await.unwrap();
        assert_eq!(stored["slot_minutes"], 20);
        assert_eq!(stored["timezone"], "Europe/Berlin");
        assert_eq!(stored["weekly"].as_array().map(Vec::len), Some(5));
        assert!(stored["weekly"].as_array().unwrap().iter().any(|w| w["end"] == "12:00"), "{stored}");
        assert_eq!(stored["exceptions"], json!([{"date": day_off}]));

        browser.js("document.getElementById('preview').scrollIntoView()", vec![]).await;
        browser.screenshot("doctor-availability.png").await;
        browser.close().await;
    })
    .await;
}
