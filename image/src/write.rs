//! `flotta-image write`: check every input, copy the image into a temporary file next to the
//! output, put the payload on its boot partition, and rename it over the output only when all
//! of that succeeded. On any error the temporary file is removed and the input is untouched.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::agent_config::{self, ConfigInput};
use crate::board::{self, Userland};
use crate::bootfs::BootFs;
use crate::cmdline::Cmdline;
use crate::detect::{self, Detected, Flavour};
use crate::elf;
use crate::error::{ImageError, Result};
use crate::partition;
use crate::provisioned;
use crate::scripts::{self, InstallSettings};
use crate::source;
use crate::wifi::{self, Wifi};
use crate::window::Window;

/// The installer, in the boot partition's root directory like everything of the payload.
pub const INSTALL_SH: &str = "flotta-install.sh";
/// Every file a payload can have, in the boot partition's root directory (no directory:
/// fatfs 0.3.6 writes subdirectories that fsck.fat and the kernel take for corrupt). A rewrite
/// removes those of them it does not write again; install.sh removes exactly these.
pub const PAYLOAD_FILES: [&str; 11] = [
    INSTALL_SH,
    "flotta-agent",
    "flotta-agent.toml",
    "flotta-ca.pem",
    "flotta-register.pem",
    "flotta-register.key",
    DEVICE_PEM,
    FRAME_CONTEXT,
    "flotta-agent.service",
    "flotta-wifi.nmconnection",
    "flotta-authorized_keys",
];
/// `--provisioned`: the identity file (key then certificate), for `/var/lib/flotta/identity/device.pem`.
pub const DEVICE_PEM: &str = "flotta-device.pem";
/// `--provisioned`: the frame keys, for `/var/lib/flotta/frame/context.json`.
pub const FRAME_CONTEXT: &str = "flotta-frame-context.json";
/// The payload directory older flotta-image versions wrote, and the files they put in it.
pub const LEGACY_DIR: &str = "flotta";
const LEGACY_FILES: [&str; 9] = [
    "install.sh",
    "flotta-agent",
    "agent.toml",
    "ca.pem",
    "register.pem",
    "register.key",
    "flotta-agent.service",
    "wifi.nmconnection",
    "authorized_keys",
];
/// The agent's systemd unit, installed as is.
pub const UNIT: &str = include_str!("../../agent/systemd/flotta-agent.service");

/// Everything `write` needs; the Wi-Fi passphrase is already read (never from argv).
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Input `.img` or `.img.xz`.
    pub image: PathBuf,
    /// Output raw `.img` (may equal `image`).
    pub output: PathBuf,
    /// Board name (`boards/*.toml`).
    pub board: String,
    /// The agent binary for the board.
    pub agent: PathBuf,
    /// Edge API URL.
    pub server_url: String,
    /// CA certificate (PEM); needed for [`Enrolment::Registration`], optional for
    /// [`Enrolment::Provisioned`] (whose `ca.pem` is used; if given, it must be the same).
    pub ca: Option<PathBuf>,
    /// How the device gets its identity.
    pub enrolment: Enrolment,
    /// Device id; default the board's /etc/machine-id. Required for
    /// [`Enrolment::Provisioned`]: the id it was provisioned for.
    pub device_id: Option<String>,
    /// Link profile name.
    pub link: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// File of ssh public keys to authorise.
    pub ssh_authorized_key: Option<PathBuf>,
    /// User for the ssh key.
    pub user: Option<String>,
    /// Wi-Fi network.
    pub wifi: Option<Wifi>,
    /// Wi-Fi country.
    pub wifi_country: Option<String>,
    /// TOML fragment merged over the generated agent config.
    pub agent_config: Option<PathBuf>,
}

/// How the written device gets its identity.
#[derive(Debug, Clone)]
pub enum Enrolment {
    /// It enrols at its first TLS contact with the factory registration certificate.
    Registration {
        /// Registration certificate (PEM).
        cert: PathBuf,
        /// Its key (PEM).
        key: PathBuf,
    },
    /// It is complete already: the output directory of `flotta-server provision` (its
    /// `identity/device.pem`, `ca.pem`, `frame/context.json`); see [`provisioned`].
    Provisioned(PathBuf),
}

impl Default for Enrolment {
    fn default() -> Self {
        Enrolment::Registration {
            cert: PathBuf::new(),
            key: PathBuf::new(),
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    /// The image as detected.
    pub detected: Detected,
    /// The payload files, by name.
    pub files: Vec<String>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(ImageError::io("reading", path))
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    let data = read(path)?;
    if !data.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ImageError::Invalid(format!(
            "{what} {} is not PEM (no -----BEGIN line)",
            path.display()
        )));
    }
    Ok(data)
}

fn read_ssh_keys(path: &Path) -> Result<Vec<u8>> {
    let text = String::from_utf8(read(path)?).map_err(|_| {
        ImageError::Invalid(format!(
            "--ssh-authorized-key {} is not text",
            path.display()
        ))
    })?;
    let keys: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let looks_like_key = |l: &&str| {
        ["ssh-", "ecdsa-", "sk-"].iter().any(|p| l.starts_with(p))
            && l.split_whitespace().count() >= 2
    };
    if keys.is_empty() || !keys.iter().all(looks_like_key) {
        return Err(ImageError::Invalid(format!(
            "--ssh-authorized-key {} must hold public keys (ssh-ed25519 AAAA…), one a line; is it the private key?",
            path.display()
        )));
    }
    Ok(format!("{}\n", keys.join("\n")).into_bytes())
}

/// The payload: file name in the boot partition's root (one of [`PAYLOAD_FILES`]) → contents, and the settings of the first boot.
struct Payload {
    userland: Userland,
    files: BTreeMap<&'static str, Vec<u8>>,
    hostname: Option<String>,
    ssh_user: Option<String>,
    country: Option<String>,
    provisioned: bool,
}

/// Check every input and build the payload; nothing touches the image yet.
fn prepare(o: &WriteOptions) -> Result<Payload> {
    let (board, userland) = board::find_pi(&o.board)?;
    let agent = read(&o.agent)?;
    elf::check(&agent, &board.name, userland).map_err(ImageError::Mismatch)?;
    if let Some(h) = &o.hostname {
        scripts::check_hostname(h)?;
    }
    if let Some(u) = &o.user {
        scripts::check_user(u)?;
    }
    if let Some(cc) = &o.wifi_country {
        wifi::check_country(cc)?;
    }
    if let Some(id) = &o.device_id
        && (id.is_empty() || id.chars().any(|c| c.is_control() || c.is_whitespace()))
    {
        return Err(ImageError::Invalid(format!(
            "--device-id {id:?} must be non-empty, without spaces"
        )));
    }
    let fragment = match &o.agent_config {
        Some(p) => Some(String::from_utf8(read(p)?).map_err(|_| {
            ImageError::Invalid(format!("--agent-config {} is not UTF-8", p.display()))
        })?),
        None => None,
    };
    let mut files: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    let provisioned = match &o.enrolment {
        Enrolment::Registration { cert, key } => {
            let ca = o.ca.as_deref().ok_or_else(|| {
                ImageError::Invalid("--ca is needed with --registration-cert".into())
            })?;
            files.insert("flotta-ca.pem", read_pem(ca, "--ca")?);
            files.insert(
                "flotta-register.pem",
                read_pem(cert, "--registration-cert")?,
            );
            files.insert("flotta-register.key", read_pem(key, "--registration-key")?);
            false
        }
        Enrolment::Provisioned(dir) => {
            let id = o.device_id.as_deref().ok_or_else(|| {
                ImageError::Invalid(format!(
                    "--provisioned {} needs --device-id: the id it was provisioned for",
                    dir.display()
                ))
            })?;
            let p = provisioned::load(dir, id, o.ca.as_deref())?;
            files.insert("flotta-ca.pem", p.ca);
            files.insert(DEVICE_PEM, p.identity);
            files.insert(FRAME_CONTEXT, p.frame_context);
            true
        }
    };
    let config = agent_config::render(&ConfigInput {
        server_url: &o.server_url,
        device_id: o.device_id.as_deref(),
        link_profile: o.link.as_deref(),
        fragment: fragment.as_deref(),
        provisioned,
    })?;
    files.insert("flotta-agent", agent);
    files.insert("flotta-agent.toml", config.into_bytes());
    files.insert("flotta-agent.service", UNIT.as_bytes().to_vec());
    if let Some(w) = &o.wifi {
        wifi::check_ssid(&w.ssid)?;
        wifi::check_psk(&w.psk)?;
        files.insert("flotta-wifi.nmconnection", w.keyfile().into_bytes());
    }
    if let Some(k) = &o.ssh_authorized_key {
        files.insert("flotta-authorized_keys", read_ssh_keys(k)?);
    }
    Ok(Payload {
        userland,
        files,
        hostname: o.hostname.clone(),
        ssh_user: o.user.clone(),
        country: o.wifi_country.clone(),
        provisioned,
    })
}

/// Write the image described by `o`.
pub fn write(o: &WriteOptions) -> Result<Written> {
    let payload = prepare(o)?;
    let out_dir = match o.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".flotta-image.")
        .suffix(".tmp")
        .tempfile_in(&out_dir)
        .map_err(ImageError::io("creating a temporary file in", &out_dir))?;
    // From here on an error drops `temp`, which deletes it.
    source::copy_into(&o.image, temp.as_file_mut())?;
    let written = edit(temp.as_file_mut(), &o.board, &payload)?;
    temp.as_file()
        .sync_all()
        .map_err(ImageError::io("syncing", temp.path()))?;
    temp.persist(&o.output).map_err(|e| ImageError::Io {
        what: "renaming the finished image to",
        path: o.output.clone(),
        source: e.error,
    })?;
    Ok(written)
}

/// Put `payload` on the boot partition of the image in `file`.
fn edit(file: &mut File, board: &str, payload: &Payload) -> Result<Written> {
    let len = file.metadata().map_err(ImageError::BootFs)?.len();
    let table = partition::read_table(file, len)?;
    let boot = table.boot()?.clone();
    if !boot.fat_typed {
        return Err(ImageError::Unrecognised(format!(
            "partition {} is not FAT (its type is {}): not a Raspberry Pi OS boot partition",
            boot.number, boot.kind
        )));
    }
    let fs = BootFs::open(Window::new(&mut *file, boot.start, boot.len), boot.number)?;
    let det = detect::detect(&fs)?;
    if det.userland != payload.userland {
        return Err(ImageError::Mismatch(format!(
            "board {board} needs a {} Raspberry Pi OS image, but this image is {} (its boot partition has {})",
            describe(payload.userland),
            describe(det.userland),
            det.kernels.join(", ")
        )));
    }
    if det.flavour == Flavour::Firstrun
        && let Some(existing) = fs.read_text("firstrun.sh")?
        && !existing.contains(scripts::FIRSTRUN_MARK)
    {
        return Err(ImageError::Unrecognised(
            "the boot partition already has a firstrun.sh that flotta-image did not write (from \
             Raspberry Pi Imager's customisation?); write flotta onto a fresh, uncustomised image"
                .into(),
        ));
    }
    // The payload: replace what an earlier run left, file by file, so that an unchanged
    // file keeps its bytes (and the whole image stays byte-identical when nothing changed).
    remove_legacy_dir(&fs)?;
    let mut files = payload.files.clone();
    files.insert(
        INSTALL_SH,
        scripts::install_sh(&InstallSettings {
            hostname: payload.hostname.as_deref(),
            ssh_user: payload.ssh_user.as_deref(),
            start_now: det.flavour == Flavour::CloudInit,
            provisioned: payload.provisioned,
        })
        .into_bytes(),
    );
    debug_assert!(files.keys().all(|k| PAYLOAD_FILES.contains(k)));
    for old in PAYLOAD_FILES {
        if !files.contains_key(old) {
            fs.remove_file(old)?;
        }
    }
    for (name, data) in &files {
        fs.write_if_changed(name, data)?;
    }
    let install_on_board = format!("{}/{INSTALL_SH}", det.boot_mount);
    let cmdline_text = fs
        .read_text("cmdline.txt")?
        .ok_or_else(|| ImageError::Unrecognised("no cmdline.txt on the boot partition".into()))?;
    let mut cmdline = Cmdline::parse(&cmdline_text);
    match det.flavour {
        Flavour::Firstrun => {
            fs.write_if_changed("firstrun.sh", scripts::firstrun_sh().as_bytes())?;
            cmdline.add_firstrun(&format!("{}/firstrun.sh", det.boot_mount));
        }
        Flavour::CloudInit => {
            let user_data = fs.read_text("user-data")?.unwrap_or_default();
            let merged = crate::cloud_init::merge_user_data(
                &user_data,
                &install_on_board,
                payload.hostname.as_deref(),
            )?;
            fs.write_if_changed("user-data", merged.as_bytes())?;
        }
    }
    if let Some(cc) = &payload.country {
        cmdline.set_regdom(cc);
    }
    fs.write_if_changed("cmdline.txt", cmdline.render().as_bytes())?;
    fs.close()?;
    Ok(Written {
        detected: det,
        files: files.keys().map(|k| (*k).to_owned()).collect(),
    })
}

/// Remove the `flotta/` directory an older flotta-image wrote, if it holds only the files that
/// version put there; anything else in it is refused rather than deleted.
fn remove_legacy_dir<D: crate::bootfs::Disk>(fs: &BootFs<D>) -> Result<()> {
    let Some(entries) = fs.dir_entries(LEGACY_DIR)? else {
        return Ok(());
    };
    let foreign: Vec<String> = entries
        .iter()
        .filter(|(name, is_dir)| {
            *is_dir || !LEGACY_FILES.iter().any(|l| l.eq_ignore_ascii_case(name))
        })
        .map(|(name, _)| name.clone())
        .collect();
    if !foreign.is_empty() {
        return Err(ImageError::Unrecognised(format!(
            "the boot partition has a {LEGACY_DIR}/ directory with entries an older flotta-image \
             did not write ({}); remove it from the image (or start from a fresh image) and write again",
            foreign.join(", ")
        )));
    }
    for (name, _) in &entries {
        fs.remove_file(&format!("{LEGACY_DIR}/{name}"))?;
    }
    fs.remove_empty_dir(LEGACY_DIR)
}

fn describe(u: Userland) -> &'static str {
    match u {
        Userland::Armhf => "32-bit (armhf)",
        Userland::Arm64 => "64-bit (arm64)",
    }
}
