//! Test peers: webrtc-rs (async) clients that talk to the SFU through its public API, exactly as
//! the hub will, and send/receive synthetic RTP over 127.0.0.1.
//!
//! Every RTP payload starts with the sender's 8-byte tag, then a u32 counter and the send time,
//! so a receiver can tell *whose* media arrived, not only how much.
#![allow(dead_code)]

use consulta::sfu::{ClientSignal, Participant, ParticipantId, PcKind, Sfu, SfuConfig, SfuEvent};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, Registry,
};
use webrtc::rtp_transceiver::RtpSender;

mod observe;
mod peer_setup;
pub use observe::{Feedback, Received};
use peer_setup::{local_track, rtp_packet};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Media tests run one at a time: two cores, and each call is four peer connections.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "consulta::sfu=info".into()),
        )
        .with_test_writer()
        .try_init();
}

pub fn test_config() -> SfuConfig {
    SfuConfig { empty_room_grace: Duration::from_millis(200), ..SfuConfig::loopback() }
}

pub async fn spawn_sfu() -> TestResult<Sfu> {
    spawn_sfu_with(test_config()).await
}

pub async fn spawn_sfu_with(config: SfuConfig) -> TestResult<Sfu> {
    init_tracing();
    Ok(Sfu::start(config).await?)
}

/// Polls `cond` every 25 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if cond() {
        return Ok(());
    }
    Err(format!("timed out after {within:?} waiting for: {what}").into())
}

pub async fn within<T>(d: Duration, what: &str, f: impl Future<Output = T>) -> TestResult<T> {
    tokio::time::timeout(d, f).await.map_err(|_| format!("timed out after {d:?}: {what}").into())
}

/// How a test client's signaling reaches the SFU: straight through its API,
/// or over the hub's WebSocket (see the API suite's room tests).
#[async_trait::async_trait]
pub trait Signal: Send + Sync + 'static {
    async fn send(&self, message: ClientSignal) -> TestResult;
}

/// Signaling straight into the SFU, as the hub itself does.
pub struct DirectSignal {
    pub sfu: Sfu,
    pub pid: ParticipantId,
}

#[async_trait::async_trait]
impl Signal for DirectSignal {
    async fn send(&self, message: ClientSignal) -> TestResult {
        self.sfu.signal(self.pid, message).await?;
        Ok(())
    }
}

struct Handler {
    signal: Arc<dyn Signal>,
    target: PcKind,
    connected: Arc<AtomicBool>,
    connected_at: Arc<Mutex<Option<Instant>>>,
    received: Option<Arc<Received>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        // Trickle: every gathered candidate goes through the SFU API like the hub would do.
        if let Ok(init) = event.candidate.to_json() {
            let _ = self
                .signal
                .send(ClientSignal::Candidate {
                    target: self.target,
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_mline_index: init.sdp_mline_index,
                })
                .await;
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            self.connected.store(true, Ordering::SeqCst);
            if let Ok(mut at) = self.connected_at.lock() {
                at.get_or_insert_with(Instant::now);
            }
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(received) = self.received.clone() else {
            return;
        };
        tokio::spawn(async move {
            let track_id = track.track_id().await;
            let source = track_id.split('-').next().unwrap_or_default().to_owned();
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(p) => received.record(&p.payload, &source),
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

struct NoopHandler;

#[async_trait::async_trait]
impl PeerConnectionEventHandler for NoopHandler {}

/// A publisher offer (audio + video) from a client that will never connect.
pub async fn unanswered_offer() -> TestResult<String> {
    let pc = build_pc(Arc::new(NoopHandler), false).await?;
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        let track = local_track(kind, rand::random::<u32>() | 1, "ghost");
        pc.add_track(track as Arc<dyn TrackLocal>).await?;
    }
    let offer = pc.create_offer(None).await?;
    let sdp = offer.sdp.clone();
    pc.set_local_description(offer).await?;
    pc.close().await?;
    Ok(sdp)
}

async fn build_pc(handler: Arc<dyn PeerConnectionEventHandler>, tap_rtcp: bool) -> TestResult<Arc<dyn PeerConnection>> {
    let registry = if tap_rtcp {
        Registry::new().with(rtc::interceptor::Slot::from(14_000), consulta::sfu::DeliverRtcp::default())
    } else {
        Registry::new()
    };
    peer_setup::peer_connection(handler, registry, std::net::Ipv4Addr::LOCALHOST.into()).await
}

/// A participant with a publisher PC (Opus + VP8 of synthetic RTP) and a subscriber PC.
pub struct Client {
    pub user_id: Uuid,
    pub pid: ParticipantId,
    pub tag: [u8; 8],
    pub received: Arc<Received>,
    pub feedback: Arc<Feedback>,
    pub offered_at: Instant,
    pub pub_connected_at: Arc<Mutex<Option<Instant>>>,
    pub sub_connected: Arc<AtomicBool>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<SfuEvent>>,
    pub_pc: Arc<dyn PeerConnection>,
    sub_pc: Arc<dyn PeerConnection>,
    signal: Arc<dyn Signal>,
    screen: Option<(Arc<dyn RtpSender>, JoinHandle<()>)>,
    tasks: Vec<JoinHandle<()>>,
}

pub fn tag_for(name: &str) -> [u8; 8] {
    let mut tag = [b'.'; 8];
    for (t, b) in tag.iter_mut().zip(name.bytes()) {
        *t = b;
    }
    tag
}

impl Client {
    pub async fn join(sfu: &Sfu, room: Uuid, name: &str) -> TestResult<Client> {
        Self::join_as(sfu, room, name, Uuid::new_v4()).await
    }

    pub async fn join_as(sfu: &Sfu, room: Uuid, name: &str, user_id: Uuid) -> TestResult<Client> {
        let (tx, rx) = mpsc::channel::<SfuEvent>(256);
        let who = Participant { user_id, name: name.to_owned(), role: "patient".to_owned() };
        let pid = sfu.join(room, who, tx).await?;
        Self::connect(Arc::new(DirectSignal { sfu: sfu.clone(), pid }), rx, name, user_id, pid).await
    }

    /// Sets up both peer connections and starts publishing; `events` carries
    /// what the SFU (or the hub, translated) says to this client.
    pub async fn connect(
        signal: Arc<dyn Signal>,
        mut rx: mpsc::Receiver<SfuEvent>,
        name: &str,
        user_id: Uuid,
        pid: ParticipantId,
    ) -> TestResult<Client> {
        let received = Arc::new(Received::default());
        let feedback = Arc::new(Feedback::default());
        let pub_connected_at = Arc::new(Mutex::new(None));
        let sub_connected = Arc::new(AtomicBool::new(false));
        let pub_pc = build_pc(
            Arc::new(Handler {
                signal: signal.clone(),
                target: PcKind::Publisher,
                connected: Arc::new(AtomicBool::new(false)),
                connected_at: pub_connected_at.clone(),
                received: None,
            }),
            true,
        )
        .await?;
        let sub_pc = build_pc(
            Arc::new(Handler {
                signal: signal.clone(),
                target: PcKind::Subscriber,
                connected: sub_connected.clone(),
                connected_at: Arc::new(Mutex::new(None)),
                received: Some(received.clone()),
            }),
            false,
        )
        .await?;

        let tag = tag_for(name);
        let audio = local_track(RtpCodecKind::Audio, rand::random::<u32>() | 1, name);
        let video = local_track(RtpCodecKind::Video, rand::random::<u32>() | 1, name);
        pub_pc.add_track(audio.clone() as Arc<dyn TrackLocal>).await?;
        pub_pc.add_track(video.clone() as Arc<dyn TrackLocal>).await?;

        // Signaling: the part of the hub + browser glue that answers the SFU.
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        {
            let (signal, pub_pc, sub_pc) = (signal.clone(), pub_pc.clone(), sub_pc.clone());
            tasks.push(tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    match event {
                        SfuEvent::PublishAnswer { sdp } => {
                            if let Ok(answer) = RTCSessionDescription::answer(sdp) {
                                let _ = pub_pc.set_remote_description(answer).await;
                            }
                        }
                        SfuEvent::SubscribeOffer { sdp } => {
                            let Ok(offer) = RTCSessionDescription::offer(sdp) else {
                                continue;
                            };
                            if sub_pc.set_remote_description(offer).await.is_err() {
                                continue;
                            }
                            let Ok(answer) = sub_pc.create_answer(None).await else {
                                continue;
                            };
                            let sdp = answer.sdp.clone();
                            if sub_pc.set_local_description(answer).await.is_ok() {
                                let _ = signal.send(ClientSignal::SubscribeAnswer { sdp }).await;
                            }
                        }
                        SfuEvent::Candidate { target, candidate, sdp_mid, sdp_mline_index } => {
                            let pc = match target {
                                PcKind::Publisher => &pub_pc,
                                PcKind::Subscriber => &sub_pc,
                            };
                            let _ = pc
                                .add_ice_candidate(RTCIceCandidateInit {
                                    candidate,
                                    sdp_mid,
                                    sdp_mline_index,
                                    ..Default::default()
                                })
                                .await;
                        }
                        other => {
                            let _ = ev_tx.send(other);
                        }
                    }
                }
            }));
        }
        // Keyframe requests and bitrate caps from the SFU, as the publisher sees them.
        for track in [audio.clone(), video.clone()] {
            let feedback = feedback.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await {
                    for p in packets {
                        let any = p.as_any();
                        if any.is::<rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>() {
                            feedback.pli.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(remb) = any.downcast_ref::<rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate>() {
                            feedback.remb.fetch_add(1, Ordering::Relaxed);
                            feedback.remb_bitrate.store(remb.bitrate as u64, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        tasks.push(tokio::spawn(send_media(audio, video, tag)));

        let offer = pub_pc.create_offer(None).await?;
        let sdp = offer.sdp.clone();
        pub_pc.set_local_description(offer).await?;
        let offered_at = Instant::now();
        signal.send(ClientSignal::PublishOffer { sdp }).await?;

        Ok(Client {
            user_id,
            pid,
            tag,
            received,
            feedback,
            offered_at,
            pub_connected_at,
            sub_connected,
            events: tokio::sync::Mutex::new(ev_rx),
            pub_pc,
            sub_pc,
            signal,
            screen: None,
            tasks,
        })
    }

    /// Starts a screen share: a second video track, published by renegotiating (new offer).
    pub async fn start_screen(&mut self) -> TestResult {
        let track = local_track(RtpCodecKind::Video, rand::random::<u32>() | 1, "screen");
        let sender = self.pub_pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
        let tag = self.tag;
        let task = tokio::spawn(async move {
            let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            for seq in 0u32.. {
                tick.tick().await;
                let mut p = tag.to_vec();
                p.extend_from_slice(&seq.to_be_bytes());
                p.resize(400, 0xCD);
                let pkt = rtp_packet(96, ssrc, seq, seq.wrapping_mul(4500), true, bytes::Bytes::from(p));
                let _ = track.write_rtp(pkt).await;
            }
        });
        self.screen = Some((sender, task));
        self.renegotiate().await
    }

    /// Stops the screen share: the track is removed and the publisher renegotiates.
    pub async fn stop_screen(&mut self) -> TestResult {
        if let Some((sender, task)) = self.screen.take() {
            task.abort();
            self.pub_pc.remove_track(&sender).await?;
        }
        self.renegotiate().await
    }

    /// An ICE restart, as after a network change: a new publisher offer with
    /// fresh ICE credentials on the same signaling channel.
    pub async fn ice_restart(&self) -> TestResult {
        let options = rtc::peer_connection::configuration::RTCOfferOptions { ice_restart: true };
        let offer = self.pub_pc.create_offer(Some(options)).await?;
        let sdp = offer.sdp.clone();
        self.pub_pc.set_local_description(offer).await?;
        self.signal.send(ClientSignal::PublishOffer { sdp }).await?;
        Ok(())
    }

    async fn renegotiate(&self) -> TestResult {
        let offer = self.pub_pc.create_offer(None).await?;
        let sdp = offer.sdp.clone();
        self.pub_pc.set_local_description(offer).await?;
        self.signal.send(ClientSignal::PublishOffer { sdp }).await?;
        Ok(())
    }

    /// Waits for a non-signaling event matching `pred`, skipping others.
    pub async fn wait_event(&self, d: Duration, what: &str, pred: impl Fn(&SfuEvent) -> bool) -> TestResult<SfuEvent> {
        let mut rx = self.events.lock().await;
        within(d, what, async {
            while let Some(e) = rx.recv().await {
                if pred(&e) {
                    return Some(e);
                }
            }
            None
        })
        .await?
        .ok_or_else(|| format!("event channel closed while waiting for: {what}").into())
    }

    /// The SFU's ICE ufrag on this client's publisher connection (from the SFU's answer).
    pub async fn server_ufrag(&self) -> Option<String> {
        let sdp = self.pub_pc.remote_description().await?.sdp;
        sdp.lines().find_map(|l| l.trim().strip_prefix("a=ice-ufrag:")).map(|u| u.trim().to_owned())
    }

    /// The publisher offer this client sent (its current local description).
    pub async fn local_offer(&self) -> Option<String> {
        self.pub_pc.local_description().await.map(|d| d.sdp)
    }

    pub fn publish_connect_time(&self) -> Option<Duration> {
        self.pub_connected_at.lock().ok().and_then(|at| at.map(|t| t.duration_since(self.offered_at)))
    }

    /// Stops sending and closes both peer connections (does not call `Sfu::leave`).
    pub async fn close(self) {
        if let Some((_, task)) = &self.screen {
            task.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.pub_pc.close().await;
        let _ = self.sub_pc.close().await;
    }
}

/// 50 audio packets/s and 30 video packets/s of synthetic RTP, tagged with the sender.
async fn send_media(audio: Arc<TrackLocalStaticRTP>, video: Arc<TrackLocalStaticRTP>, tag: [u8; 8]) {
    let started = Instant::now();
    let audio_ssrc = audio.ssrcs().await.first().copied().unwrap_or(0);
    let video_ssrc = video.ssrcs().await.first().copied().unwrap_or(0);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut n: u32 = 0;
    loop {
        tick.tick().await;
        n = n.wrapping_add(1);
        let micros = started.elapsed().as_micros() as u64;
        let payload = |seq: u32, len: usize| {
            let mut p = Vec::with_capacity(len);
            p.extend_from_slice(&tag);
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&micros.to_be_bytes());
            p.resize(len, 0xAB);
            bytes::Bytes::from(p)
        };
        if n.is_multiple_of(2) {
            let seq = n / 2;
            let _ =
                audio.write_rtp(rtp_packet(111, audio_ssrc, seq, seq.wrapping_mul(960), true, payload(seq, 80))).await;
        }
        if n.is_multiple_of(3) {
            let seq = n / 3;
            let _ =
                video.write_rtp(rtp_packet(96, video_ssrc, seq, seq.wrapping_mul(3000), true, payload(seq, 600))).await;
        }
    }
}

/// Waits until `a` receives at least `n_audio`/`n_video` packets from `b`'s tag.
pub async fn wait_media_from(
    receiver: &Client,
    sender_tag: [u8; 8],
    n_audio: u64,
    n_video: u64,
    d: Duration,
) -> TestResult {
    let r = receiver.received.clone();
    eventually(d, "media from the other participant", || {
        r.count(sender_tag, RtpCodecKind::Audio) >= n_audio && r.count(sender_tag, RtpCodecKind::Video) >= n_video
    })
    .await
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}
