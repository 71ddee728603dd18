//! What the test peers observe: received media by sender, and RTCP feedback from the SFU.

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a subscriber received, by sender tag and by the source named in the SFU's track id
/// (`audio-…`, `camera-…`, `screen-…`).
#[derive(Default)]
pub struct Received {
    counts: Mutex<HashMap<([u8; 8], String), u64>>,
    pub malformed: AtomicU64,
}

impl Received {
    /// Packets from `tag` of one kind (video counts camera and screen).
    pub fn count(&self, tag: [u8; 8], kind: RtpCodecKind) -> u64 {
        match kind {
            RtpCodecKind::Audio => self.source(tag, "audio"),
            _ => self.source(tag, "camera") + self.source(tag, "screen"),
        }
    }

    pub fn source(&self, tag: [u8; 8], source: &str) -> u64 {
        self.counts.lock().map(|c| c.get(&(tag, source.to_owned())).copied().unwrap_or(0)).unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.lock().map(|c| c.values().sum()).unwrap_or(0)
    }

    pub(crate) fn record(&self, payload: &[u8], source: &str) {
        if payload.len() < 20 {
            self.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&payload[..8]);
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((tag, source.to_owned())).or_default() += 1;
        }
    }
}

/// RTCP feedback the publisher got from the SFU, by type.
#[derive(Default)]
pub struct Feedback {
    pub pli: AtomicU64,
    pub remb: AtomicU64,
    pub remb_bitrate: AtomicU64,
}
