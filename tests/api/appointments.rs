//! Reading, cancelling, rescheduling; who may see what; the audit trail.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, problem, spawn_app};
use crate::on_both_backends;

fn path(a: &Value, suffix: &str) -> String {
    format!("/api/appointments/{}{suffix}", a["id"].as_str().unwrap())
}

async fn strangers_get_404_and_the_refusal_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let stranger = app.patient("eve@example.org").await;
    let other_doctor = app.doctor("dr2@clinic.example").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let a = app.booked(&patient, &doctor, &slot).await;
    assert_eq!(a["room_url"], format!("https://localhost:8443/room/{}", a["id"].as_str().unwrap()));

    for who in [&stranger, &other_doctor] {
        problem(app.get_as(&who.token, &path(&a, "")).await, 404).await;
        problem(app.post_json_as(&who.token, &path(&a, "/cancel"), &json!({})).await, 404).await;
        problem(app.post_json_as(&who.token, &path(&a, "/reschedule"), &json!({"start": slot})).await, 404).await;
    }
    problem(app.get_as(&stranger.token, "/api/appointments/not-a-uuid").await, 404).await;
    let mine: Vec<Value> = app.get_as(&stranger.token, "/api/appointments").await.json().await.unwrap();
    assert!(mine.is_empty());
    for who in [&doctor, &patient] {
        let seen: Value = app.get_as(&who.token, &path(&a, "")).await.json().await.unwrap();
        assert_eq!(seen["appointment"]["id"], a["id"]);
    }

    let trail: Vec<Value> = app
        .get_as(&admin.token, &format!("/api/admin/audit?appointment_id={}", a["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    let count =
        |action: &str, outcome: &str| trail.iter().filter(|r| r["action"] == action && r["outcome"] == outcome).count();
    assert_eq!(count("create", "ok"), 1);
    assert_eq!(count("view", "denied"), 2);
    assert_eq!(count("cancel", "denied"), 2);
    assert_eq!(count("reschedule", "denied"), 2);
    assert_eq!(count("view", "ok"), 2);
    let row = &trail[0];
    for field in ["at", "user_id", "role", "client_ip", "request_id"] {
        assert!(!row[field].is_null(), "{field} missing in {row}");
    }
    assert!(!serde_json::to_string(&trail).unwrap().contains("check-up"), "no health details in the audit");
    problem(app.get_as(&patient.token, "/api/admin/audit").await, 403).await;
}
on_both_backends!(strangers_get_404_and_the_refusal_is_audited);

async fn either_side_cancels_and_the_slot_is_free_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slots = app.slots(&patient.token, &doctor, 2).await;
    let a = app.booked(&patient, &doctor, &slots[0]).await;
    let b = app.booked(&patient, &doctor, &slots[2]).await;

    let r = app.post_json_as(&patient.token, &path(&a, "/cancel"), &json!({"reason": "feeling better"})).await;
    assert_eq!(r.status(), 200);
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["appointment"]["status"], "cancelled");
    let seen: Value = app.get_as(&doctor.token, &path(&a, "")).await.json().await.unwrap();
    assert_eq!(seen["appointment"]["cancel_reason"], "feeling better");
    assert_eq!(seen["appointment"]["cancelled_by"], patient.user["id"]);
    assert!(app.slots(&patient.token, &doctor, 2).await.contains(&slots[0]));
    problem(app.post_json_as(&patient.token, &path(&a, "/cancel"), &json!({})).await, 409).await;

    let r = app.post_json_as(&doctor.token, &path(&b, "/cancel"), &json!({"reason": "sick leave"})).await;
    assert_eq!(r.status(), 200);
    let rebook = app.book(&patient, &doctor, &slots[0]).await;
    assert_eq!(rebook.status(), 201);
}
on_both_backends!(either_side_cancels_and_the_slot_is_free_again);

async fn patients_may_not_change_inside_the_window_doctors_may(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut doctor = app.doctor("dr@clinic.example").await;
    let mut patient = app.patient("pat@example.org").await;
    let slots = app.slots(&patient.token, &doctor, 2).await;
    let a = app.booked(&patient, &doctor, &slots[0]).await;
    let start: chrono::DateTime<chrono::Utc> = slots[0].parse().unwrap();
    app.travel((start - Duration::minutes(90)) - chrono::Utc::now(), &mut [&mut doctor, &mut patient]).await;

    let body = problem(app.post_json_as(&patient.token, &path(&a, "/cancel"), &json!({})).await, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("120 minutes"), "{body}");
    let body =
        problem(app.post_json_as(&patient.token, &path(&a, "/reschedule"), &json!({"start": slots[4]})).await, 422)
            .await;
    assert!(body["detail"].as_str().unwrap().contains("contact"), "{body}");
    let r = app.post_json_as(&doctor.token, &path(&a, "/reschedule"), &json!({"start": slots[4]})).await;
    assert_eq!(r.status(), 200);
    let r = app.post_json_as(&doctor.token, &path(&a, "/cancel"), &json!({})).await;
    assert_eq!(r.status(), 200);
}
on_both_backends!(patients_may_not_change_inside_the_window_doctors_may);

async fn reschedule_keeps_the_id_and_room_and_frees_the_old_slot(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let rival = app.patient("rival@example.org").await;
    let slots = app.slots(&patient.token, &doctor, 2).await;
    let a = app.booked(&patient, &doctor, &slots[0]).await;
    app.booked(&rival, &doctor, &slots[3]).await;

    problem(app.post_json_as(&patient.token, &path(&a, "/reschedule"), &json!({"start": slots[3]})).await, 409).await;
    let off_grid = (slots[5].parse::<chrono::DateTime<chrono::Utc>>().unwrap() + Duration::minutes(1)).to_rfc3339();
    problem(app.post_json_as(&patient.token, &path(&a, "/reschedule"), &json!({"start": off_grid})).await, 422).await;
    problem(app.post_json_as(&patient.token, &path(&a, "/reschedule"), &json!({"start": "soon"})).await, 422).await;

    let r = app.post_json_as(&patient.token, &path(&a, "/reschedule"), &json!({"start": slots[5]})).await;
    assert_eq!(r.status(), 200);
    let moved: Value = r.json().await.unwrap();
    assert_eq!(moved["appointment"]["id"], a["id"]);
    assert_eq!(moved["appointment"]["room_url"], a["room_url"]);
    assert_eq!(moved["appointment"]["start"], slots[5].as_str());
    let free = app.slots(&patient.token, &doctor, 2).await;
    assert!(free.contains(&slots[0]) && !free.contains(&slots[5]));
    // Rescheduling onto its own neighbouring slot works (its own old time does not block it).
    let r = app.post_json_as(&patient.token, &path(&a, "/reschedule"), &json!({"start": slots[6]})).await;
    assert_eq!(r.status(), 200);
}
on_both_backends!(reschedule_keeps_the_id_and_room_and_frees_the_old_slot);

async fn lists_filter_page_and_mark_completed(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let mut patient = app.patient("pat@example.org").await;
    let slots = app.slots(&patient.token, &doctor, 2).await;
    for s in &slots[..5] {
        app.booked(&patient, &doctor, s).await;
    }
    let all: Vec<Value> = app.get_as(&doctor.token, "/api/appointments").await.json().await.unwrap();
    assert_eq!(all.len(), 5);
    let page: Vec<Value> = app.get_as(&patient.token, "/api/appointments?limit=2&offset=2").await.json().await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["start"], all[2]["start"]);
    app.post_json_as(&patient.token, &path(&all[0], "/cancel"), &json!({})).await;
    let cancelled: Vec<Value> =
        app.get_as(&patient.token, "/api/appointments?status=cancelled").await.json().await.unwrap();
    assert_eq!(cancelled.len(), 1);

    let last_end: chrono::DateTime<chrono::Utc> = all[4]["end"].as_str().unwrap().parse().unwrap();
    app.travel(last_end - chrono::Utc::now() + Duration::minutes(1), &mut [&mut patient]).await;
    let done: Vec<Value> = app.get_as(&patient.token, "/api/appointments?status=completed").await.json().await.unwrap();
    assert_eq!(done.len(), 4);
    assert!(done.iter().all(|a| a["status"] == "completed"));
    let scheduled: Vec<Value> =
        app.get_as(&patient.token, "/api/appointments?status=scheduled").await.json().await.unwrap();
    assert!(scheduled.is_empty());

    for bad in ["?limit=101", "?status=maybe", "?from=yesterday", "?colour=red"] {
        problem(app.get_as(&patient.token, &format!("/api/appointments{bad}")).await, 422).await;
    }
}
on_both_backends!(lists_filter_page_and_mark_completed);

async fn the_dashboard_names_the_other_side(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 1).await[0].clone();
    let a = app.booked(&patient, &doctor, &slot).await;
    let board: Value = app.get_as(&doctor.token, "/api/dashboard").await.json().await.unwrap();
    let item = &board["appointments"][0];
    assert_eq!(item["id"], a["id"]);
    assert_eq!(item["other"]["name"], "Pat Patient");
    assert_eq!(item["other"]["role"], "patient");
    assert_eq!(item["other_in_room"], false);
    assert_eq!(item["room_url"], a["room_url"]);
    assert_eq!(item["status"], "scheduled");
    let board: Value = app.get_as(&patient.token, "/api/dashboard").await.json().await.unwrap();
    assert_eq!(board["appointments"][0]["other"]["name"], "Dr. Dolittle");
    let doctors: Vec<Value> = app.get_as(&patient.token, "/api/doctors").await.json().await.unwrap();
    assert_eq!(doctors.len(), 1);
    assert_eq!(doctors[0]["id"], TestApp::id(&doctor).as_str());
    assert!(doctors[0].get("email").is_none(), "doctors' emails are not listed");
}
on_both_backends!(the_dashboard_names_the_other_side);
