//! Video rooms through the hub: real webrtc-rs peers signal over `/ws`
//! (TLS, bearer auth) exactly as a browser would, and exchange real media
//! through the SFU on the server's UDP port.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, Session, TestApp, spawn_app};
use crate::on_both_backends;
use crate::sfu_support::{Client, SERIAL, Signal, TestResult, wait_media_from};
use consulta::sfu::{ClientSignal, ParticipantId, PcKind, SfuEvent};

const MEDIA_DEADLINE: Duration = Duration::from_secs(20);
const SOON: Duration = Duration::from_secs(5);

/// A `/ws` connection split into frames out and typed frames in.
struct RoomSocket {
    out: mpsc::UnboundedSender<String>,
    frames: Mutex<mpsc::UnboundedReceiver<Value>>,
}

impl RoomSocket {
    /// Opens the socket; `rtc.*` frames from the server go to `sfu_events`.
    async fn open(app: &TestApp, session: &Session, sfu_events: Option<mpsc::Sender<SfuEvent>>) -> RoomSocket {
        let ws = app.ws_signed_in(session).await;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let (frames_tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else { continue };
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                let sdp = || frame["sdp"].as_str().unwrap_or_default().to_owned();
                let event = match frame["type"].as_str() {
                    Some("rtc.publish_answer") => Some(SfuEvent::PublishAnswer { sdp: sdp() }),
                    Some("rtc.subscribe_offer") => Some(SfuEvent::SubscribeOffer { sdp: sdp() }),
                    Some("rtc.candidate") => Some(SfuEvent::Candidate {
                        target: if frame["target"] == "publisher" { PcKind::Publisher } else { PcKind::Subscriber },
                        candidate: frame["candidate"].as_str().unwrap_or_default().to_owned(),
                        sdp_mid: frame["sdp_mid"].as_str().map(str::to_owned),
                        sdp_mline_index: frame["sdp_mline_index"].as_u64().and_then(|i| u16::try_from(i).ok()),
                    }),
                    _ => None,
                };
                match (event, &sfu_events) {
                    (Some(event), Some(tx)) => {
                        let _ = tx.send(event).await;
                    }
                    _ => {
                        let _ = frames_tx.send(frame);
                    }
                }
            }
        });
        RoomSocket { out, frames: Mutex::new(frames) }
    }

    fn send(&self, frame: Value) {
        let _ = self.out.send(frame.to_string());
    }

    /// The next non-`rtc.*` frame whose `type` is `kind`, skipping others.
    async fn expect(&self, kind: &str, within: Duration) -> Option<Value> {
        self.expect_where(kind, within, |_| true).await
    }

    /// The next frame of type `kind` that satisfies `pred`, skipping others.
    async fn expect_where(&self, kind: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let mut frames = self.frames.lock().await;
        tokio::time::timeout(within, async {
            while let Some(frame) = frames.recv().await {
                if frame["type"] == kind && pred(&frame) {
                    return Some(frame);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

/// Client signaling as `rtc.*` frames on the socket.
struct WsSignal(mpsc::UnboundedSender<String>);

#[async_trait::async_trait]
impl Signal for WsSignal {
    async fn send(&self, message: ClientSignal) -> TestResult {
        let mut frame = serde_json::to_value(&message)?;
        let kind = match frame["type"].as_str() {
            Some("request_keyframe") => "rtc.keyframe".to_owned(),
            Some(other) => format!("rtc.{other}"),
            None => return Err("untyped signal".into()),
        };
        frame["type"] = json!(kind);
        self.0.send(frame.to_string())?;
        Ok(())
    }
}

/// Joins `appointment`'s room over the hub and starts publishing tagged media.
async fn join_call(app: &TestApp, session: &Session, appointment: &str, name: &str) -> (Client, RoomSocket, Value) {
    let (events_tx, events_rx) = mpsc::channel(256);
    let socket = RoomSocket::open(app, session, Some(events_tx)).await;
    socket.send(json!({"type": "room.join", "appointment_id": appointment}));
    let joined = socket.expect("room.joined", SOON).await.expect("room.joined");
    let pid: ParticipantId = serde_json::from_value(joined["participant_id"].clone()).expect("participant id");
    let user_id = session.user["id"].as_str().unwrap().parse().unwrap();
    let client = Client::connect(Arc::new(WsSignal(socket.out.clone())), events_rx, name, user_id, pid)
        .await
        .expect("peer connections");
    (client, socket, joined)
}

/// A doctor, a patient and their appointment, with the server's clock five
/// minutes before it starts (inside the join window).
async fn appointment_about_to_start(app: &TestApp) -> (Session, Session, String) {
    let mut doctor = app.doctor("dr@clinic.example").await;
    let mut patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let appointment = app.booked(&patient, &doctor, &slot).await;
    let start: chrono::DateTime<chrono::Utc> = slot.parse().unwrap();
    app.travel(start - chrono::Duration::minutes(5) - chrono::Utc::now(), &mut [&mut doctor, &mut patient]).await;
    (doctor, patient, appointment["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_and_patient_exchange_media_through_the_hub() {
    let _serial = SERIAL.lock().await;
    let app = spawn_app(Backend::Sqlite).await;
    let (doctor, patient, appointment) = appointment_about_to_start(&app).await;
    let doctor_dashboard = RoomSocket::open(&app, &doctor, None).await;

    let (pat, pat_socket, joined) = join_call(&app, &patient, &appointment, "patient").await;
    assert_eq!(joined["waiting_for"], "doctor", "the patient is told they wait for the doctor");
    let presence = doctor_dashboard.expect("room.presence", SOON).await.expect("presence on the dashboard");
    assert_eq!(presence["participants"][0]["role"], "patient");
    let board: Value = app.get_as(&doctor.token, "/api/dashboard").await.json().await.unwrap();
    assert_eq!(board["appointments"][0]["other_in_room"], true, "the doctor sees the patient waiting");

    let (doc, _doc_socket, joined) = join_call(&app, &doctor, &appointment, "doctor").await;
    assert_eq!(joined["waiting_for"], Value::Null);
    assert_eq!(joined["participants"].as_array().unwrap().len(), 2);
    wait_media_from(&doc, pat.tag, 50, 30, MEDIA_DEADLINE).await.expect("the doctor receives the patient's media");
    wait_media_from(&pat, doc.tag, 50, 30, MEDIA_DEADLINE).await.expect("the patient receives the doctor's media");
    use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
    assert_eq!(doc.received.count(doc.tag, RtpCodecKind::Video), 0, "nobody receives their own media");

    pat_socket.send(json!({"type": "room.leave"}));
    assert!(pat_socket.expect("room.left", SOON).await.is_some());
    let only_the_doctor =
        |p: &Value| p["participants"].as_array().is_some_and(|a| a.len() == 1 && a[0]["role"] == "doctor");
    let presence = doctor_dashboard.expect_where("room.presence", SOON, only_the_doctor).await;
    assert!(presence.is_some(), "the dashboard hears that the patient left");
    pat.close().await;
    doc.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_appointment_closes_the_room_and_stops_media() {
    let _serial = SERIAL.lock().await;
    let app = spawn_app(Backend::Sqlite).await;
    let (doctor, patient, appointment) = appointment_about_to_start(&app).await;
    let (pat, pat_socket, _) = join_call(&app, &patient, &appointment, "patient").await;
    let (doc, doc_socket, _) = join_call(&app, &doctor, &appointment, "doctor").await;
    wait_media_from(&pat, doc.tag, 20, 10, MEDIA_DEADLINE).await.expect("media flows first");

    let path = format!("/api/appointments/{appointment}/cancel");
    assert_eq!(app.post_json_as(&doctor.token, &path, &json!({"reason": "emergency"})).await.status(), 200);
    for socket in [&pat_socket, &doc_socket] {
        let closed = socket.expect("room.closed", SOON).await.expect("room.closed within 5 s");
        assert_eq!(closed["reason"], "cancelled");
    }
    assert_eq!(app.state.sfu.stats().participants, 0);
    use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = pat.received.count(doc.tag, RtpCodecKind::Audio);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pat.received.count(doc.tag, RtpCodecKind::Audio), before, "media stopped");
    pat_socket.send(json!({"type": "room.join", "appointment_id": appointment}));
    let refused = pat_socket.expect("error", SOON).await.unwrap();
    assert_eq!(refused["code"], "appointment_cancelled");
    pat.close().await;
    doc.close().await;
}

async fn joins_are_refused_to_strangers_and_outside_the_window(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut doctor = app.doctor("dr@clinic.example").await;
    let mut patient = app.patient("pat@example.org").await;
    let mut stranger = app.patient("eve@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let appointment = app.booked(&patient, &doctor, &slot).await["id"].as_str().unwrap().to_owned();
    let start: chrono::DateTime<chrono::Utc> = slot.parse().unwrap();
    async fn code(app: &TestApp, session: &Session, room: &str) -> Option<String> {
        let socket = RoomSocket::open(app, session, None).await;
        socket.send(json!({"type": "room.join", "appointment_id": room}));
        socket.expect("error", SOON).await.map(|e| e["code"].as_str().unwrap_or_default().to_owned())
    }

    assert_eq!(code(&app, &patient, &appointment).await.as_deref(), Some("room_not_open_yet"), "two days early");
    app.travel(
        start - chrono::Duration::minutes(10) - chrono::Utc::now(),
        &mut [&mut doctor, &mut patient, &mut stranger],
    )
    .await;
    assert_eq!(code(&app, &stranger, &appointment).await.as_deref(), Some("room_not_found"));
    assert_eq!(code(&app, &stranger, "not-a-uuid").await.as_deref(), Some("room_not_found"));
    let end = start + chrono::Duration::minutes(30);
    app.travel(end + chrono::Duration::minutes(61) - app.state.clock.now(), &mut [&mut doctor, &mut patient]).await;
    assert_eq!(code(&app, &doctor, &appointment).await.as_deref(), Some("room_closed"));
    assert_eq!(app.state.sfu.stats().participants, 0, "no refused join reached the media server");

    let socket = RoomSocket::open(&app, &patient, None).await;
    socket.send(json!({"type": "rtc.publish_offer", "sdp": "v=0"}));
    assert_eq!(socket.expect("error", SOON).await.unwrap()["code"], "not_in_room");
}
on_both_backends!(joins_are_refused_to_strangers_and_outside_the_window);
