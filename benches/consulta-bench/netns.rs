//! A private network namespace for the `sfu` scenario, so that Janus can take part.
//!
//! Janus (libnice) never gathers a candidate on a loopback interface, and the load must not
//! touch the machine's real interfaces. So, when run as root, the scenario moves itself into a
//! network namespace of its own before its runtime starts: there it has `lo` and one veth pair
//! (`cbench0` 10.77.0.1/30, `cbench1` 10.77.0.2/30) and nothing else, so no packet can leave the
//! machine. Both ends are local addresses of the namespace, so traffic between them takes the
//! same kernel path as 127.0.0.1 (local delivery over `lo`). Every server under test (Consulta's
//! SFU and Janus) and the generator bind `MEDIA_ADDR` there, so they are measured on equal terms.
//! Child processes (the SFU process, Janus, `perf`) inherit the namespace.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// The media address inside the namespace.
pub const MEDIA_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// Set once this process is inside the bench's namespace.
static INSIDE: AtomicBool = AtomicBool::new(false);

/// The address servers and generator bind for media: `MEDIA_ADDR` inside the namespace,
/// 127.0.0.1 outside it.
pub fn media_addr() -> Ipv4Addr {
    if INSIDE.load(Ordering::Relaxed) { MEDIA_ADDR } else { Ipv4Addr::LOCALHOST }
}

/// Moves this (still single-threaded) process into a new network namespace and sets it up.
/// Must run before any thread is started: `unshare` moves only the calling thread.
pub fn enter() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("unshare(CLONE_NEWNET) failed ({e}); run as root or pass --no-netns"))?;
    let steps: [&[&str]; 6] = [
        &["link", "set", "lo", "up"],
        &["link", "add", "cbench0", "type", "veth", "peer", "name", "cbench1"],
        &["addr", "add", "10.77.0.1/30", "dev", "cbench0"],
        &["addr", "add", "10.77.0.2/30", "dev", "cbench1"],
        &["link", "set", "cbench0", "up"],
        &["link", "set", "cbench1", "up"],
    ];
    for args in steps {
        let status = Command::new("ip").args(args).status().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
        if !status.success() {
            return Err(format!("`ip {}` failed ({status})", args.join(" ")));
        }
    }
    INSIDE.store(true, Ordering::Relaxed);
    Ok(())
}
