//! The tamper-evident audit trail: a hash chain that `consulta audit
//! verify` walks, and (on SQLite) triggers that refuse UPDATE and DELETE.

use std::process::Command;

use consulta::db::audit::AuditEntry;

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

/// `consulta audit verify` against the test's database.
fn verify_cli(app: &TestApp) -> std::process::Output {
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
        .output()
        .unwrap()
}

async fn booking_writes_a_chain_that_verifies(backend: Backend) {
    let app = spawn_app(backend).await;
    let doctor = app.doctor("doc@clinic.example").await;
    let patient = app.patient("pat@example.com").await;
    let start = app.slots(&patient.token, &doctor, 2).await[0].clone();
    let appointment = app.booked(&patient, &doctor, &start).await;
    let r = app.get_as(&patient.token, &format!("/api/appointments/{}", appointment["id"].as_str().unwrap())).await;
    assert_eq!(r.status(), 200);

    let report = app.state.db.verify_audit_chain().await.unwrap();
    assert_eq!(report.broken, None);
    assert!(report.verified >= 2, "{report:?}");
    let out = verify_cli(&app);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
}
on_both_backends!(booking_writes_a_chain_that_verifies);

async fn a_changed_row_is_reported_by_seq(backend: Backend) {
    let app = spawn_app(backend).await;
    for action in ["view", "create", "cancel", "view"] {
        app.state.db.audit(&[entry(&app, action)]).await.unwrap();
    }
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq").fetch_all(app.state.db.pool()).await.unwrap();
    assert_eq!(seqs.len(), 4);
    let target = seqs[2];
    if backend == Backend::Sqlite {
        sql(&app, "DROP TRIGGER audit_log_no_update").await.unwrap();
    }
    let changed = sql(&app, &format!("UPDATE audit_log SET outcome = 'denied' WHERE seq = {target}")).await.unwrap();
    assert_eq!(changed, 1);

    let report = app.state.db.verify_audit_chain().await.unwrap();
    assert_eq!(report.broken.map(|b| b.seq), Some(target));
    let out = verify_cli(&app);
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
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq").fetch_all(app.state.db.pool()).await.unwrap();
    if backend == Backend::Sqlite {
        sql(&app, "DROP TRIGGER audit_log_no_delete").await.unwrap();
    }
    sql(&app, &format!("DELETE FROM audit_log WHERE seq = {}", seqs[1])).await.unwrap();
    let report = app.state.db.verify_audit_chain().await.unwrap();
    assert_eq!(report.broken.map(|b| b.seq), Some(seqs[1]));

    // Dropping the newest row is caught by the chain's head.
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        app.state.db.audit(&[entry(&app, "view")]).await.unwrap();
    }
    if backend == Backend::Sqlite {
        sql(&app, "DROP TRIGGER audit_log_no_delete").await.unwrap();
    }
    sql(&app, "DELETE FROM audit_log WHERE seq = (SELECT m FROM (SELECT MAX(seq) AS m FROM audit_log) t)")
        .await
        .unwrap();
    let report = app.state.db.verify_audit_chain().await.unwrap();
    assert!(report.broken.is_some(), "{report:?}");
}
on_both_backends!(a_deleted_row_breaks_the_chain);

async fn concurrent_appends_do_not_fork_the_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let db = app.state.db.clone();
            let entries = vec![entry(&app, "view"), entry(&app, "view")];
            tokio::spawn(async move { db.audit(&entries).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let report = app.state.db.verify_audit_chain().await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.verified, 48);
}
on_both_backends!(concurrent_appends_do_not_fork_the_chain);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_update_and_delete_on_the_audit_trail() {
    let app = spawn_app(Backend::Sqlite).await;
    app.state.db.audit(&[entry(&app, "view")]).await.unwrap();
    let update = sql(&app, "UPDATE audit_log SET outcome = 'denied'").await.unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = sql(&app, "DELETE FROM audit_log").await.unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    assert_eq!(app.state.db.verify_audit_chain().await.unwrap().verified, 1);
}
