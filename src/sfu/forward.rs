//! Published tracks (up) and subscriptions (down), and the per-packet rewrite between them.
//!
//! Forwarding is a pure header rewrite: SSRC and payload type are replaced with the ones the
//! subscriber peer connection negotiated; sequence numbers and timestamps pass through, since
//! every subscription carries exactly one publisher stream for its whole life.

use crate::sfu::peer::{Codec, ReceiverId, RtpPacket, SenderId};
use crate::sfu::signal::ParticipantId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::fmt;
use std::time::{Duration, Instant};

/// Keyframe requests to one publisher track are at most this frequent: a burst of subscriber
/// PLIs (or several subscribers joining) must not make the encoder emit a keyframe per request.
pub(crate) const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// What a published track is, as far as the room is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Audio,
    Camera,
    Screen,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Audio => "audio",
            Source::Camera => "camera",
            Source::Screen => "screen",
        })
    }
}

impl Source {
    /// Audio for audio; the first video section is the camera, any later one a screen share.
    pub(crate) fn classify(kind: RtpCodecKind, video_ordinal: usize) -> Self {
        match (kind, video_ordinal) {
            (RtpCodecKind::Video, 0) => Source::Camera,
            (RtpCodecKind::Video, _) => Source::Screen,
            _ => Source::Audio,
        }
    }

    pub(crate) fn is_video(self) -> bool {
        self != Source::Audio
    }
}

/// A track a participant sends to the SFU on its publisher peer connection.
#[derive(Debug, Clone)]
pub(crate) struct PublishedTrack {
    pub(crate) receiver: ReceiverId,
    pub(crate) ssrc: u32,
    pub(crate) source: Source,
    pub(crate) kind: RtpCodecKind,
    pub(crate) codec: Codec,
    pub(crate) last_keyframe_request: Option<Instant>,
}

/// Whether a keyframe request may go out now, given the last one; records it if so.
pub(crate) fn keyframe_request_allowed(last: &mut Option<Instant>, now: Instant) -> bool {
    match *last {
        Some(at) if now.saturating_duration_since(at) < KEYFRAME_REQUEST_INTERVAL => false,
        _ => {
            *last = Some(now);
            true
        }
    }
}

/// One publisher track forwarded to one subscriber peer connection.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) publisher: ParticipantId,
    /// The publisher-side track id this subscription carries.
    pub(crate) source_track: String,
    pub(crate) source: Source,
    pub(crate) sender: SenderId,
    /// Our SSRC towards the subscriber.
    pub(crate) ssrc: u32,
    pub(crate) codec: Codec,
    /// Known once the subscriber answered; nothing is forwarded before.
    pub(crate) payload_type: Option<u8>,
}

/// The packet as the subscriber must see it.
///
/// Header extensions are dropped: their ids were negotiated on the publisher leg and mean
/// something else (or nothing) on the subscriber leg, and `rtc` rejects unnegotiated ids.
pub(crate) fn rewrite(packet: &RtpPacket, ssrc: u32, payload_type: u8) -> RtpPacket {
    let mut out = packet.clone();
    out.header.ssrc = ssrc;
    out.header.payload_type = payload_type;
    out.header.extension = false;
    out.header.extension_profile = 0;
    out.header.extensions.clear();
    out.header.extensions_padding = 0;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn rewrite_replaces_ids_and_keeps_media() {
        let mut p = RtpPacket::default();
        p.header.ssrc = 1;
        p.header.payload_type = 111;
        p.header.sequence_number = 77;
        p.header.timestamp = 9000;
        p.header.extension = true;
        p.header.extension_profile = 0xBEDE;
        p.payload = Bytes::from_static(b"hello");
        let out = rewrite(&p, 42, 109);
        assert_eq!(out.header.ssrc, 42);
        assert_eq!(out.header.payload_type, 109);
        assert_eq!(out.header.sequence_number, 77);
        assert_eq!(out.header.timestamp, 9000);
        assert!(!out.header.extension);
        assert_eq!(&out.payload[..], b"hello");
    }

    #[test]
    fn keyframe_requests_are_throttled() {
        let mut last = None;
        let now = Instant::now();
        assert!(keyframe_request_allowed(&mut last, now));
        assert!(!keyframe_request_allowed(&mut last, now + Duration::from_millis(100)));
        assert!(keyframe_request_allowed(&mut last, now + KEYFRAME_REQUEST_INTERVAL));
    }

    #[test]
    fn sources_are_classified_by_video_order() {
        assert_eq!(Source::classify(RtpCodecKind::Audio, 0), Source::Audio);
        assert_eq!(Source::classify(RtpCodecKind::Video, 0), Source::Camera);
        assert_eq!(Source::classify(RtpCodecKind::Video, 1), Source::Screen);
    }
}
