//! `flotta-server`: the command line over the `flotta_server` library.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use flotta_server::cli::{self, AdminClient, OutputFormat};
use flotta_server::clock::{Clock, SystemClock};
use flotta_server::config::{Config, ObjectsBackend};
use flotta_server::controller;
use flotta_server::device_id::{DeviceId, Namespace};
use flotta_server::links::LinkAddress;
use flotta_server::objects::{FieldValidation, Kind};
use flotta_server::pki::Pki;
use flotta_server::provision;
use flotta_server::store::Store;

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
    /// Admin listener to talk to (default: `admin_listen_addr` of the configuration).
    #[arg(long, global = true)]
    admin_addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    access: AccessArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the CA and the server certificate in the data directory (idempotent;
    /// with `ca_cert_file`/`ca_key_file` the CA is only read from them).
    Init,
    /// Serve the Edge API (mTLS) and the admin endpoints.
    Serve,
    /// Write `ca.pem`, `register.pem` and `register.key` for factory images.
    #[command(visible_alias = "issue-registration-certificate")]
    IssueRegistrationCert {
        /// Directory to write the files to.
        #[arg(long)]
        out_dir: PathBuf,
        /// Lifetime of the certificate (default: `registration_cert_validity_seconds`).
        #[arg(long)]
        validity_seconds: Option<u64>,
    },
    /// Issue an operator's client certificate for the admin listener and
    /// write `ca.pem`, `NAME.pem`, `NAME.key` (accepted with
    /// `admin_client_certs = true`; revoke by serial in `admin_revoked_serials`).
    IssueAdminCert {
        /// Who holds it (recorded in the audit log).
        #[arg(long)]
        name: String,
        /// Read-only instead of admin.
        #[arg(long)]
        read_only: bool,
        /// Directory to write the files to.
        #[arg(long)]
        out_dir: PathBuf,
        /// Lifetime of the certificate.
        #[arg(long, default_value_t = 90 * 86_400)]
        validity_seconds: u64,
    },
    /// Make an admin bearer token: prints it once, with the
    /// `[[admin_tokens]]` entry (its hash) to add to the configuration.
    AdminToken {
        /// Who holds it (recorded in the audit log).
        #[arg(long)]
        name: String,
        /// `admin` or `read-only`.
        #[arg(long, default_value = "read-only")]
        role: String,
    },
    /// The admin listener's audit log (admin role), newest first.
    Audit {
        /// Records to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only records older than this id (the next page).
        #[arg(long)]
        before: Option<u64>,
        /// Output format: `json` for the records as the API answers them.
        #[arg(short, long)]
        output: Option<String>,
    },
    /// Approve an enrolled device (works on the store directly, server running or not).
    Approve {
        /// The device id.
        device_id: String,
    },
    /// Create or update objects from YAML/JSON manifests (multi-document).
    Apply {
        /// Manifest file, or `-` for standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace for objects that name none.
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Unknown fields: strict (or true) refuses the manifests, warn
        /// stores and prints a warning per field, ignore (or false) drops
        /// them silently. `--validate` alone means strict.
        #[arg(
            long,
            default_value = "warn",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "strict",
            value_parser = FieldValidation::from_flag,
        )]
        validate: FieldValidation,
    },
    /// List objects of a kind, or show one.
    Get {
        /// Kind: edgedevice(s)/ed, edgedeviceset(s)/eds, edgeworkload(s)/ew, edgedevicesignedrequest(s)/edsr.
        kind: String,
        /// Object name (all objects of the kind when omitted).
        name: Option<String>,
        /// Namespace (default: `default_namespace`).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// List across all namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Output format: table, wide (EdgeDevices: link and frame columns), yaml or json.
        #[arg(short = 'o', long, default_value = "table")]
        output: OutputFormat,
    },
    /// Show one object in detail.
    Describe {
        /// Kind (as for `get`).
        kind: String,
        /// Object name.
        name: String,
        /// Namespace (default: `default_namespace`).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// Delete one object (an EdgeDevice: decommissions its device, data kept).
    Delete {
        /// Kind (as for `get`).
        kind: String,
        /// Object name.
        name: String,
        /// Namespace (default: `default_namespace`).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Who deletes, recorded in the device's events (not authenticated).
        #[arg(long, default_value_t = cli::local_user())]
        actor: String,
    },
    /// Print a device's newest log lines (the agent's and its workloads'),
    /// oldest first; with -f, then follow new ones as they arrive.
    Logs {
        /// The device id.
        device_id: String,
        /// Only the lines of this source (a workload, or `agent`).
        #[arg(long, visible_alias = "workload")]
        source: Option<String>,
        /// Only lines from this long ago on (device time): 90s, 15m, 2h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// Only lines of at least this level: info, warn, error.
        #[arg(long)]
        level: Option<String>,
        /// At most this many (the newest).
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Then follow: print lines as they arrive (until interrupted).
        #[arg(short = 'f', long)]
        follow: bool,
        /// Output format: text, or json (one object per line).
        #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
        output: String,
    },
    /// Print events, of one device or of every device, newest last; with
    /// -f, then follow new ones as they arrive (in the order they arrive).
    Events {
        /// The device id (every device's events when omitted).
        device_id: Option<String>,
        /// Only events from this long ago on (device time): 90s, 15m, 2h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// Only events of at least this level: info, warn, error.
        #[arg(long)]
        level: Option<String>,
        /// At most this many (the newest).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Then follow: print events as they arrive (until interrupted).
        #[arg(short = 'f', long)]
        follow: bool,
        /// Output format: text, or json (one object per line).
        #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
        output: String,
    },
    /// Revoke a device: its certificates are refused at once, its
    /// EdgeDevice goes, its data stays (unless --purge); enrolling the same
    /// id again needs explicit approval.
    Decommission {
        /// The device id.
        device_id: String,
        /// Also delete the device's records, events and configuration.
        #[arg(long)]
        purge: bool,
        /// Who decommissions, recorded in the device's events (not authenticated).
        #[arg(long, default_value_t = cli::local_user())]
        actor: String,
    },
    /// Bind a link address to a device: `--imei` the IMEI of its RockBLOCK
    /// (Iridium SBD via Rock7) or `--dev-eui` its LoRaWAN DevEUI. Refused
    /// when another device has it.
    Bind {
        /// The device id.
        device_id: String,
        #[command(flatten)]
        address: AddressArgs,
    },
    /// Remove a link address from a device.
    Unbind {
        /// The device id.
        device_id: String,
        #[command(flatten)]
        address: AddressArgs,
    },
    /// Make a frame-only device: registered and approved, with a
    /// certificate whose key the server makes (the only case where the key
    /// is not made on the device), and write its agent files into DIR:
    /// identity/device.pem (0600), ca.pem, frame/context.json (0600).
    /// Works on the store directly; never overwrites a file.
    Provision {
        /// The device id.
        device_id: String,
        /// Directory to write the files to (the agent's data directory).
        #[arg(long)]
        out: PathBuf,
        /// Namespace (default: `default_namespace`).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Bind the IMEI of the device's RockBLOCK (Iridium SBD via Rock7).
        #[arg(long)]
        imei: Option<String>,
        /// Bind the device's LoRaWAN DevEUI (16 hex digits).
        #[arg(long)]
        dev_eui: Option<String>,
    },
    /// Ask the admin listener whether the server is alive (`/healthz`) or,
    /// with --ready, ready (`/readyz`: the store answers); exits non-zero
    /// otherwise. For container probes: the admin listener stays on loopback.
    Health {
        /// Readiness instead of liveness.
        #[arg(long)]
        ready: bool,
    },
    /// Print Flotta's CustomResourceDefinitions (for `kubectl apply -f -`).
    Crds,
    /// Print the effective configuration as TOML.
    Config,
}

/// The admin commands' credentials.
#[derive(Debug, Clone, clap::Args)]
struct AccessArgs {
    /// File whose first line is an admin bearer token (default: $FLOTTA_ADMIN_TOKEN).
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// Speak TLS to the admin listener (implied when the configuration's
    /// admin listener uses it).
    #[arg(long, global = true)]
    admin_tls: bool,
    /// CA certificate the admin listener's certificate chains to (default:
    /// the configuration's CA).
    #[arg(long, global = true)]
    admin_ca: Option<PathBuf>,
    /// An operator's certificate from `issue-admin-cert` (PEM), with --admin-key.
    #[arg(long, global = true, requires = "admin_key")]
    admin_cert: Option<PathBuf>,
    /// The key of --admin-cert (PEM).
    #[arg(long, global = true, requires = "admin_cert")]
    admin_key: Option<PathBuf>,
}

impl AccessArgs {
    /// The client for the admin listener these arguments and `config` describe.
    fn client(
        &self,
        addr: Option<std::net::SocketAddr>,
        config: &Config,
    ) -> anyhow::Result<AdminClient> {
        let addr = addr.unwrap_or(config.admin_listen_addr);
        // TLS when asked, when the configuration's listener speaks it, and
        // always to an address off loopback (a server there speaks nothing else).
        let tls = (self.admin_tls
            || config.admin_uses_tls()
            || self.admin_ca.is_some()
            || !flotta_server::config::is_loopback(addr))
        .then(|| cli::AdminTls {
            ca_file: self
                .admin_ca
                .clone()
                .unwrap_or_else(|| config.ca_cert_path()),
            client: self.admin_cert.clone().zip(self.admin_key.clone()),
        });
        let access = cli::AdminAccess {
            token: cli::AdminAccess::token_from(self.token_file.as_deref())?,
            tls,
        };
        Ok(AdminClient::with_access(addr, &access)?)
    }
}

/// The address of `bind`/`unbind`: exactly one of `--imei`, `--dev-eui`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct AddressArgs {
    /// The RockBLOCK's IMEI (15 digits).
    #[arg(long)]
    imei: Option<String>,
    /// The LoRaWAN DevEUI (16 hex digits).
    #[arg(long)]
    dev_eui: Option<String>,
}

impl AddressArgs {
    fn parse(&self) -> anyhow::Result<LinkAddress> {
        Ok(match (&self.imei, &self.dev_eui) {
            (Some(imei), _) => LinkAddress::imei(imei)?,
            (None, Some(eui)) => LinkAddress::dev_eui(eui)?,
            (None, None) => bail!("--imei or --dev-eui is required"),
        })
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

fn require_ca(config: &Config) -> anyhow::Result<()> {
    let ca = config.ca_cert_path();
    if ca.exists() {
        return Ok(());
    }
    if config.ca_cert_file.is_some() {
        bail!("no CA at {} (ca_cert_file)", ca.display());
    }
    bail!(
        "no CA at {}; run `flotta-server init` first (or pass --data-dir)",
        ca.display()
    )
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
    let (access, admin_addr) = (cli.access.clone(), cli.admin_addr);
    let admin = || access.client(admin_addr, &config);
    match cli.command {
        Command::Init => {
            Pki::load_or_init(&config.data_dir, &config.pki_settings(), clock.now())?;
            println!("{}", config.ca_cert_path().display());
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
            let store = flotta_server::server::open_store(&config)?.shared();
            store
                .approve(&id)
                .with_context(|| format!("approving {id}"))?;
            // With objects in a cluster, the running server's next pass
            // writes the approval there.
            if config.objects == ObjectsBackend::Embedded {
                let now = clock.now_ms();
                controller::reconcile_device(
                    &*store,
                    &flotta_server::objects::StoreObjects(store.clone()),
                    config.controller_settings(),
                    &id,
                    now,
                )
                .with_context(|| format!("updating the objects of {id}"))?;
            }
            let user = cli::local_user();
            store
                .append_audit(&flotta_server::store::AuditEntry {
                    at_ms: clock.now_ms(),
                    principal: format!("{user} (command line)"),
                    role: "admin".into(),
                    via: "store".into(),
                    method: "APPROVE".into(),
                    path: id.to_string(),
                    status: 200,
                    detail: "flotta-server approve".into(),
                })
                .context("writing the audit record")?;
            println!("approved {id}");
        }
        Command::Apply {
            file,
            namespace,
            validate,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let applied = admin()?.apply(&text, namespace.as_deref(), validate)?;
            for w in &applied.warnings {
                eprintln!("Warning: {w}");
            }
            for r in &applied.results {
                let kind = r["kind"].as_str().unwrap_or_default().to_ascii_lowercase();
                let (name, outcome) = (r["name"].as_str(), r["outcome"].as_str());
                println!("{kind}/{} {}", name.unwrap_or(""), outcome.unwrap_or(""));
            }
        }
        Command::Get {
            kind,
            name,
            namespace,
            all_namespaces,
            output,
        } => {
            let kind: Kind = kind.parse()?;
            let ns = namespace.unwrap_or_else(|| config.default_namespace.clone());
            let now = clock.now_ms();
            let ns_filter = (!all_namespaces).then_some(ns.as_str());
            // The WORKLOADS column of EdgeDevices counts assigned workloads.
            let columns = matches!(output, OutputFormat::Table | OutputFormat::Wide);
            let wide = output == OutputFormat::Wide;
            let workloads = match kind {
                Kind::EdgeDevice if columns => admin()?.list(Kind::EdgeWorkload, ns_filter)?,
                _ => Vec::new(),
            };
            match name {
                Some(name) => {
                    let o = admin()?.get(kind, &ns, &name)?;
                    match output {
                        _ if columns => {
                            print!(
                                "{}",
                                cli::table_with(kind, &[o], &workloads, false, wide, now)
                            );
                        }
                        f => print!("{}", cli::format_object(&o, f)),
                    }
                }
                None => {
                    let items = admin()?.list(kind, ns_filter)?;
                    match output {
                        _ if columns && items.is_empty() => {
                            eprintln!("No {} found.", kind.plural());
                        }
                        _ if columns => {
                            print!(
                                "{}",
                                cli::table_with(
                                    kind,
                                    &items,
                                    &workloads,
                                    all_namespaces,
                                    wide,
                                    now
                                )
                            );
                        }
                        f => print!("{}", cli::format_list(&items, f)),
                    }
                }
            }
        }
        Command::Describe {
            kind,
            name,
            namespace,
        } => {
            let kind: Kind = kind.parse()?;
            let ns = namespace.unwrap_or_else(|| config.default_namespace.clone());
            let o = admin()?.get(kind, &ns, &name)?;
            print!("{}", cli::describe(kind, &o, clock.now_ms()));
            if kind == Kind::EdgeDevice {
                let events = admin()?.events(&name)?;
                print!("{}", cli::describe_events(&events, clock.now_ms()));
            }
        }
        Command::Delete {
            kind,
            name,
            namespace,
            actor,
        } => {
            let kind: Kind = kind.parse()?;
            let ns = namespace.unwrap_or_else(|| config.default_namespace.clone());
            let r = admin()?.delete(kind, &ns, &name, &actor)?;
            let outcome = r["outcome"].as_str().unwrap_or("deleted");
            println!("{}/{name} {outcome}", kind.as_str().to_ascii_lowercase());
        }
        Command::Bind { device_id, address } => {
            let id = DeviceId::parse(&device_id)?;
            let a = address.parse()?;
            let r = admin()?
                .bind(id.as_str(), a.kind().as_str(), a.address())
                .with_context(|| format!("binding {a} to {id}"))?;
            let outcome = r["outcome"].as_str().unwrap_or("bound");
            println!("{a} {outcome} to edgedevice/{id}");
        }
        Command::Unbind { device_id, address } => {
            let id = DeviceId::parse(&device_id)?;
            let a = address.parse()?;
            admin()?
                .unbind(id.as_str(), a.kind().as_str(), a.address())
                .with_context(|| format!("unbinding {a} from {id}"))?;
            println!("{a} unbound from edgedevice/{id}");
        }
        Command::Logs {
            device_id,
            source,
            since,
            level,
            limit,
            follow,
            output,
        } => {
            let id = DeviceId::parse(&device_id)?;
            let admin = admin()?;
            let query = cli::feed_query(
                None,
                since_ms(&clock, since.as_deref())?,
                level.as_deref(),
                source.as_deref(),
                Some(limit),
            );
            let lines = lines(&output);
            let path = format!("/apis/devices/{id}/logs");
            let stream = follow
                .then(|| admin.follow(&format!("{path}/stream"), query.clone()))
                .transpose()?;
            let (items, _) = admin.feed_page(&path, &query)?;
            match lines {
                cli::Lines::Text => print!("{}", cli::format_logs(&items)),
                cli::Lines::Json => items
                    .iter()
                    .for_each(|i| print!("{}", cli::format_log(i, lines))),
            }
            if let Some(stream) = stream {
                follow_stream(stream, &items, |i| cli::format_log(i, lines))?;
            }
        }
        Command::Events {
            device_id,
            since,
            level,
            limit,
            follow,
            output,
        } => {
            let id = device_id.as_deref().map(DeviceId::parse).transpose()?;
            let admin = admin()?;
            let query = cli::feed_query(
                id.as_ref().map(DeviceId::as_str),
                since_ms(&clock, since.as_deref())?,
                level.as_deref(),
                None,
                Some(limit),
            );
            let lines = lines(&output);
            let stream = follow
                .then(|| admin.follow("/apis/events/stream", query.clone()))
                .transpose()?;
            let (items, _) = admin.feed_page("/apis/events", &query)?;
            print!("{}", cli::format_events(&items, lines));
            if let Some(stream) = stream {
                follow_stream(stream, &items, |i| cli::format_event(i, lines))?;
            }
        }
        Command::Decommission {
            device_id,
            purge,
            actor,
        } => {
            let id = DeviceId::parse(&device_id)?;
            admin()?
                .decommission(id.as_str(), &actor, purge)
                .with_context(|| format!("decommissioning {id}"))?;
            let purged = if purge { ", data purged" } else { "" };
            println!("decommissioned {id} (by {actor}{purged})");
        }
        Command::Provision {
            device_id,
            out,
            namespace,
            imei,
            dev_eui,
        } => {
            require_ca(&config)?;
            let id = DeviceId::parse(&device_id)?;
            let mut bind = Vec::new();
            bind.extend(imei.as_deref().map(LinkAddress::imei).transpose()?);
            bind.extend(dev_eui.as_deref().map(LinkAddress::dev_eui).transpose()?);
            let ns = Namespace::parse(namespace.as_deref().unwrap_or(&config.default_namespace))?;
            let pki = Pki::load_or_init(&config.data_dir, &config.pki_settings(), clock.now())?;
            let store: Arc<dyn Store> = flotta_server::server::open_store(&config)?.shared();
            let request = provision::Request {
                id: &id,
                namespace: &ns,
                validity: config.device_cert_validity(),
                rotation: config.frame_rotation(),
                now: clock.now(),
                out: &out,
                bind: &bind,
            };
            let made = provision::provision(store.clone(), &pki, &request)
                .with_context(|| format!("provisioning {id}"))?;
            if config.objects == ObjectsBackend::Embedded {
                controller::reconcile_device(
                    &*store,
                    &flotta_server::objects::StoreObjects(store.clone()),
                    config.controller_settings(),
                    &id,
                    clock.now_ms(),
                )
                .with_context(|| format!("updating the objects of {id}"))?;
            }
            for f in &made.files {
                println!("{}", f.display());
            }
            eprintln!(
                "provisioned {id}: frame key id {}, epoch {}",
                made.keys.key_id_hex(),
                made.keys.epoch
            );
            for a in &bind {
                eprintln!("bound {a} to {id}");
            }
        }
        Command::IssueAdminCert {
            name,
            read_only,
            out_dir,
            validity_seconds,
        } => {
            require_ca(&config)?;
            if !flotta_server::config::valid_admin_name(&name) {
                bail!("--name: 1..=64 of letters, digits, '.', '_', '-', '@'");
            }
            if validity_seconds == 0 {
                bail!("--validity-seconds must be at least 1");
            }
            let pki = Pki::load_or_init(&config.data_dir, &config.pki_settings(), clock.now())?;
            let issued = pki.write_admin_bundle(
                &out_dir,
                &name,
                read_only,
                clock.now(),
                Duration::from_secs(validity_seconds),
            )?;
            let serial = flotta_server::pki::ClientIdentity::from_pem(&issued.cert_pem)?.serial;
            for f in [
                "ca.pem".to_owned(),
                format!("{name}.pem"),
                format!("{name}.key"),
            ] {
                println!("{}", out_dir.join(f).display());
            }
            eprintln!("serial {serial} (to revoke: admin_revoked_serials)");
            if !config.admin_client_certs {
                eprintln!(
                    "note: this server does not accept admin certificates until admin_client_certs = true"
                );
            }
        }
        Command::AdminToken { name, role } => {
            if !flotta_server::config::valid_admin_name(&name) {
                bail!("--name: 1..=64 of letters, digits, '.', '_', '-', '@'");
            }
            let role = match role.as_str() {
                "admin" => flotta_server::admin_auth::AdminRole::Admin,
                "read-only" => flotta_server::admin_auth::AdminRole::ReadOnly,
                other => bail!("--role {other:?}: `admin` or `read-only`"),
            };
            let token = flotta_server::admin_auth::token::generate()
                .map_err(|_| anyhow::anyhow!("no randomness for the token"))?;
            print!("{}", cli::format_new_token(&name, role, &token));
        }
        Command::Audit {
            limit,
            before,
            output,
        } => {
            let items = admin()?.audit(before, limit)?;
            match output.as_deref() {
                Some("json") => println!("{}", serde_json::to_string_pretty(&items)?),
                None => print!("{}", cli::format_audit(&items)),
                Some(other) => bail!("-o {other:?}: only json"),
            }
        }
        Command::Health { ready } => print!("{}", admin()?.health(ready)?),
        Command::Crds => print!("{}", flotta_crd::crds_yaml()),
        Command::Config => print!("{}", config.to_toml()),
    }
    Ok(())
}

/// `--since` as a device time (ms since the Unix epoch).
fn since_ms(clock: &SystemClock, since: Option<&str>) -> anyhow::Result<Option<u64>> {
    since
        .map(|s| {
            let ago = cli::parse_duration_ms(s).map_err(anyhow::Error::msg)?;
            Ok(clock.now_ms().saturating_sub(ago))
        })
        .transpose()
}

fn lines(output: &str) -> cli::Lines {
    match output {
        "json" => cli::Lines::Json,
        _ => cli::Lines::Text,
    }
}

/// Print a stream's items as they come (the stream was opened before
/// `page` was read: what it repeats of it is dropped), until interrupted.
fn follow_stream(
    mut stream: cli::Follow,
    page: &[serde_json::Value],
    format: impl Fn(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut shown = cli::Shown::new(page);
    loop {
        let (_, item) = stream.next_item()?;
        if shown.is_new(&item) {
            print!("{}", format(&item));
            std::io::stdout().flush()?;
        }
    }
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
