//! The tamper-evident audit trail: requests append rows, a background
//! chainer links them into a hash chain that `consulta audit verify` walks,
//! and (on SQLite) triggers refuse every UPDATE but the chainer's and every
//! DELETE.

use std::process::Command;
use std::time::{Duration, Instant};

use consulta::db::audit::AuditEntry;
use consulta::db::audit_verify::ChainReport;

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_both_backends;

fn entry(app: &TestApp, action: &'static str) -> AuditEntry {
    AuditEntry {
        at: app.state.clock.now(),
        user_id: None,
        role: None,
        action,
        appointment_id: None,
        outcome: "ok",
        client_ip: Some("127.0.0.1".to_owned()),
        request_id: None,
    }
}

async fn sql(app: &TestApp, statement: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned())).execute(app.state.db.pool()).await.map(|d| d.rows_affected())
}

/// Statements MySQL's prepared-statement protocol refuses (CREATE TRIGGER).
async fn raw_sql(app: &TestApp, statement: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned())).execute(app.state.db.pool()).await.unwrap();
}

async fn verify(app: &TestApp) -> ChainReport {
    app.state.db.verify_audit_chain(app.state.clock.now(), chrono::Duration::seconds(60)).await.unwrap()
}

/// Links what is waiting now, alongside the server's own chainer.
async fn link_now(app: &TestApp) {
    consulta::audit_chainer::drain(&app.state.db).await.unwrap();
}

/// `consulta audit verify` against the test's database.
fn verify_cli(app: &TestApp, extra: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_consulta"));
    for (name, _) in std::env::vars() {
        if name.starts_with("CONSULTA_") || name == "DATABASE_URL" {
            c.env_remove(name);
        }
    }
    c.env("RUST_LOG", "warn")
        .env("DATABASE_URL", &app.database_url)
        .env("CONSULTA_DATA_DIR", app.dir.join("data"))
        .args(["audit", "verify"])
        .args(extra)
        .output()
        .unwrap()
}

async fn booking_writes_a_chain_that_verifies(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("doc@clinic.example").await;
    let patient = app.patient("pat@example.com").await;
    let start = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let appointment = app.booked(&patient, &doctor, &start).await;
    let id = appointment["id"].as_str().unwrap();
    let r = app.get_as(&patient.token, &format!("/api/appointments/{id}")).await;
    assert_eq!(r.status(), 200);

    // Both rows exist as soon as the responses are in, linked or not.
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE appointment_id = ? ORDER BY seq")
        .bind(id)
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(actions, ["create", "view"]);

    // The server's chainer links them within a few seconds, with no help.
    let deadline = Instant::now() + Duration::from_secs(5);
    let report = loop {
        let report = verify(&app).await;
        if report.unchained.pending == 0 || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report.broken, None);
    assert_eq!(report.unchained.pending, 0, "not linked within 5 s: {report:?}");
    assert!(report.verified >= 2, "{report:?}");
    let out = verify_cli(&app, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
}
on_both_backends!(booking_writes_a_chain_that_verifies);

async fn a_changed_row_is_reported_by_seq(backend: Backend) {
    let app = spawn_app(backend).await;
    for action in ["view", "create", "cancel", "view"] {
        app.state.db.audit(&[entry(&app, action)]).await.unwrap();
    }
    link_now(&app).await;
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq").fetch_all(app.state.db.pool()).await.unwrap();
    assert_eq!(seqs.len(), 4);
    let target = seqs[2];
    if backend == Backend::Sqlite {
        sql(&app, "DROP TRIGGER audit_log_no_update").await.unwrap();
    }
    let changed = sql(&app, &format!("UPDATE audit_log SET outcome = 'denied' WHERE seq = {target}")).await.unwrap();
    assert_eq!(changed, 1);

    let report = verify(&app).await;
    assert_eq!(report.broken.and_then(|b| b.seq), Some(target));
    let out = verify_cli(&app, &[]);
    assert!(!out.status.success(), "a broken chain must fail");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("seq {target}")), "{stdout}");
}
on_both_backends!(a_changed_row_is_reported_by_seq);

async fn a_deleted_row_breaks_the_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        app.state.db.audit(&[entry(&app, "view")]).await.unwrap();
    }
    link_now(&app).await;
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq").fetch_all(app.state.db.pool()).await.unwrap();
    let positions: Vec<i64> = sqlx::query_scalar("SELECT chain_seq FROM audit_log ORDER BY seq")
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    if backend == Backend::Sqlite {
        sql(&app, "DROP TRIGGER audit_log_no_delete").await.unwrap();
    }
    sql(&app, &format!("DELETE FROM audit_log WHERE seq = {}", seqs[1])).await.unwrap();
    let report = verify(&app).await;
    assert_eq!(report.broken.map(|b| b.chain_seq), Some(positions[1]));

    // Dropping the newest row is caught by the chain's head.
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        app.state.db.audit(&[entry(&app, "view")]).await.unwrap();
    }
    link_now(&app).await;
    if backend == Backend::Sqlite {
        sql(&app, "DROP TRIGGER audit_log_no_delete").await.unwrap();
    }
    sql(&app, "DELETE FROM audit_log WHERE seq = (SELECT m FROM (SELECT MAX(seq) AS m FROM audit_log) t)")
        .await
        .unwrap();
    let report = verify(&app).await;
    assert!(report.broken.is_some(), "{report:?}");

    // So is a linked row set back to unlinked (to be linked again, edited).
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        app.state.db.audit(&[entry(&app, "view")]).await.unwrap();
    }
    link_now(&app).await;
    if backend == Backend::Sqlite {
        sql(&app, "DROP TRIGGER audit_log_no_update").await.unwrap();
    }
    let first: i64 = sqlx::query_scalar("SELECT MIN(seq) FROM audit_log").fetch_one(app.state.db.pool()).await.unwrap();
    sql(&app, &format!("UPDATE audit_log SET chain_seq = NULL, prev_hash = NULL, hash = NULL WHERE seq = {first}"))
        .await
        .unwrap();
    let report = verify(&app).await;
    assert!(report.broken.is_some(), "{report:?}");
}
on_both_backends!(a_deleted_row_breaks_the_chain);

async fn concurrent_appends_do_not_fork_the_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    // Appends race with each other, with four extra chainers (as if four
    // more servers shared the database) and with the server's own.
    let appends: Vec<_> = (0..24)
        .map(|_| {
            let db = app.state.db.clone();
            let entries = vec![entry(&app, "view"), entry(&app, "view")];
            tokio::spawn(async move { db.audit(&entries).await })
        })
        .collect();
    let chainers: Vec<_> = (0..4)
        .map(|_| {
            let db = app.state.db.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    consulta::audit_chainer::drain(&db).await?;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok::<_, consulta::db::DbError>(())
            })
        })
        .collect();
    for task in appends {
        task.await.unwrap().unwrap();
    }
    for task in chainers {
        task.await.unwrap().unwrap();
    }
    link_now(&app).await;
    let report = verify(&app).await;
    assert_eq!(report.broken, None);
    assert_eq!(report.verified, 48);
    assert_eq!(report.unchained.pending, 0);
}
on_both_backends!(concurrent_appends_do_not_fork_the_chain);

/// A trigger that refuses every update (as recommended for MySQL before
/// migration 0006) stops the chainer: the rows are kept, and `verify`
/// reports them once they have waited past the grace period.
async fn rows_the_chainer_cannot_link_are_reported(backend: Backend) {
    let app = spawn_app(backend).await;
    match backend {
        Backend::Sqlite => {
            raw_sql(
                &app,
                "DROP TRIGGER audit_log_no_update; CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
            )
            .await;
        }
        Backend::MySql => {
            raw_sql(
                &app,
                "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_log is append-only'",
            )
            .await;
        }
    }
    app.state.db.audit(&[entry(&app, "view"), entry(&app, "view")]).await.unwrap();
    assert!(consulta::audit_chainer::drain(&app.state.db).await.is_err(), "the trigger must stop the chainer");

    let later = app.state.clock.now() + chrono::Duration::seconds(61);
    let report = app.state.db.verify_audit_chain(later, chrono::Duration::seconds(60)).await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!((report.unchained.pending, report.unchained.overdue), (2, 2), "{report:?}");
    // Within the grace period they are only pending.
    assert_eq!(verify(&app).await.unchained.overdue, 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let out = verify_cli(&app, &["--grace-secs", "0"]);
    assert!(!out.status.success(), "unlinked rows past the grace period must fail");
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT LINKED"), "{}", String::from_utf8_lossy(&out.stdout));

    // Once the trigger allows it, the same rows are linked and verify passes.
    raw_sql(&app, "DROP TRIGGER audit_log_no_update").await;
    link_now(&app).await;
    let report = verify(&app).await;
    assert_eq!((report.broken, report.verified, report.unchained.pending), (None, 2, 0));
}
on_both_backends!(rows_the_chainer_cannot_link_are_reported);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_update_and_delete_on_the_audit_trail() {
    let app = spawn_app(Backend::Sqlite).await;
    app.state.db.audit(&[entry(&app, "view")]).await.unwrap();
    link_now(&app).await;
    for statement in [
        "UPDATE audit_log SET outcome = 'denied'",
        "UPDATE audit_log SET hash = NULL, prev_hash = NULL, chain_seq = NULL",
        "DELETE FROM audit_log",
    ] {
        let refused = sql(&app, statement).await.unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{statement}: {refused}");
    }
    // A row not linked yet may not change either, except by being linked.
    sql(&app, "INSERT INTO audit_log (at, action, outcome) VALUES (1, 'view', 'ok')").await.unwrap();
    let seq: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(app.state.db.pool()).await.unwrap();
    let edit = format!(
        "UPDATE audit_log SET outcome = 'denied', chain_seq = 99, prev_hash = 'x', hash = 'y' WHERE seq = {seq}"
    );
    let refused = sql(&app, &edit).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    link_now(&app).await;
    let report = verify(&app).await;
    assert_eq!((report.broken, report.verified), (None, 2));
}
