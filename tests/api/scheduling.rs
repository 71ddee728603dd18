//! Availability, slots and booking rules.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, problem, simple_availability, spawn_app};
use crate::on_both_backends;

async fn availability_round_trips_and_names_bad_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.create_user("doctor", "dr@clinic.example", "Dr. D").await;
    let input = json!({
        "timezone": "Europe/Berlin", "slot_minutes": 20,
        "weekly": [{"weekday": 1, "start": "09:00", "end": "12:00"}, {"weekday": 3, "start": "14:00", "end": "18:30"}],
        "exceptions": [{"date": "2026-12-24"}, {"date": "2026-12-28", "start": "10:00", "end": "11:00"}],
        "buffer_minutes": 10
    });
    let r = app.put_json_as(&doctor.token, "/api/doctors/me/availability", &input).await;
    assert_eq!(r.status(), 200);
    let stored: Value = r.json().await.unwrap();
    assert_eq!(stored["min_notice_minutes"], 120, "default notice");
    assert_eq!(stored["horizon_days"], 60, "default horizon");
    assert_eq!(stored["buffer_minutes"], 10);
    let patient = app.patient("pat@example.org").await;
    let read: Value = app
        .get_as(&patient.token, &format!("/api/doctors/{}/availability", TestApp::id(&doctor)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, stored);

    let bad = json!({
        "timezone": "Mars/Base", "slot_minutes": 4,
        "weekly": [{"weekday": 8, "start": "09:00", "end": "12:00"},
                   {"weekday": 2, "start": "09:00", "end": "12:00"},
                   {"weekday": 2, "start": "11:00", "end": "13:00"},
                   {"weekday": 4, "start": "12:00", "end": "11:00"}],
        "horizon_days": 400
    });
    let body = problem(app.put_json_as(&doctor.token, "/api/doctors/me/availability", &bad).await, 422).await;
    for field in ["timezone", "slot_minutes", "weekly[0].weekday", "weekly[2]", "weekly[3].end", "horizon_days"] {
        assert!(body["errors"][field].is_string(), "{field} not named in {body}");
    }
    let r = app.put_json_as(&patient.token, "/api/doctors/me/availability", &simple_availability()).await;
    problem(r, 403).await;
}
on_both_backends!(availability_round_trips_and_names_bad_fields);

async fn slots_follow_the_doctors_zone_and_bookings(backend: Backend) {
    let app = spawn_app(backend).await;
    let availability = json!({
        "timezone": "America/New_York", "slot_minutes": 60,
        "weekly": (1..=7).map(|d| json!({"weekday": d, "start": "09:00", "end": "12:00"})).collect::<Vec<_>>(),
        "min_notice_minutes": 0
    });
    let doctor = app.doctor_with("dr@clinic.example", &availability).await;
    let patient = app.patient("pat@example.org").await;
    let slots = app.slots(&patient.token, &doctor, 3).await;
    // 09:00–12:00 New York is 14:00–17:00 or 13:00–16:00 UTC depending on DST.
    assert_eq!(slots.len(), 3, "{slots:?}");
    let hour = |s: &str| s[11..13].parse::<u32>().unwrap();
    assert!(hour(&slots[0]) == 13 || hour(&slots[0]) == 14, "{slots:?}");
    assert!(slots.iter().all(|s| s.ends_with(":00:00Z")));

    app.booked(&patient, &doctor, &slots[1]).await;
    let after = app.slots(&patient.token, &doctor, 3).await;
    assert_eq!(after, vec![slots[0].clone(), slots[2].clone()]);
}
on_both_backends!(slots_follow_the_doctors_zone_and_bookings);

async fn booking_rules_answer_422_409_404_403(backend: Backend) {
    let app = spawn_app(backend).await;
    let notice = {
        let mut a = simple_availability();
        a["min_notice_minutes"] = json!(120);
        a["horizon_days"] = json!(10);
        a
    };
    let doctor = app.doctor_with("dr@clinic.example", &notice).await;
    let other_doctor = app.doctor("dr2@clinic.example").await;
    let mut patient = app.patient("pat@example.org").await;
    let rival = app.patient("rival@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[4].clone();
    let start: chrono::DateTime<chrono::Utc> = slot.parse().unwrap();

    let off_grid = (start + chrono::Duration::minutes(7)).to_rfc3339();
    assert!(problem(app.book(&patient, &doctor, &off_grid).await, 422).await["errors"]["start"].is_string());
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc();
    problem(app.book(&patient, &doctor, &past.to_rfc3339()).await, 422).await;
    let beyond = (start + chrono::Duration::days(20)).to_rfc3339();
    let body = problem(app.book(&patient, &doctor, &beyond).await, 422).await;
    assert!(body["errors"]["start"].as_str().unwrap().contains("10 days"), "{body}");
    // Move the server's clock to an hour before the slot: inside the notice period.
    let shift = (start - chrono::Duration::minutes(60)) - chrono::Utc::now();
    app.travel(shift, &mut [&mut patient]).await;
    let body = problem(app.book(&patient, &doctor, &slot).await, 422).await;
    assert!(body["errors"]["start"].as_str().unwrap().contains("120 minutes"), "{body}");
    app.travel(-shift, &mut [&mut patient]).await;

    let booked = app.booked(&patient, &doctor, &slot).await;
    assert_eq!(booked["status"], "scheduled");
    assert_eq!(booked["reason"], "check-up");
    problem(app.book(&rival, &doctor, &slot).await, 409).await;
    // The patient's own time: another doctor, same hour.
    problem(app.book(&patient, &other_doctor, &slot).await, 409).await;

    let unknown = json!({"doctor_id": uuid::Uuid::new_v4(), "start": slot});
    problem(app.post_json_as(&rival.token, "/api/appointments", &unknown).await, 404).await;
    let not_a_doctor = json!({"doctor_id": TestApp::id(&rival), "start": slot});
    problem(app.post_json_as(&patient.token, "/api/appointments", &not_a_doctor).await, 404).await;
    problem(app.book(&doctor, &other_doctor, &slot).await, 403).await;

    let bad = json!({"doctor_id": "nope", "start": "tomorrow at nine", "reason": "x".repeat(1001)});
    let body = problem(app.post_json_as(&rival.token, "/api/appointments", &bad).await, 422).await;
    for field in ["doctor_id", "start", "reason"] {
        assert!(body["errors"][field].is_string(), "{field}: {body}");
    }
    let extra = json!({"doctor_id": TestApp::id(&doctor), "start": slot, "priority": "high"});
    let body = problem(app.post_json_as(&rival.token, "/api/appointments", &extra).await, 422).await;
    assert!(body["errors"]["priority"].is_string());
}
on_both_backends!(booking_rules_answer_422_409_404_403);

async fn a_long_reason_is_stored_whole_or_refused_never_truncated(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let reason = "é".repeat(1000);
    let body = json!({"doctor_id": TestApp::id(&doctor), "start": slot, "reason": reason});
    let r = app.post_json_as(&patient.token, "/api/appointments", &body).await;
    assert_eq!(r.status(), 201);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["appointment"]["reason"].as_str().unwrap().chars().count(), 1000);
}
on_both_backends!(a_long_reason_is_stored_whole_or_refused_never_truncated);

async fn idempotency_keys_replay_the_same_booking(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slots = app.slots(&patient.token, &doctor, 2).await;
    let body = json!({"doctor_id": TestApp::id(&doctor), "start": slots[0], "reason": "flu"});
    let send = |body: Value| {
        app.client
            .post(app.url("/api/appointments"))
            .bearer_auth(&patient.token)
            .header("idempotency-key", "booking-123")
            .json(&body)
            .send()
    };
    let first: Value = send(body.clone()).await.unwrap().json().await.unwrap();
    let r = send(body.clone()).await.unwrap();
    assert_eq!(r.status(), 201);
    let second: Value = r.json().await.unwrap();
    assert_eq!(first["appointment"]["id"], second["appointment"]["id"]);
    let mut other = body.clone();
    other["start"] = json!(slots[1]);
    let body = problem(send(other).await.unwrap(), 422).await;
    assert!(body["errors"]["Idempotency-Key"].is_string());
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM appointments").fetch_one(app.state.db.pool()).await.unwrap();
    assert_eq!(count, 1);
}
on_both_backends!(idempotency_keys_replay_the_same_booking);

async fn changing_availability_keeps_existing_appointments(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 3).await[0].clone();
    let appointment = app.booked(&patient, &doctor, &slot).await;
    let mut closed = simple_availability();
    closed["weekly"] = json!([]);
    assert_eq!(app.put_json_as(&doctor.token, "/api/doctors/me/availability", &closed).await.status(), 200);
    assert!(app.slots(&patient.token, &doctor, 3).await.is_empty());
    let path = format!("/api/appointments/{}", appointment["id"].as_str().unwrap());
    let still: Value = app.get_as(&patient.token, &path).await.json().await.unwrap();
    assert_eq!(still["appointment"]["status"], "scheduled");
}
on_both_backends!(changing_availability_keeps_existing_appointments);
