//! With the database unreachable the API answers 503 problem+json within
//! 5 s, and recovers by itself when the database returns. A TCP proxy
//! between the app and MariaDB plays the outage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::helpers::{Backend, Options, mysql_available, mysql_base_url, problem, spawn_app_with};

/// Forwards to MariaDB while up; when cut, drops every open connection and
/// every new one at once.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (flag, cuts) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { addr, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_down_the_api_answers_503_and_recovers() {
    if !mysql_available() {
        return;
    }
    let base = url::Url::parse(&mysql_base_url()).unwrap();
    let target: SocketAddr = format!("{}:{}", base.host_str().unwrap(), base.port().unwrap_or(3306)).parse().unwrap();
    let proxy = Proxy::start(target).await;
    let app = spawn_app_with(Backend::MySql, Options { mysql_via: Some(proxy.addr), ..Options::default() }).await;
    let patient = app.patient("pat@example.org").await;
    assert_eq!(app.get_as(&patient.token, "/api/me").await.status(), 200);

    proxy.down();
    for _ in 0..3 {
        let asked = Instant::now();
        problem(app.get_as(&patient.token, "/api/me").await, 503).await;
        assert!(asked.elapsed() <= Duration::from_secs(5), "503 took {:?}", asked.elapsed());
    }

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = app.get_as(&patient.token, "/api/me").await.status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
