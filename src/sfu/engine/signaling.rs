//! Joins, leaves, rooms and the offer/answer state machines of both peer connections.
//!
//! Glare cannot happen: the publisher connection is only ever offered by the client, the
//! subscriber connection only by the SFU, and the SFU never has two subscriber offers out at
//! once (`awaiting_answer`); track changes meanwhile set `offer_pending` and are offered when
//! the answer comes back.

use super::MediaLoop;
use crate::sfu::SfuError;
use crate::sfu::demux::PeerKey;
use crate::sfu::forward::Subscription;
use crate::sfu::room::{MediaFlags, Member};
use crate::sfu::signal::{ClientSignal, CloseReason, Participant, ParticipantId, PcKind, SfuEvent};

use std::time::Instant;
use tokio::sync::mpsc;
use uuid::Uuid;

fn negotiation_error(message: impl Into<String>) -> SfuError {
    SfuError::Negotiation(message.into())
}

impl MediaLoop {
    pub(super) fn join(
        &mut self,
        now: Instant,
        room_id: Uuid,
        who: Participant,
        events: mpsc::Sender<SfuEvent>,
    ) -> ParticipantId {
        // A second join of the same user replaces the first (new tab, reconnect).
        let previous: Vec<ParticipantId> = self
            .rooms
            .get(&room_id)
            .map(|r| {
                r.members
                    .iter()
                    .filter(|p| self.members.get(p).is_some_and(|m| m.info.user_id == who.user_id))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        for old in previous {
            if let Some(member) = self.remove_member(old, false) {
                self.deliver_final(&member, SfuEvent::Replaced);
            }
        }

        let pid = ParticipantId::new();
        self.members.insert(pid, Member::new(who, room_id, events));
        let room = self.rooms.entry(room_id).or_default();
        room.members.push(pid);
        room.empty_since = None;
        self.broadcast_presence(room_id);

        let others = self.others(room_id, pid);
        for other in &others {
            if let Some(m) = self.members.get(other)
                && let Some(flags) = m.media
            {
                let event = peer_media(m.info.user_id, flags);
                self.emit(pid, event);
            }
        }
        for other in others {
            let tracks: Vec<String> =
                self.members.get(&other).map(|m| m.published.keys().cloned().collect()).unwrap_or_default();
            for track in tracks {
                self.subscribe(now, pid, other, &track);
            }
        }
        self.try_offer(now, pid);
        pid
    }

    /// Everyone in the room except `pid`.
    pub(super) fn others(&self, room_id: Uuid, pid: ParticipantId) -> Vec<ParticipantId> {
        self.rooms.get(&room_id).map(|r| r.members.iter().copied().filter(|p| *p != pid).collect()).unwrap_or_default()
    }

    /// Updates the presence mirror and, if `notify`, tells everyone in the room.
    fn publish_presence(&mut self, room_id: Uuid, notify: bool) {
        let Some(room) = self.rooms.get(&room_id) else {
            self.shared.presence.remove(&room_id);
            return;
        };
        let members = room.members.clone();
        let list: Vec<Participant> =
            members.iter().filter_map(|p| self.members.get(p).map(|m| m.info.clone())).collect();
        if list.is_empty() {
            self.shared.presence.remove(&room_id);
        } else {
            self.shared.presence.insert(room_id, list.clone());
        }
        if notify {
            for pid in members {
                let event = SfuEvent::Presence { participants: list.clone() };
                self.emit(pid, event);
            }
        }
    }

    fn broadcast_presence(&mut self, room_id: Uuid) {
        self.publish_presence(room_id, true);
    }

    /// Frees everything of a participant: its peer connections (closed cleanly), its tracks
    /// in other participants' subscriber connections, its map entries. Idempotent.
    ///
    /// Returns the removed member so a final event can be sent to it *after* removal: whoever
    /// receives that event may rely on the participant being gone already.
    pub(super) fn remove_member(&mut self, pid: ParticipantId, notify_room: bool) -> Option<Member> {
        let member = self.members.remove(&pid)?;
        for key in member.peers() {
            self.close_peer(key);
        }
        let room_id = member.room;
        let now = Instant::now();
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.members.retain(|p| *p != pid);
            if room.members.is_empty() {
                room.empty_since = Some(now);
            }
        }
        for other in self.others(room_id, pid) {
            self.unsubscribe_where(other, |s| s.publisher == pid);
            self.try_offer(now, other);
        }
        self.publish_presence(room_id, notify_room);
        self.update_gauges();
        Some(member)
    }

    pub(super) fn close_room(&mut self, room_id: Uuid, reason: CloseReason) {
        let Some(room) = self.rooms.remove(&room_id) else {
            return;
        };
        self.shared.presence.remove(&room_id);
        let mut closed = Vec::new();
        for pid in room.members {
            if let Some(member) = self.members.remove(&pid) {
                for key in member.peers() {
                    self.close_peer(key);
                }
                closed.push(member);
            }
        }
        self.update_gauges();
        for member in closed {
            self.deliver_final(&member, SfuEvent::RoomClosed { reason });
        }
    }

    pub(super) fn signal(&mut self, now: Instant, pid: ParticipantId, msg: ClientSignal) -> Result<(), SfuError> {
        let Some(member) = self.members.get_mut(&pid) else {
            return Err(SfuError::UnknownParticipant);
        };
        match msg {
            ClientSignal::PublishOffer { sdp } => self.on_publish_offer(now, pid, sdp),
            ClientSignal::SubscribeAnswer { sdp } => self.on_subscribe_answer(now, pid, sdp),
            ClientSignal::Candidate { target, candidate, sdp_mid, sdp_mline_index } => {
                let key = match target {
                    PcKind::Publisher => member.publisher,
                    PcKind::Subscriber => member.subscriber,
                };
                // ICE-lite learns the client's addresses from its checks, so a candidate for a
                // connection that does not exist yet, or end-of-candidates, can be ignored.
                let Some(key) = key.filter(|_| !candidate.trim().is_empty()) else {
                    return Ok(());
                };
                if let Some(peer) = self.peers.get_mut(&key)
                    && let Err(err) = peer.add_remote_candidate(candidate, sdp_mid, sdp_mline_index)
                {
                    tracing::debug!(%pid, %err, "remote candidate ignored");
                }
                self.touch(key);
                Ok(())
            }
            ClientSignal::Media { audio, video, screen } => {
                let flags = MediaFlags { audio, video, screen };
                member.media = Some(flags);
                let (user_id, room) = (member.info.user_id, member.room);
                for other in self.others(room, pid) {
                    self.emit(other, peer_media(user_id, flags));
                }
                Ok(())
            }
            ClientSignal::RequestKeyframe => {
                let wanted: Vec<(ParticipantId, String)> = member
                    .subscriptions
                    .values()
                    .filter(|s| s.source.is_video())
                    .map(|s| (s.publisher, s.source_track.clone()))
                    .collect();
                for (publisher, track) in wanted {
                    self.request_keyframe(now, publisher, &track);
                }
                Ok(())
            }
        }
    }

    fn on_publish_offer(&mut self, now: Instant, pid: ParticipantId, sdp: String) -> Result<(), SfuError> {
        let key = match self.members.get(&pid).and_then(|m| m.publisher) {
            Some(key) => key,
            None => {
                let key = self.new_peer(now, pid, PcKind::Publisher)?;
                if let Some(m) = self.members.get_mut(&pid) {
                    m.publisher = Some(key);
                }
                key
            }
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(SfuError::Internal("publisher peer missing".to_owned()));
        };
        let result = peer.answer(now, &self.config.peer, sdp);
        let ufrag = peer.ufrag.clone();
        let receiving = peer.receiving();
        self.touch(key);
        match result {
            Ok(answer) => {
                if let Some(ufrag) = ufrag {
                    self.demux.set_ufrag(key, &ufrag);
                }
                self.emit(pid, SfuEvent::PublishAnswer { sdp: answer });
                // Tracks the client stopped sending in this re-offer are unpublished.
                let stopped: Vec<String> = self
                    .members
                    .get(&pid)
                    .map(|m| {
                        m.published
                            .iter()
                            .filter(|(_, t)| !receiving.contains(&t.receiver))
                            .map(|(id, _)| id.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                for track in stopped {
                    self.on_track_closed(now, pid, &track);
                }
                Ok(())
            }
            Err(err) => {
                let message = err.to_string();
                self.emit(pid, SfuEvent::Error { code: "bad_sdp", message: message.clone() });
                Err(negotiation_error(message))
            }
        }
    }

    fn on_subscribe_answer(&mut self, now: Instant, pid: ParticipantId, sdp: String) -> Result<(), SfuError> {
        let Some(member) = self.members.get_mut(&pid) else {
            return Err(SfuError::UnknownParticipant);
        };
        let Some(key) = member.subscriber.filter(|_| member.awaiting_answer) else {
            return Err(negotiation_error("no subscribe offer is outstanding"));
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(SfuError::Internal("subscriber peer missing".to_owned()));
        };
        if let Err(err) = peer.apply_answer(now, sdp) {
            let message = err.to_string();
            self.emit(pid, SfuEvent::Error { code: "bad_sdp", message: message.clone() });
            return Err(negotiation_error(message));
        }
        member.awaiting_answer = false;
        // Forwarding starts once we know the payload type the client accepted.
        let mut newly_video = Vec::new();
        for sub in member.subscriptions.values_mut() {
            if sub.payload_type.is_none() {
                sub.payload_type = peer.negotiated_payload_type(sub.sender, &sub.codec);
                match sub.payload_type {
                    Some(_) if sub.source.is_video() => {
                        newly_video.push((sub.publisher, sub.source_track.clone()));
                    }
                    Some(_) => {}
                    None => tracing::warn!(%pid, codec = %sub.codec.mime_type,
                        "subscriber did not accept the publisher's codec"),
                }
            }
        }
        // Before the connection is up a keyframe would be wasted; the Connected event asks.
        let connected = peer.connected;
        self.touch(key);
        if connected {
            for (publisher, track) in newly_video {
                self.request_keyframe(now, publisher, &track);
            }
        }
        self.try_offer(now, pid);
        Ok(())
    }

    /// Adds one publisher track to a subscriber's connection (offered by `try_offer`).
    pub(super) fn subscribe(&mut self, now: Instant, sub_pid: ParticipantId, pub_pid: ParticipantId, track_id: &str) {
        let Some(publisher) = self.members.get(&pub_pid) else {
            return;
        };
        let Some(track) = publisher.published.get(track_id).cloned() else {
            return;
        };
        let stream_id = publisher.info.user_id.to_string();
        let key = match self.subscriber_peer(now, sub_pid) {
            Ok(key) => key,
            Err(err) => {
                let event = SfuEvent::Error { code: "internal", message: err.to_string() };
                self.emit(sub_pid, event);
                return;
            }
        };
        let (Some(member), Some(peer)) = (self.members.get_mut(&sub_pid), self.peers.get_mut(&key)) else {
            return;
        };
        // Our own SSRC per subscription: SSRCs must be unique within a connection, and the
        // publisher's may collide with another publisher's.
        let ssrc = rand::random_range(1..=u32::MAX);
        let out_track = format!("{}-{}", track.source, Uuid::new_v4().simple());
        match peer.add_send_track(stream_id, out_track.clone(), track.kind, track.codec.clone(), ssrc) {
            Ok(sender) => {
                member.subscriptions.insert(
                    out_track,
                    Subscription {
                        publisher: pub_pid,
                        source_track: track_id.to_owned(),
                        source: track.source,
                        sender,
                        ssrc,
                        codec: track.codec,
                        payload_type: None,
                    },
                );
                member.offer_pending = true;
            }
            Err(err) => tracing::warn!(%sub_pid, %err, "could not add a track to subscriber"),
        }
    }

    fn subscriber_peer(&mut self, now: Instant, pid: ParticipantId) -> Result<PeerKey, SfuError> {
        match self.members.get(&pid).map(|m| m.subscriber) {
            None => Err(SfuError::UnknownParticipant),
            Some(Some(key)) => Ok(key),
            Some(None) => {
                let key = self.new_peer(now, pid, PcKind::Subscriber)?;
                if let Some(m) = self.members.get_mut(&pid) {
                    m.subscriber = Some(key);
                }
                Ok(key)
            }
        }
    }

    /// Removes the subscriptions matching `pred` from a subscriber's connection.
    pub(super) fn unsubscribe_where(&mut self, sub_pid: ParticipantId, pred: impl Fn(&Subscription) -> bool) {
        let Some(member) = self.members.get_mut(&sub_pid) else {
            return;
        };
        let gone: Vec<String> = member.subscriptions.iter().filter(|(_, s)| pred(s)).map(|(k, _)| k.clone()).collect();
        if gone.is_empty() {
            return;
        }
        let key = member.subscriber;
        for track in gone {
            let Some(sub) = member.subscriptions.remove(&track) else {
                continue;
            };
            if let Some(peer) = key.and_then(|k| self.peers.get_mut(&k))
                && let Err(err) = peer.remove_send_track(sub.sender)
            {
                tracing::debug!(%sub_pid, %err, "remove_track failed");
            }
            member.offer_pending = true;
        }
        if let Some(key) = key {
            self.touch(key);
        }
    }

    /// Sends a new subscriber offer if the track set changed and none is outstanding.
    pub(super) fn try_offer(&mut self, now: Instant, pid: ParticipantId) {
        let Some(member) = self.members.get_mut(&pid) else {
            return;
        };
        if !member.offer_pending || member.awaiting_answer {
            return;
        }
        let Some(key) = member.subscriber else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        member.offer_pending = false;
        let result = peer.offer(now, &self.config.peer);
        let ufrag = peer.ufrag.clone();
        self.touch(key);
        match result {
            Ok(sdp) => {
                if let Some(member) = self.members.get_mut(&pid) {
                    member.awaiting_answer = true;
                }
                if let Some(ufrag) = ufrag {
                    self.demux.set_ufrag(key, &ufrag);
                }
                self.emit(pid, SfuEvent::SubscribeOffer { sdp });
            }
            Err(err) => {
                let event = SfuEvent::Error { code: "negotiation_failed", message: err.to_string() };
                self.emit(pid, event);
            }
        }
    }
}

fn peer_media(user_id: Uuid, flags: MediaFlags) -> SfuEvent {
    SfuEvent::PeerMedia { user_id, audio: flags.audio, video: flags.video, screen: flags.screen }
}
