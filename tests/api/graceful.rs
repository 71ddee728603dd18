//! The `consulta` binary under signals: SIGTERM drains and exits 0 within
//! 10 s, closing sockets with 1001; `kill -9` right after a 201 loses
//! nothing.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{STRONG_PASSWORD, client_trusting, close_code, simple_availability};

fn consulta(dir: &Path, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_consulta"));
    for (name, _) in std::env::vars() {
        if name.starts_with("CONSULTA_") || name == "DATABASE_URL" {
            c.env_remove(name);
        }
    }
    c.env("RUST_LOG", "warn")
        .env("DATABASE_URL", format!("sqlite://{}/c.db", dir.display()))
        .env("CONSULTA_DATA_DIR", dir.join("data"))
        .env("CONSULTA_TLS_CERT", dir.join("certs/cert.pem"))
        .env("CONSULTA_TLS_KEY", dir.join("certs/key.pem"))
        .env("CONSULTA_BIND", format!("127.0.0.1:{port}"))
        .env("CONSULTA_PUBLIC_URL", format!("https://localhost:{port}"))
        .env("CONSULTA_RTC_UDP_PORT", "0")
        .env("CONSULTA_BCRYPT_COST", "4");
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn create_user(dir: &Path, role: &str, email: &str) {
    let pw = dir.join("pw");
    std::fs::write(&pw, format!("{STRONG_PASSWORD}\n")).unwrap();
    let out = consulta(dir, 1)
        .args(["user", "create", "--role", role, "--email", email, "--name", "Someone"])
        .arg("--password-file")
        .arg(&pw)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

struct Server {
    child: Child,
    client: reqwest::Client,
    base: String,
    addr: SocketAddr,
    cert: Vec<u8>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The child is waited for in `Server`'s `Drop`.
#[allow(clippy::zombie_processes)]
async fn start(dir: &Path, port: u16) -> Server {
    start_with(dir, port, None).await
}

/// `open_files`: the process's file-descriptor limit (`ulimit -n`).
#[allow(clippy::zombie_processes)]
async fn start_with(dir: &Path, port: u16, open_files: Option<u32>) -> Server {
    let mut command = match open_files {
        None => consulta(dir, port),
        Some(limit) => {
            let mut c = consulta(dir, port);
            let program = c.get_program().to_owned();
            let mut sh = Command::new("sh");
            sh.arg("-c").arg(format!("ulimit -n {limit} && exec \"$0\" serve")).arg(program);
            for (k, v) in c.get_envs() {
                match v {
                    Some(v) => sh.env(k, v),
                    None => sh.env_remove(k),
                };
            }
            c = sh;
            c
        }
    };
    if open_files.is_none() {
        command.arg("serve");
    }
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let cert_path = dir.join("certs/cert.pem");
    loop {
        if let Ok(cert) = std::fs::read(&cert_path) {
            let client = client_trusting(&cert, false);
            let base = format!("https://localhost:{port}");
            if client.get(format!("{base}/api/health")).send().await.is_ok_and(|r| r.status() == 200) {
                return Server { child, client, base, addr: ([127, 0, 0, 1], port).into(), cert };
            }
        }
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Server {
    async fn login(&self, email: &str) -> String {
        let r = self
            .client
            .post(format!("{}/api/auth/login", self.base))
            .json(&json!({"email": email, "password": STRONG_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([name, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; its exit code, or `None` after `within`.
    async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    async fn ws(&self, token: &str) -> crate::helpers::Ws {
        use rustls::pki_types::pem::PemObject as _;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from_pem_slice(&self.cert).unwrap()).unwrap();
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let tls = connector.connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        let mut request = format!("wss://localhost:{}/ws", self.addr.port()).into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        request.headers_mut().insert("origin", self.base.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::client_async(request, tls).await.unwrap();
        let hello = crate::helpers::next_json(&mut ws, Duration::from_secs(5)).await.unwrap();
        assert_eq!(hello["type"], "hello");
        ws
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_1001_and_exits_0_within_10_s() {
    consulta::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    create_user(dir.path(), "patient", "pat@example.org");
    let mut server = start(dir.path(), free_port()).await;
    let token = server.login("pat@example.org").await;
    let mut socket = server.ws(&token).await;

    let asked = Instant::now();
    server.signal("-TERM");
    assert_eq!(close_code(&mut socket, Duration::from_secs(10)).await, Some(1001));
    assert_eq!(server.exit_code(Duration::from_secs(10)).await, Some(0), "exit status");
    assert!(asked.elapsed() < Duration::from_secs(10), "took {:?}", asked.elapsed());
    // It no longer accepts.
    assert!(server.client.get(format!("{}/api/health", server.base)).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_a_201_loses_nothing() {
    consulta::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    create_user(dir.path(), "doctor", "doc@clinic.example");
    create_user(dir.path(), "patient", "pat@example.org");
    let port = free_port();
    let mut server = start(dir.path(), port).await;
    let doctor = server.login("doc@clinic.example").await;
    let r = server
        .client
        .put(format!("{}/api/doctors/me/availability", server.base))
        .bearer_auth(&doctor)
        .json(&simple_availability())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = server
        .client
        .get(format!("{}/api/me", server.base))
        .bearer_auth(&doctor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let doctor_id = me["id"].as_str().unwrap().to_owned();
    let patient = server.login("pat@example.org").await;
    let day = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive();
    let slots: Vec<Value> = server
        .client
        .get(format!("{}/api/doctors/{doctor_id}/slots?from={day}&to={day}", server.base))
        .bearer_auth(&patient)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = server
        .client
        .post(format!("{}/api/appointments", server.base))
        .bearer_auth(&patient)
        .json(&json!({"doctor_id": doctor_id, "start": slots[0]["start"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server.signal("-KILL");
    assert_eq!(server.exit_code(Duration::from_secs(5)).await, None, "killed by a signal has no code");
    assert!(server.child.try_wait().unwrap().is_some(), "the process is gone");
    let id = r.json::<Value>().await.unwrap()["appointment"]["id"].as_str().unwrap().to_owned();
    drop(server);

    let server = start(dir.path(), port).await;
    let patient = server.login("pat@example.org").await;
    let r =
        server.client.get(format!("{}/api/appointments/{id}", server.base)).bearer_auth(&patient).send().await.unwrap();
    assert_eq!(r.status(), 200, "the booking survived kill -9");
}

/// Reads until the server closes the connection; how long that took.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(mut stream: S, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt as _;
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt as _;
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    // A TLS handshake that never starts: cut after the handshake timeout.
    let silent = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // Slowloris: TLS done, then headers that never end.
    let slow = async {
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from_pem_slice(app.cert_pem()).unwrap()).unwrap();
        let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let mut tls =
            connector.connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        tls.write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
        tls.flush().await.unwrap();
        closed_within(tls, Duration::from_secs(20)).await
    };
    let (handshake, headers) = tokio::join!(closed_within(silent, Duration::from_secs(20)), slow);
    let handshake = handshake.expect("a silent connection is closed");
    let headers = headers.expect("a slowloris connection is closed");
    assert!(handshake >= Duration::from_secs(5) && handshake <= Duration::from_secs(15), "{handshake:?}");
    assert!(headers <= Duration::from_secs(15), "{headers:?}");
    // The server still serves everyone else.
    assert_eq!(app.client.get(app.url("/api/health")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_is_refused_not_a_crash() {
    consulta::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_with(dir.path(), free_port(), Some(96)).await;
    // Far more connections than the process may hold.
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Ok(Ok(c)) =
            tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(server.addr)).await
        {
            held.push(c);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.child.try_wait().unwrap(), None, "the server died");
    drop(held);
    // Once they are gone (the handshake timeout reaps the rest), it serves again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = server.client.get(format!("{}/api/health", server.base)).send().await.is_ok_and(|r| r.status() == 200);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.child.try_wait().unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish() {
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    consulta::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), free_port()).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(&server.cert).unwrap()).unwrap();
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut tls = connector.connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let body =
        json!({"email": "late@example.org", "password": STRONG_PASSWORD, "name": "Late Comer", "timezone": "UTC"})
            .to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let head = format!(
        "POST /api/auth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(first.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Half a body is in: the request is in flight when the signal comes.
    server.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    tls.write_all(rest.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(9), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(server.exit_code(Duration::from_secs(10)).await, Some(0));
}
