//! The live hub over real WebSockets on TLS.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::helpers::{Backend, ORIGIN, close_code, next_json, spawn_app};
use crate::on_both_backends;

const SOON: Duration = Duration::from_secs(1);

async fn a_booking_reaches_both_sides_and_nobody_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let stranger = app.patient("eve@example.org").await;
    let mut doctor_tab1 = app.ws_signed_in(&doctor).await;
    let mut doctor_tab2 = app.ws_signed_in(&doctor).await;
    let mut patient_ws = app.ws_signed_in(&patient).await;
    let mut stranger_ws = app.ws_signed_in(&stranger).await;

    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let booked = app.booked(&patient, &doctor, &slot).await;
    for ws in [&mut doctor_tab1, &mut doctor_tab2, &mut patient_ws] {
        let pushed = next_json(ws, SOON).await.expect("push within a second");
        assert_eq!(pushed["type"], "appointment.created");
        assert_eq!(pushed["appointment"]["id"], booked["id"]);
        let committed: chrono::DateTime<chrono::Utc> = pushed["committed_at"].as_str().unwrap().parse().unwrap();
        assert!(committed >= booked["created_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    }
    let path = format!("/api/appointments/{}/cancel", booked["id"].as_str().unwrap());
    app.post_json_as(&doctor.token, &path, &json!({"reason": "emergency"})).await;
    let pushed = next_json(&mut patient_ws, SOON).await.expect("cancel push");
    assert_eq!(pushed["type"], "appointment.cancelled");
    assert_eq!(pushed["appointment"]["status"], "cancelled");
    assert_eq!(next_json(&mut stranger_ws, Duration::from_millis(300)).await, None, "a third user hears nothing");
}
on_both_backends!(a_booking_reaches_both_sides_and_nobody_else);

async fn upgrades_need_a_session_and_our_origin(backend: Backend) {
    let app = spawn_app(backend).await;
    let patient = app.patient("pat@example.org").await;
    let status = |r: Result<crate::helpers::Ws, WsError>| match r {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => 101,
    };
    assert_eq!(status(app.ws(None, Some(ORIGIN)).await), 401);
    assert_eq!(status(app.ws(Some("forged"), Some(ORIGIN)).await), 401);
    assert_eq!(status(app.ws(Some(&patient.token), Some("https://evil.example")).await), 403);
    assert_eq!(status(app.ws(Some(&patient.token), Some(ORIGIN)).await), 101);
    let r = app.client.get(app.url("/ws")).bearer_auth(&patient.token).send().await.unwrap();
    assert_eq!(r.status(), 400, "a plain GET is not an upgrade");
}
on_both_backends!(upgrades_need_a_session_and_our_origin);

async fn bad_frames_get_errors_oversized_ones_close_1009(backend: Backend) {
    let app = spawn_app(backend).await;
    let patient = app.patient("pat@example.org").await;
    let mut ws = app.ws_signed_in(&patient).await;
    ws.send(Message::text("{not json")).await.unwrap();
    let error = next_json(&mut ws, SOON).await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "bad_message");
    ws.send(Message::text(r#"{"type":"self.destruct"}"#)).await.unwrap();
    assert_eq!(next_json(&mut ws, SOON).await.unwrap()["code"], "unknown_type");
    ws.send(Message::text(r#"{"type":"ping","id":1}"#)).await.unwrap();
    let pong = next_json(&mut ws, SOON).await.unwrap();
    assert_eq!(pong, json!({"type": "pong", "id": 1}), "the socket still works");

    ws.send(Message::text("x".repeat(65 * 1024))).await.unwrap();
    assert_eq!(close_code(&mut ws, Duration::from_secs(2)).await, Some(1009));
}
on_both_backends!(bad_frames_get_errors_oversized_ones_close_1009);

async fn logout_closes_that_sessions_sockets_with_4001(backend: Backend) {
    let app = spawn_app(backend).await;
    let patient = app.patient("pat@example.org").await;
    let other_session = app.session("pat@example.org").await;
    let mut ws = app.ws_signed_in(&patient).await;
    let mut other = app.ws_signed_in(&other_session).await;
    let r = app.client.post(app.url("/api/auth/logout")).bearer_auth(&patient.token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(close_code(&mut ws, Duration::from_secs(2)).await, Some(4001));
    other.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    assert_eq!(next_json(&mut other, SOON).await.unwrap()["type"], "pong", "other sessions keep their sockets");
}
on_both_backends!(logout_closes_that_sessions_sockets_with_4001);

async fn an_expired_session_closes_its_sockets_within_two_seconds(backend: Backend) {
    let app = spawn_app(backend).await;
    let patient = app.patient("pat@example.org").await;
    let mut ws = app.ws_signed_in(&patient).await;
    app.state.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(close_code(&mut ws, Duration::from_secs(2) + Duration::from_millis(500)).await, Some(4001));
}
on_both_backends!(an_expired_session_closes_its_sockets_within_two_seconds);

async fn a_flooding_client_is_closed_1008_others_unaffected(backend: Backend) {
    let app = spawn_app(backend).await;
    let patient = app.patient("pat@example.org").await;
    let mut calm = app.ws_signed_in(&patient).await;
    let mut flood = app.ws_signed_in(&patient).await;
    for _ in 0..200 {
        if flood.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut flood, Duration::from_secs(3)).await, Some(1008));
    calm.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    assert_eq!(next_json(&mut calm, SOON).await.unwrap()["type"], "pong");
}
on_both_backends!(a_flooding_client_is_closed_1008_others_unaffected);

async fn a_slow_reader_is_cut_off_while_a_fast_one_keeps_receiving(backend: Backend) {
    let app = spawn_app(backend).await;
    let patient = app.patient("pat@example.org").await;
    let user = patient.user["id"].as_str().unwrap().parse().unwrap();
    let _slow = app.ws_signed_in(&patient).await; // never read again
    let mut fast = app.ws_signed_in(&patient).await;
    assert_eq!(app.state.hub.socket_count(), 2);

    const TOTAL: usize = 1500;
    let reader = tokio::spawn(async move {
        let mut received = 0;
        while received < TOTAL {
            match tokio::time::timeout(Duration::from_secs(10), fast.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => received += 1,
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        (received, fast)
    });
    let filler = Value::String("z".repeat(16 * 1024));
    let message = consulta::hub::ServerMessage::Pong { id: Some(filler) };
    for batch in 0..TOTAL / 15 {
        for _ in 0..15 {
            app.state.hub.send_to_users(&[user], &message);
        }
        if batch % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (received, _fast) = reader.await.unwrap();
    assert_eq!(received, TOTAL, "the fast reader got everything");
    assert_eq!(app.state.hub.socket_count(), 1, "the slow reader was disconnected");
}
on_both_backends!(a_slow_reader_is_cut_off_while_a_fast_one_keeps_receiving);
