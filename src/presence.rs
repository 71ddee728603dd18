//! Who is in which video room right now. The room code writes it; the
//! dashboard and the hub read it.

use std::sync::Arc;

use dashmap::DashMap;

use crate::domain::{AppointmentId, UserId};

#[derive(Clone, Debug, Default)]
pub struct RoomPresence {
    rooms: Arc<DashMap<AppointmentId, Vec<UserId>>>,
}

impl RoomPresence {
    /// Returns false when `user` was already there.
    pub fn enter(&self, room: AppointmentId, user: UserId) -> bool {
        let mut present = self.rooms.entry(room).or_default();
        if present.contains(&user) {
            return false;
        }
        present.push(user);
        true
    }

    /// Returns false when `user` was not there.
    pub fn leave(&self, room: AppointmentId, user: UserId) -> bool {
        let mut left = false;
        let mut empty = false;
        if let Some(mut present) = self.rooms.get_mut(&room) {
            let before = present.len();
            present.retain(|u| *u != user);
            left = present.len() != before;
            empty = present.is_empty();
        }
        if empty {
            self.rooms.remove_if(&room, |_, present| present.is_empty());
        }
        left
    }

    pub fn is_present(&self, room: AppointmentId, user: UserId) -> bool {
        self.rooms.get(&room).is_some_and(|present| present.contains(&user))
    }

    pub fn present(&self, room: AppointmentId) -> Vec<UserId> {
        self.rooms.get(&room).map(|p| p.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_and_leave_keep_no_empty_rooms() {
        let presence = RoomPresence::default();
        let (room, a, b) = (AppointmentId::new(), UserId::new(), UserId::new());
        assert!(presence.enter(room, a));
        assert!(!presence.enter(room, a));
        assert!(presence.enter(room, b));
        assert!(presence.is_present(room, a));
        assert!(presence.leave(room, a));
        assert!(!presence.leave(room, a));
        assert!(presence.leave(room, b));
        assert!(presence.rooms.is_empty());
    }
}
