//! The `consulta` command line: `serve` (default), `migrate`, `user create`, `demo`,
//! `audit verify`.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::accounts::{AccountInput, create_account};
use crate::auth::PasswordHasher;
use crate::clock::Clock;
use crate::config::{Config, Settings, check_unknown_variables};
use crate::domain::Role;
use crate::startup::{Application, open_database, shutdown_signal};

#[derive(Debug, Parser)]
#[command(
    name = "consulta",
    version,
    about = "Self-hosted telehealth hub: scheduling, live dashboards and video rooms"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTPS, the live hub and media (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Seed a demo doctor with availability and a demo patient, and print their logins.
    Demo,
    /// Check the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit trail's hash chain; exits non-zero naming the
    /// first broken link, or when rows have waited longer than the grace
    /// period to be linked (the server's chainer is not running or failing).
    Verify {
        /// Seconds an appended row may stay unlinked before it is reported.
        #[arg(long, default_value_t = 60)]
        grace_secs: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from standard input or --password-file.
    Create {
        #[arg(long, value_parser = clap::value_parser!(Role))]
        role: Role,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// IANA time zone name.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// A file whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &[Role::Admin, Role::Doctor, Role::Patient]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

pub fn main() -> ExitCode {
    if let Err(e) = check_unknown_variables(std::env::vars()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    if let Err(e) = crate::telemetry::init() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let config = match cli.settings.validate() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            let db = open_database(&config).await?;
            tracing::info!(database = %config.database_kind, "migrations applied");
            db.close().await;
            Ok(())
        }
        Command::User(UserCommand::Create { role, email, name, timezone, password_file }) => {
            let password = read_password(password_file)?;
            let db = open_database(&config).await?;
            let hasher = PasswordHasher::new(config.bcrypt_cost).await?;
            let input = AccountInput { email, password, name, timezone };
            let account = input.parse(role).map_err(|errors| {
                let lines: Vec<String> = errors.into_map().into_iter().map(|(f, m)| format!("{f} {m}")).collect();
                anyhow::anyhow!("the account is not valid: {}", lines.join("; "))
            })?;
            let user = create_account(&db, &hasher, &account, Clock::system().now()).await?;
            println!("created {} {} <{}> with id {}", user.role, user.name, user.email, user.id);
            db.close().await;
            Ok(())
        }
        Command::Demo => crate::demo::seed(&config).await,
        Command::Audit(AuditCommand::Verify { grace_secs }) => {
            let db = open_database(&config).await?;
            let grace = chrono::Duration::seconds(i64::from(grace_secs));
            let report =
                db.verify_audit_chain(Clock::system().now(), grace).await.context("cannot read the audit trail")?;
            db.close().await;
            if let Some(link) = report.broken {
                let at = match link.seq {
                    Some(seq) => format!("seq {seq} (chain position {})", link.chain_seq),
                    None => format!("chain position {}", link.chain_seq),
                };
                println!("audit chain BROKEN at {at}: {}", link.reason);
                anyhow::bail!("the audit chain is broken at {at} ({} rows verified before it)", report.verified);
            }
            let unchained = &report.unchained;
            println!(
                "audit chain intact: {} rows verified ({} written before the chain began, {} not linked yet)",
                report.verified, report.before_chain, unchained.pending
            );
            if unchained.overdue > 0 {
                let oldest = unchained.oldest_overdue_seq.unwrap_or_default();
                println!(
                    "audit rows NOT LINKED: {} rows have waited more than {grace_secs} s (oldest seq {oldest})",
                    unchained.overdue
                );
                anyhow::bail!(
                    "{} audit rows are not protected by the chain yet: is a server running, and does its log \
                     show audit chainer errors?",
                    unchained.overdue
                );
            }
            Ok(())
        }
    }
}

fn read_password(file: Option<PathBuf>) -> anyhow::Result<String> {
    let line = match file {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => {
            eprintln!("password (one line on standard input):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
            line
        }
    };
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
