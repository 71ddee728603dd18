//! `hub`: server memory per idle authenticated socket, and the latency from
//! a booking's commit to its push on the patient's open dashboard.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::server::{Server, ServerOptions};
use crate::setup;
use crate::stats::{histogram, progress, record, summary};

pub struct Args {
    pub sockets: usize,
    pub dashboards: usize,
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn open_socket(server: &Server, connector: &tokio_rustls::TlsConnector, token: &str) -> Option<Ws> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.ok()?;
    let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
    let tls = connector.connect(name, tcp).await.ok()?;
    let mut request = format!("wss://localhost:{}/ws", server.port).into_client_request().ok()?;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().ok()?);
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls).await.ok()?;
    // Wait for `hello`, so the server has fully set the socket up.
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        Ok(Some(Ok(Message::Text(_)))) => Some(ws),
        _ => None,
    }
}

fn connector(server: &Server) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    if let Ok(cert) = rustls::pki_types::CertificateDer::from_pem_slice(&server.cert_pem) {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

pub async fn run(args: Args) -> Value {
    let server = Server::start(ServerOptions::default());
    let database_url = format!("sqlite://{}/bench.db", server.dir.path().display());
    let client = server.client();
    let connector = connector(&server);
    // The hub allows 16 sockets per user; 10 per patient keeps under it.
    let users = args.sockets.div_ceil(10).max(args.dashboards);
    progress(format!("setting up {users} patients"));
    let admin = setup::admin(&server, &client, &database_url).await;
    let doctors = setup::doctors(&server, &client, &admin, 8).await;
    let patients = setup::patients(&server, &client, users).await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server.rss_bytes();
    progress(format!("opening {} idle sockets (server RSS before: {} MiB)", args.sockets, before / 1024 / 1024));
    let sockets: Vec<Ws> = futures_util::stream::iter(0..args.sockets)
        .map(|i| {
            let token = patients[i / 10].token.clone();
            let (server, connector) = (&server, &connector);
            async move { open_socket(server, connector, &token).await }
        })
        .buffer_unordered(64)
        .filter_map(|ws| async move { ws })
        .collect()
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.rss_bytes();
    let opened = sockets.len();
    let per_socket = after.saturating_sub(before) as f64 / opened.max(1) as f64;
    progress(format!(
        "  {opened} sockets open; server RSS {} MiB; {:.1} KiB per socket",
        after / 1024 / 1024,
        per_socket / 1024.0
    ));
    drop(sockets);
    tokio::time::sleep(Duration::from_secs(2)).await;

    progress(format!("push latency: {} dashboards, one booking each", args.dashboards));
    let mut dashboards = Vec::new();
    for patient in &patients[..args.dashboards] {
        if let Some(ws) = open_socket(&server, &connector, &patient.token).await {
            dashboards.push(ws);
        }
    }
    let listeners: Vec<_> = dashboards
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(120);
                while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline.into(), ws.next()).await {
                    if let Message::Text(text) = message {
                        let received = chrono::Utc::now();
                        let value: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                        if value["type"] == "appointment.created" {
                            let committed: Option<chrono::DateTime<chrono::Utc>> =
                                value["committed_at"].as_str().and_then(|t| t.parse().ok());
                            return committed.map(|c| (received - c).to_std().unwrap_or_default());
                        }
                    }
                }
                None
            })
        })
        .collect();
    let day_one =
        (chrono::Utc::now() + chrono::Duration::days(1)).date_naive().and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let day_one = day_one.unwrap_or_else(chrono::Utc::now);
    let booked = futures_util::stream::iter(patients[..args.dashboards].iter().enumerate())
        .map(|(i, patient)| {
            let client = client.clone();
            let base = server.base();
            let doctor = doctors[i % doctors.len()].id.clone();
            let start = day_one + chrono::Duration::minutes(5 * i64::try_from(i / doctors.len()).unwrap_or(0));
            async move {
                client
                    .post(format!("{base}/api/appointments"))
                    .bearer_auth(&patient.token)
                    .json(&json!({"doctor_id": doctor, "start": start.to_rfc3339()}))
                    .send()
                    .await
                    .map(|r| r.status() == 201)
                    .unwrap_or(false)
            }
        })
        .buffer_unordered(8)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let mut h = histogram();
    for listener in listeners {
        if let Ok(Some(latency)) = listener.await {
            record(&mut h, latency);
        }
    }
    let push = summary(&h);
    progress(format!("  {booked} bookings; push p50 {} ms, p99 {} ms", push["p50_ms"], push["p99_ms"]));
    json!({
        "scenario": "hub",
        "idle_sockets": opened,
        "server_rss_before_bytes": before,
        "server_rss_after_bytes": after,
        "bytes_per_idle_socket": per_socket.round(),
        "push_latency_commit_to_receipt": push,
        "note": "latency is measured from the push's committed_at (wall clock right after the booking transaction committed) to receipt on the socket; same host clock",
    })
}
