//! What kind of Raspberry Pi OS image this is, read from its boot partition alone.
//!
//! * Userland: 32-bit Raspberry Pi OS images carry the ARMv6/ARMv7 kernels `kernel.img`,
//!   `kernel7.img` and `kernel7l.img` (besides `kernel8.img`, which Pi 4/5 boot even under a
//!   32-bit userland); 64-bit images carry only `kernel8.img` and `kernel_2712.img`. (The
//!   Raspberry Pi firmware's kernel image table: kernel.img = ARMv6 for Pi 1/Zero,
//!   kernel7.img = ARMv7 for Pi 2/3, kernel7l.img = Pi 4 32-bit, kernel8.img = ARMv8 64-bit;
//!   deepwiki.com/raspberrypi/firmware "Kernel Images", and the "boot folder" page of
//!   raspberrypi.org/documentation.)
//! * First-boot flavour: current (trixie) images boot with cloud-init, whose NoCloud seed
//!   `user-data`/`meta-data`/`network-config` sits on the boot partition, the files Raspberry
//!   Pi Imager writes its customisation into. Older (bookworm) images have none; there Imager
//!   writes `firstrun.sh` and adds `systemd.run=…/firstrun.sh systemd.run_success_action=reboot
//!   systemd.unit=kernel-command-line.target` to cmdline.txt.
//! * Boot partition mount point: `/boot/firmware` since bookworm (its config.txt comments point
//!   at `/boot/firmware/overlays/README`), `/boot` before.

use crate::board::Userland;
use crate::bootfs::{BootFs, Disk};
use crate::error::{ImageError, Result};

/// Kernels only 32-bit Raspberry Pi OS images carry.
pub const KERNELS_32: &[&str] = &["kernel.img", "kernel7.img", "kernel7l.img"];
/// Kernels 64-bit images carry (32-bit ones may too).
pub const KERNELS_64: &[&str] = &["kernel8.img", "kernel_2712.img"];

/// How the image runs a script at first boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// cloud-init NoCloud seed on the boot partition (`user-data`).
    CloudInit,
    /// `systemd.run=firstrun.sh` on the kernel command line.
    Firstrun,
}

impl std::fmt::Display for Flavour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flavour::CloudInit => "cloud-init",
            Flavour::Firstrun => "firstrun",
        })
    }
}

/// What the boot partition says about the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// 32- or 64-bit userland.
    pub userland: Userland,
    /// First-boot mechanism.
    pub flavour: Flavour,
    /// Where the running system mounts the boot partition.
    pub boot_mount: &'static str,
    /// The kernels found.
    pub kernels: Vec<String>,
}

/// Inspect a mounted boot partition; refuse one that is not Raspberry Pi OS's.
pub fn detect<D: Disk>(fs: &BootFs<D>) -> Result<Detected> {
    let names: Vec<String> = fs
        .root_names()?
        .into_iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    if !has("cmdline.txt") || !has("config.txt") {
        return Err(ImageError::Unrecognised(
            "no cmdline.txt and config.txt on the boot partition: not a Raspberry Pi OS image"
                .into(),
        ));
    }
    let kernels: Vec<String> = KERNELS_32
        .iter()
        .chain(KERNELS_64)
        .filter(|k| has(k))
        .map(|k| (*k).to_owned())
        .collect();
    let userland = if KERNELS_32.iter().any(|k| has(k)) {
        Userland::Armhf
    } else if KERNELS_64.iter().any(|k| has(k)) {
        Userland::Arm64
    } else {
        return Err(ImageError::Unrecognised(format!(
            "no kernel on the boot partition (looked for {} and {})",
            KERNELS_32.join(", "),
            KERNELS_64.join(", ")
        )));
    };
    let flavour = if has("user-data") {
        Flavour::CloudInit
    } else {
        Flavour::Firstrun
    };
    let config = fs.read_text("config.txt")?.unwrap_or_default();
    let boot_mount = if flavour == Flavour::CloudInit
        || config.contains("/boot/firmware")
        || !config.contains("/boot/")
    {
        "/boot/firmware"
    } else {
        "/boot"
    };
    Ok(Detected {
        userland,
        flavour,
        boot_mount,
        kernels,
    })
}
