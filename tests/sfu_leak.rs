//! Join/leave cycles leave no trace: internal tables empty, file descriptors flat.
//!
//! Its own test binary, so no other test's sockets move the descriptor count.

#[path = "sfu_support/mod.rs"]
mod common;

use common::*;
use consulta::sfu::{ClientSignal, Participant, SfuEvent};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_cycles_leave_nothing_behind() -> TestResult {
    let sfu = spawn_sfu().await?;

    // A real client offer, generated once and replayed: each join makes a fresh server-side
    // publisher connection that answers it (signaling only, no ICE).
    let probe_room = Uuid::new_v4();
    let probe = Client::join(&sfu, probe_room, "probe").await?;
    let offer_sdp = probe.local_offer().await.ok_or("probe has no local offer")?;
    sfu.leave(probe.pid).await;
    probe.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = open_fds();

    let room = Uuid::new_v4();
    for i in 0..200 {
        let (tx, mut rx) = mpsc::channel(64);
        let who = Participant { user_id: Uuid::new_v4(), name: format!("p{i}"), role: "patient".into() };
        let pid = sfu.join(room, who, tx).await?;
        sfu.signal(pid, ClientSignal::PublishOffer { sdp: offer_sdp.clone() }).await?;
        let answered = within(Duration::from_secs(5), "publish answer", async {
            while let Some(e) = rx.recv().await {
                if matches!(e, SfuEvent::PublishAnswer { .. }) {
                    return true;
                }
            }
            false
        })
        .await?;
        assert!(answered);
        sfu.leave(pid).await;
    }

    // And a few full calls with ICE/DTLS and media.
    for _ in 0..5 {
        let a = Client::join(&sfu, room, "alice").await?;
        let b = Client::join(&sfu, room, "bob").await?;
        wait_media_from(&a, b.tag, 10, 5, Duration::from_secs(20)).await?;
        sfu.leave(a.pid).await;
        sfu.leave(b.pid).await;
        a.close().await;
        b.close().await;
    }

    // Empty rooms go after the grace period (200 ms) at the next housekeeping tick (1 s).
    let sizes = {
        let mut last = sfu.table_sizes().await?;
        for _ in 0..40 {
            if last == Default::default() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            last = sfu.table_sizes().await?;
        }
        last
    };
    assert_eq!(sizes, Default::default(), "tables not empty: {sizes:?}");
    let stats = sfu.stats();
    assert_eq!((stats.rooms, stats.participants, stats.peer_connections), (0, 0, 0));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_after = open_fds();
    eprintln!("fds before {fds_before}, after {fds_after}; {stats:?}");
    assert!(fds_after <= fds_before + 8, "fd leak: {fds_before} -> {fds_after}");

    sfu.shutdown().await;
    Ok(())
}
