//! A headless Chromium driven over WebDriver (Debian's `chromedriver`,
//! through fantoccini), one browser per test and one test at a time.
//!
//! Every wait has a deadline: a browser that hangs fails the test instead
//! of the whole run.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long one step (an element, a navigation, a condition) may take.
pub const STEP: Duration = Duration::from_secs(15);
/// How long a whole browser test may take.
pub const TEST: Duration = Duration::from_secs(180);

/// Two cores: one Chromium at a time, whatever the harness's thread count.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This test's turn with the browsers: a test that needs two browsers at
/// once (a call) takes it and launches them with [`Browser::launch_in_turn`].
pub type Turn = tokio::sync::MutexGuard<'static, ()>;

pub async fn take_turn() -> Turn {
    TURN.lock().await
}

/// Flags for a browser that takes part in a call (docs: E2E.md): a
/// granted, fake camera and microphone (optionally fed from files),
/// loopback ICE candidates, unmuted playback without a gesture.
pub fn media_args(video: Option<&Path>, audio: Option<&Path>) -> Vec<String> {
    let mut args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--autoplay-policy=no-user-gesture-required",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Some(video) = video {
        args.push(format!("--use-file-for-fake-video-capture={}", video.display()));
    }
    if let Some(audio) = audio {
        args.push(format!("--use-file-for-fake-audio-capture={}", audio.display()));
    }
    args
}

#[derive(Clone, Debug)]
pub struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_file())
}

fn find_tools() -> Result<Tools, String> {
    // The real binary, not Debian's wrapper script (which complains about /dev/shm).
    let chromium = from_env("CHROMIUM")
        .or_else(|| Some(PathBuf::from("/usr/lib/chromium/chromium")).filter(|p| p.is_file()))
        .or_else(|| on_path(&["chromium", "chromium-browser", "google-chrome"]))
        .ok_or("no Chromium found (apt-get install chromium chromium-driver, or set CHROMIUM)")?;
    let chromedriver = from_env("CHROMEDRIVER")
        .or_else(|| on_path(&["chromedriver"]))
        .ok_or("no chromedriver found (apt-get install chromium-driver, or set CHROMEDRIVER)")?;
    Ok(Tools { chromium, chromedriver })
}

/// The browser tools, or `None` after printing why the suite is skipped;
/// under `CI=true` a missing browser fails instead.
pub fn browser_tools() -> Option<Tools> {
    static FOUND: OnceLock<Result<Tools, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let found = find_tools();
        if let Err(reason) = &found {
            // Straight to stderr: the test harness captures print macros only.
            let _ = writeln!(std::io::stderr(), "SKIPPED: browser suite — {reason}");
        }
        found
    });
    match found {
        Ok(tools) => Some(tools.clone()),
        Err(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the browser suite cannot be skipped under CI=true: {reason}")
        }
        Err(_) => None,
    }
}

/// Runs a browser test body with an overall deadline.
pub async fn with_deadline(body: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(TEST, body).await.is_err() {
        panic!("the browser test did not finish within {TEST:?}");
    }
}

/// Where screenshots go: `<target dir>/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("screenshots")
}

/// chromedriver in a process group of its own, so that dropping this
/// ends it and the Chromium it started even when a test panics.
struct Driver {
    child: Child,
}

impl Driver {
    fn start(tools: &Tools) -> (Self, u16) {
        use std::os::unix::process::CommandExt as _;
        let mut child = Command::new(&tools.chromedriver)
            .arg("--port=0")
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let stdout = child.stdout.take().expect("chromedriver stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps draining stdout after the port line so chromedriver never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches('.').parse().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let driver = Self { child };
        let port: u16 = rx.recv_timeout(STEP).expect("chromedriver did not report its port");
        (driver, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The negative id names the whole group: chromedriver and its browser.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

pub struct Browser {
    pub client: Client,
    base: String,
    _driver: Driver,
    _profile: tempfile::TempDir,
    _turn: Option<Turn>,
}

impl Browser {
    /// A fresh headless Chromium (own profile) pointed at `base`.
    pub async fn launch(tools: &Tools, base: &str) -> Self {
        let turn = take_turn().await;
        Self::start(tools, base, &[], Some(turn)).await
    }

    /// A browser with `extra` flags, launched within a turn the caller holds.
    pub async fn launch_in_turn(tools: &Tools, base: &str, extra: &[String], _turn: &Turn) -> Self {
        Self::start(tools, base, extra, None).await
    }

    async fn start(tools: &Tools, base: &str, extra: &[String], turn: Option<Turn>) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let (driver, port) = Driver::start(tools);
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--ignore-certificate-errors",
            "--window-size=1280,900",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .chain(extra.iter().cloned())
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "timeouts": {"pageLoad": 20_000, "script": 10_000, "implicit": 0},
            "goog:chromeOptions": {"binary": tools.chromium, "args": args},
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(capabilities);
        let url = format!("http://127.0.0.1:{port}");
        let client = tokio::time::timeout(Duration::from_secs(30), builder.connect(&url))
            .await
            .expect("Chromium did not start within 30 s")
            .expect("WebDriver session");
        Self { client, base: base.to_owned(), _driver: driver, _profile: profile, _turn: turn }
    }

    pub async fn goto(&self, path: &str) {
        let url = format!("{}{}", self.base, path);
        self.client.goto(&url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} within {STEP:?}: {e}"))
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        element.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css).await.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs an asynchronous `script`: its last argument is the callback that
    /// returns the value (within the session's 10 s script timeout).
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute_async(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls the expression `condition` until it is truthy; returns its value.
    pub async fn wait_for(&self, what: &str, condition: &str) -> Value {
        let script = format!("try {{ return ({condition}) || null; }} catch (e) {{ return null; }}");
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let value = self.js(&script, vec![]).await;
            if !value.is_null() && value != Value::Bool(false) {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
                let text = self.js("return document.body ? document.body.innerText : ''", vec![]).await;
                panic!(
                    "waited {STEP:?} for {what} ({condition}) at {url}; the page says:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page at `path` has loaded.
    pub async fn wait_path(&self, path: &str) {
        let condition = format!("location.pathname === {} && document.readyState === 'complete'", json!(path));
        self.wait_for(&format!("the page {path}"), &condition).await;
    }

    /// Waits until the element's visible text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let condition = format!(
            "(document.querySelector({css})?.innerText || '').includes({needle}) && document.querySelector({css}).innerText",
            css = json!(css),
            needle = json!(needle),
        );
        let value = self.wait_for(&format!("{css} to say {needle:?}"), &condition).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write screenshot");
        let _ = writeln!(std::io::stderr(), "screenshot: {}", path.display());
        path
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap_or_else(|e| panic!("resize: {e}"));
    }

    /// Ends the WebDriver session; the driver and browser processes end
    /// when this value drops.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
    }
}
