//! The `consulta` binary itself: configuration errors, migrate, user create.

use std::process::Command;

fn consulta() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_consulta"));
    // Only what each test sets reaches the binary.
    for (name, _) in std::env::vars() {
        if name.starts_with("CONSULTA_") || name == "DATABASE_URL" {
            c.env_remove(name);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}

#[test]
fn an_unknown_variable_stops_start_up_naming_it() {
    let out = consulta().env("CONSULTA_BND", "127.0.0.1:1").arg("migrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CONSULTA_BND"));
}

#[test]
fn an_invalid_value_stops_start_up_naming_the_variable() {
    for (var, value) in [
        ("CONSULTA_BIND", "not-an-address"),
        ("DATABASE_URL", "postgress://x/y"),
        ("CONSULTA_JWT_SECRET", "short"),
        ("CONSULTA_TLS", "maybe"),
        ("CONSULTA_PUBLIC_URL", "ftp://x"),
        ("CONSULTA_MAIL_REMINDERS", "2w"),
    ] {
        let out = consulta().env(var, value).arg("migrate").output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(!stderr.contains("short") || var != "CONSULTA_JWT_SECRET", "the secret was echoed: {stderr}");
    }
}

#[test]
fn migrate_then_user_create_from_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/c.db", dir.path().display());
    let out = consulta().env("DATABASE_URL", &db).env("CONSULTA_DATA_DIR", dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let password_file = dir.path().join("pw");
    std::fs::write(&password_file, format!("{}\n", crate::helpers::STRONG_PASSWORD)).unwrap();
    let out = consulta()
        .env("DATABASE_URL", &db)
        .env("CONSULTA_BCRYPT_COST", "4")
        .args(["user", "create", "--role", "admin", "--email", "Root@Clinic.example", "--name", "Root"])
        .arg("--password-file")
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("root@clinic.example"));

    let out = consulta()
        .env("DATABASE_URL", &db)
        .env("CONSULTA_BCRYPT_COST", "4")
        .args(["user", "create", "--role", "doctor", "--email", "dr@clinic.example", "--name", "Dr"])
        .arg("--password-file")
        .arg(&password_file)
        .output();
    assert!(out.unwrap().status.success());

    let weak = dir.path().join("weak");
    std::fs::write(&weak, "password\n").unwrap();
    let out = consulta()
        .env("DATABASE_URL", &db)
        .args(["user", "create", "--role", "admin", "--email", "x@clinic.example", "--name", "X"])
        .arg("--password-file")
        .arg(&weak)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
}

#[tokio::test]
async fn demo_prints_logins_that_work_every_time_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/c.db", dir.path().display());
    let mut printed = Vec::new();
    for _ in 0..2 {
        let out = consulta().env("DATABASE_URL", &db).env("CONSULTA_BCRYPT_COST", "4").arg("demo").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let password_of = |email: &str| {
            stdout.lines().find(|l| l.contains(email)).and_then(|l| l.split_whitespace().last()).unwrap().to_owned()
        };
        printed.push((password_of("doctor@demo.consulta.test"), password_of("patient@demo.consulta.test")));
    }
    assert_ne!(printed[0], printed[1], "each run sets fresh passwords");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'doctor@demo.consulta.test'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(bcrypt::verify(&printed[1].0, &hash).unwrap(), "the last printed doctor password works");
    let rules: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM availability").fetch_one(&pool).await.unwrap();
    assert_eq!(rules, 1, "the demo doctor has availability");
}
