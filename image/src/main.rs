//! The `flotta-image` command: a thin clap front end over the library.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use flotta_image::wifi::{self, Wifi};
use flotta_image::{Enrolment, WriteOptions};

/// Write the flotta agent into a Raspberry Pi OS image.
#[derive(Parser)]
#[command(name = "flotta-image", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write IMAGE (.img or .img.xz) with the agent and its settings to OUTPUT (raw .img).
    Write(Box<WriteArgs>),
    /// Show partitions, userland, first-boot flavour and whether a flotta payload is present.
    Inspect {
        /// The image (.img or .img.xz).
        image: PathBuf,
    },
    /// Print a file of the boot (FAT) partition, e.g. cmdline.txt.
    Cat {
        /// The image (.img or .img.xz).
        image: PathBuf,
        /// Path on the boot partition.
        path: String,
    },
}

#[derive(clap::Args)]
#[command(group(
    clap::ArgGroup::new("enrolment")
        .args(["registration_cert", "provisioned"])
        .required(true)
        .multiple(false)
))]
struct WriteArgs {
    /// Input image: a Raspberry Pi OS .img or .img.xz.
    image: PathBuf,
    /// Output raw image (may be IMAGE itself).
    #[arg(short, long)]
    output: PathBuf,
    /// Board profile: rpi-zero, rpi-zero-2w, rpi-3, rpi-4, rpi-5.
    #[arg(long)]
    board: String,
    /// The flotta-agent binary built for the board.
    #[arg(long)]
    agent: PathBuf,
    /// Edge API URL (https://…).
    #[arg(long)]
    server_url: String,
    /// CA certificate (PEM) that signed the server's certificate (with --provisioned: optional,
    /// DIR/ca.pem is used; if given, it must be the same).
    #[arg(long, value_name = "FILE", required_unless_present = "provisioned")]
    ca: Option<PathBuf>,
    /// Factory registration certificate (PEM): the device enrols at its first TLS contact.
    #[arg(long, value_name = "FILE", requires = "registration_key")]
    registration_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, value_name = "FILE", requires = "registration_cert")]
    registration_key: Option<PathBuf>,
    /// Instead of enrolling: the --out DIR of `flotta-server provision <device-id>`
    /// (identity/device.pem, ca.pem, frame/context.json), for frame-only devices. Needs
    /// --device-id.
    #[arg(
        long,
        value_name = "DIR",
        requires = "device_id",
        conflicts_with_all = ["registration_cert", "registration_key"]
    )]
    provisioned: Option<PathBuf>,
    /// Device id (default: the board's /etc/machine-id; with --provisioned: the id it was
    /// provisioned for, checked against its certificate).
    #[arg(long)]
    device_id: Option<String>,
    /// Link profile: ethernet, wifi, nb-iot, satellite, lora.
    #[arg(long)]
    link: Option<String>,
    /// Host name of the board.
    #[arg(long)]
    hostname: Option<String>,
    /// File of ssh public keys to authorise (enables ssh).
    #[arg(long)]
    ssh_authorized_key: Option<PathBuf>,
    /// User for the ssh key (default: the uid-1000 user, else root).
    #[arg(long)]
    user: Option<String>,
    /// Wi-Fi network name; the passphrase comes from --wifi-psk-file or FLOTTA_WIFI_PSK.
    #[arg(long)]
    wifi_ssid: Option<String>,
    /// File whose first line is the Wi-Fi passphrase.
    #[arg(long)]
    wifi_psk_file: Option<PathBuf>,
    /// Wi-Fi country (ISO 3166-1 alpha-2, e.g. DE).
    #[arg(long)]
    wifi_country: Option<String>,
    /// TOML fragment merged over the generated agent configuration.
    #[arg(long)]
    agent_config: Option<PathBuf>,
}

fn write(a: WriteArgs) -> Result<()> {
    let wifi = match &a.wifi_ssid {
        None => {
            if a.wifi_psk_file.is_some() {
                anyhow::bail!("--wifi-psk-file needs --wifi-ssid");
            }
            None
        }
        Some(ssid) => {
            let file = match &a.wifi_psk_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                ),
                None => None,
            };
            let psk = wifi::read_psk(file.as_deref(), std::env::var(wifi::PSK_ENV).ok())?;
            Some(Wifi {
                ssid: ssid.clone(),
                psk,
            })
        }
    };
    let enrolment = match (a.provisioned, a.registration_cert, a.registration_key) {
        (Some(dir), None, None) => Enrolment::Provisioned(dir),
        (None, Some(cert), Some(key)) => Enrolment::Registration { cert, key },
        // clap's group and requires make these unreachable; say it anyway.
        _ => anyhow::bail!(
            "give either --registration-cert and --registration-key, or --provisioned DIR"
        ),
    };
    let o = WriteOptions {
        image: a.image,
        output: a.output,
        board: a.board,
        agent: a.agent,
        server_url: a.server_url,
        ca: a.ca,
        enrolment,
        device_id: a.device_id,
        link: a.link,
        hostname: a.hostname,
        ssh_authorized_key: a.ssh_authorized_key,
        user: a.user,
        wifi,
        wifi_country: a.wifi_country,
        agent_config: a.agent_config,
    };
    let w = flotta_image::write(&o)?;
    eprintln!(
        "wrote {} ({} userland, {} first boot): {}",
        o.output.display(),
        w.detected.userland,
        w.detected.flavour,
        w.files.join(", ")
    );
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Write(a) => write(*a),
        Command::Inspect { image } => {
            print!("{}", flotta_image::inspect(&image)?);
            Ok(())
        }
        Command::Cat { image, path } => {
            let data = flotta_image::cat(&image, &path)?;
            std::io::stdout()
                .write_all(&data)
                .context("writing to stdout")?;
            Ok(())
        }
    }
}
