//! Migration 0006 on a database whose audit rows were chained the old way
//! (inside each request, `chain position = seq`), with a row from before
//! the chain: the old rows still verify, the pre-chain row is never linked,
//! and rows appended afterwards are linked after them.

use consulta::db::Db;
use consulta::db::audit_chain::{ChainedFields, GENESIS};

use crate::helpers::{Backend, EmptyDatabase};
use crate::on_both_backends;

/// A migrator over this backend's folder, cut to the migrations before `version`.
async fn migrator_before(backend: Backend, version: i64) -> sqlx::migrate::Migrator {
    let folder = match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::MySql => "migrations/mysql",
    };
    let mut migrator =
        sqlx::migrate::Migrator::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder)).await.unwrap();
    migrator.migrations = migrator.migrations.iter().filter(|m| m.version < version).cloned().collect();
    migrator
}

async fn old_rows_still_verify_after_migration_0006(backend: Backend) {
    let empty = EmptyDatabase::create(backend).await;
    let db = Db::connect(&empty.url, empty.kind).await.unwrap();
    // One row from before the chain existed (migration 0004 starts the chain after it)…
    migrator_before(backend, 4).await.run(db.pool()).await.unwrap();
    sqlx::query("INSERT INTO audit_log (seq, at, action, outcome) VALUES (1, 1700000000000, 'view', 'ok')")
        .execute(db.pool())
        .await
        .unwrap();
    migrator_before(backend, 6).await.run(db.pool()).await.unwrap();

    // … then three chained as migration 0004's code did it: seq = position.
    let mut prev = GENESIS.to_owned();
    for seq in 2..=4 {
        let fields = ChainedFields {
            chain_seq: seq,
            at: 1_700_000_000_000 + seq,
            user_id: None,
            role: None,
            action: "view".to_owned(),
            appointment_id: None,
            outcome: "ok".to_owned(),
            client_ip: Some("127.0.0.1".to_owned()),
            request_id: None,
        };
        let hash = fields.hash(&prev);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, action, outcome, client_ip, prev_hash, hash) VALUES (?, ?, 'view', 'ok', ?, ?, ?)",
        )
        .bind(seq)
        .bind(fields.at)
        .bind(fields.client_ip.as_deref())
        .bind(&prev)
        .bind(&hash)
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query("UPDATE audit_head SET last_seq = ?, last_hash = ? WHERE id = 1")
            .bind(seq)
            .bind(&hash)
            .execute(db.pool())
            .await
            .unwrap();
        prev = hash;
    }

    db.migrate().await.unwrap();
    let now = chrono::Utc::now();
    let grace = chrono::Duration::seconds(60);
    let report = db.verify_audit_chain(now, grace).await.unwrap();
    assert_eq!((report.broken, report.verified, report.before_chain, report.unchained.pending), (None, 3, 1, 0));

    let entry = consulta::db::audit::AuditEntry {
        at: now,
        user_id: None,
        role: None,
        action: "view",
        appointment_id: None,
        outcome: "ok",
        client_ip: None,
        request_id: None,
    };
    db.audit(&[entry.clone(), entry]).await.unwrap();
    assert_eq!(consulta::audit_chainer::drain(&db).await.unwrap(), 2);
    let report = db.verify_audit_chain(now, grace).await.unwrap();
    assert_eq!((report.broken, report.verified, report.before_chain, report.unchained.pending), (None, 5, 1, 0));
    db.close().await;
}
on_both_backends!(old_rows_still_verify_after_migration_0006);
