//! Dashboards with appointments: the doctor's queue and countdown, who is
//! waiting, the patient's cancel and reschedule dialogs, the join button.

use serde_json::{Value, json};

use crate::driver::{Browser, browser_tools, with_deadline};
use crate::helpers::TestApp;
use crate::steps::{assert_fits, sign_in, spawn};

/// Free slots today if there are enough left, else tomorrow.
async fn slots_soon(app: &TestApp, token: &str, doctor: &crate::helpers::Session, at_least: usize) -> Vec<String> {
    let today = app.slots(token, doctor, 0).await;
    if today.len() >= at_least { today } else { app.slots(token, doctor, 1).await }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_dashboard_shows_the_queue_countdown_and_who_is_waiting() {
    let Some(tools) = browser_tools() else { return };
    with_deadline(async {
        let app = spawn().await;
        let doctor = app.doctor("doc@clinic.example").await;
        let ann = app.create_user("patient", "ann@example.com", "Ann Archer").await;
        let ben = app.create_user("patient", "ben@example.com", "Ben Baker").await;
        let soon = slots_soon(&app, &ann.token, &doctor, 4).await;
        let later = app.slots(&ann.token, &doctor, 2).await;
        let first = app.booked(&ann, &doctor, &soon[0]).await;
        app.booked(&ben, &doctor, &soon[3]).await;
        app.booked(&ann, &doctor, &later[6]).await;
        // Ann has entered the room of her first appointment.
        let room = first["id"].as_str().unwrap().parse().unwrap();
        app.state.presence.enter(room, TestApp::id(&ann).parse().unwrap());

        let browser = Browser::launch(&tools, &app.base).await;
        sign_in(&browser, "doc@clinic.example", "/dashboard").await;
        browser.wait_text("#dashboard-title", "Your practice").await;
        let book = browser.find("#book-link").await;
        assert!(!book.is_displayed().await.unwrap(), "doctors do not book");
        let countdown = browser.wait_text("#countdown", "Ann Archer").await;
        assert!(countdown.contains("starts in") || countdown.starts_with("Now"), "{countdown}");
        browser.wait_text("#waiting-summary", "Waiting in the room: Ann Archer").await;
        browser.wait_text(&format!("#appointment-{}", first["id"].as_str().unwrap()), "Patient is waiting").await;
        browser.wait_text("main", "Ben Baker").await;
        let cards = browser.js("return document.querySelectorAll('li.appointment').length", vec![]).await;
        assert_eq!(cards, json!(3));
        browser.screenshot("doctor-dashboard.png").await;
        browser.resize(375, 900).await;
        assert_fits(&browser, 375).await;
        browser.screenshot("doctor-dashboard-375.png").await;

        // She leaves; the next refresh (here: the tab regaining focus) shows it.
        app.state.presence.leave(room, TestApp::id(&ann).parse().unwrap());
        browser.js("window.dispatchEvent(new Event('focus'))", vec![]).await;
        browser.wait_for("the waiting badge to go", "!document.querySelector('.waiting')").await;
        browser.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_cancels_reschedules_and_joins_from_the_dashboard() {
    let Some(tools) = browser_tools() else { return };
    with_deadline(async {
        let app = spawn().await;
        let doctor = app.doctor("doc@clinic.example").await;
        let pat = app.create_user("patient", "pat@example.com", "Pat Patient").await;
        let tomorrow = app.slots(&pat.token, &doctor, 1).await;
        let a = app.booked(&pat, &doctor, &tomorrow[0]).await;
        let b = app.booked(&pat, &doctor, &tomorrow[4]).await;
        let (a_id, b_id) = (a["id"].as_str().unwrap().to_owned(), b["id"].as_str().unwrap().to_owned());

        let browser = Browser::launch(&tools, &app.base).await;
        sign_in(&browser, "pat@example.com", "/dashboard").await;

        // Cancel A, with a reason.
        browser.click(&format!("#cancel-{a_id}")).await;
        browser.fill("#cancel-reason", "Feeling better").await;
        browser.click("#cancel-form button[type=submit]").await;
        browser.wait_text("#status", "Cancelled the appointment").await;
        browser.wait_text(&format!("#appointment-{a_id}"), "Cancelled").await;
        let stored = appointment(&app, &pat.token, &a_id).await;
        assert_eq!(stored["status"], "cancelled");
        assert_eq!(stored["cancel_reason"], "Feeling better");

        // Move B to a slot at least two hours away (outside its join window).
        browser.click(&format!("#reschedule-{b_id}")).await;
        browser.find("#reschedule-slots .slot input").await;
        let values = browser
            .js("return [...document.querySelectorAll('#reschedule-slots .slot input')].map(i => i.value)", vec![])
            .await;
        let values: Vec<String> = serde_json::from_value(values).unwrap();
        let horizon = chrono::Utc::now() + chrono::Duration::hours(2);
        let index = values.iter().position(|v| at(v) > horizon && at(v) != at(&tomorrow[4])).expect("a later slot");
        let labels = browser.client.find_all(fantoccini::Locator::Css("#reschedule-slots .slot")).await.unwrap();
        labels[index].click().await.unwrap();
        browser.click("#reschedule-form button[type=submit]").await;
        browser.wait_text("#status", "Moved to").await;
        let moved = appointment(&app, &pat.token, &b_id).await;
        assert_eq!(at(moved["start"].as_str().unwrap()), at(&values[index]));
        let join = browser.find(&format!("#join-{b_id}")).await;
        assert_eq!(join.tag_name().await.unwrap(), "button");
        assert!(!join.is_enabled().await.unwrap(), "the join button waits for the window");

        // Ten minutes before the start the room opens. Moving the server's
        // clock ends the idle session, so the page asks to sign in again.
        let wait = at(&values[index]) - chrono::Utc::now() - chrono::Duration::minutes(10);
        app.state.clock.advance(wait);
        browser.js("window.dispatchEvent(new Event('focus'))", vec![]).await;
        browser.wait_path("/login").await;
        browser.fill("#email", "pat@example.com").await;
        browser.fill("#password", crate::helpers::STRONG_PASSWORD).await;
        browser.click("#login-form button[type=submit]").await;
        browser.wait_path("/dashboard").await;
        browser.click(&format!("a#join-{b_id}")).await;
        browser.wait_path(&format!("/room/{b_id}")).await;
        browser.wait_text("#room-title", "Video call with Dr. Dolittle").await;
        browser.wait_for("the pre-join check", "document.body.dataset.roomState === 'prejoin'").await;
        browser.screenshot("room-lobby.png").await;
        browser.close().await;
    })
    .await;
}

async fn appointment(app: &TestApp, token: &str, id: &str) -> Value {
    let body: Value = app.get_as(token, &format!("/api/appointments/{id}")).await.json().await.unwrap();
    body["appointment"].clone()
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}
