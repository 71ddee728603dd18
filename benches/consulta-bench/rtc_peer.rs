//! The media generator: webrtc-rs peers (the same crate and setup as `tests/sfu_support`) that
//! publish synthetic RTP at call rates and measure what they receive.
//!
//! Every payload starts with the sender's tag (u64), the kind (0 audio, 1 video), a u32
//! sequence number and the send time in nanoseconds since the generator's epoch. Sender and
//! receiver are both in the generator process, so one monotonic clock serves both ends.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::media_stream::Track as _;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent, Registry,
};

use crate::peer_setup::{local_track, rtp_packet};

pub type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Media rates of one participant: 1.5 Mbit/s of VP8-sized video, Opus-rate audio.
pub const TICK: Duration = Duration::from_millis(20);
/// Per 20 ms tick: 3 video packets (150/s) of 1,250 bytes = 1.5 Mbit/s of payload.
pub const VIDEO_PER_TICK: u32 = 3;
pub const VIDEO_BYTES: usize = 1250;
/// Per 20 ms tick: 1 audio packet (50/s) of 100 bytes.
pub const AUDIO_BYTES: usize = 100;
/// Packets one participant publishes per second.
pub const PACKETS_PER_SECOND: u64 = 50 * (1 + VIDEO_PER_TICK as u64);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

pub fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

type StreamKey = (u64, u8);

/// What was sent and received in the measurement window, and the latency of each packet.
pub struct Meter {
    window: Mutex<(u64, u64)>,
    sent: Mutex<HashMap<StreamKey, u64>>,
    received: Mutex<HashMap<StreamKey, u64>>,
    seen: Mutex<HashSet<StreamKey>>,
    latency: Mutex<Histogram<u64>>,
    /// How long `write_rtp` took to accept each packet sent in the window: the generator's
    /// publishers are held back exactly when this grows (the PC's driver queue is full).
    write_wait: Mutex<Histogram<u64>>,
    pub malformed: AtomicU64,
}

impl Meter {
    pub fn new() -> Arc<Meter> {
        epoch();
        Arc::new(Meter {
            window: Mutex::new((u64::MAX, u64::MAX)),
            sent: Mutex::default(),
            received: Mutex::default(),
            seen: Mutex::default(),
            latency: Mutex::new(crate::stats::histogram()),
            write_wait: Mutex::new(crate::stats::histogram()),
            malformed: AtomicU64::new(0),
        })
    }

    /// Opens a new measurement window now; packets sent from now on are counted.
    pub fn start_window(&self) {
        if let Ok(mut w) = self.window.lock() {
            *w = (now_ns(), u64::MAX);
        }
        if let Ok(mut s) = self.sent.lock() {
            s.clear();
        }
        if let Ok(mut r) = self.received.lock() {
            r.clear();
        }
        if let Ok(mut h) = self.latency.lock() {
            h.reset();
        }
        if let Ok(mut h) = self.write_wait.lock() {
            h.reset();
        }
    }

    /// Closes the window: packets sent after now are no longer counted (those in flight are).
    pub fn end_window(&self) {
        if let Ok(mut w) = self.window.lock() {
            w.1 = now_ns();
        }
    }

    fn in_window(&self, t: u64) -> bool {
        self.window.lock().map(|w| t >= w.0 && t < w.1).unwrap_or(false)
    }

    fn on_sent(&self, key: StreamKey, t: u64) {
        if self.in_window(t)
            && let Ok(mut s) = self.sent.lock()
        {
            *s.entry(key).or_default() += 1;
        }
    }

    fn on_written(&self, sent_at: u64) {
        if self.in_window(sent_at)
            && let Ok(mut h) = self.write_wait.lock()
        {
            crate::stats::record(&mut h, Duration::from_nanos(now_ns().saturating_sub(sent_at)));
        }
    }

    /// Time `write_rtp` took per packet sent in the window.
    pub fn write_wait(&self) -> Histogram<u64> {
        self.write_wait.lock().map(|h| h.clone()).unwrap_or_else(|_| crate::stats::histogram())
    }

    fn on_received(&self, payload: &[u8]) {
        let now = now_ns();
        if payload.len() < 21 {
            self.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let tag = u64::from_be_bytes(payload[..8].try_into().unwrap_or_default());
        let kind = payload[8];
        let sent = u64::from_be_bytes(payload[13..21].try_into().unwrap_or_default());
        let key = (tag, kind);
        if let Ok(mut s) = self.seen.lock() {
            s.insert(key);
        }
        if !self.in_window(sent) {
            return;
        }
        if let Ok(mut r) = self.received.lock() {
            *r.entry(key).or_default() += 1;
        }
        if let Ok(mut h) = self.latency.lock() {
            crate::stats::record(&mut h, Duration::from_nanos(now.saturating_sub(sent)));
        }
    }

    /// Streams that have delivered at least one packet so far.
    pub fn streams_seen(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// (sent, received, worst per-stream loss fraction, latency histogram) of the window.
    pub fn result(&self) -> (u64, u64, f64, Histogram<u64>) {
        let sent = self.sent.lock().map(|s| s.clone()).unwrap_or_default();
        let received = self.received.lock().map(|r| r.clone()).unwrap_or_default();
        let mut worst: f64 = 0.0;
        for (key, n) in &sent {
            let got = received.get(key).copied().unwrap_or(0);
            worst = worst.max(1.0 - (got.min(*n) as f64 / (*n).max(1) as f64));
        }
        let h = self.latency.lock().map(|h| h.clone()).unwrap_or_else(|_| crate::stats::histogram());
        (sent.values().sum(), received.values().sum(), worst, h)
    }
}

/// Where a peer connection's gathered candidates go.
pub type CandidateSink = mpsc::UnboundedSender<RTCIceCandidateInit>;

struct Handler {
    candidates: Option<CandidateSink>,
    meter: Option<Arc<Meter>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let (Some(sink), Ok(init)) = (&self.candidates, event.candidate.to_json()) {
            let _ = sink.send(init);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(meter) = self.meter.clone() else {
            return;
        };
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(p) => meter.on_received(&p.payload),
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

/// A webrtc-rs peer connection on the bench's media address (`netns::media_addr`) with the default interceptors (NACK, RTCP
/// reports, TWCC), as the test peers use. `meter`: count and time what arrives on its tracks.
pub async fn build_pc(candidates: Option<CandidateSink>, meter: Option<Arc<Meter>>) -> Res<Arc<dyn PeerConnection>> {
    let handler = Arc::new(Handler { candidates, meter });
    crate::peer_setup::peer_connection(handler, Registry::new(), crate::netns::media_addr().into()).await
}

/// Adds an Opus-like and a VP8-like track to `pc` and returns the task that sends on them.
pub async fn add_media(pc: &Arc<dyn PeerConnection>, tag: u64, meter: Arc<Meter>) -> Res<JoinHandle<()>> {
    let audio = local_track(RtpCodecKind::Audio, rand::random::<u32>() | 1, &tag.to_string());
    let video = local_track(RtpCodecKind::Video, rand::random::<u32>() | 1, &tag.to_string());
    pc.add_track(audio.clone() as Arc<dyn TrackLocal>).await?;
    pc.add_track(video.clone() as Arc<dyn TrackLocal>).await?;
    Ok(tokio::spawn(send_media(audio, video, tag, meter)))
}

async fn send_media(audio: Arc<TrackLocalStaticRTP>, video: Arc<TrackLocalStaticRTP>, tag: u64, meter: Arc<Meter>) {
    let audio_ssrc = audio.ssrcs().await.first().copied().unwrap_or(0);
    let video_ssrc = video.ssrcs().await.first().copied().unwrap_or(0);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut audio_seq, mut video_seq) = (0u32, 0u32);
    let payload = |kind: u8, seq: u32, len: usize| {
        let t = now_ns();
        let mut p = Vec::with_capacity(len);
        p.extend_from_slice(&tag.to_be_bytes());
        p.push(kind);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&t.to_be_bytes());
        p.resize(len, 0xAB);
        (bytes::Bytes::from(p), t)
    };
    loop {
        tick.tick().await;
        audio_seq = audio_seq.wrapping_add(1);
        let (p, t) = payload(0, audio_seq, AUDIO_BYTES);
        meter.on_sent((tag, 0), t);
        let _ = audio.write_rtp(rtp_packet(111, audio_ssrc, audio_seq, audio_seq.wrapping_mul(960), false, p)).await;
        meter.on_written(t);
        for i in 0..VIDEO_PER_TICK {
            video_seq = video_seq.wrapping_add(1);
            let (p, t) = payload(1, video_seq, VIDEO_BYTES);
            meter.on_sent((tag, 1), t);
            let ts = (video_seq / VIDEO_PER_TICK).wrapping_mul(1800);
            let marker = i + 1 == VIDEO_PER_TICK;
            let _ = video.write_rtp(rtp_packet(96, video_ssrc, video_seq, ts, marker, p)).await;
            meter.on_written(t);
        }
    }
}

/// Adds every candidate from `rx` to `pc` (start it once `pc` has its remote description).
pub fn trickle_into(
    pc: Arc<dyn PeerConnection>,
    mut rx: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(c) = rx.recv().await {
            let _ = pc.add_ice_candidate(c).await;
        }
    })
}

/// Peer connections and tasks to drop together.
#[derive(Default)]
pub struct Held {
    pub pcs: Vec<Arc<dyn PeerConnection>>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Held {
    pub async fn close(self) {
        for t in &self.tasks {
            t.abort();
        }
        for pc in self.pcs {
            let _ = pc.close().await;
        }
    }
}

/// Baseline: one participant's media sent peer-to-peer (publisher PC → receiver PC) with the
/// same stack and rates, no SFU in between.
pub async fn p2p_stream(tag: u64, meter: Arc<Meter>) -> Res<Held> {
    let (a_tx, a_rx) = mpsc::unbounded_channel();
    let (b_tx, b_rx) = mpsc::unbounded_channel();
    let sender = build_pc(Some(a_tx), None).await?;
    let receiver = build_pc(Some(b_tx), Some(meter.clone())).await?;
    let media = add_media(&sender, tag, meter).await?;
    let offer = sender.create_offer(None).await?;
    sender.set_local_description(offer.clone()).await?;
    receiver.set_remote_description(offer).await?;
    let answer = receiver.create_answer(None).await?;
    receiver.set_local_description(answer.clone()).await?;
    sender.set_remote_description(answer).await?;
    let t1 = trickle_into(receiver.clone(), a_rx);
    let t2 = trickle_into(sender.clone(), b_rx);
    Ok(Held { pcs: vec![sender, receiver], tasks: vec![media, t1, t2] })
}
