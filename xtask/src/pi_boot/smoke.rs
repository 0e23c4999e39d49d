//! `cargo xtask pi-boot --smoke`: the assets and the emulation alone.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::deb::serve_bytes;
use super::qemu::{Assets, Qemu, kernel_append};
use super::*;
use crate::process;
use crate::steps::format_elapsed;

/// `cargo xtask pi-boot --smoke`: boot the cached base image as it is (no agent, no
/// flotta-image), log in on the serial console, fetch a file from the host as 10.0.2.2,
/// power off. Checks the assets and the emulation alone; files in `target/pi-boot-smoke`.
pub(crate) fn smoke(root: &Path) -> Result<()> {
    let started = Instant::now();
    let assets = Assets::find()?;
    let dir = dist::target_dir(root).join("pi-boot-smoke");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let sd = dir.join("sd.img");
    process::stdout_of(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(&assets.base_img)
            .arg(&sd),
    )?;
    let cmdline = BootPartition::read(&sd, "cmdline.txt")?;
    let append = kernel_append(&cmdline);
    println!(
        "  assets: {}\n  kernel command line: {append}",
        assets.dir.display()
    );
    let mut qemu = Qemu::boot(&assets, &sd, &append, &dir, "smoke")?;
    println!(
        "  qemu pid {}, serial log {}",
        qemu.pid(),
        qemu.console.log.display()
    );
    login(&mut qemu)?;
    let port = serve_bytes(b"hello from the host\n".to_vec())?;
    let got = qemu.console.run_ok(
        &format!("busybox wget -q -O - http://{HOST_FROM_GUEST}:{port}/hello"),
        Duration::from_secs(90),
    )?;
    if !got.contains("hello from the host") {
        bail!("the guest fetched {got:?} from the host");
    }
    println!(
        "  guest reached the host at {HOST_FROM_GUEST} after {}",
        format_elapsed(qemu.elapsed())
    );
    let (_, facts) = qemu.console.run(
        "uname -rm; date -u; systemctl is-system-running; findmnt -n -o SOURCE,TARGET,FSTYPE /; \
         findmnt -n -o SOURCE,TARGET,FSTYPE /boot/firmware",
        COMMAND,
    )?;
    println!("  guest: {}", facts.trim().replace('\n', "\n         "));
    qemu.console.send("systemctl poweroff -ff\n")?;
    match qemu.wait_exit(SHUTDOWN)? {
        Some(status) => println!(
            "  poweroff: qemu {status} after {}",
            format_elapsed(qemu.elapsed())
        ),
        None => bail!("`systemctl poweroff -ff` did not end qemu within {SHUTDOWN:?}"),
    }
    println!(
        "  pi-boot --smoke ok in {}, files in {}",
        format_elapsed(started.elapsed()),
        dir.display()
    );
    Ok(())
}
