//! The SD card: the cached base image written by `flotta-image` as a user would, and its boot
//! partition read back (with `flotta-image cat`, and independently with mtools).

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use super::qemu::Assets;
use super::server::PiServer;
use super::*;
use crate::process;

/// Copy the cached base image (a stand-in for a downloaded Raspberry Pi OS image) and write
/// the agent into it with `flotta-image write`, as a user would; the written SD card image.
pub(super) fn write_image(
    image_bin: &Path,
    assets: &Assets,
    agent: &Path,
    server: &PiServer,
    dir: &Path,
) -> Result<PathBuf> {
    let download = dir.join("raspios-bookworm-armel.img");
    process::stdout_of(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(&assets.base_img)
            .arg(&download),
    )?;
    let fragment = dir.join("agent-fragment.toml");
    std::fs::write(&fragment, AGENT_FRAGMENT)?;
    let sd = dir.join("sd.img");
    let f = &server.factory_dir;
    let mut cmd = Command::new(image_bin);
    cmd.arg("write")
        .arg(&download)
        .arg("-o")
        .arg(&sd)
        .args(["--board", "rpi-zero", "--agent"])
        .arg(agent)
        .arg("--server-url")
        .arg(format!("https://{HOST_FROM_GUEST}:{}", server.api_port))
        .arg("--ca")
        .arg(f.join("ca.pem"))
        .arg("--registration-cert")
        .arg(f.join("register.pem"))
        .arg("--registration-key")
        .arg(f.join("register.key"))
        .args(["--device-id", DEVICE_ID, "--hostname", HOSTNAME])
        .arg("--agent-config")
        .arg(&fragment);
    println!("  $ {}", process::describe(&cmd));
    let out = process::captured(&mut cmd)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("flotta-image-write.log"), &text)?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{text}",
            process::describe(&cmd),
            out.status
        );
    }
    for line in text.lines() {
        println!("    {line}");
    }
    if let Ok(inspect) = process::stdout_of(Command::new(image_bin).arg("inspect").arg(&sd)) {
        std::fs::write(dir.join("flotta-image-inspect.txt"), inspect)?;
    }
    Ok(sd)
}

/// `flotta-image cat IMAGE PATH`: a file of the boot partition.
pub(super) fn cat(image_bin: &Path, image: &Path, path: &str) -> Result<String> {
    process::stdout_of(Command::new(image_bin).arg("cat").arg(image).arg(path))
}

/// The root directory of the SD card image's boot partition, read with mtools (independent
/// of flotta-image).
pub(super) struct BootPartition {
    /// `mdir -b` of the root directory.
    pub(super) listing: String,
}

impl BootPartition {
    pub(super) fn list(image: &Path) -> Result<Self> {
        let offset = first_partition_offset(image)?;
        let listing = process::stdout_of(
            Command::new("mdir")
                .arg("-b")
                .arg("-i")
                .arg(format!("{}@@{offset}", image.display()))
                .arg("::/"),
        )?;
        Ok(Self { listing })
    }

    /// A file of the boot partition (`mtype`).
    pub(super) fn read(image: &Path, name: &str) -> Result<String> {
        let offset = first_partition_offset(image)?;
        process::stdout_of(
            Command::new("mtype")
                .arg("-i")
                .arg(format!("{}@@{offset}", image.display()))
                .arg(format!("::/{name}")),
        )
    }

    /// Whether the root directory has `name` (case-insensitive, as FAT).
    pub(super) fn has(&self, name: &str) -> bool {
        self.listing.lines().any(|l| {
            l.trim()
                .trim_start_matches("::/")
                .trim_end_matches('/')
                .eq_ignore_ascii_case(name)
        })
    }

    /// The root directory's entries whose name starts with `prefix` (case-insensitive).
    pub(super) fn starting_with(&self, prefix: &str) -> Vec<&str> {
        self.listing
            .lines()
            .map(|l| l.trim().trim_start_matches("::/").trim_end_matches('/'))
            .filter(|n| n.len() >= prefix.len() && n[..prefix.len()].eq_ignore_ascii_case(prefix))
            .collect()
    }

    /// `fsck.fat -n` of the boot partition (copied out to `scratch`): the guest wrote and
    /// deleted files on it, and a Raspberry Pi's systemd-fsck would "repair" any damage.
    pub(super) fn fsck(image: &Path, scratch: &Path) -> Result<String> {
        let (offset, len) = first_partition(image)?;
        let mut part = vec![0u8; usize::try_from(len)?];
        let mut f = std::fs::File::open(image)?;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut part)
            .with_context(|| format!("reading the boot partition of {}", image.display()))?;
        std::fs::write(scratch, &part)?;
        let out = Command::new("fsck.fat")
            .arg("-n")
            .arg(scratch)
            .output()
            .context("running fsck.fat (package dosfstools; scripts/setup.sh installs it)")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(scratch);
        if !out.status.success() {
            bail!(
                "fsck.fat -n found damage on the boot partition ({}):\n{text}",
                out.status
            );
        }
        Ok(text)
    }
}

/// Byte offset and length of the first MBR partition.
pub(super) fn first_partition(image: &Path) -> Result<(u64, u64)> {
    let mut mbr = [0u8; 512];
    std::fs::File::open(image)
        .and_then(|mut f| f.read_exact(&mut mbr))
        .with_context(|| format!("reading the MBR of {}", image.display()))?;
    if mbr[510..512] != [0x55, 0xAA] {
        bail!("{} has no MBR", image.display());
    }
    let lba = u32::from_le_bytes([mbr[454], mbr[455], mbr[456], mbr[457]]);
    let sectors = u32::from_le_bytes([mbr[458], mbr[459], mbr[460], mbr[461]]);
    Ok((u64::from(lba) * 512, u64::from(sectors) * 512))
}

/// Byte offset of the first MBR partition.
pub(super) fn first_partition_offset(image: &Path) -> Result<u64> {
    Ok(first_partition(image)?.0)
}
