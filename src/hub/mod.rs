//! The live hub: one authenticated WebSocket per signed-in browser tab.
//!
//! The registry maps users to their open sockets (many tabs and devices
//! each). Pushes are hints: REST stays the truth, and a client re-reads
//! `/api/dashboard` after reconnecting. Every socket has a bounded
//! outgoing queue; a client too slow to drain it is disconnected instead
//! of growing server memory.

mod connection;
pub mod messages;
mod room;
mod upgrade;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::db::Db;
use crate::domain::{SessionId, UserId};
pub use messages::{ClientMessage, ErrorCode, PresentUser, ServerMessage};
pub use upgrade::upgrade;

/// Frames queued per socket before the client counts as too slow.
const QUEUE_DEPTH: usize = 64;
/// Sockets one user may hold open at once (tabs, devices).
const MAX_SOCKETS_PER_USER: usize = 16;

/// WebSocket close codes used by the hub.
pub mod close_code {
    /// The session was revoked or expired (application range 4000–4999).
    pub const SESSION_ENDED: u16 = 4001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const GOING_AWAY: u16 = 1001;
}

/// One queued frame. Kept to 16 bytes: every socket's queue allocates a
/// block of 32 slots up front, idle or not.
#[derive(Debug)]
pub(crate) enum Outbound {
    Text(Arc<str>),
    Close(Closing),
}

/// Why the hub closes a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closing {
    SessionEnded,
    ShuttingDown,
}

impl Closing {
    pub(crate) fn code(self) -> u16 {
        match self {
            Closing::SessionEnded => close_code::SESSION_ENDED,
            Closing::ShuttingDown => close_code::GOING_AWAY,
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Closing::SessionEnded => "session ended",
            Closing::ShuttingDown => "server shutting down",
        }
    }
}

#[derive(Debug)]
struct Socket {
    id: u64,
    session: SessionId,
    tx: mpsc::Sender<Outbound>,
}

#[derive(Clone, Debug, Default)]
pub struct Hub {
    sockets: Arc<DashMap<UserId, Vec<Socket>>>,
    next_id: Arc<AtomicU64>,
}

/// A socket's place in the registry; leaving it unregisters the socket.
pub(crate) struct Registration {
    hub: Hub,
    user: UserId,
    pub(crate) id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.user, self.id);
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a socket; `None` when the user has too many open already.
    pub(crate) fn register(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Option<(Registration, mpsc::Receiver<Outbound>)> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut sockets = self.sockets.entry(user).or_default();
        if sockets.len() >= MAX_SOCKETS_PER_USER {
            return None;
        }
        sockets.push(Socket { id, session, tx });
        drop(sockets);
        Some((Registration { hub: self.clone(), user, id }, rx))
    }

    fn remove(&self, user: UserId, id: u64) {
        if let Some(mut sockets) = self.sockets.get_mut(&user) {
            sockets.retain(|s| s.id != id);
        }
        self.sockets.remove_if(&user, |_, sockets| sockets.is_empty());
    }

    /// Open sockets in all.
    pub fn socket_count(&self) -> usize {
        self.sockets.iter().map(|entry| entry.value().len()).sum()
    }

    /// Sends to every socket of `users`. A socket whose queue is full is
    /// cut off: dropping its sender ends its connection task.
    pub fn send_to_users(&self, users: &[UserId], message: &ServerMessage) {
        let text: Arc<str> = match serde_json::to_string(message) {
            Ok(text) => text.into(),
            Err(e) => {
                tracing::error!(error = %e, "could not serialise a hub message");
                return;
            }
        };
        for user in users {
            if let Some(mut sockets) = self.sockets.get_mut(user) {
                sockets.retain(|socket| match socket.tx.try_send(Outbound::Text(text.clone())) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(user_id = %user, socket = socket.id, "socket too slow; disconnecting");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
            }
        }
    }

    /// Closes every socket of `session` with 4001.
    pub fn close_session(&self, session: SessionId) {
        for mut entry in self.sockets.iter_mut() {
            entry.value_mut().retain(|socket| {
                if socket.session != session {
                    return true;
                }
                // A full queue means the close cannot be queued: dropping the
                // sender ends the connection all the same.
                let _ = socket.tx.try_send(Outbound::Close(Closing::SessionEnded));
                false
            });
        }
    }

    /// Closes every socket (server shutdown).
    pub fn close_all(&self) {
        for mut entry in self.sockets.iter_mut() {
            for socket in entry.value_mut().drain(..) {
                let _ = socket.tx.try_send(Outbound::Close(Closing::ShuttingDown));
            }
        }
        self.sockets.clear();
    }

    fn sessions(&self) -> Vec<SessionId> {
        let mut sessions: Vec<SessionId> =
            self.sockets.iter().flat_map(|entry| entry.value().iter().map(|s| s.session).collect::<Vec<_>>()).collect();
        sessions.sort();
        sessions.dedup();
        sessions
    }

    /// Every second, closes the sockets of sessions that were revoked or
    /// expired (logout on another server, idle or absolute timeout).
    pub async fn sweep_sessions(self, db: Db, clock: crate::clock::Clock, idle: Duration) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let sessions = self.sessions();
            if sessions.is_empty() {
                continue;
            }
            match db.live_sessions(&sessions, clock.now(), idle).await {
                Ok(live) => {
                    for session in sessions.into_iter().filter(|s| !live.contains(s)) {
                        self.close_session(session);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not check the sessions of open sockets"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_frame_stays_two_words() {
        assert!(std::mem::size_of::<Outbound>() <= 16);
    }

    #[test]
    fn closings_keep_their_codes() {
        assert_eq!(Closing::SessionEnded.code(), 4001);
        assert_eq!(Closing::ShuttingDown.code(), 1001);
    }
}
