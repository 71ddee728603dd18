//! Rooms and the participants in them, as the media loop sees them.

use crate::sfu::demux::PeerKey;
use crate::sfu::forward::{PublishedTrack, Subscription};
use crate::sfu::signal::{Participant, ParticipantId, SfuEvent};
use std::collections::HashMap;
use std::time::Instant;
use tokio::sync::mpsc;
use uuid::Uuid;

/// A room: who is in it, in join order.
#[derive(Debug, Default)]
pub(crate) struct Room {
    pub(crate) members: Vec<ParticipantId>,
    /// Set when the last member left; the room is dropped after the grace period.
    pub(crate) empty_since: Option<Instant>,
}

/// The mute flags a client announced with `ClientSignal::Media`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MediaFlags {
    pub(crate) audio: bool,
    pub(crate) video: bool,
    pub(crate) screen: bool,
}

/// Outcome of delivering an event to a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Sent,
    /// The channel was full: the event is lost, the participant stays.
    Dropped,
    /// The receiver is gone: the participant must be removed.
    Closed,
}

/// One joined participant (one `ParticipantId`).
///
/// Invariant: `publisher`/`subscriber` keys, when set, are present in the loop's peer table
/// and owned by this participant; every `Subscription` names a live sender on `subscriber`.
pub(crate) struct Member {
    pub(crate) info: Participant,
    pub(crate) room: Uuid,
    events: mpsc::Sender<SfuEvent>,
    pub(crate) media: Option<MediaFlags>,
    pub(crate) publisher: Option<PeerKey>,
    pub(crate) subscriber: Option<PeerKey>,
    /// Tracks this participant sends, by publisher-side track id.
    pub(crate) published: HashMap<String, PublishedTrack>,
    /// Tracks this participant receives, by our sender-side track id.
    pub(crate) subscriptions: HashMap<String, Subscription>,
    /// A `SubscribeOffer` is outstanding; no new offer until it is answered (no glare).
    pub(crate) awaiting_answer: bool,
    /// The subscriber's track set changed since the last offer.
    pub(crate) offer_pending: bool,
}

impl Member {
    pub(crate) fn new(info: Participant, room: Uuid, events: mpsc::Sender<SfuEvent>) -> Self {
        Self {
            info,
            room,
            events,
            media: None,
            publisher: None,
            subscriber: None,
            published: HashMap::new(),
            subscriptions: HashMap::new(),
            awaiting_answer: false,
            offer_pending: false,
        }
    }

    /// Never waits: the media loop must not stall on a slow hub.
    pub(crate) fn send(&self, event: SfuEvent) -> Delivery {
        match self.events.try_send(event) {
            Ok(()) => Delivery::Sent,
            Err(mpsc::error::TrySendError::Full(_)) => Delivery::Dropped,
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
        }
    }

    pub(crate) fn peers(&self) -> impl Iterator<Item = PeerKey> + use<> {
        [self.publisher, self.subscriber].into_iter().flatten()
    }
}
