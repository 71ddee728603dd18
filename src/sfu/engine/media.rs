//! The media path: peer events, RTP forwarding, keyframe requests and the bitrate cap.

use super::MediaLoop;
use crate::sfu::demux::PeerKey;
use crate::sfu::forward::{PublishedTrack, Source, keyframe_request_allowed, rewrite};
use crate::sfu::peer::{
    ConnState, Event, FullIntraRequest, Message, Pli, ReceiverId, RtpPacket, TrackEvent, candidate_init,
};
use crate::sfu::signal::{ParticipantId, PcKind, SfuEvent};
use crate::sfu::stats::bump;
use rtc::peer_connection::event::RTCTrackEventInit;
use std::time::Instant;

impl MediaLoop {
    pub(super) fn on_peer_event(&mut self, now: Instant, key: PeerKey, event: Event) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let (owner, kind) = (peer.owner, peer.kind);
        match event {
            Event::OnIceCandidateEvent(e) => {
                if let Some(init) = candidate_init(&e.candidate) {
                    let event = SfuEvent::Candidate {
                        target: kind,
                        candidate: init.candidate,
                        // rtc reports sdpMid "" (no such mid): browsers reject that, while
                        // "no mid, m-line 0" is valid and, with BUNDLE, means the transport.
                        sdp_mid: init.sdp_mid.filter(|mid| !mid.is_empty()),
                        sdp_mline_index: init.sdp_mline_index,
                    };
                    self.emit(owner, event);
                }
            }
            Event::OnConnectionStateChangeEvent(state) => match state {
                ConnState::Connected => {
                    peer.connected = true;
                    tracing::debug!(%owner, ?kind, "peer connection connected");
                    if kind == PcKind::Subscriber {
                        self.request_subscribed_keyframes(now, owner);
                    }
                }
                // We remove peers before closing them, so a Closed seen here came from the
                // client; either way the participant cannot continue without rejoining.
                ConnState::Failed | ConnState::Closed => {
                    let event =
                        SfuEvent::Error { code: "connection_failed", message: format!("{kind:?} connection {state}") };
                    self.doomed.push((owner, Some(event)));
                }
                _ => {}
            },
            Event::OnTrack(TrackEvent::OnOpen(init)) if kind == PcKind::Publisher => {
                self.on_track_open(now, key, owner, init);
            }
            // Not emitted by rtc 0.21 (see `Peer::receiving`), handled in case it ever is.
            Event::OnTrack(TrackEvent::OnClose(track_id)) if kind == PcKind::Publisher => {
                self.on_track_closed(now, owner, &track_id);
            }
            _ => {}
        }
    }

    fn on_track_open(&mut self, now: Instant, key: PeerKey, owner: ParticipantId, init: RTCTrackEventInit) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some((kind, codec, video_ordinal)) = peer.receiver_info(init.receiver_id, init.ssrc) else {
            tracing::warn!(%owner, track = %init.track_id, "track opened without codec");
            return;
        };
        let Some(member) = self.members.get_mut(&owner) else {
            return;
        };
        if let Some(track) = member.published.get_mut(&init.track_id) {
            // Same track, new SSRC (e.g. after an ICE restart): subscriptions stay as they are.
            track.ssrc = init.ssrc;
            return;
        }
        let source = Source::classify(kind, video_ordinal);
        tracing::debug!(%owner, %source, codec = %codec.mime_type, "track published");
        member.published.insert(
            init.track_id.clone(),
            PublishedTrack {
                receiver: init.receiver_id,
                ssrc: init.ssrc,
                source,
                kind,
                codec,
                last_keyframe_request: None,
            },
        );
        let room = member.room;
        for other in self.others(room, owner) {
            self.subscribe(now, other, owner, &init.track_id);
            self.try_offer(now, other);
        }
    }

    pub(super) fn on_track_closed(&mut self, now: Instant, owner: ParticipantId, track_id: &str) {
        let Some(member) = self.members.get_mut(&owner) else {
            return;
        };
        if member.published.remove(track_id).is_none() {
            return;
        }
        let room = member.room;
        for other in self.others(room, owner) {
            self.unsubscribe_where(other, |s| s.publisher == owner && s.source_track == track_id);
            self.try_offer(now, other);
        }
    }

    pub(super) fn on_peer_message(&mut self, now: Instant, key: PeerKey, message: Message) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let (owner, kind) = (peer.owner, peer.kind);
        match (kind, message) {
            (PcKind::Publisher, Message::RtpPacket(track_id, packet)) => {
                self.forward(now, owner, &track_id, &packet);
            }
            (PcKind::Subscriber, Message::RtcpPacket(track_id, packets)) => {
                let wants_keyframe =
                    packets.iter().any(|p| p.as_any().is::<Pli>() || p.as_any().is::<FullIntraRequest>());
                if !wants_keyframe {
                    return;
                }
                let target = self
                    .members
                    .get(&owner)
                    .and_then(|m| m.subscriptions.get(&track_id))
                    .map(|s| (s.publisher, s.source_track.clone()));
                if let Some((publisher, track)) = target {
                    self.request_keyframe(now, publisher, &track);
                }
            }
            _ => {}
        }
    }

    /// Copies one publisher packet to every subscriber of that track in the room.
    fn forward(&mut self, now: Instant, owner: ParticipantId, track_id: &str, packet: &RtpPacket) {
        let Some(member) = self.members.get(&owner) else {
            return;
        };
        if !member.published.contains_key(track_id) {
            return;
        }
        let Some(room) = self.rooms.get(&member.room) else {
            return;
        };
        let mut touched: Vec<PeerKey> = Vec::new();
        for other in room.members.iter().filter(|p| **p != owner) {
            let Some(sub_member) = self.members.get(other) else {
                continue;
            };
            let Some(sub_key) = sub_member.subscriber else {
                continue;
            };
            let Some(sub) =
                sub_member.subscriptions.values().find(|s| s.publisher == owner && s.source_track == track_id)
            else {
                continue;
            };
            let Some(payload_type) = sub.payload_type else {
                continue;
            };
            let Some(peer) = self.peers.get_mut(&sub_key).filter(|p| p.connected) else {
                continue;
            };
            match peer.write_rtp(now, sub.sender, rewrite(packet, sub.ssrc, payload_type)) {
                Ok(()) => bump(&self.shared.counters.rtp_forwarded),
                Err(err) => tracing::trace!(%err, "forward failed"),
            }
            touched.push(sub_key);
        }
        for key in touched {
            self.touch(key);
        }
    }

    fn request_subscribed_keyframes(&mut self, now: Instant, subscriber: ParticipantId) {
        let wanted: Vec<(ParticipantId, String)> = self
            .members
            .get(&subscriber)
            .map(|m| {
                m.subscriptions
                    .values()
                    .filter(|s| s.source.is_video() && s.payload_type.is_some())
                    .map(|s| (s.publisher, s.source_track.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (publisher, track) in wanted {
            self.request_keyframe(now, publisher, &track);
        }
    }

    /// Sends a PLI to the publisher of a video track (throttled per track).
    pub(super) fn request_keyframe(&mut self, now: Instant, publisher: ParticipantId, track_id: &str) {
        let Some(member) = self.members.get_mut(&publisher) else {
            return;
        };
        let Some(key) = member.publisher else {
            return;
        };
        let Some(track) = member.published.get_mut(track_id) else {
            return;
        };
        if !track.source.is_video() || !keyframe_request_allowed(&mut track.last_keyframe_request, now) {
            return;
        }
        let (receiver, ssrc) = (track.receiver, track.ssrc);
        if let Some(peer) = self.peers.get_mut(&key) {
            match peer.send_pli(now, receiver, ssrc) {
                Ok(()) => bump(&self.shared.counters.keyframe_requests),
                Err(err) => tracing::debug!(%publisher, %err, "PLI failed"),
            }
            self.touch(key);
        }
    }

    /// Tells every video publisher the configured cap (REMB), once per housekeeping tick.
    pub(super) fn announce_bitrate_caps(&mut self, now: Instant) {
        let cap = self.config.max_bitrate_bps;
        if cap == 0 {
            return;
        }
        let mut work: Vec<(PeerKey, ReceiverId, Vec<u32>)> = Vec::new();
        for member in self.members.values() {
            let Some(key) = member.publisher else {
                continue;
            };
            let videos: Vec<&PublishedTrack> = member.published.values().filter(|t| t.source.is_video()).collect();
            if let Some(first) = videos.first() {
                let ssrcs = videos.iter().map(|t| t.ssrc).collect();
                work.push((key, first.receiver, ssrcs));
            }
        }
        for (key, receiver, ssrcs) in work {
            if let Some(peer) = self.peers.get_mut(&key).filter(|p| p.connected) {
                if let Err(err) = peer.send_remb(now, receiver, cap, ssrcs) {
                    tracing::debug!(%err, "REMB failed");
                }
                self.touch(key);
            }
        }
    }
}
