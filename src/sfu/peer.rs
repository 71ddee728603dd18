//! One server-side peer connection: a thin wrapper over `rtc`'s sans-I/O `RTCPeerConnection`.
//!
//! This is the only module (with `rtcp_tap`) that names `rtc` types; everything it hands to the
//! rest of the crate is either plain data or an `rtc` id kept `pub(crate)`. The wrapper owns no
//! socket and no clock: the media loop feeds it datagrams and instants and drains its output.

use crate::sfu::rtcp_tap::DeliverRtcp;
use crate::sfu::signal::{ParticipantId, PcKind};
use bytes::BytesMut;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::net::SocketAddr;
use std::time::Instant;

pub(crate) use rtc::rtp::packet::Packet as RtpPacket;
pub(crate) type RtcError = rtc::shared::error::Error;
pub(crate) type Event = RTCPeerConnectionEvent;
pub(crate) type Message = RTCMessage;
pub(crate) type Codec = RTCRtpCodec;
pub(crate) type SenderId = RTCRtpSenderId;
pub(crate) type ReceiverId = RTCRtpReceiverId;
pub(crate) use rtc::peer_connection::event::RTCTrackEvent as TrackEvent;
pub(crate) use rtc::peer_connection::state::RTCPeerConnectionState as ConnState;
pub(crate) use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
pub(crate) use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication as Pli;

/// Where inbound RTCP is marked for the application: past every default interceptor
/// (the highest default slot is 13_000), so NACK/reports were handled before we see it.
const DELIVER_RTCP_SLOT: usize = 14_000;

/// What every peer connection of this SFU shares.
#[derive(Debug, Clone)]
pub(crate) struct PeerSettings {
    /// The host candidates to advertise (one socket; one or two addresses of it).
    pub(crate) candidates: Vec<SocketAddr>,
    pub(crate) include_loopback: bool,
}

impl PeerSettings {
    /// The local address to report for a datagram from `peer`: the advertised candidate of the
    /// same family and scope. The ICE agent only accepts traffic whose local address matches one
    /// of its candidates, and with a wildcard bind the kernel does not tell us the real one.
    pub(crate) fn local_for(&self, peer: SocketAddr) -> SocketAddr {
        let same_family = |c: &&SocketAddr| c.is_ipv4() == peer.is_ipv4();
        self.candidates
            .iter()
            .filter(same_family)
            .find(|c| c.ip().is_loopback() == peer.ip().is_loopback())
            .or_else(|| self.candidates.iter().find(same_family))
            .or(self.candidates.first())
            .copied()
            .unwrap_or(peer)
    }
}

/// A server-side peer connection plus the bookkeeping the loop needs about it.
pub(crate) struct Peer {
    pc: RTCPeerConnection,
    pub(crate) kind: PcKind,
    pub(crate) owner: ParticipantId,
    /// Our ICE ufrag, read back from our own local description (single source of truth).
    pub(crate) ufrag: Option<String>,
    candidates_added: bool,
    pub(crate) connected: bool,
    /// When this peer was created; the connect deadline runs from here.
    pub(crate) created: Instant,
    /// Set if the WebRTC stack panicked inside this connection: its state is unknown, so it
    /// is refused further input and its participant is dropped by the loop.
    pub(crate) poisoned: bool,
}

fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![],
    }
}

fn media_engine() -> Result<MediaEngine, RtcError> {
    let mut me = MediaEngine::default();
    let codecs = [
        (codec(MIME_TYPE_OPUS, 48000, 2, "minptime=10;useinbandfec=1"), 111, RtpCodecKind::Audio),
        (codec(MIME_TYPE_VP8, 90000, 0, ""), 96, RtpCodecKind::Video),
        (
            codec(MIME_TYPE_H264, 90000, 0, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
            102,
            RtpCodecKind::Video,
        ),
    ];
    for (rtp_codec, payload_type, kind) in codecs {
        me.register_codec(RTCRtpCodecParameters { rtp_codec, payload_type }, kind)?;
    }
    // NACK feedback is registered by the default interceptors; keyframe requests and the
    // bitrate cap need these too, or browsers will not honour PLI/FIR/REMB.
    for (typ, parameter) in [("nack", "pli"), ("ccm", "fir"), ("goog-remb", "")] {
        me.register_feedback(
            RTCPFeedback { typ: typ.to_owned(), parameter: parameter.to_owned() },
            RtpCodecKind::Video,
        );
    }
    Ok(me)
}

/// Our ICE ufrag from an SDP we generated.
fn sdp_ufrag(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|l| l.trim().strip_prefix("a=ice-ufrag:")).map(|u| u.trim().to_owned())
}

impl Peer {
    pub(crate) fn new(
        kind: PcKind,
        owner: ParticipantId,
        settings: &PeerSettings,
        now: Instant,
    ) -> Result<Self, RtcError> {
        // ICE-lite needs no remote candidates (it learns addresses from the client's checks),
        // so mDNS resolution is off: it would only send multicast queries from the media socket.
        let setting_engine = SettingEngineBuilder::new()
            .with_lite(true)
            .with_include_loopback_candidate(settings.include_loopback)
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let mut me = media_engine()?;
        let registry = Registry::new().with(Slot::from(DELIVER_RTCP_SLOT), DeliverRtcp::default());
        let registry = register_default_interceptors(registry, &mut me)?;
        let pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(setting_engine)
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .build(now)?;
        Ok(Self {
            pc,
            kind,
            owner,
            ufrag: None,
            candidates_added: false,
            connected: false,
            created: now,
            poisoned: false,
        })
    }

    /// Runs `f` on the connection, turning a panic inside the WebRTC stack into an error.
    ///
    /// The media loop serves every participant, so one client able to trigger a library bug
    /// must cost only its own connection, not the SFU.
    fn guard<T>(&mut self, f: impl FnOnce(&mut RTCPeerConnection) -> Result<T, RtcError>) -> Result<T, RtcError> {
        if self.poisoned {
            return Err(RtcError::Other("peer connection is poisoned".to_owned()));
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut self.pc))) {
            Ok(result) => result,
            Err(_) => {
                self.poisoned = true;
                Err(RtcError::Other("panic inside the WebRTC stack".to_owned()))
            }
        }
    }

    /// Like `guard` for the `poll_*` calls: a panic yields `None` and poisons the peer.
    fn guard_poll<T>(&mut self, f: impl FnOnce(&mut RTCPeerConnection) -> Option<T>) -> Option<T> {
        self.guard(|pc| Ok(f(pc))).ok().flatten()
    }

    /// Adds our host candidate(s) once, before the first local description, so they are in it.
    fn ensure_candidates(&mut self, settings: &PeerSettings) -> Result<(), RtcError> {
        if self.candidates_added {
            return Ok(());
        }
        for addr in &settings.candidates {
            let candidate = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: addr.ip().to_string(),
                    port: addr.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()?;
            self.pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
        }
        self.candidates_added = true;
        Ok(())
    }

    fn local_sdp(&mut self) -> Result<String, RtcError> {
        let sdp = self.pc.local_description().ok_or(RtcError::ErrPeerConnLocalDescriptionNil)?.sdp;
        self.ufrag = sdp_ufrag(&sdp);
        Ok(sdp)
    }

    /// Publisher side: applies the client's offer and returns our answer.
    pub(crate) fn answer(
        &mut self,
        now: Instant,
        settings: &PeerSettings,
        offer_sdp: String,
    ) -> Result<String, RtcError> {
        let offer = RTCSessionDescription::offer(offer_sdp)?;
        self.guard(|pc| pc.set_remote_description(now, offer))?;
        self.ensure_candidates(settings)?;
        self.guard(|pc| {
            let answer = pc.create_answer(None)?;
            pc.set_local_description(now, answer)
        })?;
        self.local_sdp()
    }

    /// Subscriber side: creates and applies a new offer, returns it.
    pub(crate) fn offer(&mut self, now: Instant, settings: &PeerSettings) -> Result<String, RtcError> {
        self.ensure_candidates(settings)?;
        self.guard(|pc| {
            let offer = pc.create_offer(None)?;
            pc.set_local_description(now, offer)
        })?;
        self.local_sdp()
    }

    /// Subscriber side: applies the client's answer to our last offer.
    pub(crate) fn apply_answer(&mut self, now: Instant, answer_sdp: String) -> Result<(), RtcError> {
        let answer = RTCSessionDescription::answer(answer_sdp)?;
        self.guard(|pc| pc.set_remote_description(now, answer))
    }

    pub(crate) fn add_remote_candidate(
        &mut self,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
    ) -> Result<(), RtcError> {
        let init = RTCIceCandidateInit { candidate, sdp_mid, sdp_mline_index, ..Default::default() };
        self.guard(|pc| pc.add_remote_candidate(init))
    }

    pub(crate) fn handle_datagram(
        &mut self,
        now: Instant,
        local_addr: SocketAddr,
        peer_addr: SocketAddr,
        data: &[u8],
    ) -> Result<(), RtcError> {
        let message = BytesMut::from(data);
        self.guard(|pc| {
            pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr,
                    peer_addr,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message,
            })
        })
    }

    /// Next datagram to send: `(destination, bytes)`.
    pub(crate) fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.guard_poll(|pc| pc.poll_write()).map(|m| (m.transport.peer_addr, m.message))
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.guard_poll(|pc| pc.poll_event())
    }

    pub(crate) fn poll_message(&mut self) -> Option<Message> {
        self.guard_poll(|pc| pc.poll_read()).map(|TaggedRTCMessage { message, .. }| message)
    }

    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        self.guard_poll(|pc| pc.poll_timeout())
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), RtcError> {
        self.guard(|pc| pc.handle_timeout(now))
    }

    /// Closes the connection; the caller drains `poll_transmit` afterwards so the DTLS
    /// close_notify reaches the client.
    pub(crate) fn close(&mut self) -> Result<(), RtcError> {
        self.guard(|pc| pc.close())
    }

    /// Adds a send-only track carrying `codec` with our own SSRC.
    pub(crate) fn add_send_track(
        &mut self,
        stream_id: String,
        track_id: String,
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
        ssrc: u32,
    ) -> Result<SenderId, RtcError> {
        let track = MediaStreamTrack::new(
            stream_id,
            track_id.clone(),
            track_id,
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                codec,
                ..Default::default()
            }],
        );
        self.guard(|pc| pc.add_track(track))
    }

    pub(crate) fn remove_send_track(&mut self, sender: SenderId) -> Result<(), RtcError> {
        self.guard(|pc| pc.remove_track(sender))
    }

    /// The payload type the client accepted for `codec` on this sender, once negotiated.
    pub(crate) fn negotiated_payload_type(&mut self, sender: SenderId, codec: &Codec) -> Option<u8> {
        let mut s = self.pc.rtp_sender(sender)?;
        let codecs = &s.get_parameters().rtp_parameters.codecs;
        let same_mime = |c: &&RTCRtpCodecParameters| c.rtp_codec.mime_type.eq_ignore_ascii_case(&codec.mime_type);
        codecs
            .iter()
            .filter(same_mime)
            .find(|c| c.rtp_codec.sdp_fmtp_line == codec.sdp_fmtp_line)
            .or_else(|| codecs.iter().find(same_mime))
            .map(|c| c.payload_type)
    }

    pub(crate) fn write_rtp(&mut self, now: Instant, sender: SenderId, packet: RtpPacket) -> Result<(), RtcError> {
        self.guard(|pc| pc.rtp_sender(sender).ok_or(RtcError::ErrRTPSenderNotExisted)?.write_rtp(now, packet))
    }

    /// Sends a PLI for `media_ssrc` on a receiving track.
    pub(crate) fn send_pli(&mut self, now: Instant, receiver: ReceiverId, media_ssrc: u32) -> Result<(), RtcError> {
        self.guard(|pc| {
            pc.rtp_receiver(receiver)
                .ok_or(RtcError::ErrRTPReceiverNotExisted)?
                .write_rtcp(now, vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc })])
        })
    }

    /// Announces a bitrate cap (REMB) for the given SSRCs of one receiving track.
    pub(crate) fn send_remb(
        &mut self,
        now: Instant,
        receiver: ReceiverId,
        bitrate_bps: u32,
        ssrcs: Vec<u32>,
    ) -> Result<(), RtcError> {
        self.guard(|pc| {
            pc.rtp_receiver(receiver).ok_or(RtcError::ErrRTPReceiverNotExisted)?.write_rtcp(
                now,
                vec![Box::new(ReceiverEstimatedMaximumBitrate { sender_ssrc: 0, bitrate: bitrate_bps as f32, ssrcs })],
            )
        })
    }

    /// Receivers whose transceiver receives media as of the last negotiation.
    ///
    /// `rtc` emits no track-closed event when a client stops sending a track in a re-offer, so
    /// the SFU compares this set with its published tracks after every publisher negotiation.
    pub(crate) fn receiving(&mut self) -> Vec<ReceiverId> {
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        ids.into_iter()
            .filter_map(|id| {
                let t = self.pc.rtp_transceiver(id)?;
                let receiving = matches!(
                    t.current_direction(),
                    RTCRtpTransceiverDirection::Recvonly | RTCRtpTransceiverDirection::Sendrecv
                );
                t.receiver().filter(|_| receiving)
            })
            .collect()
    }

    /// Kind, codec and video ordinal (0 = first video m-line) of a receiving track.
    ///
    /// The ordinal is how camera and screen share are told apart: clients put the camera in the
    /// first video section and the screen share in the second.
    pub(crate) fn receiver_info(&mut self, receiver: ReceiverId, ssrc: u32) -> Option<(RtpCodecKind, Codec, usize)> {
        let receivers: Vec<ReceiverId> = self
            .pc
            .get_transceivers()
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|t| self.pc.rtp_transceiver(t).and_then(|t| t.receiver()))
            .collect();
        let mut video_ordinal = 0;
        for r in receivers {
            let rx = self.pc.rtp_receiver(r)?;
            let kind = rx.track().kind();
            if r == receiver {
                let codec = rx.track().codec(ssrc)?.clone();
                return Some((kind, codec, video_ordinal));
            }
            if kind == RtpCodecKind::Video {
                video_ordinal += 1;
            }
        }
        None
    }
}

/// Text form of an ICE candidate event, for trickling to the client.
pub(crate) fn candidate_init(candidate: &RTCIceCandidate) -> Option<RTCIceCandidateInit> {
    candidate.to_json().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ufrag_is_read_from_sdp() {
        let sdp = "v=0\r\na=ice-ufrag:AbC\r\na=ice-pwd:x\r\n";
        assert_eq!(sdp_ufrag(sdp).as_deref(), Some("AbC"));
        assert_eq!(sdp_ufrag("v=0\r\n"), None);
    }

    #[test]
    fn local_address_matches_scope() {
        let s = PeerSettings {
            candidates: vec![
                "192.0.2.1:8443".parse().unwrap_or_else(|_| unreachable!()),
                "127.0.0.1:8443".parse().unwrap_or_else(|_| unreachable!()),
            ],
            include_loopback: true,
        };
        let lo = "127.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!());
        let ext = "198.51.100.7:5000".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(s.local_for(lo), s.candidates[1]);
        assert_eq!(s.local_for(ext), s.candidates[0]);
    }

    #[test]
    fn a_peer_builds() {
        let s = PeerSettings {
            candidates: vec!["127.0.0.1:9".parse().unwrap_or_else(|_| unreachable!())],
            include_loopback: true,
        };
        assert!(Peer::new(PcKind::Publisher, ParticipantId::new(), &s, Instant::now()).is_ok());
    }
}
