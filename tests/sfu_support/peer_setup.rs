//! How every webrtc-rs peer of the tests and of the `sfu` benchmark is built: default codecs and
//! interceptors, host candidates on one local address (loopback included, no mDNS), and the
//! Opus-like and VP8-like tracks the peers publish. Shared by `tests/sfu_support` and
//! `benches/consulta-bench` (through `#[path]`), so the SFU is measured with the client it is tested with.

use std::net::IpAddr;
use std::sync::Arc;

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder, Registry,
    SettingEngineBuilder, register_default_interceptors,
};

pub type PeerResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A peer connection with its UDP socket on `addr`; `registry` may already hold extra
/// interceptors, to which the default ones (NACK, RTCP reports, TWCC) are added.
pub async fn peer_connection(
    handler: Arc<dyn PeerConnectionEventHandler>,
    registry: Registry,
    addr: IpAddr,
) -> PeerResult<Arc<dyn PeerConnection>> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs()?;
    let registry = register_default_interceptors(registry, &mut media_engine)?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_include_loopback_candidate(true)
                // No multicast in a loopback-only sandbox (`unshare -n`): joining fails there.
                .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
                .build(),
        )
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![std::net::SocketAddr::new(addr, 0).to_string()])
        .build()
        .await?;
    Ok(Arc::new(pc))
}

/// An Opus-like (audio) or VP8-like (video) track with a fixed SSRC, named after `tag`.
pub fn local_track(kind: RtpCodecKind, ssrc: u32, tag: &str) -> Arc<TrackLocalStaticRTP> {
    let codec = match kind {
        RtpCodecKind::Audio => RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        _ => RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    };
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("stream-{tag}"),
        format!("{kind}-{tag}"),
        format!("{kind}-{tag}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec,
            ..Default::default()
        }],
    )))
}

/// An RTP packet as the peers send it (version 2, no extensions).
pub fn rtp_packet(
    pt: u8,
    ssrc: u32,
    seq: u32,
    ts: u32,
    marker: bool,
    payload: bytes::Bytes,
) -> rtc::rtp::packet::Packet {
    let mut p = rtc::rtp::packet::Packet::default();
    p.header.version = 2;
    p.header.payload_type = pt;
    // RTP sequence numbers are 16-bit and wrap; the payload carries the full counter.
    p.header.sequence_number = seq as u16;
    p.header.timestamp = ts;
    p.header.ssrc = ssrc;
    p.header.marker = marker;
    p.payload = payload;
    p
}
