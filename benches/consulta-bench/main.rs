//! `cargo bench --bench consulta-bench -- <scenario>`: load against the real
//! `consulta` binary, started as a child process. Prints progress to stderr,
//! a summary to stdout, and writes `target/bench/<scenario>.json`.

#![allow(clippy::unwrap_used)]

mod booking;
mod hub;
mod login;
mod server;
mod setup;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Measures Consulta under load")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Ignored: cargo passes `--bench` to bench targets.
    #[arg(long, hide = true)]
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
}

fn main() {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Ten thousand sockets need as many descriptors, here and in the server child.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard.min(1 << 20), hard.min(1 << 20));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (name, result) = runtime.block_on(async {
        match cli.scenario {
            Scenario::Booking { mysql, sqlite, clients, seconds } => (
                "booking",
                booking::run(booking::Args { mysql: (!sqlite).then_some(mysql), levels: clients, seconds }).await,
            ),
            Scenario::Hub { sockets, dashboards } => ("hub", hub::run(hub::Args { sockets, dashboards }).await),
            Scenario::Login { seconds, cost } => ("login", login::run(seconds, cost).await),
        }
    });
    let mut result = result;
    result["machine"] = serde_json::json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "when": chrono::Utc::now().to_rfc3339(),
    });
    let text = serde_json::to_string_pretty(&result).unwrap_or_default();
    println!("{text}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.json")), text);
}
