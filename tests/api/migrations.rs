//! Several processes migrating one fresh database at once — a server starting
//! while an operator runs `consulta user create`, or two servers — must all
//! succeed and leave every migration applied exactly once.

use consulta::db::Db;

use crate::helpers::{Backend, EmptyDatabase};
use crate::on_both_backends;

async fn concurrent_migrations_all_succeed(backend: Backend) {
    let empty = EmptyDatabase::create(backend).await;
    // Separate pools, as separate processes would have.
    let mut dbs = Vec::new();
    for _ in 0..4 {
        dbs.push(Db::connect(&empty.url, empty.kind.clone()).await.unwrap());
    }
    let runs = dbs.iter().map(|db| db.migrate());
    let results = futures_util::future::join_all(runs).await;
    for (i, result) in results.iter().enumerate() {
        assert!(result.is_ok(), "migrator {i} failed: {result:?}");
    }
    let count = async |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(dbs[0].pool()).await.unwrap();
    let applied = count("SELECT COUNT(*) FROM _sqlx_migrations").await;
    let failed = count("SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success").await;
    let expected = std::fs::read_dir(format!(
        "{}/migrations/{}",
        env!("CARGO_MANIFEST_DIR"),
        if matches!(backend, Backend::MySql) { "mysql" } else { "sqlite" }
    ))
    .unwrap()
    .count();
    assert_eq!(applied, i64::try_from(expected).unwrap(), "every migration recorded once");
    assert_eq!(failed, 0, "no migration left partially applied");
}
on_both_backends!(concurrent_migrations_all_succeed);
