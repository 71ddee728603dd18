//! The database: backend choice, pool, migrations and one repository per
//! table group. The only module that contains SQL.
//!
//! The same SQL runs on SQLite and MySQL/MariaDB through sqlx's `Any`
//! driver, so columns keep to what both read alike: integers (times are
//! epoch milliseconds, booleans 0/1), text and UUIDs as text.

pub mod appointments;
pub mod audit;
pub mod audit_chain;
pub mod audit_verify;
pub mod outbox;
pub mod password_resets;
pub mod second_factor;
pub mod sessions;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::MigrateError;
use sqlx::{AnyPool, Executor};

use crate::config::DatabaseKind;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused the write.
    #[error("the row conflicts with an existing one")]
    Conflict,
    /// The database cannot be reached right now.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database error")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                DbError::Unavailable(e)
            }
            _ => DbError::Other(e),
        }
    }
}

impl DbError {
    /// Deadlocks, lock-wait timeouts and SQLite's busy codes: the whole
    /// transaction may succeed when run again.
    pub fn is_retryable(&self) -> bool {
        let DbError::Other(sqlx::Error::Database(db)) = self else {
            return false;
        };
        if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            return matches!(my.number(), 1213 | 1205 | 1020);
        }
        matches!(db.code().as_deref(), Some("40001" | "5" | "517" | "6" | "261"))
    }
}

/// A pool on one backend, with the SQL dialect details that differ.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    kind: DatabaseKind,
    /// SQLite only: the file whose lock serialises migrations between processes.
    migration_lock: Option<PathBuf>,
}

impl Db {
    /// Connects, creating the SQLite file (and its folder) when missing.
    pub async fn connect(url: &str, kind: DatabaseKind) -> Result<Self, DbError> {
        install_default_drivers();
        let (url, migration_lock) = match kind {
            DatabaseKind::Sqlite => {
                let url = prepare_sqlite_url(url)?;
                let lock = sqlite_path(&url).map(|p| PathBuf::from(format!("{p}-migrations.lock")));
                (url, lock)
            }
            DatabaseKind::MySql => (url.to_owned(), None),
        };
        let max = match kind {
            // SQLite takes one writer at a time; more connections only help readers.
            DatabaseKind::Sqlite => 8,
            DatabaseKind::MySql => 32,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    let setup: &[&str] = if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        &[
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA synchronous = FULL",
                        ]
                    } else {
                        // Strict mode turns over-long strings and bad values into
                        // errors instead of silent truncation.
                        &[
                            "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
                            "SET SESSION time_zone = '+00:00'",
                            // Every check runs after the locks are taken (see `scheduling`);
                            // READ COMMITTED makes those reads see the latest commits.
                            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                        ]
                    };
                    for statement in setup {
                        conn.execute(*statement).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Self { pool, kind, migration_lock })
    }

    pub fn kind(&self) -> &DatabaseKind {
        &self.kind
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies the migrations of this backend that have not run yet. Safe when
    /// several processes do it at once (a server starting while an operator runs
    /// `consulta user create`, two servers): they take turns.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        match self.kind {
            DatabaseKind::Sqlite => {
                // sqlx takes no lock on SQLite, so two processes would both apply the
                // next migration and one would fail. SQLite is always on this host:
                // a lock file beside the database serialises them.
                let _held = match &self.migration_lock {
                    Some(path) => Some(lock_file(path.clone()).await?),
                    None => None,
                };
                sqlx::migrate!("./migrations/sqlite").run(&self.pool).await
            }
            DatabaseKind::MySql => {
                // sqlx's own lock is `GET_LOCK(name, -1)`, which MariaDB answers with
                // NULL at once (a negative timeout is not "forever" there): a second
                // process would see the first one's migration half applied ("dirty").
                // Our own lock, per database, on the connection that migrates.
                let mut conn = self.pool.acquire().await?;
                let got: Option<i64> =
                    sqlx::query_scalar("SELECT GET_LOCK(CONCAT('consulta_migrate_', DATABASE()), 600)")
                        .fetch_one(&mut *conn)
                        .await?;
                if got != Some(1) {
                    return Err(MigrateError::Execute(sqlx::Error::Protocol(
                        "another process held the migration lock for 10 minutes".to_owned(),
                    )));
                }
                let result = sqlx::migrate!("./migrations/mysql").run(&mut *conn).await;
                let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('consulta_migrate_', DATABASE()))")
                    .execute(&mut *conn)
                    .await;
                result
            }
        }
    }

    /// A transaction that will write: on SQLite it takes the write lock at
    /// once, so it waits in `busy_timeout` instead of failing on upgrade.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, DbError> {
        let tx = match self.kind {
            DatabaseKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            DatabaseKind::MySql => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Whether the database answers (for health checks).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn prepare_sqlite_url(url: &str) -> Result<String, DbError> {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:"
        && let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Unavailable(sqlx::Error::Io(e)))?;
    }
    let mode = if query.contains("mode=") { "" } else { "mode=rwc" };
    let joined = [query, mode].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("&");
    Ok(format!("sqlite://{path}?{joined}"))
}

/// The file path of a prepared SQLite URL; `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.trim_start_matches("sqlite://");
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    (path != ":memory:" && !path.is_empty()).then_some(path)
}

/// Opens `path` and takes its exclusive lock (waiting for another process to
/// release it); the lock goes with the returned file.
async fn lock_file(path: PathBuf) -> Result<std::fs::File, MigrateError> {
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(std::io::Error::other);
    match locked {
        Ok(Ok(file)) => Ok(file),
        Ok(Err(e)) | Err(e) => Err(MigrateError::Execute(sqlx::Error::Io(e))),
    }
}

pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> Result<DateTime<Utc>, DbError> {
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| DbError::Corrupt(format!("timestamp {ms} is out of range")))
}
