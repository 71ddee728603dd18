//! End-to-end media through the SFU over 127.0.0.1 with webrtc-rs client peers.

#[path = "sfu_support/mod.rs"]
mod common;

use common::*;
use consulta::sfu::{CloseReason, Sfu, SfuEvent};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

const MEDIA_DEADLINE: Duration = Duration::from_secs(20);
const EVENT_DEADLINE: Duration = Duration::from_secs(5);

/// One SFU with alice and bob joined to one room; media tests run one at a time (`SERIAL`).
struct Call {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    sfu: Sfu,
    room: Uuid,
    alice: Client,
    bob: Client,
}

impl Call {
    async fn start() -> TestResult<Call> {
        let _serial = SERIAL.lock().await;
        let sfu = spawn_sfu().await?;
        let room = Uuid::new_v4();
        let alice = Client::join(&sfu, room, "alice").await?;
        let bob = Client::join(&sfu, room, "bob").await?;
        Ok(Call { _serial, sfu, room, alice, bob })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_receive_each_others_media() -> TestResult {
    let Call { _serial, sfu, room, alice, bob } = Call::start().await?;

    wait_media_from(&alice, bob.tag, 50, 30, MEDIA_DEADLINE).await?;
    wait_media_from(&bob, alice.tag, 50, 30, MEDIA_DEADLINE).await?;

    // Content, not only counts: nobody gets their own media back, nothing unidentifiable.
    for c in [&alice, &bob] {
        assert_eq!(c.received.count(c.tag, RtpCodecKind::Audio), 0);
        assert_eq!(c.received.count(c.tag, RtpCodecKind::Video), 0);
        assert_eq!(c.received.malformed.load(Ordering::Relaxed), 0);
    }
    // The SFU asked for keyframes when the subscribers came up, and capped the bitrate.
    eventually(EVENT_DEADLINE, "PLI and REMB at both publishers", || {
        [&alice, &bob]
            .iter()
            .all(|c| c.feedback.pli.load(Ordering::Relaxed) > 0 && c.feedback.remb.load(Ordering::Relaxed) > 0)
    })
    .await?;
    assert_eq!(alice.feedback.remb_bitrate.load(Ordering::Relaxed), 1_500_000, "REMB carries the configured cap");

    let stats = sfu.stats();
    assert!(stats.rtp_forwarded >= 160, "{stats:?}");
    assert!(stats.keyframe_requests >= 2, "{stats:?}");
    assert_eq!((stats.rooms, stats.participants, stats.peer_connections), (1, 2, 4));
    eprintln!(
        "offer->connected: alice {:?}, bob {:?}; stats {stats:?}",
        alice.publish_connect_time(),
        bob.publish_connect_time()
    );
    let names: Vec<String> = sfu.participants(room).into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["alice", "bob"]);

    sfu.shutdown().await;
    alice.close().await;
    bob.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_stops_media_and_rejoin_works() -> TestResult {
    let Call { _serial, sfu, room, alice, bob } = Call::start().await?;
    wait_media_from(&alice, bob.tag, 20, 10, MEDIA_DEADLINE).await?;

    sfu.leave(bob.pid).await;
    alice
        .wait_event(
            EVENT_DEADLINE,
            "presence without bob",
            |e| matches!(e, SfuEvent::Presence { participants } if participants.len() == 1),
        )
        .await?;
    // Bob keeps sending (his client is still up): nothing of it may reach Alice any more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = alice.received.count(bob.tag, RtpCodecKind::Audio);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(alice.received.count(bob.tag, RtpCodecKind::Audio), frozen);
    assert!(sfu.signal(bob.pid, consulta::sfu::ClientSignal::RequestKeyframe).await.is_err());
    bob.close().await;

    let bob2 = Client::join(&sfu, room, "bob2").await?;
    wait_media_from(&alice, bob2.tag, 20, 10, MEDIA_DEADLINE).await?;
    wait_media_from(&bob2, alice.tag, 20, 10, MEDIA_DEADLINE).await?;

    sfu.shutdown().await;
    alice.close().await;
    bob2.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_room_stops_media_and_notifies_everyone() -> TestResult {
    let Call { _serial, sfu, room, alice, bob } = Call::start().await?;
    wait_media_from(&alice, bob.tag, 20, 10, MEDIA_DEADLINE).await?;
    wait_media_from(&bob, alice.tag, 20, 10, MEDIA_DEADLINE).await?;

    sfu.close_room(room, CloseReason::Cancelled).await;
    for c in [&alice, &bob] {
        let e = c.wait_event(EVENT_DEADLINE, "room closed", |e| matches!(e, SfuEvent::RoomClosed { .. })).await?;
        assert_eq!(e, SfuEvent::RoomClosed { reason: CloseReason::Cancelled });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = (alice.received.total(), bob.received.total());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!((alice.received.total(), bob.received.total()), frozen);
    assert!(sfu.participants(room).is_empty());
    let sizes = sfu.table_sizes().await?;
    assert_eq!((sizes.members, sizes.rooms, sizes.peers), (0, 0, 0), "{sizes:?}");

    sfu.shutdown().await;
    alice.close().await;
    bob.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_do_not_disturb_a_call() -> TestResult {
    let Call { _serial, sfu, alice, bob, .. } = Call::start().await?;
    wait_media_from(&alice, bob.tag, 20, 10, MEDIA_DEADLINE).await?;
    let before = sfu.stats();

    let target = sfu.local_addr();
    let flood = tokio::spawn(async move {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let mut sent = 0u64;
        for i in 0..6000u32 {
            let len = 1 + (rand::random::<u32>() % 1200) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
            match i % 4 {
                // Truncated STUN binding request with the right cookie.
                0 => {
                    d = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3];
                }
                // Well-formed STUN with an unknown ufrag.
                1 => {
                    let user = b"nosuchufrag:x";
                    d = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xA4, 0x42];
                    d.extend_from_slice(&[9; 12]);
                    d.extend_from_slice(&[0x00, 0x06, 0x00, user.len() as u8]);
                    d.extend_from_slice(user);
                    d.extend_from_slice(&[0, 0, 0]);
                }
                // Fake RTP from an address nobody announced.
                2 => d[0] = 0x80,
                _ => {}
            }
            if sock.send_to(&d, target).await.is_ok() {
                sent += 1;
            }
            // Pace it so the kernel does not drop what we want counted.
            if i.is_multiple_of(50) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Ok::<u64, std::io::Error>(sent)
    });
    // Media keeps flowing during and after the flood.
    let a0 = alice.received.count(bob.tag, RtpCodecKind::Video);
    let b0 = bob.received.count(alice.tag, RtpCodecKind::Video);
    let sent = within(Duration::from_secs(30), "garbage flood", flood).await???;
    wait_media_from(&alice, bob.tag, 0, a0 + 30, MEDIA_DEADLINE).await?;
    wait_media_from(&bob, alice.tag, 0, b0 + 30, MEDIA_DEADLINE).await?;

    let after = sfu.stats();
    let dropped = (after.dropped_garbage + after.dropped_unknown) - (before.dropped_garbage + before.dropped_unknown);
    eprintln!("garbage sent {sent}, dropped {dropped}; {after:?}");
    assert!(dropped * 100 >= sent * 95, "dropped {dropped} of {sent}");
    assert!(after.dropped_garbage > before.dropped_garbage);
    assert!(after.dropped_unknown > before.dropped_unknown);

    // Worse: an attacker who knows a live ufrag. Its forged checks reach the peer connection
    // (and teach the demux its address), so its fake DTLS/RTP does too; rtc must reject all of
    // it without disturbing the real client.
    let ufrag = alice.server_ufrag().await.ok_or("no server ufrag")?;
    let forger = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    for i in 0..1500u32 {
        let mut d: Vec<u8>;
        if i % 3 == 0 {
            let user = format!("{ufrag}:evil");
            let mut attrs = vec![0x00, 0x06];
            attrs.extend_from_slice(&(user.len() as u16).to_be_bytes());
            attrs.extend_from_slice(user.as_bytes());
            while attrs.len() % 4 != 0 {
                attrs.push(0);
            }
            // A MESSAGE-INTEGRITY of random bytes.
            attrs.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
            attrs.extend((0..20).map(|_| rand::random::<u8>()));
            d = vec![0x00, 0x01];
            d.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            d.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
            d.extend((0..12).map(|_| rand::random::<u8>()));
            d.extend_from_slice(&attrs);
        } else {
            d = (0..(12 + rand::random::<u32>() % 800) as usize).map(|_| rand::random::<u8>()).collect();
            d[0] = if i % 3 == 1 { 0x80 } else { 22 };
        }
        let _ = forger.send_to(&d, target).await;
        if i.is_multiple_of(50) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let a1 = alice.received.count(bob.tag, RtpCodecKind::Video);
    let b1 = bob.received.count(alice.tag, RtpCodecKind::Video);
    wait_media_from(&alice, bob.tag, 0, a1 + 30, MEDIA_DEADLINE).await?;
    wait_media_from(&bob, alice.tag, 0, b1 + 30, MEDIA_DEADLINE).await?;
    assert_eq!(sfu.stats().participants, 2);

    sfu.shutdown().await;
    alice.close().await;
    bob.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_join_of_the_same_user_replaces_the_first() -> TestResult {
    let Call { _serial, sfu, room, alice, bob } = Call::start().await?;
    wait_media_from(&bob, alice.tag, 20, 10, MEDIA_DEADLINE).await?;

    let alice2 = Client::join_as(&sfu, room, "alice2", alice.user_id).await?;
    alice.wait_event(EVENT_DEADLINE, "replaced", |e| matches!(e, SfuEvent::Replaced)).await?;
    let users: Vec<Uuid> = sfu.participants(room).into_iter().map(|p| p.user_id).collect();
    assert_eq!(users, [bob.user_id, alice.user_id]);
    assert!(sfu.signal(alice.pid, consulta::sfu::ClientSignal::RequestKeyframe).await.is_err());

    wait_media_from(&bob, alice2.tag, 20, 10, MEDIA_DEADLINE).await?;
    wait_media_from(&alice2, bob.tag, 20, 10, MEDIA_DEADLINE).await?;
    // The replaced connection's media no longer reaches Bob.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = bob.received.count(alice.tag, RtpCodecKind::Audio);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(bob.received.count(alice.tag, RtpCodecKind::Audio), frozen);
    assert_eq!(sfu.stats().participants, 2);

    sfu.shutdown().await;
    alice.close().await;
    alice2.close().await;
    bob.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_share_is_offered_to_and_withdrawn_from_the_other() -> TestResult {
    let Call { _serial, sfu, mut alice, bob, .. } = Call::start().await?;
    wait_media_from(&bob, alice.tag, 20, 10, MEDIA_DEADLINE).await?;
    assert_eq!(bob.received.source(alice.tag, "screen"), 0);

    // Publishing a second video track renegotiates Alice's publisher and Bob's subscriber.
    alice.start_screen().await?;
    let r = bob.received.clone();
    eventually(MEDIA_DEADLINE, "screen share at bob", || r.source(alice.tag, "screen") >= 10).await?;
    let camera = bob.received.source(alice.tag, "camera");

    // Unpublishing withdraws it; the camera keeps flowing.
    alice.stop_screen().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frozen = bob.received.source(alice.tag, "screen");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(bob.received.source(alice.tag, "screen"), frozen);
    assert!(bob.received.source(alice.tag, "camera") > camera + 10);

    sfu.shutdown().await;
    alice.close().await;
    bob.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_connects_is_dropped() -> TestResult {
    let _serial = SERIAL.lock().await;
    let sfu =
        spawn_sfu_with(consulta::sfu::SfuConfig { connect_timeout: Duration::from_secs(1), ..test_config() }).await?;
    let room = Uuid::new_v4();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let who = consulta::sfu::Participant { user_id: Uuid::new_v4(), name: "ghost".into(), role: "patient".into() };
    let pid = sfu.join(room, who, tx).await?;
    let sdp = unanswered_offer().await?;
    sfu.signal(pid, consulta::sfu::ClientSignal::PublishOffer { sdp }).await?;
    let dropped = within(Duration::from_secs(5), "connect timeout", async {
        while let Some(e) = rx.recv().await {
            if let SfuEvent::Error { code, .. } = e {
                return Some(code);
            }
        }
        None
    })
    .await?;
    assert_eq!(dropped, Some("connect_timeout"));
    assert!(sfu.participants(room).is_empty());
    assert_eq!(sfu.stats().peer_connections, 0);
    sfu.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_keeps_the_call_without_rejoining() -> TestResult {
    let Call { _serial, sfu, room, alice, bob } = Call::start().await?;
    wait_media_from(&bob, alice.tag, 20, 10, MEDIA_DEADLINE).await?;
    let old_ufrag = alice.server_ufrag().await;
    let old_local = alice.local_offer().await;

    alice.ice_restart().await?;
    eventually(EVENT_DEADLINE, "a new answer with fresh server credentials", || {
        futures_lite_block(alice.server_ufrag()) != old_ufrag
    })
    .await?;
    assert_ne!(alice.local_offer().await, old_local, "the client offered new credentials");
    let before = bob.received.count(alice.tag, RtpCodecKind::Audio);
    wait_media_from(&bob, alice.tag, before + 50, 0, MEDIA_DEADLINE).await?;
    assert_eq!(sfu.participants(room).len(), 2, "nobody had to rejoin");
    alice.close().await;
    bob.close().await;
    Ok(())
}

/// Polls a future to completion on this thread (the condition closure of `eventually` is sync).
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
