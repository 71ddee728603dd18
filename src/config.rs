//! Settings: read once from flags and environment (clap), validated into a
//! [`Config`] that the rest of the program receives by value or `Arc`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use url::Url;

/// Every `CONSULTA_*` variable the program reads. Any other `CONSULTA_*`
/// variable in the environment is a typo that would silently do nothing, so
/// start-up refuses it.
pub const KNOWN_VARIABLES: &[&str] = &[
    "CONSULTA_BIND",
    "CONSULTA_PUBLIC_URL",
    "CONSULTA_TLS",
    "CONSULTA_TLS_CERT",
    "CONSULTA_TLS_KEY",
    "CONSULTA_JWT_SECRET",
    "CONSULTA_SMTP_URL",
    "CONSULTA_MAIL_FROM",
    "CONSULTA_RTC_UDP_PORT",
    "CONSULTA_RTC_PUBLIC_IP",
    "CONSULTA_ICE_SERVERS",
    "CONSULTA_DATA_DIR",
    "CONSULTA_MAIL_RETRY_MIN_SECS",
    "CONSULTA_MAIL_REMINDERS",
    "CONSULTA_BCRYPT_COST",
    "CONSULTA_SESSION_IDLE_MINUTES",
    "CONSULTA_SESSION_MAX_HOURS",
    "CONSULTA_LOGIN_IP_PER_MINUTE",
    "CONSULTA_LOGIN_ACCOUNT_PER_MINUTE",
    "CONSULTA_TRUST_PROXY",
    "CONSULTA_RTC_LOOPBACK",
    "CONSULTA_RTC_MAX_BITRATE_KBPS",
    "CONSULTA_ADMIN_2FA",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AutoToggle {
    Auto,
    On,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

/// The raw settings, as clap reads them. The value names are the variable
/// names so that clap's own error messages name the variable at fault.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    /// `sqlite://…` or `mysql://…`; migrations run at start. Default:
    /// `sqlite://<CONSULTA_DATA_DIR>/consulta.db` (`sqlite://data/consulta.db`).
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// TCP listen address.
    #[arg(long, global = true, env = "CONSULTA_BIND", value_name = "CONSULTA_BIND", default_value = "127.0.0.1:8443")]
    pub bind: SocketAddr,

    /// Base of links in emails; its origin is the only one allowed for
    /// browser requests and WebSocket upgrades.
    #[arg(
        long,
        global = true,
        env = "CONSULTA_PUBLIC_URL",
        value_name = "CONSULTA_PUBLIC_URL",
        default_value = "https://localhost:8443"
    )]
    pub public_url: String,

    /// `off` serves plain HTTP, for running behind a TLS-terminating proxy.
    #[arg(long, global = true, env = "CONSULTA_TLS", value_name = "CONSULTA_TLS", value_enum, default_value = "on")]
    pub tls: Toggle,

    #[arg(
        long,
        global = true,
        env = "CONSULTA_TLS_CERT",
        value_name = "CONSULTA_TLS_CERT",
        default_value = "certs/cert.pem"
    )]
    pub tls_cert: PathBuf,

    #[arg(
        long,
        global = true,
        env = "CONSULTA_TLS_KEY",
        value_name = "CONSULTA_TLS_KEY",
        default_value = "certs/key.pem"
    )]
    pub tls_key: PathBuf,

    /// At least 32 bytes; generated once into `<data dir>/jwt.secret` when unset.
    #[arg(
        long,
        global = true,
        env = "CONSULTA_JWT_SECRET",
        value_name = "CONSULTA_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// lettre's SMTP URL form; unset writes mails as files into `<data dir>/mail`.
    #[arg(long, global = true, env = "CONSULTA_SMTP_URL", value_name = "CONSULTA_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    #[arg(
        long,
        global = true,
        env = "CONSULTA_MAIL_FROM",
        value_name = "CONSULTA_MAIL_FROM",
        default_value = "Consulta <no-reply@localhost>"
    )]
    pub mail_from: String,

    /// The one UDP port all media uses.
    #[arg(
        long,
        global = true,
        env = "CONSULTA_RTC_UDP_PORT",
        value_name = "CONSULTA_RTC_UDP_PORT",
        default_value_t = 8443
    )]
    pub rtc_udp_port: u16,

    /// IP to advertise in ICE candidates (1:1 NAT, cloud hosts).
    #[arg(long, global = true, env = "CONSULTA_RTC_PUBLIC_IP", value_name = "CONSULTA_RTC_PUBLIC_IP")]
    pub rtc_public_ip: Option<IpAddr>,

    /// Advertise loopback ICE candidates: `auto` does when the media socket is
    /// on a loopback address (local use, tests).
    #[arg(
        long,
        global = true,
        env = "CONSULTA_RTC_LOOPBACK",
        value_name = "CONSULTA_RTC_LOOPBACK",
        value_enum,
        default_value = "auto"
    )]
    pub rtc_loopback: AutoToggle,

    /// Video bitrate cap announced to publishers, in kbit/s.
    #[arg(long, global = true, env = "CONSULTA_RTC_MAX_BITRATE_KBPS", value_name = "CONSULTA_RTC_MAX_BITRATE_KBPS",
          default_value_t = 1500, value_parser = clap::value_parser!(u32).range(100..=20_000))]
    pub rtc_max_bitrate_kbps: u32,

    /// JSON list of STUN/TURN servers handed to browsers.
    #[arg(
        long,
        global = true,
        env = "CONSULTA_ICE_SERVERS",
        value_name = "CONSULTA_ICE_SERVERS",
        default_value = "[]"
    )]
    pub ice_servers: String,

    /// Where SQLite, mail files and the generated secret live.
    #[arg(long, global = true, env = "CONSULTA_DATA_DIR", value_name = "CONSULTA_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// First retry delay for a mail the SMTP server did not take; doubles up to an hour.
    #[arg(
        long,
        global = true,
        env = "CONSULTA_MAIL_RETRY_MIN_SECS",
        value_name = "CONSULTA_MAIL_RETRY_MIN_SECS",
        default_value_t = 60
    )]
    pub mail_retry_min_secs: u64,

    /// When reminder mails go out before an appointment: a comma-separated
    /// list of durations such as `24h,1h` (units `d`, `h`, `m`); `none` for no reminders.
    #[arg(
        long,
        global = true,
        env = "CONSULTA_MAIL_REMINDERS",
        value_name = "CONSULTA_MAIL_REMINDERS",
        default_value = "24h,1h"
    )]
    pub mail_reminders: String,

    /// bcrypt work factor (4–31). Lower it only for tests.
    #[arg(long, global = true, env = "CONSULTA_BCRYPT_COST", value_name = "CONSULTA_BCRYPT_COST",
          default_value_t = 12, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// A session ends after this many minutes without a request.
    #[arg(long, global = true, env = "CONSULTA_SESSION_IDLE_MINUTES",
          value_name = "CONSULTA_SESSION_IDLE_MINUTES", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub session_idle_minutes: u32,

    /// A session ends this many hours after sign-in, however active.
    #[arg(long, global = true, env = "CONSULTA_SESSION_MAX_HOURS",
          value_name = "CONSULTA_SESSION_MAX_HOURS", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=720))]
    pub session_max_hours: u32,

    /// Sign-in and registration attempts per client IP per minute.
    #[arg(long, global = true, env = "CONSULTA_LOGIN_IP_PER_MINUTE",
          value_name = "CONSULTA_LOGIN_IP_PER_MINUTE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub login_ip_per_minute: u32,

    /// Sign-in attempts per account per minute.
    #[arg(long, global = true, env = "CONSULTA_LOGIN_ACCOUNT_PER_MINUTE",
          value_name = "CONSULTA_LOGIN_ACCOUNT_PER_MINUTE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub login_account_per_minute: u32,

    /// Take the client IP from `X-Forwarded-For` (set it only behind a proxy
    /// that overwrites that header).
    #[arg(
        long,
        global = true,
        env = "CONSULTA_TRUST_PROXY",
        value_name = "CONSULTA_TRUST_PROXY",
        value_enum,
        default_value = "off"
    )]
    pub trust_proxy: Toggle,

    /// Admins must sign in with a second factor (TOTP) before admin
    /// endpoints answer them. `off` only where another layer enforces it.
    #[arg(
        long,
        global = true,
        env = "CONSULTA_ADMIN_2FA",
        value_name = "CONSULTA_ADMIN_2FA",
        value_enum,
        default_value = "on"
    )]
    pub admin_2fa: Toggle,
}

/// A setting that cannot be used, named by its variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn invalid(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    MySql,
}

impl std::fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatabaseKind::Sqlite => "SQLite",
            DatabaseKind::MySql => "MySQL/MariaDB",
        })
    }
}

/// The public base URL: links in mail and the one origin browsers may use.
#[derive(Clone, Debug)]
pub struct PublicUrl {
    base: String,
    origin: String,
}

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        const VAR: &str = "CONSULTA_PUBLIC_URL";
        let url = Url::parse(raw).map_err(|e| invalid(VAR, format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(VAR, "must start with https:// or http://"));
        }
        if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(VAR, "must be a plain base URL such as https://clinic.example"));
        }
        let origin = url.origin().ascii_serialization();
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self { base, origin })
    }

    /// Without a trailing slash, e.g. `https://localhost:8443`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `scheme://host[:port]`, as browsers send it in `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub database_kind: DatabaseKind,
    pub bind: SocketAddr,
    pub public_url: PublicUrl,
    pub tls: Option<TlsFiles>,
    pub jwt_secret: Option<Vec<u8>>,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub rtc_udp_port: u16,
    pub rtc_public_ip: Option<IpAddr>,
    pub rtc_loopback: bool,
    pub rtc_max_bitrate_bps: u32,
    pub ice_servers: Vec<IceServer>,
    pub data_dir: PathBuf,
    pub mail_retry_min: Duration,
    /// How long before the start each reminder goes out, longest first.
    pub mail_reminders: Vec<Duration>,
    pub bcrypt_cost: u32,
    pub session_idle: Duration,
    pub session_max: Duration,
    pub login_ip_per_minute: u32,
    pub login_account_per_minute: u32,
    pub trust_proxy: bool,
    pub admin_2fa: bool,
}

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Which backend a `DATABASE_URL` names; a typo is an error, never a guess.
pub fn database_kind(url: &str) -> Result<DatabaseKind, ConfigError> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(DatabaseKind::Sqlite),
        "mysql" | "mariadb" => Ok(DatabaseKind::MySql),
        _ => Err(invalid(
            "DATABASE_URL",
            "must start with sqlite:// or mysql:// (for example sqlite://data/consulta.db)",
        )),
    }
}

impl Settings {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let database_url = self.database_url.unwrap_or_else(|| default_database_url(&self.data_dir));
        let database_kind = database_kind(&database_url)?;
        // sqlx does not know the `mariadb` scheme; it is the same protocol.
        let database_url = match database_url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => database_url,
        };
        let public_url = PublicUrl::parse(&self.public_url)?;
        let jwt_secret = match self.jwt_secret {
            Some(s) if s.len() < 32 => {
                return Err(invalid("CONSULTA_JWT_SECRET", "must be at least 32 bytes long"));
            }
            Some(s) => Some(s.into_bytes()),
            None => None,
        };
        if let Some(smtp) = &self.smtp_url
            && !(smtp.starts_with("smtp://") || smtp.starts_with("smtps://"))
        {
            return Err(invalid(
                "CONSULTA_SMTP_URL",
                "must start with smtp:// or smtps:// (for example smtp://127.0.0.1:2525)",
            ));
        }
        let ice_servers: Vec<IceServer> = serde_json::from_str(&self.ice_servers).map_err(|_| {
            invalid("CONSULTA_ICE_SERVERS", r#"must be a JSON list such as [{"urls":["stun:stun.example.org:3478"]}]"#)
        })?;
        if self.mail_retry_min_secs == 0 || self.mail_retry_min_secs > 3600 {
            return Err(invalid("CONSULTA_MAIL_RETRY_MIN_SECS", "must be between 1 and 3600"));
        }
        if self.mail_from.trim().is_empty() || self.mail_from.contains(['\r', '\n']) {
            return Err(invalid(
                "CONSULTA_MAIL_FROM",
                "must be one mailbox such as Consulta <no-reply@clinic.example>",
            ));
        }
        let mail_reminders = parse_reminders(&self.mail_reminders)?;
        let tls = match self.tls {
            Toggle::On => Some(TlsFiles { cert: self.tls_cert, key: self.tls_key }),
            Toggle::Off => None,
        };
        Ok(Config {
            database_url,
            database_kind,
            bind: self.bind,
            public_url,
            tls,
            jwt_secret,
            smtp_url: self.smtp_url,
            mail_from: self.mail_from,
            rtc_udp_port: self.rtc_udp_port,
            rtc_public_ip: self.rtc_public_ip,
            rtc_loopback: match self.rtc_loopback {
                AutoToggle::On => true,
                AutoToggle::Off => false,
                AutoToggle::Auto => self.bind.ip().is_loopback(),
            },
            rtc_max_bitrate_bps: self.rtc_max_bitrate_kbps * 1000,
            ice_servers,
            data_dir: self.data_dir,
            mail_retry_min: Duration::from_secs(self.mail_retry_min_secs),
            mail_reminders,
            bcrypt_cost: self.bcrypt_cost,
            session_idle: Duration::from_secs(u64::from(self.session_idle_minutes) * 60),
            session_max: Duration::from_secs(u64::from(self.session_max_hours) * 3600),
            login_ip_per_minute: self.login_ip_per_minute,
            login_account_per_minute: self.login_account_per_minute,
            trust_proxy: self.trust_proxy == Toggle::On,
            admin_2fa: self.admin_2fa == Toggle::On,
        })
    }
}

/// `24h,1h` → [24 h, 1 h]: each between one minute and 30 days, longest
/// first, without repeats; `none` (or nothing) means no reminders.
pub fn parse_reminders(raw: &str) -> Result<Vec<Duration>, ConfigError> {
    const VAR: &str = "CONSULTA_MAIL_REMINDERS";
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut all = Vec::new();
    for item in raw.split(',').map(str::trim) {
        let bad = || invalid(VAR, format!("{item:?} is not a duration such as 24h, 90m or 2d (list: 24h,1h)"));
        let unit = item.chars().last().ok_or_else(bad)?;
        let number: u64 = item[..item.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
        let minutes = match unit {
            'm' => number,
            'h' => number.saturating_mul(60),
            'd' => number.saturating_mul(24 * 60),
            _ => return Err(bad()),
        };
        if !(1..=30 * 24 * 60).contains(&minutes) {
            return Err(invalid(VAR, format!("{item} must be between 1m and 30d")));
        }
        all.push(Duration::from_secs(minutes * 60));
    }
    all.sort_unstable_by(|a, b| b.cmp(a));
    all.dedup();
    Ok(all)
}

/// The embedded database when `DATABASE_URL` is not set: `consulta.db` in the data directory,
/// so that `CONSULTA_DATA_DIR` alone moves everything the server keeps.
fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}/consulta.db", data_dir.display())
}

/// Refuses `CONSULTA_*` variables that nothing reads (a typo would
/// otherwise be ignored silently).
pub fn check_unknown_variables(vars: impl Iterator<Item = (String, String)>) -> Result<(), ConfigError> {
    for (name, _) in vars {
        if name.starts_with("CONSULTA_") && !KNOWN_VARIABLES.contains(&name.as_str()) {
            return Err(ConfigError {
                variable: "environment",
                message: format!("unknown variable {name}; see README.md for the accepted ones"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_database_lives_in_the_data_dir() {
        assert_eq!(default_database_url(Path::new("data")), "sqlite://data/consulta.db");
        assert_eq!(default_database_url(Path::new("/var/lib/consulta")), "sqlite:///var/lib/consulta/consulta.db");
        let cli =
            <crate::cli::Cli as clap::Parser>::try_parse_from(["consulta", "--data-dir", "/srv/clinic", "migrate"]);
        let config = cli.ok().map(|c| c.settings.validate());
        // DATABASE_URL in the environment would override the default; only check without it.
        if std::env::var_os("DATABASE_URL").is_none() {
            let url = config.and_then(Result::ok).map(|c| c.database_url);
            assert_eq!(url.as_deref(), Some("sqlite:///srv/clinic/consulta.db"));
        }
    }

    #[test]
    fn database_kind_comes_from_the_scheme() {
        assert_eq!(database_kind("sqlite://x.db").ok(), Some(DatabaseKind::Sqlite));
        assert_eq!(database_kind("mysql://root@h/db").ok(), Some(DatabaseKind::MySql));
        let err = database_kind("postgress://h/db").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.starts_with("DATABASE_URL")));
    }

    #[test]
    fn public_url_origin_drops_the_path() {
        let url = PublicUrl::parse("https://clinic.example:8443/consulta/").ok();
        assert_eq!(url.as_ref().map(PublicUrl::origin), Some("https://clinic.example:8443"));
        assert_eq!(url.as_ref().map(PublicUrl::base), Some("https://clinic.example:8443/consulta"));
        assert!(PublicUrl::parse("ftp://x").is_err());
    }

    #[test]
    fn reminder_offsets_parse_sort_and_refuse_nonsense() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert_eq!(parse_reminders("1h, 24h").ok(), Some(vec![hours(24), hours(1)]));
        assert_eq!(parse_reminders("2d,90m,1h,1h").ok(), Some(vec![hours(48), Duration::from_secs(5400), hours(1)]));
        assert_eq!(parse_reminders("none").ok(), Some(vec![]));
        assert_eq!(parse_reminders("").ok(), Some(vec![]));
        for bad in ["24", "h", "1w", "0m", "31d", "1h,,2h", "-1h", "1é"] {
            let err = parse_reminders(bad).err().map(|e| e.to_string());
            assert!(err.is_some_and(|e| e.starts_with("CONSULTA_MAIL_REMINDERS")), "{bad} was accepted");
        }
    }

    #[test]
    fn unknown_consulta_variables_are_refused() {
        let vars = vec![("CONSULTA_BND".to_owned(), "x".to_owned())];
        let err = check_unknown_variables(vars.into_iter()).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("CONSULTA_BND")));
        let ok = vec![("CONSULTA_BIND".to_owned(), "x".to_owned()), ("HOME".into(), "/".into())];
        assert!(check_unknown_variables(ok.into_iter()).is_ok());
    }
}
