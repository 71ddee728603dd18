//! The SFU in a process of its own: the bench re-executes itself as `sfu-server` (hidden
//! subcommand) pinned with `taskset -c 0`, so that process holds only `consulta::sfu::Sfu` and
//! its CPU time and memory can be read from `/proc`.
//!
//! Signaling between the generator and that process is line-delimited JSON over the child's
//! stdin/stdout:
//! - request `{"req":n,"op":"join","client":k,"room":uuid,"name":s}` → `{"req":n,"pid":…}`
//! - request `{"req":n,"op":"signal","pid":…,"msg":ClientSignal}` → `{"req":n,"ok":bool}`
//! - request `{"req":n,"op":"stats"}` → `{"req":n,"stats":SfuStats}`
//! - unsolicited `{"client":k,"event":SfuEvent}` for every event of client `k`.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use consulta::sfu::{ClientSignal, Participant, ParticipantId, Sfu, SfuConfig, SfuEvent};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::{mpsc, oneshot};

/// Runs the SFU side until stdin closes. Called in the child process.
pub fn serve() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut config = SfuConfig::loopback();
        // Inside the bench's network namespace the media address is not loopback (see `netns`).
        if let Some(ip) = std::env::var("BENCH_MEDIA_ADDR").ok().and_then(|v| v.parse::<std::net::IpAddr>().ok()) {
            config.udp_bind = std::net::SocketAddr::new(ip, 0);
        }
        // `--sfu-max-bitrate` of the scenario: the REMB cap announced to publishers (0: none).
        if let Some(bps) = std::env::var("BENCH_SFU_MAX_BITRATE").ok().and_then(|v| v.parse().ok()) {
            config.max_bitrate_bps = bps;
        }
        let sfu = Sfu::start(config).await.expect("SFU start");
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            let mut stdout = tokio::io::stdout();
            while let Some(v) = out_rx.recv().await {
                let mut line = v.to_string();
                line.push('\n');
                if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                    break;
                }
            }
        });
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(request) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let (sfu, out) = (sfu.clone(), out_tx.clone());
            tokio::spawn(async move {
                let req = request["req"].clone();
                let reply = match request["op"].as_str() {
                    Some("join") => {
                        let client = request["client"].clone();
                        let room = request["room"].as_str().and_then(|r| r.parse().ok()).unwrap_or_default();
                        let who = Participant {
                            user_id: uuid::Uuid::new_v4(),
                            name: request["name"].as_str().unwrap_or("bench").to_owned(),
                            role: "patient".to_owned(),
                        };
                        let (tx, mut rx) = mpsc::channel::<SfuEvent>(256);
                        let events_out = out.clone();
                        tokio::spawn(async move {
                            while let Some(event) = rx.recv().await {
                                let _ = events_out.send(json!({"client": client, "event": event}));
                            }
                        });
                        match sfu.join(room, who, tx).await {
                            Ok(pid) => json!({"req": req, "pid": pid}),
                            Err(e) => json!({"req": req, "error": e.to_string()}),
                        }
                    }
                    Some("signal") => {
                        let pid = serde_json::from_value::<ParticipantId>(request["pid"].clone());
                        let msg = serde_json::from_value::<ClientSignal>(request["msg"].clone());
                        match (pid, msg) {
                            (Ok(pid), Ok(msg)) => match sfu.signal(pid, msg).await {
                                Ok(()) => json!({"req": req, "ok": true}),
                                Err(e) => json!({"req": req, "ok": false, "error": e.to_string()}),
                            },
                            _ => json!({"req": req, "ok": false, "error": "bad request"}),
                        }
                    }
                    Some("stats") => json!({"req": req, "stats": sfu.stats()}),
                    _ => json!({"req": req, "error": "unknown op"}),
                };
                let _ = out.send(reply);
            });
        }
        sfu.shutdown().await;
    });
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;
type Clients = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>>;

/// The generator's end of the link to the SFU process.
pub struct Link {
    tx: mpsc::UnboundedSender<String>,
    pending: Pending,
    clients: Clients,
    next: AtomicU64,
    child: Mutex<Option<tokio::process::Child>>,
    pub pid: u32,
}

impl Link {
    /// Starts `<this exe> sfu-server` under `nice -n <nice> taskset -c <cpus>`.
    pub fn spawn(cpus: &str, nice: i32, max_bitrate: Option<u32>) -> Arc<Link> {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = tokio::process::Command::new("nice")
            .args(["-n", &nice.to_string(), "taskset", "-c", cpus])
            .arg(exe)
            .arg("sfu-server")
            .env("RUST_LOG", "warn")
            .env("BENCH_SFU_MAX_BITRATE", max_bitrate.map(|b| b.to_string()).unwrap_or_default())
            .env("BENCH_MEDIA_ADDR", crate::netns::media_addr().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SFU process");
        let pid = child.id().unwrap_or(0);
        let mut stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(mut line) = rx.recv().await {
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let clients: Clients = Arc::default();
        {
            let (pending, clients) = (pending.clone(), clients.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    if let Some(req) = v["req"].as_u64() {
                        let waiter = pending.lock().ok().and_then(|mut p| p.remove(&req));
                        if let Some(w) = waiter {
                            let _ = w.send(v);
                        }
                    } else if let Some(client) = v["client"].as_u64() {
                        let sink = clients.lock().ok().and_then(|c| c.get(&client).cloned());
                        if let Some(sink) = sink {
                            let _ = sink.send(v["event"].clone());
                        }
                    }
                }
            });
        }
        Arc::new(Link { tx, pending, clients, next: AtomicU64::new(1), child: Mutex::new(Some(child)), pid })
    }

    async fn call(&self, mut request: Value) -> Value {
        let req = self.next.fetch_add(1, Ordering::Relaxed);
        request["req"] = json!(req);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(req, tx);
        }
        let _ = self.tx.send(request.to_string());
        rx.await.unwrap_or(Value::Null)
    }

    /// Joins `room`; events for this participant arrive on the returned receiver.
    pub async fn join(
        &self,
        room: uuid::Uuid,
        name: &str,
    ) -> Result<(ParticipantId, mpsc::UnboundedReceiver<Value>), String> {
        let client = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut c) = self.clients.lock() {
            c.insert(client, tx);
        }
        let reply = self.call(json!({"op": "join", "client": client, "room": room, "name": name})).await;
        let pid = serde_json::from_value(reply["pid"].clone()).map_err(|_| format!("join failed: {reply}"))?;
        Ok((pid, rx))
    }

    pub async fn signal(&self, pid: ParticipantId, msg: ClientSignal) {
        let _ = self.call(json!({"op": "signal", "pid": pid, "msg": msg})).await;
    }

    pub async fn stats(&self) -> Value {
        self.call(json!({"op": "stats"})).await["stats"].clone()
    }

    pub async fn stop(&self) {
        let child = self.child.lock().ok().and_then(|mut c| c.take());
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
    }
}
