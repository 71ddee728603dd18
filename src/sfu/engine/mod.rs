//! The media loop: one task that owns the UDP socket, every peer connection and every room.
//!
//! Why one task: an SFU's hot path touches two peer connections per packet (the publisher's to
//! read, the subscriber's to write) and their rooms. With one owner there is no lock per packet,
//! no cross-task channel per packet, and no ordering question between signaling and media: a
//! `leave` is applied between two datagrams, never during one. `rtc` is sans-I/O, so the loop
//! only ever waits in one place (`select!` over socket, commands and the earliest peer timer);
//! sends use `try_send_to` and never wait. Telehealth rooms are small (2–4 people), so one core
//! is plenty for the forwarding; if it ever is not, the same code shards by room into several
//! loops behind a socket-reader task, without changing the public API.

mod media;
mod signaling;

use crate::sfu::SfuError;
use crate::sfu::demux::{Class, Demux, PeerKey, classify, stun_local_ufrag};
use crate::sfu::peer::{Peer, PeerSettings};
use crate::sfu::room::{Delivery, Member, Room};
use crate::sfu::signal::{ClientSignal, CloseReason, Participant, ParticipantId, SfuEvent};
use crate::sfu::stats::{Counters, bump, set};
use dashmap::DashMap;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// How often REMB, connect deadlines and empty rooms are looked at.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);
/// Datagrams read in one go before peers are serviced (amortises the `select!`).
const RECV_BATCH: usize = 64;
/// Larger than any sane WebRTC datagram (MTU ~1500); longer ones are truncated and then fail
/// authentication in the peer connection, which is the right outcome.
const RECV_BUFFER: usize = 2048;

/// State shared with `Sfu` handles: read without involving the loop.
pub(crate) struct Shared {
    pub(crate) counters: Counters,
    /// Presence per room, mirrored by the loop on every change, for `Sfu::participants`.
    pub(crate) presence: DashMap<Uuid, Vec<Participant>>,
    pub(crate) local_addr: SocketAddr,
}

/// Loop settings derived from `SfuConfig`.
pub(crate) struct LoopConfig {
    pub(crate) peer: PeerSettings,
    pub(crate) max_bitrate_bps: u32,
    pub(crate) empty_room_grace: Duration,
    pub(crate) connect_timeout: Duration,
}

/// Sizes of every internal table, for leak tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableSizes {
    /// Joined participants.
    pub members: usize,
    /// Rooms, including empty ones in their grace period.
    pub rooms: usize,
    /// Open peer connections.
    pub peers: usize,
    /// Registered ICE ufrags.
    pub ufrags: usize,
    /// Learned remote addresses.
    pub addrs: usize,
    /// Scheduled peer timers.
    pub timers: usize,
    /// Rooms in the presence mirror.
    pub presence: usize,
}

pub(crate) enum Command {
    Join { room: Uuid, who: Participant, events: mpsc::Sender<SfuEvent>, reply: oneshot::Sender<ParticipantId> },
    Signal { participant: ParticipantId, msg: ClientSignal, reply: oneshot::Sender<Result<(), SfuError>> },
    Leave { participant: ParticipantId, reply: oneshot::Sender<()> },
    CloseRoom { room: Uuid, reason: CloseReason, reply: oneshot::Sender<()> },
    Sizes { reply: oneshot::Sender<TableSizes> },
    Shutdown { reply: oneshot::Sender<()> },
}

pub(crate) struct MediaLoop {
    socket: UdpSocket,
    config: LoopConfig,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    peers: HashMap<PeerKey, Peer>,
    next_key: PeerKey,
    demux: Demux,
    /// Earliest-first peer deadlines; `deadlines` holds each peer's current entry.
    timers: BTreeSet<(Instant, PeerKey)>,
    deadlines: HashMap<PeerKey, Instant>,
    /// Peers touched since they were last drained.
    dirty: VecDeque<PeerKey>,
    dirty_set: HashSet<PeerKey>,
    members: HashMap<ParticipantId, Member>,
    rooms: HashMap<Uuid, Room>,
    /// Participants to remove at the end of this turn, with the event to tell them why.
    doomed: Vec<(ParticipantId, Option<SfuEvent>)>,
}

impl MediaLoop {
    pub(crate) fn new(
        socket: UdpSocket,
        config: LoopConfig,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
    ) -> Self {
        Self {
            socket,
            config,
            shared,
            commands,
            peers: HashMap::new(),
            next_key: 1,
            demux: Demux::default(),
            timers: BTreeSet::new(),
            deadlines: HashMap::new(),
            dirty: VecDeque::new(),
            dirty_set: HashSet::new(),
            members: HashMap::new(),
            rooms: HashMap::new(),
            doomed: Vec::new(),
        }
    }

    /// Runs until `Shutdown` or until every `Sfu` handle is dropped; closes all peers on exit.
    pub(crate) async fn run(mut self) {
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut housekeeping = Instant::now() + HOUSEKEEPING_INTERVAL;
        let mut shutdown_reply = None;
        loop {
            let wake = self.timers.first().map_or(housekeeping, |(at, _)| (*at).min(housekeeping));
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                res = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = res {
                        self.on_datagram(&buf[..n], from);
                        for _ in 1..RECV_BATCH {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((n, from)) => self.on_datagram(&buf[..n], from),
                                Err(_) => break,
                            }
                        }
                    }
                    // A receive error on an unconnected UDP socket is transient (e.g. an ICMP
                    // report); the next iteration simply reads again.
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            let now = Instant::now();
            self.fire_timers(now);
            if now >= housekeeping {
                self.housekeeping(now);
                housekeeping = now + HOUSEKEEPING_INTERVAL;
            }
            self.settle();
        }
        self.close_all(CloseReason::Shutdown);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// Drains touched peers and applies pending removals until nothing is left to do.
    fn settle(&mut self) {
        loop {
            self.pump();
            if self.doomed.is_empty() {
                break;
            }
            for (pid, event) in std::mem::take(&mut self.doomed) {
                if let (Some(member), Some(event)) = (self.remove_member(pid, true), event) {
                    self.deliver_final(&member, event);
                }
            }
        }
        self.update_gauges();
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Join { room, who, events, reply } => {
                let pid = self.join(now, room, who, events);
                let _ = reply.send(pid);
            }
            Command::Signal { participant, msg, reply } => {
                let res = self.signal(now, participant, msg);
                let _ = reply.send(res);
            }
            Command::Leave { participant, reply } => {
                let _ = self.remove_member(participant, true);
                let _ = reply.send(());
            }
            Command::CloseRoom { room, reason, reply } => {
                self.close_room(room, reason);
                let _ = reply.send(());
            }
            Command::Sizes { reply } => {
                let (ufrags, addrs) = self.demux.sizes();
                let _ = reply.send(TableSizes {
                    members: self.members.len(),
                    rooms: self.rooms.len(),
                    peers: self.peers.len(),
                    ufrags,
                    addrs,
                    timers: self.timers.len(),
                    presence: self.shared.presence.len(),
                });
            }
            // Handled in `run`, which owns the exit.
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }

    /// Routes one datagram to its peer connection, or drops and counts it.
    fn on_datagram(&mut self, data: &[u8], from: SocketAddr) {
        let counters = &self.shared.counters;
        bump(&counters.datagrams_in);
        let key = match classify(data) {
            Class::Stun => match stun_local_ufrag(data) {
                Err(()) => Err(&counters.dropped_garbage),
                Ok(Some(ufrag)) => match self.demux.peer_for_ufrag(ufrag) {
                    Some(key) => {
                        // Learning before the peer checks MESSAGE-INTEGRITY is safe: media from
                        // an address is still only accepted once ICE validated it, and a wrong
                        // mapping is corrected by the client's next (periodic) check.
                        self.demux.learn(from, key);
                        Ok(key)
                    }
                    None => Err(&counters.dropped_unknown),
                },
                Ok(None) => self.demux.peer_for_addr(&from).ok_or(&counters.dropped_unknown),
            },
            Class::Dtls | Class::Rtp => self.demux.peer_for_addr(&from).ok_or(&counters.dropped_unknown),
            Class::Other => Err(&counters.dropped_garbage),
        };
        let key = match key {
            Ok(key) => key,
            Err(counter) => {
                bump(counter);
                return;
            }
        };
        let local = self.config.peer.local_for(from);
        if let Some(peer) = self.peers.get_mut(&key) {
            if let Err(err) = peer.handle_datagram(Instant::now(), local, from, data) {
                // Bad input for this peer (failed SRTP auth, stray DTLS...): not fatal.
                tracing::debug!(%from, %err, "datagram rejected by peer connection");
            }
            self.touch(key);
        }
    }

    pub(super) fn touch(&mut self, key: PeerKey) {
        if self.dirty_set.insert(key) {
            self.dirty.push_back(key);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, key));
            self.deadlines.remove(&key);
            if let Some(peer) = self.peers.get_mut(&key) {
                if let Err(err) = peer.handle_timeout(now) {
                    tracing::debug!(key, %err, "peer timeout handling failed");
                }
                self.touch(key);
            }
        }
        self.pump();
    }

    fn reschedule(&mut self, key: PeerKey) {
        let next = self.peers.get_mut(&key).and_then(Peer::poll_timeout);
        let old = self.deadlines.get(&key).copied();
        if old == next {
            return;
        }
        if let Some(old) = old {
            self.timers.remove(&(old, key));
            self.deadlines.remove(&key);
        }
        if let Some(next) = next {
            self.timers.insert((next, key));
            self.deadlines.insert(key, next);
        }
    }

    /// Services every touched peer: sends its datagrams, handles its events and messages
    /// (which may touch other peers, so this runs until the queue is empty).
    fn pump(&mut self) {
        let now = Instant::now();
        while let Some(key) = self.dirty.pop_front() {
            self.dirty_set.remove(&key);
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let mut events = Vec::new();
            while let Some(ev) = peer.poll_event() {
                events.push(ev);
            }
            let mut messages = Vec::new();
            while let Some(msg) = peer.poll_message() {
                messages.push(msg);
            }
            self.transmit(key);
            for ev in events {
                self.on_peer_event(now, key, ev);
            }
            for msg in messages {
                self.on_peer_message(now, key, msg);
            }
            self.transmit(key);
            self.reschedule(key);
            if let Some(peer) = self.peers.get(&key)
                && peer.poisoned
            {
                tracing::error!(key, owner = %peer.owner, "WebRTC stack panicked; dropping participant");
                let event =
                    SfuEvent::Error { code: "internal", message: "the media connection failed internally".to_owned() };
                self.doomed.push((peer.owner, Some(event)));
            }
        }
    }

    /// Sends everything a peer has queued. Never waits: a full socket buffer drops the
    /// datagram, which RTP/ICE/DTLS all tolerate (retransmissions, NACK).
    fn transmit(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        while let Some((to, bytes)) = peer.poll_transmit() {
            match self.socket.try_send_to(&bytes, to) {
                Ok(_) => bump(&self.shared.counters.datagrams_out),
                Err(err) => {
                    bump(&self.shared.counters.send_errors);
                    tracing::trace!(%to, %err, "send failed");
                }
            }
        }
    }

    pub(super) fn new_peer(
        &mut self,
        now: Instant,
        owner: ParticipantId,
        kind: crate::sfu::signal::PcKind,
    ) -> Result<PeerKey, SfuError> {
        let peer = Peer::new(kind, owner, &self.config.peer, now).map_err(|e| SfuError::Internal(e.to_string()))?;
        let key = self.next_key;
        self.next_key += 1;
        self.peers.insert(key, peer);
        Ok(key)
    }

    /// Closes a peer connection (sending the DTLS close) and forgets every trace of it.
    pub(super) fn close_peer(&mut self, key: PeerKey) {
        if let Some(peer) = self.peers.get_mut(&key) {
            if let Err(err) = peer.close() {
                tracing::debug!(key, %err, "peer close failed");
            }
            self.transmit(key);
        }
        self.peers.remove(&key);
        self.demux.remove_peer(key);
        if let Some(at) = self.deadlines.remove(&key) {
            self.timers.remove(&(at, key));
        }
        if self.dirty_set.remove(&key) {
            self.dirty.retain(|k| *k != key);
        }
    }

    /// Delivers an event; a participant whose channel is closed is scheduled for removal.
    pub(super) fn emit(&mut self, pid: ParticipantId, event: SfuEvent) {
        let Some(member) = self.members.get(&pid) else {
            return;
        };
        match member.send(event) {
            Delivery::Sent => {}
            Delivery::Dropped => {
                bump(&self.shared.counters.events_dropped);
                tracing::warn!(%pid, "event channel full, event dropped");
            }
            Delivery::Closed => self.doomed.push((pid, None)),
        }
    }

    /// Sends the last event to a participant that was already removed.
    pub(super) fn deliver_final(&self, member: &Member, event: SfuEvent) {
        if member.send(event) == Delivery::Dropped {
            bump(&self.shared.counters.events_dropped);
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        // A client that never completes ICE/DTLS is dropped.
        let timeout = self.config.connect_timeout;
        let stalled: Vec<ParticipantId> = self
            .peers
            .values()
            .filter(|p| !p.connected && now.saturating_duration_since(p.created) > timeout)
            .map(|p| p.owner)
            .collect();
        for pid in stalled {
            let event =
                SfuEvent::Error { code: "connect_timeout", message: "ICE/DTLS did not complete in time".to_owned() };
            self.doomed.push((pid, Some(event)));
        }
        // Empty rooms go after their grace period.
        let grace = self.config.empty_room_grace;
        let expired: Vec<Uuid> = self
            .rooms
            .iter()
            .filter(|(_, r)| {
                r.members.is_empty() && r.empty_since.is_some_and(|t| now.saturating_duration_since(t) >= grace)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.rooms.remove(&id);
            self.shared.presence.remove(&id);
        }
        self.announce_bitrate_caps(now);
    }

    pub(super) fn update_gauges(&self) {
        let c = &self.shared.counters;
        set(&c.rooms, self.rooms.len());
        set(&c.participants, self.members.len());
        set(&c.peer_connections, self.peers.len());
    }

    fn close_all(&mut self, reason: CloseReason) {
        let rooms: Vec<Uuid> = self.rooms.keys().copied().collect();
        for room in rooms {
            self.close_room(room, reason);
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.close_peer(key);
        }
        self.update_gauges();
    }
}
