//! Email notifications: the outbox written by appointment changes, the
//! worker delivering to a real SMTP server (aiosmtpd, over TCP) or into
//! `.eml` files, retries, dead letters and what the mails say.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component as _};
use mail_parser::{MessageParser, MimeHeaders as _};
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::helpers::{Backend, Options, TestApp, problem, spawn_app, spawn_app_with};
use crate::on_both_backends;
use crate::smtp::{SmtpServer, aiosmtpd_available, unused_port, wait_for_files};

/// One received mail, parsed.
struct Mail {
    raw: String,
    to: String,
    subject: String,
    message_id: String,
    text: String,
    html: String,
    /// `method` parameter of the text/calendar part, and the calendar.
    invite: Option<(String, Calendar)>,
}

fn parse(raw: &[u8]) -> Mail {
    let message = MessageParser::default().parse(raw).expect("a parseable message");
    let invite = message.parts.iter().find(|p| p.is_content_type("text", "calendar")).map(|part| {
        let method = part.content_type().and_then(|c| c.attribute("method")).unwrap_or_default().to_owned();
        let ics = part.text_contents().expect("calendar text");
        (method, ics.parse::<Calendar>().expect("a parseable calendar"))
    });
    Mail {
        raw: String::from_utf8_lossy(raw).into_owned(),
        to: message.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned(),
        subject: message.subject().unwrap_or_default().to_owned(),
        message_id: message.message_id().unwrap_or_default().to_owned(),
        text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: message.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        invite,
    }
}

fn parse_all(raws: &[Vec<u8>]) -> Vec<Mail> {
    raws.iter().map(|r| parse(r)).collect()
}

fn event_property(calendar: &Calendar, name: &str) -> String {
    let event = calendar.events().next().expect("one event");
    event.property_value(name).unwrap_or_default().to_owned()
}

/// (kind, status, attempts, recipient, last_error) of every outbox row.
async fn outbox(app: &TestApp) -> Vec<(String, String, i64, String, Option<String>)> {
    sqlx::query(
        "SELECT kind, status, attempts, recipient_email, last_error FROM mail_outbox ORDER BY created_at, kind, id",
    )
    .fetch_all(app.state.db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get::<String, _>("kind"),
            r.get::<String, _>("status"),
            r.get::<i64, _>("attempts"),
            r.get::<String, _>("recipient_email"),
            r.get::<Option<String>, _>("last_error"),
        )
    })
    .collect()
}

async fn wait_until<F: Fn(&[(String, String, i64, String, Option<String>)]) -> bool>(
    app: &TestApp,
    what: &str,
    ready: F,
) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let rows = outbox(app).await;
        if ready(&rows) {
            return;
        }
        assert!(Instant::now() < deadline, "waited 40 s for {what}; outbox: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn smtp_app(backend: Backend, smtp: &SmtpServer) -> TestApp {
    spawn_app_with(backend, Options { smtp_url: Some(smtp.url()), ..Options::default() }).await
}

fn path(a: &Value, suffix: &str) -> String {
    format!("/api/appointments/{}{suffix}", a["id"].as_str().unwrap())
}

async fn booking_mails_both_sides_with_the_room_link_and_an_invite(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let smtp = SmtpServer::start(None);
    let app = smtp_app(backend, &smtp).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let a = app.booked(&patient, &doctor, &slot).await;

    let mails = parse_all(&smtp.wait_for(2).await);
    let start: DateTime<Utc> = slot.parse().unwrap();
    let local = start.with_timezone(&chrono_tz::Europe::Berlin).format("%H:%M").to_string();
    let room = a["room_url"].as_str().unwrap();
    let mut recipients: Vec<&str> = mails.iter().map(|m| m.to.as_str()).collect();
    recipients.sort();
    assert_eq!(recipients, ["dr@clinic.example", "pat@example.org"]);
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM mail_outbox WHERE kind = 'confirmation'")
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    for mail in &mails {
        assert!(mail.subject.starts_with("Appointment confirmed:"), "{}", mail.subject);
        assert!(!mail.raw.contains("check-up"), "the reason must not appear in any mail");
        assert!(mail.text.contains(room) && mail.html.contains(room), "room link in both parts");
        assert!(mail.text.contains("Europe/Berlin") && mail.text.contains(&local), "local time, zone named");
        assert!(mail.text.contains("camera and microphone"));
        assert!(mail.text.contains("/dashboard"));
        let other = if mail.to == "pat@example.org" { "Dr. Dolittle" } else { "Pat Patient" };
        assert!(mail.text.contains(other), "names the other participant: {}", mail.text);
        let id = mail.message_id.split('@').next().unwrap();
        assert!(ids.iter().any(|i| i == id), "Message-ID {} derives from an outbox id", mail.message_id);
        let (method, calendar) = mail.invite.as_ref().expect("a text/calendar part");
        assert_eq!(method, "REQUEST");
        assert_eq!(calendar.property_value("METHOD"), Some("REQUEST"));
        assert_eq!(event_property(calendar, "UID"), format!("{}@consulta", a["id"].as_str().unwrap()));
        assert_eq!(event_property(calendar, "SEQUENCE"), "0");
        assert_eq!(event_property(calendar, "DTSTART"), start.format("%Y%m%dT%H%M%SZ").to_string());
        assert_eq!(event_property(calendar, "LOCATION"), room);
    }
    let rows = outbox(&app).await;
    assert_eq!(rows.iter().filter(|r| r.0 == "confirmation" && r.1 == "sent").count(), 2);
    assert_eq!(rows.iter().filter(|r| r.0 == "reminder" && r.1 == "pending").count(), 4, "24 h and 1 h, each side");
}
on_both_backends!(booking_mails_both_sides_with_the_room_link_and_an_invite);

async fn with_smtp_down_booking_is_quick_and_each_mail_arrives_once_later(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let port = unused_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = spawn_app_with(backend, Options { smtp_url: Some(url), ..Options::default() }).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slots = app.slots(&patient.token, &doctor, 2).await;

    let started = Instant::now();
    let r = app.book(&patient, &doctor, &slots[0]).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 201);
    assert!(took < Duration::from_secs(2), "booking took {took:?} with SMTP down");
    wait_until(&app, "a failed attempt", |rows| {
        rows.iter().filter(|r| r.0 == "confirmation" && r.1 == "pending" && r.2 >= 1 && r.4.is_some()).count() == 2
    })
    .await;

    let smtp = SmtpServer::start_on(port, None);
    let mails = parse_all(&smtp.wait_for(2).await);
    wait_until(&app, "both sent", |rows| rows.iter().filter(|r| r.0 == "confirmation" && r.1 == "sent").count() == 2)
        .await;
    // Longer than the retry delays so far: nothing comes twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.received().len(), 2);
    assert_ne!(mails[0].message_id, mails[1].message_id);
}
on_both_backends!(with_smtp_down_booking_is_quick_and_each_mail_arrives_once_later);

async fn a_temporary_refusal_is_retried_until_accepted(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let smtp = SmtpServer::start(None);
    smtp.set_tempfail(true);
    let app = smtp_app(backend, &smtp).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    app.booked(&patient, &doctor, &slot).await;
    wait_until(&app, "two refused attempts each", |rows| {
        let confirmations: Vec<_> = rows.iter().filter(|r| r.0 == "confirmation").collect();
        confirmations.len() == 2
            && confirmations
                .iter()
                .all(|r| r.1 == "pending" && r.2 >= 2 && r.4.as_deref().is_some_and(|e| e.contains("451")))
    })
    .await;
    smtp.set_tempfail(false);
    smtp.wait_for(2).await;
    wait_until(&app, "both sent", |rows| rows.iter().filter(|r| r.0 == "confirmation" && r.1 == "sent").count() == 2)
        .await;
    assert_eq!(smtp.received().len(), 2);
}
on_both_backends!(a_temporary_refusal_is_retried_until_accepted);

async fn a_permanent_refusal_makes_the_mail_dead_without_retries(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let smtp = SmtpServer::start(Some("^refuse"));
    let app = smtp_app(backend, &smtp).await;
    let admin = app.admin().await;
    let doctor = app.doctor("refuse-dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    app.booked(&patient, &doctor, &slot).await;

    let mails = parse_all(&smtp.wait_for(1).await);
    assert_eq!(mails[0].to, "pat@example.org");
    wait_until(&app, "the refused mail to be dead", |rows| {
        rows.iter().any(|r| r.0 == "confirmation" && r.3 == "refuse-dr@clinic.example" && r.1 == "dead")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.rejected(), ["refuse-dr@clinic.example"], "one attempt, no retry storm");
    let dead: Vec<Value> = app.get_as(&admin.token, "/api/admin/mail?status=dead").await.json().await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["recipient_email"], "refuse-dr@clinic.example");
    assert_eq!(dead[0]["kind"], "confirmation");
    assert_eq!(dead[0]["attempts"], 1);
    assert!(dead[0]["last_error"].as_str().unwrap().contains("550"), "{}", dead[0]);
    assert!(dead[0].get("payload").is_none(), "no content in the admin list");
    let sent: Vec<Value> = app.get_as(&admin.token, "/api/admin/mail?status=sent").await.json().await.unwrap();
    assert_eq!(sent.len(), 1);
    problem(app.get_as(&admin.token, "/api/admin/mail?status=lost").await, 422).await;
    problem(app.get_as(&patient.token, "/api/admin/mail?status=dead").await, 403).await;
}
on_both_backends!(a_permanent_refusal_makes_the_mail_dead_without_retries);

async fn cancelling_sends_a_cancel_invite_and_drops_the_reminders(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let smtp = SmtpServer::start(None);
    let app = smtp_app(backend, &smtp).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let a = app.booked(&patient, &doctor, &slot).await;
    smtp.wait_for(2).await;

    let r = app.post_json_as(&patient.token, &path(&a, "/cancel"), &json!({"reason": "feeling better"})).await;
    assert_eq!(r.status(), 200);
    let mails = parse_all(&smtp.wait_for(4).await);
    for mail in &mails[2..] {
        assert!(mail.subject.starts_with("Appointment cancelled:"), "{}", mail.subject);
        assert!(!mail.raw.contains("feeling better") && !mail.raw.contains("check-up"));
        let (method, calendar) = mail.invite.as_ref().expect("a text/calendar part");
        assert_eq!(method, "CANCEL");
        assert_eq!(calendar.property_value("METHOD"), Some("CANCEL"));
        assert_eq!(event_property(calendar, "UID"), format!("{}@consulta", a["id"].as_str().unwrap()));
        assert_eq!(event_property(calendar, "STATUS"), "CANCELLED");
        assert_eq!(event_property(calendar, "SEQUENCE"), "1");
    }
    let rows = outbox(&app).await;
    assert!(rows.iter().all(|r| r.0 != "reminder"), "reminders dropped: {rows:?}");
}
on_both_backends!(cancelling_sends_a_cancel_invite_and_drops_the_reminders);

async fn rescheduling_raises_the_sequence_and_moves_the_reminders(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let smtp = SmtpServer::start(None);
    let app = smtp_app(backend, &smtp).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slots = app.slots(&patient.token, &doctor, 2).await;
    let a = app.booked(&patient, &doctor, &slots[0]).await;
    smtp.wait_for(2).await;

    let r = app.post_json_as(&doctor.token, &path(&a, "/reschedule"), &json!({"start": slots[4]})).await;
    assert_eq!(r.status(), 200);
    let mails = parse_all(&smtp.wait_for(4).await);
    let new_start: DateTime<Utc> = slots[4].parse().unwrap();
    for mail in &mails[2..] {
        assert!(mail.subject.starts_with("Appointment moved:"), "{}", mail.subject);
        let (method, calendar) = mail.invite.as_ref().expect("a text/calendar part");
        assert_eq!(method, "REQUEST");
        assert_eq!(event_property(calendar, "SEQUENCE"), "1");
        assert_eq!(event_property(calendar, "UID"), format!("{}@consulta", a["id"].as_str().unwrap()));
        assert_eq!(event_property(calendar, "DTSTART"), new_start.format("%Y%m%dT%H%M%SZ").to_string());
    }
    let due: Vec<i64> = sqlx::query_scalar(
        "SELECT send_after FROM mail_outbox WHERE kind = 'reminder' AND status = 'pending' ORDER BY send_after",
    )
    .fetch_all(app.state.db.pool())
    .await
    .unwrap();
    let ms = |h: i64| (new_start - chrono::Duration::hours(h)).timestamp_millis();
    assert_eq!(due, [ms(24), ms(24), ms(1), ms(1)], "the reminders follow the new time");
}
on_both_backends!(rescheduling_raises_the_sequence_and_moves_the_reminders);

async fn without_smtp_mails_are_readable_eml_files(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let a = app.booked(&patient, &doctor, &slot).await;
    let folder = app.dir.join("data/mail");
    let files = wait_for_files(&folder, 2).await;
    assert_eq!(files.len(), 2);
    for mail in parse_all(&files) {
        assert!(mail.text.contains(a["room_url"].as_str().unwrap()));
        assert!(mail.subject.starts_with("Appointment confirmed:"));
        assert!(mail.invite.is_some_and(|(method, _)| method == "REQUEST"));
    }
    let names: Vec<String> =
        std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| n.ends_with(".eml")), "{names:?}");
}
on_both_backends!(without_smtp_mails_are_readable_eml_files);

async fn late_reminders_go_out_only_before_the_start(backend: Backend) {
    let options = Options { mail_reminders: "1h".to_owned(), ..Options::default() };
    let app = spawn_app_with(backend, options).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slots = app.slots(&patient.token, &doctor, 2).await;
    let early = app.booked(&patient, &doctor, &slots[0]).await;
    let late = app.booked(&patient, &doctor, &slots[6]).await;
    let folder = app.dir.join("data/mail");
    wait_for_files(&folder, 4).await;

    // As if the server had been down: both reminder moments have passed,
    // `early` has started, `late` (three hours later) has not.
    let now: DateTime<Utc> = slots[5].parse().unwrap();
    app.travel(now - Utc::now() + chrono::Duration::minutes(1), &mut []).await;
    app.state.mail.wake();
    let reminders = |id: &Value| {
        let id = id["id"].as_str().unwrap().to_owned();
        let pool = app.state.db.pool().clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT status FROM mail_outbox WHERE appointment_id = ? AND kind = 'reminder' ORDER BY status",
            )
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    while reminders(&late).await != ["sent", "sent"] || reminders(&early).await != ["skipped", "skipped"] {
        assert!(Instant::now() < deadline, "late {:?}, early {:?}", reminders(&late).await, reminders(&early).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mails = parse_all(&wait_for_files(&folder, 6).await);
    let sent: Vec<&Mail> = mails.iter().filter(|m| m.subject.starts_with("Reminder:")).collect();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|m| m.text.contains(late["room_url"].as_str().unwrap()) && m.invite.is_none()));
}
on_both_backends!(late_reminders_go_out_only_before_the_start);

async fn hostile_names_and_bad_addresses_stop_nothing(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let smtp = SmtpServer::start(None);
    let app = smtp_app(backend, &smtp).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let other = app.patient("other@example.org").await;
    // Names and addresses the API refuses may still sit in the database
    // (older data, manual edits): the worker must survive them.
    sqlx::query("UPDATE users SET name = ? WHERE email = ?")
        .bind("Dr. Evil\r\nBcc: victim@example.org")
        .bind("dr@clinic.example")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE users SET name = ? WHERE email = ?")
        .bind("Zoë \"Quoted\" <b>李</b>")
        .bind("pat@example.org")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE users SET email = ? WHERE email = ?")
        .bind("other@@example.org")
        .bind("other@example.org")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let slots = app.slots(&patient.token, &doctor, 2).await;
    app.booked(&other, &doctor, &slots[0]).await;
    app.booked(&patient, &doctor, &slots[2]).await;

    wait_until(&app, "every confirmation settled", |rows| {
        rows.iter().filter(|r| r.0 == "confirmation" && (r.1 == "sent" || r.1 == "dead")).count() == 4
    })
    .await;
    let mails = parse_all(&smtp.received());
    assert_eq!(mails.len(), 3, "all but the one to the broken address");
    for mail in &mails {
        let head = mail.raw.split("\r\n\r\n").next().unwrap();
        assert!(!head.contains("\r\nBcc:"), "header injected:\n{head}");
    }
    assert!(mails.iter().any(|m| m.text.contains("Dr. Evil Bcc: victim@example.org")));
    let to_patient = mails.iter().find(|m| m.to == "pat@example.org").unwrap();
    assert!(to_patient.text.contains("Zoë \"Quoted\" <b>李</b>"));
    assert!(to_patient.html.contains("Zoë &quot;Quoted&quot; &lt;b&gt;李"));
    let rows = outbox(&app).await;
    let dead: Vec<_> = rows.iter().filter(|r| r.1 == "dead").collect();
    assert_eq!(dead.len(), 1, "{rows:?}");
    assert!(dead[0].4.as_deref().unwrap().contains("not valid"), "{:?}", dead[0]);
}
on_both_backends!(hostile_names_and_bad_addresses_stop_nothing);

async fn a_claim_is_exclusive_until_its_lease_ends(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("dr@clinic.example").await;
    let patient = app.patient("pat@example.org").await;
    let slot = app.slots(&patient.token, &doctor, 2).await[0].clone();
    app.booked(&patient, &doctor, &slot).await;
    // A reminder is not due yet by the server's clock, so its worker leaves it alone.
    let (id, due): (String, i64) = {
        let row = sqlx::query("SELECT id, send_after FROM mail_outbox WHERE kind = 'reminder' ORDER BY send_after")
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
        (row.get("id"), row.get("send_after"))
    };
    let id = id.parse().unwrap();
    let db = &app.state.db;
    let at = chrono::DateTime::from_timestamp_millis(due).unwrap() + chrono::Duration::seconds(1);
    let lease = at + chrono::Duration::minutes(5);
    assert!(db.claim_mail(id, "worker-a", lease, at).await.unwrap().is_some());
    assert!(db.claim_mail(id, "worker-b", lease, at).await.unwrap().is_none(), "claimed twice");
    assert!(!db.mark_mail_sent(id, "worker-b", at).await.unwrap(), "a non-owner cannot mark it");
    // worker-a died: after its lease, another worker takes the row over …
    let later = lease + chrono::Duration::seconds(1);
    let taken = db.claim_mail(id, "worker-c", later + chrono::Duration::minutes(5), later).await.unwrap();
    assert_eq!(taken.map(|m| m.attempts), Some(2));
    // … and worker-a, back from the dead, can no longer overwrite the outcome.
    assert!(!db.mark_mail_sent(id, "worker-a", later).await.unwrap());
    assert!(db.mark_mail_sent(id, "worker-c", later).await.unwrap());
}
on_both_backends!(a_claim_is_exclusive_until_its_lease_ends);

async fn two_workers_on_one_database_send_each_mail_once(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let smtp = SmtpServer::start(None);
    let app = smtp_app(backend, &smtp).await;
    // A second server's worker on the same database (its own lease owner).
    let state = &app.state;
    let second =
        consulta::mail::worker_from_config(&state.config, state.db.clone(), state.clock.clone(), state.mail.clone())
            .unwrap()
            .spawn();
    let doctor = app.doctor("dr@clinic.example").await;
    let mut patients = Vec::new();
    for i in 0..6 {
        patients.push(app.create_user("patient", &format!("p{i}@example.org"), &format!("Patient {i}")).await);
    }
    let slots = app.slots(&patients[0].token, &doctor, 2).await;
    let bookings = patients.iter().zip(&slots).map(|(p, s)| app.book(p, &doctor, s));
    for r in futures_util::future::join_all(bookings).await {
        assert_eq!(r.status(), 201);
    }
    smtp.wait_for(12).await;
    wait_until(&app, "all sent", |rows| rows.iter().filter(|r| r.0 == "confirmation" && r.1 == "sent").count() == 12)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = parse_all(&smtp.received());
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((mails.len(), ids.len()), (12, 12));
    second.stop(Duration::from_secs(5)).await;
}
on_both_backends!(two_workers_on_one_database_send_each_mail_once);
