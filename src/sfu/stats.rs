//! Counters shared between the media loop (writer) and `Sfu` handles (readers).
//!
//! Relaxed atomics: each counter is independent and a snapshot need not be consistent across
//! counters; this keeps the per-packet cost at one uncontended add.

use crate::sfu::signal::SfuStats;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) datagrams_in: AtomicU64,
    pub(crate) datagrams_out: AtomicU64,
    pub(crate) dropped_garbage: AtomicU64,
    pub(crate) dropped_unknown: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) rtp_forwarded: AtomicU64,
    pub(crate) keyframe_requests: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) rooms: AtomicU64,
    pub(crate) participants: AtomicU64,
    pub(crate) peer_connections: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

pub(crate) fn set(gauge: &AtomicU64, value: usize) {
    gauge.store(value as u64, Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> SfuStats {
        SfuStats {
            datagrams_in: self.datagrams_in.load(Relaxed),
            datagrams_out: self.datagrams_out.load(Relaxed),
            dropped_garbage: self.dropped_garbage.load(Relaxed),
            dropped_unknown: self.dropped_unknown.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            rtp_forwarded: self.rtp_forwarded.load(Relaxed),
            keyframe_requests: self.keyframe_requests.load(Relaxed),
            events_dropped: self.events_dropped.load(Relaxed),
            rooms: self.rooms.load(Relaxed),
            participants: self.participants.load(Relaxed),
            peer_connections: self.peer_connections.load(Relaxed),
        }
    }
}
