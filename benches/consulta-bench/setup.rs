//! Accounts and availability for a benchmark, made through the real API.

use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::server::Server;

pub const PASSWORD: &str = "violet-harbour-tangent-42";

#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub token: String,
}

/// Creates the first admin with the CLI, as an operator would.
pub async fn admin(server: &Server, client: &reqwest::Client, database_url: &str) -> Account {
    let password_file = server.dir.path().join("admin.pw");
    std::fs::write(&password_file, PASSWORD).expect("password file");
    // The server may still be applying migrations when it starts listening (MariaDB DDL is slow);
    // the CLI then sees a migration in progress ("partially applied"), so retry for a while.
    let mut attempts = 0;
    loop {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_consulta"))
            .args(["user", "create", "--role", "admin", "--email", "admin@bench.example", "--name", "Bench Admin"])
            .arg("--password-file")
            .arg(&password_file)
            .env("DATABASE_URL", database_url)
            .env("CONSULTA_BCRYPT_COST", "4")
            .env("CONSULTA_DATA_DIR", server.dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("consulta user create");
        attempts += 1;
        if status.success() {
            break;
        }
        assert!(attempts < 30, "creating the admin failed");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    login(server, client, "admin@bench.example").await
}

pub async fn login(server: &Server, client: &reqwest::Client, email: &str) -> Account {
    let r = client
        .post(format!("{}/api/auth/login", server.base()))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "login {email}");
    let body: Value = r.json().await.expect("login body");
    Account {
        id: body["user"]["id"].as_str().unwrap_or_default().to_owned(),
        token: body["token"].as_str().unwrap_or_default().to_owned(),
    }
}

/// `n` doctors open around the clock in 5-minute slots, bookable from now for a year.
pub async fn doctors(server: &Server, client: &reqwest::Client, admin: &Account, n: usize) -> Vec<Account> {
    let availability = json!({
        "timezone": "UTC", "slot_minutes": 5,
        "weekly": (1..=7).map(|d| json!({"weekday": d, "start": "00:00", "end": "24:00"})).collect::<Vec<_>>(),
        "min_notice_minutes": 0, "horizon_days": 366
    });
    futures_util::stream::iter(0..n)
        .map(|i| {
            let availability = availability.clone();
            async move {
                let email = format!("doctor{i}@bench.example");
                let r = client
                    .post(format!("{}/api/admin/users", server.base()))
                    .bearer_auth(&admin.token)
                    .json(&json!({"email": email, "name": format!("Dr. Bench {i}"), "role": "doctor",
                                  "password": PASSWORD, "timezone": "UTC"}))
                    .send()
                    .await
                    .expect("create doctor");
                assert_eq!(r.status(), 201, "create doctor {i}");
                let doctor = login(server, client, &email).await;
                let r = client
                    .put(format!("{}/api/doctors/me/availability", server.base()))
                    .bearer_auth(&doctor.token)
                    .json(&availability)
                    .send()
                    .await
                    .expect("availability");
                assert_eq!(r.status(), 200, "availability {i}");
                doctor
            }
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await
}

/// `n` registered and signed-in patients.
pub async fn patients(server: &Server, client: &reqwest::Client, n: usize) -> Vec<Account> {
    futures_util::stream::iter(0..n)
        .map(|i| async move {
            let email = format!("patient{i}@bench.example");
            let r = client
                .post(format!("{}/api/auth/register", server.base()))
                .json(&json!({"email": email, "password": PASSWORD, "name": format!("Patient {i}"), "timezone": "UTC"}))
                .send()
                .await
                .expect("register");
            assert_eq!(r.status(), 201, "register patient {i}");
            login(server, client, &email).await
        })
        .buffered(16)
        .collect()
        .await
}

/// A fresh MariaDB database for one run, dropped afterwards.
pub struct MySqlDatabase {
    pub url: String,
    base: String,
    name: String,
}

impl MySqlDatabase {
    pub async fn create(base: &str) -> MySqlDatabase {
        use sqlx::Connection as _;
        let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::MySqlConnection::connect(base).await.expect("connect to MariaDB");
        sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .await
            .expect("create database");
        let _ = conn.close().await;
        MySqlDatabase { url: format!("{}/{name}", base.trim_end_matches('/')), base: base.to_owned(), name }
    }

    pub async fn drop_now(self) {
        use sqlx::Connection as _;
        if let Ok(mut conn) = sqlx::MySqlConnection::connect(&self.base).await {
            let _ = sqlx::Executor::execute(
                &mut conn,
                sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{}`", self.name)),
            )
            .await;
            let _ = conn.close().await;
        }
    }
}
