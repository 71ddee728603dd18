//! Starts the real `consulta` binary as a child process with its own data
//! folder, so the server's CPU and memory are measured apart from the load.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub cert_pem: Vec<u8>,
}

pub struct ServerOptions {
    pub database_url: Option<String>,
    /// `taskset -c <cpus>` for the server process.
    pub cpus: Option<String>,
    pub bcrypt_cost: u32,
    pub extra_env: Vec<(String, String)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self { database_url: None, cpus: None, bcrypt_cost: 4, extra_env: Vec::new() }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Server {
    pub fn start(options: ServerOptions) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let database_url =
            options.database_url.unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_consulta"));
        // A profiler to run the server under (e.g. `heaptrack`), for finding
        // where its memory goes; its words are split on spaces.
        let wrapper = std::env::var("BENCH_SERVER_WRAPPER").ok().filter(|w| !w.trim().is_empty());
        let wrapped = wrapper.is_some();
        let mut command = match (&options.cpus, wrapper) {
            (_, Some(wrapper)) => {
                let mut words = wrapper.split_whitespace();
                let mut c = Command::new(words.next().unwrap_or("env"));
                c.args(words).arg(&binary);
                c
            }
            (Some(cpus), None) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(&binary);
                c
            }
            (None, None) => Command::new(&binary),
        };
        for (name, _) in std::env::vars() {
            if name.starts_with("CONSULTA_") || name == "DATABASE_URL" {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .env("DATABASE_URL", &database_url)
            .env("CONSULTA_BIND", format!("127.0.0.1:{port}"))
            .env("CONSULTA_PUBLIC_URL", format!("https://localhost:{port}"))
            .env("CONSULTA_DATA_DIR", dir.path().join("data"))
            .env("CONSULTA_TLS_CERT", dir.path().join("cert.pem"))
            .env("CONSULTA_TLS_KEY", dir.path().join("key.pem"))
            .env("CONSULTA_BCRYPT_COST", options.bcrypt_cost.to_string())
            .env("CONSULTA_LOGIN_IP_PER_MINUTE", "100000")
            .env("CONSULTA_LOGIN_ACCOUNT_PER_MINUTE", "100000")
            // The load's admin only creates doctors; two-factor sign-in is not what is measured.
            .env("CONSULTA_ADMIN_2FA", "off")
            .env("CONSULTA_RTC_UDP_PORT", "0")
            .env("RUST_LOG", "warn")
            .envs(options.extra_env)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = command.spawn().expect("start consulta");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not start listening within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        if wrapped {
            // Under a profiler the port opens well before migrations and the
            // certificate are done; the set-up's own CLI calls would race them.
            std::thread::sleep(Duration::from_secs(10));
        }
        let cert_pem = std::fs::read(dir.path().join("cert.pem")).expect("generated certificate");
        Server { child, port, dir, cert_pem }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn base(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Resident memory of the server process, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid())
    }

    /// CPU time (user + system) the server has used so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.pid())
    }

    pub fn client(&self) -> reqwest::Client {
        let cert = reqwest::Certificate::from_pem(&self.cert_pem).expect("certificate");
        reqwest::Client::builder()
            .tls_certs_only([cert])
            .resolve("localhost", ([127, 0, 0, 1], self.port).into())
            .pool_max_idle_per_host(512)
            .build()
            .expect("client")
    }
}

/// Resident memory of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    proc_field(pid, "VmRSS:").map(|kb| kb * 1024).unwrap_or(0)
}

/// CPU time (user + system) process `pid` has used so far, all threads.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ") ".
    let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the name.
    let total = ticks(11) + ticks(12);
    Duration::from_secs_f64(total as f64 / 100.0)
}

/// Datagrams the kernel dropped on the UDP sockets of process `pid` (receive buffer full), from
/// the `drops` column of `/proc/net/udp{,6}` for the socket inodes in `/proc/<pid>/fd`.
pub fn udp_drops(pid: u32) -> u64 {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    l.to_str().and_then(|s| s.strip_prefix("socket:[")).map(|s| s.trim_end_matches(']').to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut drops = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 12 && inodes.contains(f[9]) {
                drops += f[12].parse::<u64>().unwrap_or(0);
            }
        }
    }
    drops
}

/// The 1-minute load average, for the record next to each figure.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn proc_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
