//! The one place that wires modules together: secret, TLS, database,
//! migrations, state, routes, listener, graceful shutdown.
//!
//! Building (which may fail) is apart from running, so tests can bind port
//! 0, learn the address, and then run.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rand::RngCore as _;
use tokio::net::TcpListener;

use crate::auth::{PasswordHasher, SignInLimits, TokenKeys};
use crate::clock::Clock;
use crate::config::{Config, DatabaseKind};
use crate::db::Db;
use crate::mail::{MailContext, MailWorker};
use crate::server::{self, ServeOptions};
use crate::sfu::{Sfu, SfuConfig, SfuError};
use crate::state::AppState;
use crate::tls::{self, TlsSource};

/// A built, not yet running server.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    tls_source: Option<TlsSource>,
    state: AppState,
    mail_worker: MailWorker,
}

/// Connects and migrates the database named by the configuration.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database_url, config.database_kind.clone())
        .await
        .with_context(|| format!("DATABASE_URL: could not connect to {}", redact_url(&config.database_url)))?;
    db.migrate().await.context("DATABASE_URL: migrations failed")?;
    Ok(db)
}

/// The JWT secret: from the configuration, or generated once into the data
/// folder (mode 0600) so sessions survive restarts.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.clone());
    }
    let path = config.data_dir.join("jwt.secret");
    if path.exists() {
        let secret = std::fs::read_to_string(&path)
            .with_context(|| format!("CONSULTA_JWT_SECRET: could not read {}", path.display()))?;
        let secret = secret.trim();
        anyhow::ensure!(secret.len() >= 32, "CONSULTA_JWT_SECRET: {} holds fewer than 32 bytes", path.display());
        return Ok(secret.as_bytes().to_vec());
    }
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, secret.as_bytes())
        .with_context(|| format!("CONSULTA_DATA_DIR: could not write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a new token-signing secret");
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

/// `scheme://host/…` without user or password, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.has_host() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.split('?').next().unwrap_or(url).to_owned(),
    }
}

/// The media plane on one UDP port, on the same address as HTTPS.
async fn start_sfu(config: &Config, ip: std::net::IpAddr) -> anyhow::Result<Sfu> {
    let sfu_config = SfuConfig {
        udp_bind: SocketAddr::new(ip, config.rtc_udp_port),
        public_ip: config.rtc_public_ip,
        include_loopback: config.rtc_loopback,
        max_bitrate_bps: config.rtc_max_bitrate_bps,
        ..SfuConfig::default()
    };
    Sfu::start(sfu_config).await.map_err(|e| match e {
        SfuError::Bind(io) => {
            anyhow::anyhow!("CONSULTA_RTC_UDP_PORT: cannot bind UDP {ip}:{}: {io}", config.rtc_udp_port)
        }
        SfuError::Config(why) => anyhow::anyhow!(
            "CONSULTA_RTC_PUBLIC_IP: {why} (set the address browsers reach this server at, \
             or CONSULTA_RTC_LOOPBACK=on for local use)"
        ),
        other => anyhow::anyhow!("media server: {other}"),
    })
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Clock::system()).await
    }

    pub async fn build_with_clock(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("CONSULTA_BIND: cannot listen on {}", config.bind))?;
        Self::build_on(config, clock, listener).await
    }

    /// Builds on a listener bound beforehand, for callers that must know the
    /// port before the configuration exists (a browser test whose public URL
    /// has to name the real port). `config.bind` is then not used.
    pub async fn build_on(config: Config, clock: Clock, listener: TcpListener) -> anyhow::Result<Self> {
        tls::install_crypto_provider();
        let (tls, tls_source) = match &config.tls {
            Some(files) => {
                let (server_config, source) = tls::load_or_generate(files)?;
                if source == TlsSource::Generated {
                    tracing::info!(cert = %files.cert.display(), "generated a self-signed certificate for localhost");
                }
                (Some(server_config), Some(source))
            }
            None => (None, None),
        };
        let secret = jwt_secret(&config)?;
        let db = open_database(&config).await?;
        let hasher = PasswordHasher::new(config.bcrypt_cost).await?;
        let local_addr = listener.local_addr()?;
        let mail = MailContext::from_config(&config);
        let mail_worker = crate::mail::worker_from_config(&config, db.clone(), clock.clone(), mail.clone())?;
        let sfu = start_sfu(&config, local_addr.ip()).await?;
        let state = AppState {
            tokens: TokenKeys::new(&secret, config.public_url.origin()),
            limits: SignInLimits::new(config.login_ip_per_minute, config.login_account_per_minute),
            config: Arc::new(config),
            db,
            hasher,
            clock,
            presence: crate::presence::RoomPresence::default(),
            hub: crate::hub::Hub::new(),
            mail,
            sfu,
        };
        Ok(Self { listener, local_addr, tls, tls_source, state, mail_worker })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// One line per fact an operator needs at start.
    fn log_summary(&self) {
        let config = &self.state.config;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let database = match config.database_kind {
            DatabaseKind::Sqlite => format!("SQLite ({})", redact_url(&config.database_url)),
            DatabaseKind::MySql => format!("MySQL/MariaDB ({})", redact_url(&config.database_url)),
        };
        let tls = match &self.tls_source {
            None => "off (plain HTTP; put a TLS proxy in front)".to_owned(),
            Some(TlsSource::Generated) => "self-signed certificate generated for localhost".to_owned(),
            Some(TlsSource::Files) => match &config.tls {
                Some(files) => format!("certificate from {}", files.cert.display()),
                None => "certificate files".to_owned(),
            },
        };
        let mail = crate::mail::describe(config);
        tracing::info!(listen = %format!("{scheme}://{}", self.local_addr), "Consulta is serving");
        tracing::info!(open = %config.public_url.base(), "open this address in a browser");
        tracing::info!(%database, %tls, %mail, "using");
        tracing::info!(media = %format!("udp://{}", self.state.sfu.local_addr()), "video rooms");
    }

    /// Serves until `shutdown` resolves, then drains and closes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        self.log_summary();
        let state = self.state.clone();
        let limits = state.limits.clone();
        let housekeeping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.shrink();
            }
        });
        let sweeper = tokio::spawn(state.hub.clone().sweep_sessions(
            state.db.clone(),
            state.clock.clone(),
            state.config.session_idle,
        ));
        // Rows left by an earlier run (or written while SMTP was down) go out now.
        let mail_worker = self.mail_worker.spawn();
        // Rows left unlinked by an earlier run are linked by its first pass.
        let chainer = crate::audit_chainer::spawn(state.db.clone());
        let routes = crate::http::routes(state.clone());
        let hub_state = state.clone();
        let websocket: server::UpgradeHook =
            Arc::new(move |request| Box::pin(crate::hub::upgrade(hub_state.clone(), request)));
        let options = ServeOptions {
            tls: self.tls,
            public_origin: state.config.public_url.origin().to_owned(),
            websocket: Some(("/ws", websocket)),
        };
        server::serve(self.listener, routes, options, shutdown).await;
        state.hub.close_all();
        state.sfu.shutdown().await;
        sweeper.abort();
        housekeeping.abort();
        mail_worker.stop(Duration::from_secs(10)).await;
        chainer.stop(Duration::from_secs(5)).await;
        state.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
