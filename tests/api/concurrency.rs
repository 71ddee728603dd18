//! No double booking, ever: many patients racing for one slot.

use futures_util::future::join_all;

use crate::helpers::{Backend, Session, TestApp, spawn_app};
use crate::on_both_backends;

async fn patients(app: &TestApp, n: usize) -> Vec<Session> {
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        all.push(app.create_user("patient", &format!("p{i}@example.org"), &format!("Patient {i}")).await);
    }
    all
}

async fn fifty_patients_one_slot_exactly_one_booking(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patients = patients(&app, 50).await;
    let slot = app.slots(&patients[0].token, &doctor, 2).await[0].clone();
    let results = join_all(patients.iter().map(|p| app.book(p, &doctor, &slot))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 49, "{statuses:?}");
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM appointments").fetch_one(app.state.db.pool()).await.unwrap();
    assert_eq!(rows, 1);
}
on_both_backends!(fifty_patients_one_slot_exactly_one_booking);

async fn fifty_patients_fifty_slots_all_succeed(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patients = patients(&app, 50).await;
    let mut slots = app.slots(&patients[0].token, &doctor, 2).await;
    slots.extend(app.slots(&patients[0].token, &doctor, 3).await);
    slots.extend(app.slots(&patients[0].token, &doctor, 4).await);
    assert!(slots.len() >= 50);
    let results = join_all(patients.iter().zip(&slots).map(|(p, s)| app.book(p, &doctor, s))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM appointments").fetch_one(app.state.db.pool()).await.unwrap();
    assert_eq!(rows, 50);
}
on_both_backends!(fifty_patients_fifty_slots_all_succeed);

async fn nineteen_reschedules_racing_for_one_slot(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patients = patients(&app, 20).await;
    let slots = app.slots(&patients[0].token, &doctor, 2).await;
    let target = slots[0].clone();
    let mut appointments = Vec::new();
    for (p, s) in patients.iter().zip(&slots[1..]) {
        appointments.push(app.booked(p, &doctor, s).await);
    }
    let app = &app;
    let moves = patients.iter().zip(&appointments).map(|(p, a)| {
        let path = format!("/api/appointments/{}/reschedule", a["id"].as_str().unwrap());
        let body = serde_json::json!({"start": target});
        async move { app.post_json_as(&p.token, &path, &body).await }
    });
    let statuses: Vec<u16> = join_all(moves).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(appointments.len(), 19, "one day has 20 slots: one target, 19 booked");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 18, "{statuses:?}");
    let at_target: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM appointments WHERE start_at = ?")
        .bind(target.parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp_millis())
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(at_target, 1);
}
on_both_backends!(nineteen_reschedules_racing_for_one_slot);

/// Slots that only conflict through the buffer: two bookings of adjacent
/// slots must never both succeed. The unique indexes cannot catch this;
/// only the transaction's locking does.
async fn adjacent_slots_with_a_buffer_never_both_book(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut availability = crate::helpers::simple_availability();
    availability["buffer_minutes"] = serde_json::json!(10);
    let doctor = app.doctor_with("dr@clinic.example", &availability).await;
    let patients = patients(&app, 40).await;
    // Three rounds (one day each) make a lost race far likelier to show.
    for day in 2..5 {
        let slots = app.slots(&patients[0].token, &doctor, day).await;
        let results = join_all(patients.iter().enumerate().map(|(i, p)| app.book(p, &doctor, &slots[i % 8]))).await;
        assert!(results.iter().all(|r| r.status() == 201 || r.status() == 409), "no other outcome");
    }
    let starts: Vec<i64> = sqlx::query_scalar("SELECT start_at FROM appointments ORDER BY start_at")
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    assert!(starts.len() >= 3);
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= 60 * 60 * 1000, "bookings {pair:?} overlap within the buffer");
    }
}
on_both_backends!(adjacent_slots_with_a_buffer_never_both_book);
