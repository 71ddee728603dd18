//! `cargo bench --bench consulta-bench -- <scenario>`: load against the real
//! `consulta` binary (or, for `sfu`, the SFU in a child process of its own), started as a child process. Prints progress to stderr,
//! a summary to stdout, and writes `target/bench/<scenario>.json`.

#![allow(clippy::unwrap_used)]

mod booking;
mod hub;
mod janus;
mod login;
mod netns;
#[path = "../../tests/sfu_support/peer_setup.rs"]
mod peer_setup;
mod rtc_peer;
mod server;
mod setup;
mod sfu;
mod sfu_server;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Measures Consulta under load")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Ignored: cargo passes `--bench` to bench targets.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Scenario {
    /// Booking throughput and latency (MariaDB by default), and the slot query.
    Booking {
        /// Base URL of a MariaDB/MySQL server; a fresh database is made and dropped.
        #[arg(long, default_value = "mysql://root@127.0.0.1:3306")]
        mysql: String,
        /// Run on SQLite instead.
        #[arg(long)]
        sqlite: bool,
        #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
        clients: Vec<usize>,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// `CONSULTA_SMTP_URL` for the server (e.g. an SMTP server that is up,
        /// or a closed port to measure booking while mail is down).
        #[arg(long)]
        smtp_url: Option<String>,
    },
    /// Memory per idle socket, and push latency to open dashboards.
    Hub {
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        #[arg(long, default_value_t = 1_000)]
        dashboards: usize,
    },
    /// Sign-in throughput and health latency while bcrypt is saturated.
    Login {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 12)]
        cost: u32,
    },
    /// Two-party rooms through the SFU (own process, core 0) from a webrtc-rs generator (core 1),
    /// with a peer-to-peer baseline and the same load through Janus's VideoRoom.
    Sfu {
        /// Levels of the ramp, in rooms (two participants each); stops early on loss.
        #[arg(long, value_delimiter = ',', default_value = "1,5,10,20,40")]
        rooms: Vec<usize>,
        /// Length of each measurement window.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Skip the peer-to-peer baseline.
        #[arg(long)]
        no_baseline: bool,
        /// Skip the Janus comparison.
        #[arg(long)]
        no_janus: bool,
        /// Stop the ramp when more than this fraction of packets is lost.
        #[arg(long, default_value_t = 0.01)]
        max_loss: f64,
        /// Cores for the server under test (`taskset -c`).
        #[arg(long, default_value = "0")]
        server_cpus: String,
        /// `nice` value for the server under test (as root, negative keeps other work on its
        /// core from preempting it).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        server_nice: i32,
        /// REMB cap the SFU announces to publishers, bit/s (0: none); default: the SFU's default.
        #[arg(long)]
        sfu_max_bitrate: Option<u32>,
        /// `nice` value for this generator process; by default the server's, so that other work
        /// on the machine preempts neither side more than the other.
        #[arg(long, allow_negative_numbers = true)]
        generator_nice: Option<i32>,
        /// Cores for this generator process (`taskset -p -c`), empty for none.
        #[arg(long, default_value = "1")]
        generator_cpus: String,
        /// Profile the server with `perf record` during each window: files `<PREFIX>-<server>-<rooms>.data`.
        #[arg(long)]
        perf: Option<String>,
        /// Stay in the host's network namespace on 127.0.0.1 (Janus then cannot take part);
        /// by default, as root, the scenario runs in a private namespace of its own (see netns.rs).
        #[arg(long)]
        no_netns: bool,
    },
    /// Internal: the SFU process of the `sfu` scenario (signaling on stdin/stdout).
    #[command(hide = true)]
    SfuServer,
}

fn main() {
    let cli = Cli::parse();
    if matches!(cli.scenario, Scenario::SfuServer) {
        sfu_server::serve();
        return;
    }
    let mut network = serde_json::Value::Null;
    if let Scenario::Sfu { generator_cpus, no_netns, server_nice, generator_nice, .. } = &cli.scenario {
        // Before the runtime starts: the namespace and the affinity apply to the calling thread
        // only, and every later thread inherits them.
        network = serde_json::json!("host network namespace, media on 127.0.0.1");
        if !no_netns {
            if nix::unistd::geteuid().is_root() {
                match netns::enter() {
                    Ok(()) => {
                        network = serde_json::json!(format!(
                            "private network namespace (lo + one veth pair, nothing else), media on {}",
                            netns::MEDIA_ADDR
                        ));
                        stats::progress(format!(
                            "sfu: in a private network namespace; every server and the generator use {}",
                            netns::MEDIA_ADDR
                        ));
                    }
                    Err(e) => stats::progress(format!("sfu: staying on 127.0.0.1: {e}")),
                }
            } else {
                stats::progress("sfu: not root, so no private network namespace: Janus will not find an address");
            }
        }
        let nice = generator_nice.unwrap_or(*server_nice);
        if nice != 0 {
            // The calling thread only; the runtime's threads, started later, inherit it.
            let _ = std::process::Command::new("renice")
                .args(["-n", &nice.to_string(), "-p", &std::process::id().to_string()])
                .stdout(std::process::Stdio::null())
                .status();
        }
        if !generator_cpus.is_empty() {
            let _ = std::process::Command::new("taskset")
                .args(["-p", "-c", generator_cpus, &std::process::id().to_string()])
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Ten thousand sockets need as many descriptors, here and in the server child.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard.min(1 << 20), hard.min(1 << 20));
    }
    let load_at_start = server::loadavg();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (name, result) = runtime.block_on(async {
        match cli.scenario {
            Scenario::Booking { mysql, sqlite, clients, seconds, smtp_url } => (
                "booking",
                booking::run(booking::Args { mysql: (!sqlite).then_some(mysql), levels: clients, seconds, smtp_url })
                    .await,
            ),
            Scenario::Hub { sockets, dashboards } => ("hub", hub::run(hub::Args { sockets, dashboards }).await),
            Scenario::Login { seconds, cost } => ("login", login::run(seconds, cost).await),
            Scenario::Sfu {
                rooms,
                seconds,
                no_baseline,
                no_janus,
                max_loss,
                server_cpus,
                server_nice,
                sfu_max_bitrate,
                generator_cpus,
                generator_nice,
                perf,
                no_netns: _,
            } => (
                "sfu",
                sfu::run(sfu::Args {
                    rooms,
                    seconds,
                    baseline: !no_baseline,
                    janus: !no_janus,
                    max_loss,
                    sfu_cpus: server_cpus,
                    server_nice,
                    sfu_max_bitrate,
                    generator_nice: generator_nice.unwrap_or(server_nice),
                    generator_cpus,
                    perf,
                })
                .await,
            ),
            Scenario::SfuServer => unreachable!("handled above"),
        }
    });
    let mut result = result;
    if !network.is_null() {
        result["network"] = network;
    }
    result["machine"] = serde_json::json!({
        "cores": std::fs::read_to_string("/proc/cpuinfo").map(|c| c.lines().filter(|l| l.starts_with("processor")).count()).unwrap_or(0),
        "cpu": std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| c.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(": ")).map(|(_, m)| m.to_owned())),
        "loadavg_at_start": load_at_start,
        "loadavg_at_end": server::loadavg(),
        "when": chrono::Utc::now().to_rfc3339(),
    });
    let text = serde_json::to_string_pretty(&result).unwrap_or_default();
    println!("{text}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.json")), text);
}
