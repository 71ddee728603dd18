//! `sfu`: N two-party rooms, each participant publishing 1.5 Mbit/s of video and Opus-rate
//! audio. The SFU runs in its own process pinned to core 0 (see `sfu_server`), the generator
//! (this process) on core 1. Measured per level of N: forwarded packets/s, SFU CPU time per
//! forwarded packet, latency (p50/p99) through the SFU and peer-to-peer without it (baseline),
//! loss, and SFU memory per participant. Optionally the same against Janus (`janus`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use consulta::sfu::{ClientSignal, PcKind};
use serde_json::{Value, json};
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};

use crate::rtc_peer::{self, Held, Meter, Res};
use crate::server::{cpu_time, loadavg, rss_bytes, udp_drops};
use crate::sfu_server::Link;
use crate::stats::{progress, summary};

pub struct Args {
    pub rooms: Vec<usize>,
    pub seconds: u64,
    pub baseline: bool,
    pub janus: bool,
    /// Stop ramping when loss exceeds this fraction.
    pub max_loss: f64,
    pub sfu_cpus: String,
    /// `nice` value for the server under test (negative: ahead of other work on its core).
    pub server_nice: i32,
    /// REMB cap the SFU announces (`SfuConfig::max_bitrate_bps`); `None`: the SFU's default.
    pub sfu_max_bitrate: Option<u32>,
    /// `nice` value the generator (this process) runs at.
    pub generator_nice: i32,
    /// Cores the generator (this process) is pinned to; empty for none.
    pub generator_cpus: String,
    /// Record a `perf` CPU profile of the server during each window, to `<prefix>-<name>-<rooms>.data`.
    pub perf: Option<String>,
}

/// One SFU-side participant: publisher PC with media, subscriber PC measured by `meter`.
async fn consulta_participant(link: Arc<Link>, room: uuid::Uuid, tag: u64, meter: Arc<Meter>) -> Res<Held> {
    let (pid, mut events) = link.join(room, &format!("bench-{tag}")).await?;
    let (pub_tx, pub_rx) = tokio::sync::mpsc::unbounded_channel::<RTCIceCandidateInit>();
    let (sub_tx, sub_rx) = tokio::sync::mpsc::unbounded_channel::<RTCIceCandidateInit>();
    let pub_pc = rtc_peer::build_pc(Some(pub_tx), None).await?;
    let sub_pc = rtc_peer::build_pc(Some(sub_tx), Some(meter.clone())).await?;
    let media = rtc_peer::add_media(&pub_pc, tag, meter).await?;
    let mut held = Held { pcs: vec![pub_pc.clone(), sub_pc.clone()], tasks: vec![media] };
    for (target, mut rx) in [(PcKind::Publisher, pub_rx), (PcKind::Subscriber, sub_rx)] {
        let link = link.clone();
        held.tasks.push(tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                let msg = ClientSignal::Candidate {
                    target,
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_mline_index: c.sdp_mline_index,
                };
                link.signal(pid, msg).await;
            }
        }));
    }
    {
        let (link, pub_pc, sub_pc) = (link.clone(), pub_pc.clone(), sub_pc.clone());
        held.tasks.push(tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let sdp = event["sdp"].as_str().unwrap_or_default().to_owned();
                match event["type"].as_str() {
                    Some("publish_answer") => {
                        if let Ok(answer) = RTCSessionDescription::answer(sdp) {
                            let _ = pub_pc.set_remote_description(answer).await;
                        }
                    }
                    Some("subscribe_offer") => {
                        let Ok(offer) = RTCSessionDescription::offer(sdp) else { continue };
                        if sub_pc.set_remote_description(offer).await.is_err() {
                            continue;
                        }
                        let Ok(answer) = sub_pc.create_answer(None).await else { continue };
                        let sdp = answer.sdp.clone();
                        if sub_pc.set_local_description(answer).await.is_ok() {
                            link.signal(pid, ClientSignal::SubscribeAnswer { sdp }).await;
                        }
                    }
                    Some("candidate") => {
                        let pc: &Arc<dyn PeerConnection> =
                            if event["target"] == "publisher" { &pub_pc } else { &sub_pc };
                        let _ = pc
                            .add_ice_candidate(RTCIceCandidateInit {
                                candidate: event["candidate"].as_str().unwrap_or_default().to_owned(),
                                sdp_mid: event["sdp_mid"].as_str().map(str::to_owned),
                                sdp_mline_index: event["sdp_mline_index"].as_u64().and_then(|i| u16::try_from(i).ok()),
                                ..Default::default()
                            })
                            .await;
                    }
                    _ => {}
                }
            }
        }));
    }
    let offer = pub_pc.create_offer(None).await?;
    let sdp = offer.sdp.clone();
    pub_pc.set_local_description(offer).await?;
    link.signal(pid, ClientSignal::PublishOffer { sdp }).await;
    Ok(held)
}

/// Waits until `streams` streams delivered media (or 30 s), then lets things settle.
async fn warm_up(meter: &Meter, streams: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while meter.streams_seen() < streams && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ok = meter.streams_seen() >= streams;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ok
}

/// Figures of one measurement window.
struct Window {
    sent: u64,
    received: u64,
    worst_loss: f64,
    latency: Value,
    p50_ms: f64,
    p99_ms: f64,
    write_wait: Value,
    generator_cpu: f64,
    seconds: f64,
}

async fn measure(meter: &Meter, seconds: u64, during: impl FnOnce()) -> Window {
    let me = std::process::id();
    let cpu0 = cpu_time(me);
    let t0 = Instant::now();
    meter.start_window();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    meter.end_window();
    let wall = t0.elapsed().as_secs_f64();
    let generator_cpu = (cpu_time(me) - cpu0).as_secs_f64() / wall;
    during();
    // Let packets in flight arrive.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (sent, received, worst_loss, h) = meter.result();
    let latency = summary(&h);
    let p50_ms = latency["p50_ms"].as_f64().unwrap_or(0.0);
    let p99_ms = latency["p99_ms"].as_f64().unwrap_or(0.0);
    let write_wait = summary(&meter.write_wait());
    Window { sent, received, worst_loss, latency, p50_ms, p99_ms, write_wait, generator_cpu, seconds: wall }
}

fn loss(w: &Window) -> f64 {
    1.0 - (w.received.min(w.sent) as f64 / w.sent.max(1) as f64)
}

/// The baseline at `rooms` rooms: each participant's media peer-to-peer, no SFU.
async fn baseline_level(rooms: usize, seconds: u64) -> Res<Value> {
    let meter = Meter::new();
    let mut held = Vec::new();
    for i in 0..rooms * 2 {
        held.push(rtc_peer::p2p_stream(900_000 + i as u64, meter.clone()).await?);
    }
    let ready = warm_up(&meter, rooms * 4).await;
    let load = loadavg();
    let w = measure(&meter, seconds, || {}).await;
    for h in held {
        h.close().await;
    }
    progress(format!(
        "  baseline {rooms} rooms: latency p50 {:.2} ms p99 {:.2} ms, loss {:.3} %, generator {:.0} % of a core (load {load})",
        w.p50_ms,
        w.p99_ms,
        loss(&w) * 100.0,
        w.generator_cpu * 100.0
    ));
    Ok(json!({
        "rooms": rooms,
        "all_streams_flowing": ready,
        "latency": w.latency,
        "packets_sent_in_window": w.sent,
        "generator_send_rate_per_second": (w.sent as f64 / w.seconds).round(),
        "generator_write_rtp_wait": w.write_wait,
        "loss": loss(&w),
        "worst_stream_loss": w.worst_loss,
        "generator_cpu_cores": w.generator_cpu,
        "loadavg": load,
    }))
}

/// One server under test, driven through the same generator.
pub enum Target {
    Consulta(Arc<Link>),
    Janus(Arc<crate::janus::Janus>),
}

impl Target {
    fn pid(&self) -> u32 {
        match self {
            Target::Consulta(l) => l.pid,
            Target::Janus(j) => j.pid(),
        }
    }

    async fn add_room(&self, index: usize, meter: &Arc<Meter>) -> Res<Vec<Held>> {
        match self {
            Target::Consulta(link) => {
                let room = uuid::Uuid::new_v4();
                let a = consulta_participant(link.clone(), room, (index * 2) as u64, meter.clone()).await?;
                let b = consulta_participant(link.clone(), room, (index * 2 + 1) as u64, meter.clone()).await?;
                Ok(vec![a, b])
            }
            Target::Janus(janus) => janus.add_room(index, meter.clone()).await,
        }
    }

    /// Packets forwarded so far by the server, if it counts them.
    async fn forwarded(&self) -> Option<u64> {
        match self {
            Target::Consulta(link) => link.stats().await["rtp_forwarded"].as_u64(),
            Target::Janus(_) => None,
        }
    }
}

/// Ramps rooms on `target`; returns one JSON object per level.
async fn ramp(name: &str, target: &Target, args: &Args, baselines: &[Value]) -> Vec<Value> {
    let meter = Meter::new();
    let pid = target.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = rss_bytes(pid);
    let mut held: Vec<Held> = Vec::new();
    let mut rooms = 0;
    let mut levels = Vec::new();
    for &level in &args.rooms {
        progress(format!("{name}: ramping to {level} rooms ({} participants)", level * 2));
        let mut failed = None;
        while rooms < level {
            match target.add_room(rooms, &meter).await {
                Ok(h) => held.extend(h),
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
            rooms += 1;
        }
        if let Some(e) = failed {
            progress(format!("  {name}: could not add a room: {e}"));
            levels.push(json!({"rooms": level, "error": e}));
            break;
        }
        let ready = warm_up(&meter, rooms * 4).await;
        let load = loadavg();
        let fwd0 = target.forwarded().await;
        let mut perf = args.perf.as_ref().and_then(|prefix| {
            std::process::Command::new("perf")
                .args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-p", &pid.to_string(), "-o"])
                .arg(format!("{prefix}-{name}-{level}.data"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok()
        });
        let me = std::process::id();
        let (server_drops0, generator_drops0) = (udp_drops(pid), udp_drops(me));
        let cpu0 = cpu_time(pid);
        let t0 = Instant::now();
        let w = measure(&meter, args.seconds, || {
            if let Some(p) = perf.as_mut() {
                // SIGINT makes perf write its file.
                let _ = std::process::Command::new("kill").args(["-INT", &p.id().to_string()]).status();
                let _ = p.wait();
            }
        })
        .await;
        // `measure` slept 1 s after the window for stragglers: count the server over the same span.
        let span = t0.elapsed().as_secs_f64();
        let server_cpu = (cpu_time(pid) - cpu0).as_secs_f64();
        let fwd1 = target.forwarded().await;
        let rss = rss_bytes(pid);
        let server_drops = udp_drops(pid).saturating_sub(server_drops0);
        let generator_drops = udp_drops(me).saturating_sub(generator_drops0);
        let participants = rooms * 2;
        // Packets the server forwarded: its own counter when it has one, else what arrived.
        let forwarded = match (fwd0, fwd1) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64,
            _ => w.received as f64 * span / w.seconds,
        };
        let per_second = forwarded / span;
        // What the generator received, scaled to the same span: counted the same way for every
        // server, so this is the figure the Consulta/Janus ratio uses.
        let delivered = w.received as f64 * span / w.seconds;
        let cpu_per_delivered_us = if delivered > 0.0 { server_cpu / delivered * 1e6 } else { 0.0 };
        let cpu_per_packet_us = if forwarded > 0.0 { server_cpu / forwarded * 1e6 } else { 0.0 };
        let per_core = if server_cpu > 0.0 { forwarded / server_cpu } else { 0.0 };
        let per_participant = rss.saturating_sub(rss0) as f64 / participants as f64;
        let baseline = baselines.iter().find(|b| b["rooms"] == json!(level));
        let added = |q: &str, v: f64| {
            baseline.and_then(|b| b["latency"][q].as_f64()).map(|b| ((v - b) * 1000.0).round() / 1000.0)
        };
        progress(format!(
            "  {name} {level} rooms: {per_second:.0} fwd pkt/s, server {:.0} % of a core, {cpu_per_packet_us:.2} µs CPU/pkt \
             ({per_core:.0} pkt/s per core), latency p50 {:.2} ms p99 {:.2} ms, loss {:.3} %, RSS {} MiB \
             ({:.0} KiB/participant), generator {:.0} % sending {:.0}/s (write_rtp wait p99 {:.2} ms), UDP drops server \
             {server_drops} generator {generator_drops} (load {load})",
            server_cpu / span * 100.0,
            w.p50_ms,
            w.p99_ms,
            loss(&w) * 100.0,
            rss / 1024 / 1024,
            per_participant / 1024.0,
            w.generator_cpu * 100.0,
            w.sent as f64 / w.seconds,
            w.write_wait["p99_ms"].as_f64().unwrap_or(0.0),
        ));
        levels.push(json!({
            "rooms": level,
            "participants": participants,
            "all_streams_flowing": ready,
            "offered_packets_per_second": participants as u64 * rtc_peer::PACKETS_PER_SECOND,
            "forwarded_packets_per_second": per_second.round(),
            "forwarded_counted_by": if fwd0.is_some() { "server stats().rtp_forwarded" } else { "generator (packets received)" },
            "server_cpu_cores": server_cpu / span,
            "server_cpu_us_per_forwarded_packet": cpu_per_packet_us,
            "server_cpu_us_per_delivered_packet": cpu_per_delivered_us,
            "forwarded_packets_per_cpu_second": per_core.round(),
            "latency_through_server": w.latency,
            "baseline_p2p_latency": baseline.map(|b| b["latency"].clone()),
            "added_latency_p50_ms": added("p50_ms", w.p50_ms),
            "added_latency_p99_ms": added("p99_ms", w.p99_ms),
            "packets_sent_in_window": w.sent,
            "packets_received_from_window": w.received,
            "generator_send_rate_per_second": (w.sent as f64 / w.seconds).round(),
            "generator_write_rtp_wait": w.write_wait,
            "loss": loss(&w),
            "worst_stream_loss": w.worst_loss,
            "server_rss_bytes": rss,
            "server_rss_start_bytes": rss0,
            "server_bytes_per_participant": per_participant.round(),
            "generator_cpu_cores": w.generator_cpu,
            "udp_receive_drops_server": server_drops,
            "udp_receive_drops_generator": generator_drops,
            "loadavg": load,
        }));
        if loss(&w) > args.max_loss || w.generator_cpu > 0.95 || !ready {
            progress(format!(
                "  {name}: stopping the ramp (loss {:.2} %, generator {:.0} % of its core, all flowing: {ready})",
                loss(&w) * 100.0,
                w.generator_cpu * 100.0
            ));
            break;
        }
    }
    for h in held {
        h.close().await;
    }
    levels
}

pub async fn run(args: Args) -> Value {
    let mut baselines = Vec::new();
    if args.baseline {
        progress("baseline: the same generator peer-to-peer, no SFU");
        for &level in &args.rooms {
            match baseline_level(level, args.seconds).await {
                Ok(v) => {
                    let stop = v["loss"].as_f64().unwrap_or(1.0) > args.max_loss
                        || v["generator_cpu_cores"].as_f64().unwrap_or(0.0) > 0.95;
                    baselines.push(v);
                    if stop {
                        break;
                    }
                }
                Err(e) => {
                    progress(format!("  baseline failed: {e}"));
                    break;
                }
            }
        }
    }

    progress(format!("consulta: starting the SFU process on core(s) {}", args.sfu_cpus));
    let link = Link::spawn(&args.sfu_cpus, args.server_nice, args.sfu_max_bitrate);
    let consulta = ramp("consulta", &Target::Consulta(link.clone()), &args, &baselines).await;
    let final_stats = link.stats().await;
    link.stop().await;

    let mut janus_levels = Value::Null;
    let mut janus_error = Value::Null;
    if args.janus {
        match crate::janus::Janus::start(&args.sfu_cpus, args.server_nice).await {
            Ok(janus) => {
                let janus = Arc::new(janus);
                janus_levels = json!(ramp("janus", &Target::Janus(janus.clone()), &args, &baselines).await);
                janus.stop();
            }
            Err(e) => {
                progress(format!("janus: not measured: {e}"));
                janus_error = json!(e.to_string());
            }
        }
    }

    // Ratios at the highest level both reached.
    let mut ratios = Vec::new();
    if let Some(janus) = janus_levels.as_array() {
        for c in &consulta {
            if let Some(j) = janus.iter().find(|j| j["rooms"] == c["rooms"] && j.get("error").is_none()) {
                let ratio = |key: &str, q: Option<&str>| {
                    let get = |v: &Value| match q {
                        Some(q) => v[key][q].as_f64(),
                        None => v[key].as_f64(),
                    };
                    match (get(c), get(j)) {
                        (Some(a), Some(b)) if b > 0.0 => json!(a / b),
                        _ => Value::Null,
                    }
                };
                progress(format!(
                    "consulta/janus at {} rooms: CPU per delivered packet {:.2}, latency p50 {:.2} p99 {:.2}, memory per participant {:.2}",
                    c["rooms"],
                    ratio("server_cpu_us_per_delivered_packet", None).as_f64().unwrap_or(f64::NAN),
                    ratio("latency_through_server", Some("p50_ms")).as_f64().unwrap_or(f64::NAN),
                    ratio("latency_through_server", Some("p99_ms")).as_f64().unwrap_or(f64::NAN),
                    ratio("server_bytes_per_participant", None).as_f64().unwrap_or(f64::NAN),
                ));
                ratios.push(json!({
                    "rooms": c["rooms"],
                    "cpu_per_delivered_packet": ratio("server_cpu_us_per_delivered_packet", None),
                    "server_memory_per_participant": ratio("server_bytes_per_participant", None),
                    "latency_p50": ratio("latency_through_server", Some("p50_ms")),
                    "latency_p99": ratio("latency_through_server", Some("p99_ms")),
                }));
            }
        }
    }

    json!({
        "scenario": "sfu",
        "media_per_participant": {
            "video": format!("{} pkt/s x {} B payload", 50 * rtc_peer::VIDEO_PER_TICK, rtc_peer::VIDEO_BYTES),
            "audio": format!("50 pkt/s x {} B payload", rtc_peer::AUDIO_BYTES),
        },
        "pinning": {"server": format!("taskset -c {} (nice {})", args.sfu_cpus, args.server_nice), "generator": if args.generator_cpus.is_empty() { format!("unpinned (nice {})", args.generator_nice) } else { format!("taskset -p -c {} (nice {})", args.generator_cpus, args.generator_nice) }},
        "window_seconds": args.seconds,
        "sfu_max_bitrate_bps": args.sfu_max_bitrate,
        "baseline_p2p": baselines,
        "consulta": consulta,
        "consulta_final_stats": final_stats,
        "janus": janus_levels,
        "janus_error": janus_error,
        "consulta_over_janus": ratios,
        "notes": [
            "latency = receive time - send time stamped in the payload, both in the generator process (one monotonic clock); it includes the generator's own webrtc-rs send and receive stacks",
            "baseline_p2p = the same generator sending peer-to-peer with no SFU at the same number of streams; added = through-server minus baseline, per quantile",
            "cpu per forwarded packet = server process utime+stime (/proc/<pid>/stat, 10 ms ticks) / forwarded packets over the same span",
            "memory per participant = (server RSS now - RSS before the first join) / participants",
        ],
    })
}
