//! A real SMTP server for the mail tests: Python's `aiosmtpd` run as a
//! process by `tests/support/smtp_server.py`, storing what it accepts as
//! files. Killed when the value is dropped.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");

/// Whether Python with `aiosmtpd` is here; prints the reason once when it
/// is not, and fails under `CI=true` where a skip is not allowed.
pub fn aiosmtpd_available() -> bool {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = AVAILABLE.get_or_init(|| {
        let ok = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(())
        } else {
            let reason = "python3 with aiosmtpd is not installed (pip install aiosmtpd)".to_owned();
            let _ = writeln!(std::io::stderr(), "SKIPPED: SMTP mail suite — {reason}");
            Err(reason)
        }
    });
    match result {
        Ok(()) => true,
        Err(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the SMTP mail suite cannot be skipped under CI=true: {reason}")
        }
        Err(_) => false,
    }
}

pub struct SmtpServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl SmtpServer {
    /// On a free port; recipients matching the Python regex `reject` get 550.
    pub fn start(reject: Option<&str>) -> Self {
        Self::start_on(0, reject)
    }

    pub fn start_on(port: u16, reject: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new("python3");
        command.arg(SCRIPT).arg("--dir").arg(dir.path()).arg("--port").arg(port.to_string());
        if let Some(pattern) = reject {
            command.arg("--reject").arg(pattern);
        }
        // The server stops when its stdin closes, so it cannot outlive the tests.
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("SMTP server's first line");
        let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("the SMTP server did not start: {line:?}")
        });
        Self { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The raw messages accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        eml_files(self.dir.path())
    }

    /// Waits until at least `n` messages arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        wait_for_files(self.dir.path(), n).await
    }

    /// While on, every recipient gets `451 try again later`.
    pub fn set_tempfail(&self, on: bool) {
        let flag = self.dir.path().join("tempfail");
        if on {
            std::fs::write(flag, b"").expect("tempfail flag");
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    /// Recipients refused with 550 so far, one per refused attempt.
    pub fn rejected(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("rejected.log"))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn eml_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

pub async fn wait_for_files(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let files = eml_files(dir);
        if files.len() >= n {
            return files;
        }
        assert!(Instant::now() < deadline, "waited 40 s for {n} mails in {}, got {}", dir.display(), files.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP port on which nothing listens (bound, then released).
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
