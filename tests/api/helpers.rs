//! `spawn_app()`: the real server on a random port over HTTPS, with a
//! fresh database per test (a temporary SQLite file, or a new MariaDB
//! database that is dropped afterwards).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use consulta::clock::Clock;
use consulta::config::{Settings, Toggle};
use consulta::startup::Application;
use consulta::state::AppState;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

pub const STRONG_PASSWORD: &str = "violet-harbour-tangent-42";

/// The server's address as the tests' browsers would see it.
pub const ORIGIN: &str = "https://localhost:8443";

pub fn mysql_base_url() -> String {
    std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned())
}

/// Whether the MySQL suite can run here; prints the reason once when it
/// cannot, and fails under `CI=true` where a skip is not allowed.
pub fn mysql_available() -> bool {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = AVAILABLE.get_or_init(|| {
        let url = url::Url::parse(&mysql_base_url()).map_err(|e| format!("TEST_MYSQL_URL is not a URL: {e}"))?;
        let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
        let port = url.port().unwrap_or(3306);
        let addr = format!("{host}:{port}");
        let reachable = std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .ok()
            .and_then(|mut addrs| addrs.next())
            .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok());
        if reachable {
            Ok(())
        } else {
            let reason = format!("no MySQL/MariaDB reachable at {addr} (set TEST_MYSQL_URL)");
            // Straight to stderr: the test harness captures print macros only.
            let _ = writeln!(std::io::stderr(), "SKIPPED: MySQL suite — {reason}");
            Err(reason)
        }
    });
    match result {
        Ok(()) => true,
        Err(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the MySQL suite cannot be skipped under CI=true: {reason}")
        }
        Err(_) => false,
    }
}

/// Runs a test body once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                if $crate::helpers::mysql_available() {
                    super::$name($crate::helpers::Backend::MySql).await;
                }
            }
        }
    };
}

/// A fresh MariaDB database, dropped when this value is.
pub struct MySqlDatabase {
    pub name: String,
}

impl MySqlDatabase {
    pub async fn create() -> Self {
        use sqlx::Connection as _;
        let name = format!("t_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::MySqlConnection::connect(&mysql_base_url()).await.expect("connect to MySQL");
        sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .await
            .expect("create test database");
        let _ = conn.close().await;
        Self { name }
    }
}

impl Drop for MySqlDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a thread of its own can block.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::MySqlConnection::connect(&mysql_base_url()).await {
                    let _ = sqlx::Executor::execute(
                        &mut conn,
                        sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")),
                    )
                    .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// A fresh, empty database on `backend` (no migrations run), gone when this value is dropped.
pub struct EmptyDatabase {
    pub url: String,
    pub kind: consulta::config::DatabaseKind,
    _dir: tempfile::TempDir,
    _mysql: Option<MySqlDatabase>,
}

impl EmptyDatabase {
    pub async fn create(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, kind, mysql) = match backend {
            Backend::Sqlite => {
                (format!("sqlite://{}/empty.db", dir.path().display()), consulta::config::DatabaseKind::Sqlite, None)
            }
            Backend::MySql => {
                let db = MySqlDatabase::create().await;
                let url = format!("{}/{}", mysql_base_url().trim_end_matches('/'), db.name);
                (url, consulta::config::DatabaseKind::MySql, Some(db))
            }
        };
        Self { url, kind, _dir: dir, _mysql: mysql }
    }
}

pub struct TestApp {
    #[allow(dead_code)]
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    #[allow(dead_code)]
    pub backend: Backend,
    #[allow(dead_code)]
    pub dir: PathBuf,
    /// The test's own database, for the CLI and direct SQL.
    #[allow(dead_code)]
    pub database_url: String,
    cert_pem: Vec<u8>,
    /// TOTP secrets of users enrolled through [`TestApp::enrol_2fa`], by email.
    totp_secrets: std::sync::Mutex<std::collections::HashMap<String, String>>,
    _tempdir: tempfile::TempDir,
    _mysql: Option<MySqlDatabase>,
}

pub struct Options {
    pub bcrypt_cost: u32,
    pub login_account_per_minute: u32,
    pub login_ip_per_minute: u32,
    /// Public URL `https://localhost:<the real port>` instead of [`ORIGIN`]:
    /// a browser sends the origin it really sees, which must pass the
    /// server's cross-site check.
    pub real_origin: bool,
    /// `None`: mail goes to `.eml` files under `dir/data/mail`.
    pub smtp_url: Option<String>,
    pub mail_reminders: String,
    /// `CONSULTA_ADMIN_2FA`; [`TestApp::admin`] enrols the admin when on.
    pub admin_2fa: bool,
    /// MySQL only: reach the database through this address (a test proxy)
    /// instead of the server's own.
    pub mysql_via: Option<SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bcrypt_cost: 4,
            login_account_per_minute: 1000,
            login_ip_per_minute: 1000,
            smtp_url: None,
            mail_reminders: "24h,1h".to_owned(),
            real_origin: false,
            admin_2fa: true,
            mysql_via: None,
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> TestApp {
    consulta::tls::install_crypto_provider();
    let tempdir = tempfile::tempdir().expect("temp dir");
    let dir = tempdir.path().to_path_buf();
    let (database_url, mysql) = match backend {
        Backend::Sqlite => (format!("sqlite://{}/consulta.db", dir.display()), None),
        Backend::MySql => {
            let db = MySqlDatabase::create().await;
            let mut base = url::Url::parse(&mysql_base_url()).expect("MySQL URL");
            if let Some(via) = options.mysql_via {
                base.set_ip_host(via.ip()).expect("host");
                base.set_port(Some(via.port())).expect("port");
            }
            (format!("{}/{}", base.as_str().trim_end_matches('/'), db.name), Some(db))
        }
    };
    // Bound first so the public URL can name the port when asked to.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let port = listener.local_addr().expect("bound address").port();
    let public_url = if options.real_origin { format!("https://localhost:{port}") } else { ORIGIN.to_owned() };
    let settings = Settings {
        database_url: Some(database_url.clone()),
        bind: "127.0.0.1:0".parse().expect("addr"),
        public_url,
        tls: Toggle::On,
        tls_cert: dir.join("certs/cert.pem"),
        tls_key: dir.join("certs/key.pem"),
        jwt_secret: None,
        smtp_url: options.smtp_url,
        mail_from: "Consulta <no-reply@localhost>".to_owned(),
        rtc_udp_port: 0,
        rtc_public_ip: None,
        rtc_loopback: consulta::config::AutoToggle::Auto,
        rtc_max_bitrate_kbps: 1500,
        ice_servers: "[]".to_owned(),
        data_dir: dir.join("data"),
        mail_retry_min_secs: 1,
        mail_reminders: options.mail_reminders,
        bcrypt_cost: options.bcrypt_cost,
        session_idle_minutes: 30,
        session_max_hours: 12,
        login_ip_per_minute: options.login_ip_per_minute,
        login_account_per_minute: options.login_account_per_minute,
        trust_proxy: Toggle::Off,
        admin_2fa: if options.admin_2fa { Toggle::On } else { Toggle::Off },
    };
    let config = settings.validate().expect("valid test settings");
    let app = Application::build_on(config, Clock::system(), listener).await.expect("build app");
    let addr = app.local_addr();
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let cert_pem = std::fs::read(dir.join("certs/cert.pem")).expect("generated certificate");
    let client = client_trusting(&cert_pem, false);
    TestApp {
        addr,
        base: format!("https://localhost:{}", addr.port()),
        client,
        state,
        backend,
        dir,
        database_url,
        cert_pem,
        totp_secrets: Default::default(),
        _tempdir: tempdir,
        _mysql: mysql,
    }
}

/// A client that trusts only the server's generated certificate and
/// resolves `localhost` to the loopback address.
pub fn client_trusting(cert_pem: &[u8], cookies: bool) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(cert_pem).expect("certificate PEM");
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub struct Session {
    pub token: String,
    pub user: Value,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A client with a cookie jar, as a browser would be.
    pub fn browser(&self) -> reqwest::Client {
        client_trusting(&self.cert_pem, true)
    }

    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    pub async fn post_json_as(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("request")
    }

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request")
    }

    pub async fn register(&self, email: &str, name: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/register",
            &json!({"email": email, "password": STRONG_PASSWORD, "name": name, "timezone": "Europe/Berlin"}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json("/api/auth/login", &json!({"email": email, "password": password})).await
    }

    /// Registers a patient and signs in.
    pub async fn patient(&self, email: &str) -> Session {
        let r = self.register(email, "Pat Patient").await;
        assert_eq!(r.status(), 201, "register {email}");
        self.session(email).await
    }

    pub async fn session(&self, email: &str) -> Session {
        let r = self.login(email, STRONG_PASSWORD).await;
        assert_eq!(r.status(), 200, "login {email}");
        let mut body: Value = r.json().await.expect("login body");
        if body["second_factor_required"] == true {
            body = self.second_step(email, body["challenge"].as_str().expect("challenge")).await;
        }
        Session { token: body["token"].as_str().expect("token").to_owned(), user: body["user"].clone() }
    }

    /// Creates an account of any role directly (the way `consulta user create` does).
    pub async fn create_user(&self, role: &str, email: &str, name: &str) -> Session {
        let input = consulta::accounts::AccountInput {
            email: email.to_owned(),
            password: STRONG_PASSWORD.to_owned(),
            name: name.to_owned(),
            timezone: "Europe/Berlin".to_owned(),
        };
        let account = input.parse(role.parse().expect("role")).expect("valid account");
        consulta::accounts::create_account(&self.state.db, &self.state.hasher, &account, self.state.clock.now())
            .await
            .expect("create account");
        self.session(email).await
    }

    /// An admin, enrolled in two-factor sign-in when the app requires it.
    pub async fn admin(&self) -> Session {
        let admin = self.create_user("admin", "admin@clinic.example", "Ada Admin").await;
        if self.state.config.admin_2fa {
            self.enrol_2fa(&admin).await;
        }
        admin
    }

    /// Turns on TOTP for the session's user; returns the secret and the recovery codes.
    pub async fn enrol_2fa(&self, session: &Session) -> (String, Vec<String>) {
        let r = self.post_json_as(&session.token, "/api/me/2fa/setup", &json!({})).await;
        assert_eq!(r.status(), 200, "2fa setup");
        let setup: Value = r.json().await.expect("setup body");
        let secret = setup["secret"].as_str().expect("secret").to_owned();
        let code = self.totp_code(&secret, 0);
        let r = self.post_json_as(&session.token, "/api/me/2fa/enable", &json!({"code": code})).await;
        assert_eq!(r.status(), 200, "2fa enable");
        let body: Value = r.json().await.expect("enable body");
        let codes = body["recovery_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        let mut secrets = self.totp_secrets.lock().expect("lock");
        secrets.insert(session.user["email"].as_str().expect("email").to_owned(), secret.clone());
        (secret, codes)
    }

    /// The TOTP code at the app clock's time, `steps` windows later.
    pub fn totp_code(&self, secret: &str, steps: i64) -> String {
        let at = self.state.clock.now().timestamp() + steps * 30;
        consulta::auth::second_factor::code_at(secret, u64::try_from(at).expect("time")).expect("code")
    }

    /// Completes a sign-in's second step with a fresh code (the next
    /// window's if this one's was already used).
    async fn second_step(&self, email: &str, challenge: &str) -> Value {
        let secret = self.totp_secrets.lock().expect("lock").get(email).cloned().expect("enrolled by enrol_2fa");
        for steps in [0, 1] {
            let code = self.totp_code(&secret, steps);
            let r = self.post_json("/api/auth/login/2fa", &json!({"challenge": challenge, "code": code})).await;
            if r.status() == 200 {
                return r.json().await.expect("login body");
            }
        }
        panic!("second factor refused for {email}");
    }
}

/// Asserts a problem+json response and returns its body.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string(), "{body}");
    body
}

/// Open every day 08:00–18:00 UTC in 30-minute slots, no notice period.
pub fn simple_availability() -> Value {
    json!({
        "timezone": "UTC",
        "slot_minutes": 30,
        "weekly": (1..=7).map(|d| json!({"weekday": d, "start": "08:00", "end": "18:00"})).collect::<Vec<_>>(),
        "min_notice_minutes": 0,
        "horizon_days": 60
    })
}

impl TestApp {
    pub async fn put_json_as(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client.put(self.url(path)).bearer_auth(token).json(body).send().await.expect("request")
    }

    /// A doctor with [`simple_availability`].
    pub async fn doctor(&self, email: &str) -> Session {
        self.doctor_with(email, &simple_availability()).await
    }

    pub async fn doctor_with(&self, email: &str, availability: &Value) -> Session {
        let doctor = self.create_user("doctor", email, "Dr. Dolittle").await;
        let r = self.put_json_as(&doctor.token, "/api/doctors/me/availability", availability).await;
        assert_eq!(r.status(), 200, "availability: {}", r.text().await.unwrap_or_default());
        doctor
    }

    /// Moves the server's clock; sessions idle past their timeout by the
    /// jump, so this signs `sessions` in again.
    pub async fn travel(&self, by: chrono::Duration, sessions: &mut [&mut Session]) {
        self.state.clock.advance(by);
        for session in sessions.iter_mut() {
            let email = session.user["email"].as_str().expect("email").to_owned();
            **session = self.session(&email).await;
        }
    }

    pub fn id(session: &Session) -> String {
        session.user["id"].as_str().expect("user id").to_owned()
    }

    /// Free slot starts of a doctor, `days_ahead` days from today (UTC) on.
    pub async fn slots(&self, token: &str, doctor: &Session, days_ahead: i64) -> Vec<String> {
        let day = (chrono::Utc::now() + chrono::Duration::days(days_ahead)).date_naive();
        let path = format!("/api/doctors/{}/slots?from={day}&to={day}", Self::id(doctor));
        let r = self.get_as(token, &path).await;
        assert_eq!(r.status(), 200);
        let slots: Vec<Value> = r.json().await.expect("slots");
        slots.iter().map(|s| s["start"].as_str().expect("start").to_owned()).collect()
    }

    pub async fn book(&self, patient: &Session, doctor: &Session, start: &str) -> reqwest::Response {
        self.post_json_as(
            &patient.token,
            "/api/appointments",
            &json!({"doctor_id": Self::id(doctor), "start": start, "reason": "check-up"}),
        )
        .await
    }

    /// Books and returns the appointment.
    pub async fn booked(&self, patient: &Session, doctor: &Session, start: &str) -> Value {
        let r = self.book(patient, doctor, start).await;
        assert_eq!(r.status(), 201, "booking {start}");
        let body: Value = r.json().await.expect("appointment");
        body["appointment"].clone()
    }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

impl TestApp {
    /// Opens `/ws` over TLS as a browser would, optionally with a token and an `Origin`.
    pub async fn ws(
        &self,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        use rustls::pki_types::pem::PemObject as _;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut roots = rustls::RootCertStore::empty();
        let cert = rustls::pki_types::CertificateDer::from_pem_slice(&self.cert_pem).expect("certificate");
        roots.add(cert).expect("root");
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr).await.expect("tcp connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let tls = connector.connect(name, tcp).await.expect("tls");
        let mut request = format!("wss://localhost:{}/ws", self.addr.port()).into_client_request()?;
        if let Some(token) = token {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
        }
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().expect("header"));
        }
        let (ws, _) = tokio_tungstenite::client_async(request, tls).await?;
        Ok(ws)
    }

    /// A signed-in socket, past its `hello`.
    pub async fn ws_signed_in(&self, session: &Session) -> Ws {
        let mut ws = self.ws(Some(&session.token), Some(ORIGIN)).await.expect("socket");
        let hello = next_json(&mut ws, std::time::Duration::from_secs(5)).await.expect("hello");
        assert_eq!(hello["type"], "hello");
        ws
    }
}

/// The next JSON text frame, skipping control frames; `None` on timeout or close.
pub async fn next_json(ws: &mut Ws, within: std::time::Duration) -> Option<Value> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The close code the server ends the socket with, within `within`.
pub async fn close_code(ws: &mut Ws, within: std::time::Duration) -> Option<u16> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
        }
    }
}
