//! `flotta-server`: the command line over the `flotta_server` library.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use flotta_server::clock::{Clock, SystemClock};
use flotta_server::config::Config;
use flotta_server::device_id::DeviceId;
use flotta_server::pki::Pki;
use flotta_server::store::{SqliteStore, Store};

/// Flotta-compatible edge device management server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (defaults, then this file, then FLOTTA_SERVER_* variables).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Override `data_dir` from the configuration.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the CA and the server certificate in the data directory (idempotent).
    Init,
    /// Serve the Edge API (mTLS) and the admin endpoints.
    Serve,
    /// Write `ca.pem`, `register.pem` and `register.key` for factory images.
    IssueRegistrationCert {
        /// Directory to write the files to.
        #[arg(long)]
        out_dir: PathBuf,
        /// Lifetime of the certificate (default: `registration_cert_validity_seconds`).
        #[arg(long)]
        validity_seconds: Option<u64>,
    },
    /// Approve an enrolled device.
    Approve {
        /// The device id.
        device_id: String,
    },
    /// Print the effective configuration as TOML.
    Config,
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

fn require_ca(config: &Config) -> anyhow::Result<()> {
    let ca = Pki::ca_cert_path(&config.data_dir);
    if !ca.exists() {
        bail!(
            "no CA at {}; run `flotta-server init` first (or pass --data-dir)",
            ca.display()
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = load_config(&cli)?;
    let clock = SystemClock;
    match cli.command {
        Command::Init => {
            Pki::load_or_init(&config.data_dir, &config.pki_settings(), clock.now())?;
            println!("{}", Pki::ca_cert_path(&config.data_dir).display());
        }
        Command::Serve => serve(config)?,
        Command::IssueRegistrationCert {
            out_dir,
            validity_seconds,
        } => {
            require_ca(&config)?;
            let pki = Pki::load_or_init(&config.data_dir, &config.pki_settings(), clock.now())?;
            let secs = validity_seconds.unwrap_or(config.registration_cert_validity_seconds);
            if secs == 0 {
                bail!("--validity-seconds must be at least 1");
            }
            pki.write_registration_bundle(&out_dir, clock.now(), Duration::from_secs(secs))?;
            for f in ["ca.pem", "register.pem", "register.key"] {
                println!("{}", Path::new(&out_dir).join(f).display());
            }
        }
        Command::Approve { device_id } => {
            let id = DeviceId::parse(&device_id)?;
            let store = SqliteStore::open(&config.store_path())?;
            store
                .approve(&id)
                .with_context(|| format!("approving {id}"))?;
            println!("approved {id}");
        }
        Command::Config => print!("{}", config.to_toml()),
    }
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = flotta_server::server::start(config, Arc::new(SystemClock)).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        server.shutdown().await;
        Ok(())
    })
}
