//! The administration page: accounts and the audit trail.

use serde_json::{Value, json};

use crate::driver::{Browser, browser_tools, with_deadline};
use crate::helpers::STRONG_PASSWORD;
use crate::steps::{sign_in, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_doctor_and_reads_the_audit_trail() {
    let Some(tools) = browser_tools() else { return };
    with_deadline(async {
        let app = spawn().await;
        let admin = app.admin().await;
        let doctor = app.doctor("doc@clinic.example").await;
        let pat = app.patient("pat@example.com").await;
        let start = app.slots(&pat.token, &doctor, 1).await[0].clone();
        let booked = app.booked(&pat, &doctor, &start).await;
        let booked_id = booked["id"].as_str().unwrap().to_owned();

        let browser = Browser::launch(&tools, &app.base).await;
        sign_in(&browser, "admin@clinic.example", "/admin").await;
        browser.wait_text("#users-table", "pat@example.com").await;
        browser.wait_text("#audit-table", "Pat Patient").await;

        browser.fill("#name", "Dr. Quinn").await;
        browser.fill("#email", "quinn@clinic.example").await;
        browser.select("#role", "doctor").await;
        browser.fill("#password", STRONG_PASSWORD).await;
        browser.click("#create-form button[type=submit]").await;
        browser.wait_text("#create-status", "Created doctor account for Dr. Quinn").await;
        browser.wait_text("#users-table", "quinn@clinic.example").await;
        // The same email again: the conflict is said in the form.
        browser.fill("#name", "Dr. Quinn").await;
        browser.fill("#email", "quinn@clinic.example").await;
        browser.fill("#password", STRONG_PASSWORD).await;
        browser.click("#create-form button[type=submit]").await;
        browser.wait_text("#create-form .form-error", "already exists").await;

        // Only one appointment's trail.
        browser.fill("#appointment_id", &booked_id).await;
        browser.click("#audit-filter button[type=submit]").await;
        browser.wait_text("#audit-table", &booked_id).await;

        let users: Vec<Value> = app.get_as(&admin.token, "/api/admin/users").await.json().await.unwrap();
        let quinn = users.iter().find(|u| u["email"] == "quinn@clinic.example").unwrap();
        assert_eq!(quinn["role"], json!("doctor"));
        browser.close().await;
    })
    .await;
}
