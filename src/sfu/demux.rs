//! Demultiplexing datagrams of the one shared UDP socket to peer connections.
//!
//! RFC 7983 first-byte classes tell STUN, DTLS and RTP/RTCP apart. A STUN binding request
//! carries `USERNAME = <our ufrag>:<their ufrag>`; our ufrag is unique per peer connection, so it
//! names the peer and teaches us the sender's address. Everything that is not STUN is routed by
//! that learned address only.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Key of a peer connection inside the media loop.
pub(crate) type PeerKey = u64;

/// At most this many remote addresses are remembered per peer connection: a client gathers a few
/// candidates, and a bound keeps a spoofer from growing the table.
const MAX_ADDRS_PER_PEER: usize = 8;

/// The RFC 7983 class of a datagram, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Stun,
    Dtls,
    Rtp,
    Other,
}

pub(crate) fn classify(datagram: &[u8]) -> Class {
    match datagram.first() {
        Some(0..=3) => Class::Stun,
        Some(20..=63) => Class::Dtls,
        Some(128..=191) => Class::Rtp,
        _ => Class::Other,
    }
}

const STUN_HEADER_LEN: usize = 20;
const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// Checks the STUN header (RFC 5389 §6). `Err(())` means malformed: count it as garbage.
/// `Ok(None)` is well-formed STUN without a USERNAME (e.g. a response or an indication).
pub(crate) fn stun_local_ufrag(datagram: &[u8]) -> Result<Option<&str>, ()> {
    if datagram.len() < STUN_HEADER_LEN || datagram[4..8] != STUN_MAGIC_COOKIE {
        return Err(());
    }
    let body_len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    if !body_len.is_multiple_of(4) || STUN_HEADER_LEN + body_len != datagram.len() {
        return Err(());
    }
    let mut at = STUN_HEADER_LEN;
    while at + 4 <= datagram.len() {
        let typ = u16::from_be_bytes([datagram[at], datagram[at + 1]]);
        let len = u16::from_be_bytes([datagram[at + 2], datagram[at + 3]]) as usize;
        let start = at + 4;
        let end = start + len;
        if end > datagram.len() {
            return Err(());
        }
        if typ == ATTR_USERNAME {
            let username = std::str::from_utf8(&datagram[start..end]).map_err(|_| ())?;
            // The recipient's ufrag comes first (RFC 8445 §7.2.2).
            let local = username.split(':').next().unwrap_or_default();
            return Ok((!local.is_empty()).then_some(local));
        }
        // Attribute values are padded to a multiple of four bytes.
        at = start + len.div_ceil(4) * 4;
    }
    Ok(None)
}

/// The routing tables. Owned by the media loop: no locking.
#[derive(Default)]
pub(crate) struct Demux {
    by_ufrag: HashMap<String, PeerKey>,
    by_addr: HashMap<SocketAddr, PeerKey>,
    addrs_of: HashMap<PeerKey, Vec<SocketAddr>>,
}

impl Demux {
    /// Registers the local ufrag of a peer connection. A peer has one ufrag at a time; a new one
    /// (ICE restart) replaces the old.
    pub(crate) fn set_ufrag(&mut self, key: PeerKey, ufrag: &str) {
        self.by_ufrag.retain(|_, k| *k != key);
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    pub(crate) fn peer_for_ufrag(&self, ufrag: &str) -> Option<PeerKey> {
        self.by_ufrag.get(ufrag).copied()
    }

    pub(crate) fn peer_for_addr(&self, addr: &SocketAddr) -> Option<PeerKey> {
        self.by_addr.get(addr).copied()
    }

    /// Remembers that `addr` belongs to `key`. An address moves to the newest peer that claims
    /// it: a client port reused after a reconnect must not stay bound to a dead peer.
    pub(crate) fn learn(&mut self, addr: SocketAddr, key: PeerKey) {
        match self.by_addr.insert(addr, key) {
            Some(old) if old == key => return,
            Some(old) => {
                if let Some(list) = self.addrs_of.get_mut(&old) {
                    list.retain(|a| *a != addr);
                }
            }
            None => {}
        }
        let list = self.addrs_of.entry(key).or_default();
        list.push(addr);
        if list.len() > MAX_ADDRS_PER_PEER {
            let evicted = list.remove(0);
            self.by_addr.remove(&evicted);
        }
    }

    /// Forgets everything about a peer connection.
    pub(crate) fn remove_peer(&mut self, key: PeerKey) {
        self.by_ufrag.retain(|_, k| *k != key);
        if let Some(addrs) = self.addrs_of.remove(&key) {
            for addr in addrs {
                if self.by_addr.get(&addr) == Some(&key) {
                    self.by_addr.remove(&addr);
                }
            }
        }
    }

    /// `(ufrags, addresses)` currently known; for leak checks.
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.by_ufrag.len(), self.by_addr.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: Option<&str>) -> Vec<u8> {
        let mut attrs = Vec::new();
        if let Some(u) = username {
            attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
            attrs.extend_from_slice(&(u.len() as u16).to_be_bytes());
            attrs.extend_from_slice(u.as_bytes());
            while attrs.len() % 4 != 0 {
                attrs.push(0);
            }
        }
        // A PRIORITY attribute after the username, to check padding is skipped correctly.
        attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&STUN_MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn classes_follow_rfc7983() {
        assert_eq!(classify(&[0]), Class::Stun);
        assert_eq!(classify(&[3]), Class::Stun);
        assert_eq!(classify(&[4]), Class::Other);
        assert_eq!(classify(&[22]), Class::Dtls);
        assert_eq!(classify(&[64]), Class::Other);
        assert_eq!(classify(&[0x80]), Class::Rtp);
        assert_eq!(classify(&[191]), Class::Rtp);
        assert_eq!(classify(&[192]), Class::Other);
        assert_eq!(classify(&[]), Class::Other);
    }

    #[test]
    fn username_is_parsed_with_padding() {
        let m = binding_request(Some("abcde:xyz"));
        assert_eq!(stun_local_ufrag(&m), Ok(Some("abcde")));
        let m = binding_request(None);
        assert_eq!(stun_local_ufrag(&m), Ok(None));
    }

    #[test]
    fn malformed_stun_is_rejected() {
        let m = binding_request(Some("abcde:xyz"));
        assert!(stun_local_ufrag(&m[..m.len() - 4]).is_err());
        assert!(stun_local_ufrag(&m[..10]).is_err());
        let mut bad_cookie = m.clone();
        bad_cookie[5] = 0;
        assert!(stun_local_ufrag(&bad_cookie).is_err());
        let mut bad_len = m;
        bad_len[22] = 0xff; // username attribute length overflows the message
        assert!(stun_local_ufrag(&bad_len).is_err());
    }

    #[test]
    fn addresses_move_and_are_forgotten() {
        let mut d = Demux::default();
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap_or_else(|_| unreachable!());
        d.set_ufrag(1, "u1");
        d.set_ufrag(2, "u2");
        d.learn(a, 1);
        assert_eq!(d.peer_for_addr(&a), Some(1));
        d.learn(a, 2);
        assert_eq!(d.peer_for_addr(&a), Some(2));
        d.remove_peer(1);
        assert_eq!(d.peer_for_addr(&a), Some(2));
        d.remove_peer(2);
        assert_eq!(d.sizes(), (0, 0));
    }

    #[test]
    fn addresses_per_peer_are_bounded() {
        let mut d = Demux::default();
        for port in 0..100u16 {
            d.learn(SocketAddr::from(([127, 0, 0, 1], 2000 + port)), 9);
        }
        assert_eq!(d.sizes().1, MAX_ADDRS_PER_PEER);
    }
}
