//! Janus (Debian package `janus`) with only its VideoRoom plugin and HTTP transport, started by
//! the bench with its own config on 127.0.0.1 and driven through its HTTP JSON API, so the
//! `sfu` scenario can put the same generator through it.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::oneshot;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};

use crate::rtc_peer::{self, Held, Meter, Res};

const LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";

pub struct Janus {
    child: Mutex<Child>,
    _dir: tempfile::TempDir,
    base: String,
    http: reqwest::Client,
    session: u64,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>,
    next: AtomicU64,
    poller: tokio::task::JoinHandle<()>,
    /// Feed ids of the publishers, by generator tag.
    feeds: Mutex<HashMap<u64, u64>>,
}

fn write_config(dir: &std::path::Path, port: u16) -> std::io::Result<()> {
    let cfg = dir.display();
    let media = crate::netns::media_addr();
    std::fs::write(
        dir.join("janus.jcfg"),
        format!(
            r#"general: {{
  configs_folder = "{cfg}"
  plugins_folder = "{LIB}/plugins"
  transports_folder = "{LIB}/transports"
  events_folder = "{LIB}/events"
  loggers_folder = "{LIB}/loggers"
  debug_level = 4
  session_timeout = 600
}}
media: {{
  rtp_port_range = "41000-41999"
}}
nat: {{
  ice_lite = true
  ice_tcp = false
  full_trickle = false
  ice_enforce_list = "{media}"
  ignore_mdns = true
}}
plugins: {{
  disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
}}
transports: {{
  disable = "libjanus_websockets.so,libjanus_pfunix.so,libjanus_mqtt.so,libjanus_rabbitmq.so,libjanus_nanomsg.so"
}}
events: {{ broadcast = false }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
"#
        ),
    )?;
    std::fs::write(
        dir.join("janus.transport.http.jcfg"),
        format!(
            "general: {{\n  json = \"compact\"\n  base_path = \"/janus\"\n  http = true\n  port = {port}\n  ip = \"127.0.0.1\"\n  https = false\n}}\nadmin: {{ admin_http = false }}\n"
        ),
    )?;
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")
}

impl Janus {
    pub async fn start(cpus: &str, nice: i32) -> Res<Janus> {
        if Command::new("janus").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            return Err("the `janus` binary is not installed (apt-get install -y janus)".into());
        }
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        write_config(dir.path(), port)?;
        // Janus's own log, kept for inspection next to the JSON summaries.
        let log_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
        std::fs::create_dir_all(&log_dir)?;
        let log = std::fs::File::create(log_dir.join("janus.log"))?;
        let child = Command::new("nice")
            .args(["-n", &nice.to_string(), "taskset", "-c", cpus, "janus", "-F"])
            .arg(dir.path())
            .arg("-C")
            .arg(dir.path().join("janus.jcfg"))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
        let base = format!("http://127.0.0.1:{port}/janus");
        let deadline = Instant::now() + Duration::from_secs(20);
        let session = loop {
            let r = http.post(&base).json(&json!({"janus": "create", "transaction": "s"})).send().await;
            if let Ok(r) = r
                && let Ok(v) = r.json::<Value>().await
                && let Some(id) = v["data"]["id"].as_u64()
            {
                break id;
            }
            if Instant::now() > deadline {
                return Err("janus did not answer on its HTTP API within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>> = Arc::default();
        let poller = {
            let (http, url, pending) = (http.clone(), format!("{base}/{session}?maxev=50"), pending.clone());
            tokio::spawn(async move {
                loop {
                    let Ok(r) = http.get(&url).send().await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let v: Value = r.json().await.unwrap_or_default();
                    let events = match v {
                        Value::Array(a) => a,
                        other => vec![other],
                    };
                    for e in events {
                        if e["janus"] == "event"
                            && let Some(t) = e["transaction"].as_str()
                        {
                            let waiter = pending.lock().ok().and_then(|mut p| p.remove(t));
                            if let Some(w) = waiter {
                                let _ = w.send(e);
                            }
                        }
                    }
                }
            })
        };
        Ok(Janus {
            child: Mutex::new(child),
            _dir: dir,
            base,
            http,
            session,
            pending,
            next: AtomicU64::new(1),
            poller,
            feeds: Mutex::default(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().map(|c| c.id()).unwrap_or(0)
    }

    fn transaction(&self) -> String {
        format!("t{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    async fn post(&self, path: &str, body: Value) -> Res<Value> {
        let r = self.http.post(format!("{}{path}", self.base)).json(&body).send().await?;
        Ok(r.json().await?)
    }

    async fn attach(&self) -> Res<u64> {
        let v = self
            .post(
                &format!("/{}", self.session),
                json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": self.transaction()}),
            )
            .await?;
        v["data"]["id"].as_u64().ok_or_else(|| format!("attach failed: {v}").into())
    }

    /// A VideoRoom request; waits for the asynchronous event when Janus acks it.
    async fn message(&self, handle: u64, body: Value, jsep: Option<Value>) -> Res<Value> {
        let t = self.transaction();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(t.clone(), tx);
        }
        let mut msg = json!({"janus": "message", "transaction": t, "body": body});
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        let v = self.post(&format!("/{}/{handle}", self.session), msg).await?;
        if v["janus"] == "ack" {
            let e = tokio::time::timeout(Duration::from_secs(20), rx).await.map_err(|_| "janus event timed out")??;
            return Ok(e);
        }
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&t);
        }
        Ok(v)
    }

    fn trickler(&self, handle: u64) -> (rtc_peer::CandidateSink, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RTCIceCandidateInit>();
        let (http, url, session) =
            (self.http.clone(), format!("{}/{}/{handle}", self.base, self.session), self.session);
        let task = tokio::spawn(async move {
            let _ = session;
            let mut n = 0u64;
            while let Some(c) = rx.recv().await {
                n += 1;
                let body = json!({"janus": "trickle", "transaction": format!("c{handle}-{n}"), "candidate": {
                    "candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_mline_index}});
                let _ = http.post(&url).json(&body).send().await;
            }
        });
        (tx, task)
    }

    async fn publish(&self, room: u64, tag: u64, meter: Arc<Meter>, held: &mut Held) -> Res<u64> {
        let handle = self.attach().await?;
        let (sink, trickle) = self.trickler(handle);
        let pc = rtc_peer::build_pc(Some(sink), None).await?;
        held.pcs.push(pc.clone());
        held.tasks.push(trickle);
        held.tasks.push(rtc_peer::add_media(&pc, tag, meter).await?);
        let offer = pc.create_offer(None).await?;
        let sdp = offer.sdp.clone();
        pc.set_local_description(offer).await?;
        let e = self
            .message(
                handle,
                json!({"request": "joinandconfigure", "room": room, "ptype": "publisher", "display": format!("bench-{tag}"), "audio": true, "video": true}),
                Some(json!({"type": "offer", "sdp": sdp})),
            )
            .await?;
        let answer = e["jsep"]["sdp"].as_str().ok_or_else(|| format!("no answer from janus: {e}"))?;
        if std::env::var_os("BENCH_JANUS_DEBUG").is_some() {
            crate::stats::progress(format!("janus answer:\n{answer}\nour offer:\n{sdp}"));
        }
        // Load stays on the bench's media address: never let the generator send anywhere else.
        let media = format!(" {} ", crate::netns::media_addr());
        let candidates: Vec<&str> = answer.lines().filter(|l| l.starts_with("a=candidate")).collect();
        if !candidates.iter().any(|c| c.contains(&media)) {
            return Err(format!(
                "janus offered no candidate on{media}(it skips loopback interfaces: run the scenario as root so it \
                 gets its own network namespace); its answer had: {}",
                candidates.join(" | ")
            )
            .into());
        }
        pc.set_remote_description(RTCSessionDescription::answer(answer.to_owned())?).await?;
        let feed = e["plugindata"]["data"]["id"].as_u64().ok_or_else(|| format!("no feed id: {e}"))?;
        Ok(feed)
    }

    async fn subscribe(&self, room: u64, feed: u64, meter: Arc<Meter>, held: &mut Held) -> Res {
        let handle = self.attach().await?;
        let (sink, trickle) = self.trickler(handle);
        let pc: Arc<dyn PeerConnection> = rtc_peer::build_pc(Some(sink), Some(meter)).await?;
        held.pcs.push(pc.clone());
        held.tasks.push(trickle);
        // A feed can be subscribed to once its publisher's PeerConnection is up: retry meanwhile.
        let deadline = Instant::now() + Duration::from_secs(15);
        let e = loop {
            let e = self
                .message(
                    handle,
                    json!({"request": "join", "room": room, "ptype": "subscriber", "streams": [{"feed": feed}]}),
                    None,
                )
                .await?;
            if e["plugindata"]["data"]["error_code"] != 428 || Instant::now() > deadline {
                break e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let offer = e["jsep"]["sdp"].as_str().ok_or_else(|| format!("no offer from janus: {e}"))?;
        pc.set_remote_description(RTCSessionDescription::offer(offer.to_owned())?).await?;
        let answer = pc.create_answer(None).await?;
        let sdp = answer.sdp.clone();
        pc.set_local_description(answer).await?;
        let e = self.message(handle, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": sdp}))).await?;
        if e["plugindata"]["data"]["started"].is_null() && e["plugindata"]["data"]["error"].is_string() {
            return Err(format!("janus refused to start: {e}").into());
        }
        Ok(())
    }

    /// A two-party room: both publish, each subscribes to the other.
    pub async fn add_room(&self, index: usize, meter: Arc<Meter>) -> Res<Vec<Held>> {
        let room = 10_000 + index as u64;
        let admin = self.attach().await?;
        let created = self
            .message(
                admin,
                json!({"request": "create", "room": room, "publishers": 4, "audiocodec": "opus", "videocodec": "vp8", "bitrate": 0, "notify_joining": false}),
                None,
            )
            .await?;
        if created["plugindata"]["data"]["videoroom"] != "created" {
            return Err(format!("janus room create failed: {created}").into());
        }
        let (a, b) = ((index * 2) as u64, (index * 2 + 1) as u64);
        let mut held = Held::default();
        let fa = self.publish(room, a, meter.clone(), &mut held).await?;
        let fb = self.publish(room, b, meter.clone(), &mut held).await?;
        if let Ok(mut f) = self.feeds.lock() {
            f.insert(a, fa);
            f.insert(b, fb);
        }
        self.subscribe(room, fb, meter.clone(), &mut held).await?;
        self.subscribe(room, fa, meter, &mut held).await?;
        Ok(vec![held])
    }

    pub fn stop(&self) {
        self.poller.abort();
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
