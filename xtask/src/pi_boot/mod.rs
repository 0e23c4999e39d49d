//! `cargo xtask pi-boot` (also the `pi-boot` step of `cargo xtask test`): an emulated
//! Raspberry Pi Zero (`qemu-system-arm -M raspi0`, Debian's ARMv6 `rpi` kernel, a Debian 12
//! armel root on a Raspberry-Pi-OS-bookworm-shaped SD card; `scripts/pi-zero-assets.sh` builds
//! and caches it) boots the image `flotta-image` wrote, as a user would write it:
//!
//! 1. boot 1: the first-boot installer (`systemd.run=firstrun.sh` on cmdline.txt) installs the
//!    ARMv6 agent `dist` published and reboots (qemu runs with `-no-reboot`: a reboot ends it;
//!    the test re-reads cmdline.txt and boots again, as the firmware would). The hook and the
//!    `flotta/` payload must be gone from the boot partition.
//! 2. boot 2: systemd starts `flotta-agent.service`; it enrols, registers and heartbeats to a
//!    real `flotta-server` on the host (the guest reaches it as 10.0.2.2: the server's
//!    certificate names that address). The server must see the device online with
//!    `device.cpu-architecture: arm`; the unit must be active with a 1 min watchdog. The agent's
//!    main process is then stopped (`kill -STOP`) and systemd's watchdog must restart it.
//! 3. the server stops, the guest reboots; boot 3 with the server down: the agent starts and an
//!    event is emitted (`flotta-agent emit event`), which queues; the server starts again on the
//!    same state and the queued event and new heartbeats must arrive. Then `poweroff -ff`.
//! 4. the armhf `.deb` `dist` built is fetched by the guest over HTTP from the host and
//!    installed with `dpkg -i`; its unit must start.
//!
//! The guest has no RTC: its clock starts years behind and no NTP client corrects it, which is
//! what the agent's clock sanity has to cope with (nothing here sets the guest's clock).
//! Everything (serial logs, qemu command lines, server state and log, the written SD image)
//! is left under `target/pi-boot/`.

mod card;
mod deb;
mod guest;
pub(crate) mod qemu;
mod server;
mod smoke;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::dist;
use crate::process;
use crate::steps::{self, format_elapsed};
use card::{BootPartition, cat, write_image};
use deb::install_deb;
use guest::{login, number, unit_state, wait_catch_up, wait_online};
use qemu::{Assets, Qemu, kernel_append, show_value};
use server::PiServer;
pub(crate) use smoke::smoke;

/// The Raspberry Pi Zero target.
pub(super) const TRIPLE: &str = "arm-unknown-linux-musleabihf";
/// The emulated board's device id.
pub(super) const DEVICE_ID: &str = "pi-zero-boot";
/// Its host name.
pub(super) const HOSTNAME: &str = "flotta-pi-zero";
/// The EdgeDevice label with the architecture the agent reported, and its value.
pub(super) const ARCH_LABEL: &str = "device.cpu-architecture";
pub(super) const DEVICE_ARCH: &str = "arm";
/// The host as the guest sees it (qemu user networking).
pub(super) const HOST_FROM_GUEST: &str = "10.0.2.2";
/// The names of the payload flotta-image puts on the boot partition (and install.sh removes).
pub(super) const PAYLOAD_PREFIX: &str = "flotta";
/// The event emitted while the server is down.
pub(super) const OFFLINE_REASON: &str = "PiBootOffline";
/// Merged over the agent configuration flotta-image writes: short intervals for the test.
pub(super) const AGENT_FRAGMENT: &str = "\
# cargo xtask pi-boot: short intervals, timeouts generous for an emulated ARMv6 board
heartbeat_period_seconds = 15

[link]
upload_interval_seconds = 10
backoff_initial_seconds = 1
backoff_max_seconds = 5
connect_timeout_seconds = 30
request_timeout_seconds = 90
";

/// Boot 1 (firstrun installs and reboots): kernel, systemd and the installer under TCG.
pub(super) const FIRSTRUN_BOOT: Duration = Duration::from_secs(480);
/// From qemu start to the serial autologin (~100 s measured on 2 cores).
pub(super) const LOGIN: Duration = Duration::from_secs(360);
/// A command on the guest's console.
pub(super) const COMMAND: Duration = Duration::from_secs(60);
/// The agent enrols, registers (P-256 key and CSR on an emulated ARMv6) and heartbeats.
pub(super) const ONLINE: Duration = Duration::from_secs(360);
/// WatchdogSec=60 + the abort + RestartSec=5, emulated.
pub(super) const WATCHDOG: Duration = Duration::from_secs(240);
/// A reboot or poweroff until qemu exits.
pub(super) const SHUTDOWN: Duration = Duration::from_secs(180);
/// The queued event and heartbeats after the server is back.
pub(super) const CATCH_UP: Duration = Duration::from_secs(240);

/// Run the emulated Pi Zero boot test from the repository at `root`.
pub(crate) fn run(root: &Path) -> Result<()> {
    let started = Instant::now();
    let mut phases: Vec<(&str, Duration)> = Vec::new();
    let mut phase = Instant::now();
    let mut mark = |name: &'static str, phase: &mut Instant| {
        let took = phase.elapsed();
        println!(
            "  [{:>7}] {name} ({})",
            format_elapsed(started.elapsed()),
            format_elapsed(took)
        );
        phases.push((name, took));
        *phase = Instant::now();
    };

    let assets = Assets::find()?;
    let agent = dist::published(root, TRIPLE);
    if !agent.is_file() {
        bail!(
            "{} does not exist: build it with `cargo xtask dist --target {TRIPLE}` \
             (or `cargo xtask dist`)",
            agent.display()
        );
    }
    let deb = find_armhf_deb(root);
    if !process::can_spawn("qemu-system-arm", &["--version"]) {
        bail!("`qemu-system-arm` cannot be started; `scripts/setup.sh` installs it");
    }
    println!(
        "  assets: {} (scripts/pi-zero-assets.sh); agent: {}",
        assets.dir.display(),
        agent.display()
    );
    let (server_bin, image_bin) = build_host_tools(root)?;
    let dir = dist::target_dir(root).join("pi-boot");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    mark("host tools built", &mut phase);

    // --- the server and the image, as a user would make them ---------------------------
    let mut server = PiServer::init(&server_bin, &dir)?;
    server.start()?;
    println!(
        "  server: {} on 127.0.0.1:{} (the guest's {}), admin 127.0.0.1:{}, log {}",
        server_bin.display(),
        server.api_port,
        HOST_FROM_GUEST,
        server.admin_port,
        server.log.display()
    );
    let sd = write_image(&image_bin, &assets, &agent, &server, &dir)?;
    let before = BootPartition::list(&sd)?;
    if !before.has("firstrun.sh") || before.starting_with(PAYLOAD_PREFIX).len() < 2 {
        bail!(
            "flotta-image wrote no `firstrun.sh` and `{PAYLOAD_PREFIX}*` payload on the boot \
             partition of {} (the firstrun flavour):\n{}",
            sd.display(),
            before.listing
        );
    }
    mark("image written", &mut phase);

    // --- boot 1: the first-boot installer --------------------------------------------------
    let cmdline = cat(&image_bin, &sd, "cmdline.txt")?;
    if !cmdline.contains("systemd.run=") {
        bail!("flotta-image added no firstrun hook to cmdline.txt: {cmdline}");
    }
    let mut qemu = Qemu::boot(&assets, &sd, &kernel_append(&cmdline), &dir, "boot-1")?;
    println!(
        "  boot 1 (firstrun): qemu pid {}, serial log {}",
        qemu.pid(),
        qemu.console.log.display()
    );
    qemu.console
        .expect("INITRD: switching root", Duration::from_secs(120))?;
    match qemu.wait_exit(FIRSTRUN_BOOT)? {
        Some(status) => println!(
            "  boot 1: the guest rebooted after {} (qemu {status})",
            format_elapsed(qemu.elapsed())
        ),
        None => bail!(
            "boot 1 (firstrun) did not reboot within {FIRSTRUN_BOOT:?}; serial log {}, last lines:\n{}",
            qemu.console.log.display(),
            qemu.console.tail(50)
        ),
    }
    drop(qemu);
    let cmdline = cat(&image_bin, &sd, "cmdline.txt")?;
    if cmdline.contains("systemd.run") || cmdline.contains("kernel-command-line.target") {
        bail!("after the first boot cmdline.txt still has the firstrun hook: {cmdline}");
    }
    let after = BootPartition::list(&sd)?;
    if !after.starting_with(PAYLOAD_PREFIX).is_empty() || after.has("firstrun.sh") {
        bail!(
            "after the first boot the flotta payload is still on the boot partition:\n{}",
            after.listing
        );
    }
    BootPartition::fsck(&sd, &dir.join("bootfs-after-boot-1.img"))?;
    if cat(&image_bin, &sd, "firstrun.sh").is_ok() {
        bail!(
            "`flotta-image cat {} firstrun.sh` still finds it",
            sd.display()
        );
    }
    println!(
        "  boot 1: cmdline.txt clean ({}), payload removed, fsck.fat -n clean",
        cmdline.trim()
    );
    mark("boot 1: firstrun installed the agent", &mut phase);

    // --- boot 2: the agent under systemd ---------------------------------------------------
    let mut qemu = Qemu::boot(&assets, &sd, &kernel_append(&cmdline), &dir, "boot-2")?;
    println!("  boot 2: qemu pid {}", qemu.pid());
    login(&mut qemu)?;
    mark("boot 2: login", &mut phase);
    let online = wait_online(&server, &mut qemu.console)?;
    println!("  server: {online}");
    // No RTC, no NTP: the guest's clock is where systemd left it (its own build time). The
    // agent reached the server anyway (its clock sanity); say by how much the guest is behind
    // and what the agent said about it.
    let guest_now = qemu.console.run_ok("date +%s", COMMAND)?;
    let host_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let behind = guest_now
        .trim()
        .parse::<u64>()
        .map(|g| host_now.saturating_sub(g))
        .unwrap_or(0);
    let (_, said) = qemu.console.run(
        "journalctl -b -u flotta-agent --no-pager -o cat | grep -m3 -i 'clock'",
        COMMAND,
    )?;
    println!(
        "  guest clock: {behind} s behind the host; the agent said:\n    {}",
        said.trim().replace('\n', "\n    ")
    );
    mark("boot 2: agent enrolled, registered, online", &mut phase);
    let show = unit_state(&mut qemu.console)?;
    if show_value(&show, "ActiveState") != Some("active")
        || show_value(&show, "WatchdogUSec") != Some("1min")
    {
        bail!("flotta-agent.service is not active with a 1 min watchdog:\n{show}");
    }
    let restarts: u32 = number(&show, "NRestarts")?;
    let pid: u32 = number(&show, "MainPID")?;
    println!(
        "  guest: flotta-agent.service active, WatchdogUSec=1min, NRestarts={restarts}, MainPID={pid}"
    );
    qemu.console.run_ok(&format!("kill -STOP {pid}"), COMMAND)?;
    let deadline = Instant::now() + WATCHDOG;
    let (new_pid, new_restarts) = loop {
        std::thread::sleep(Duration::from_secs(10));
        let show = unit_state(&mut qemu.console)?;
        let r: u32 = number(&show, "NRestarts")?;
        let p: u32 = number(&show, "MainPID")?;
        if r > restarts && p != 0 && p != pid && show_value(&show, "ActiveState") == Some("active")
        {
            break (p, r);
        }
        if Instant::now() > deadline {
            let journal = qemu
                .console
                .run("journalctl -b -u flotta-agent --no-pager -n 30", COMMAND)
                .map(|(_, o)| o)
                .unwrap_or_default();
            bail!(
                "systemd's watchdog did not restart the stopped agent (pid {pid}) within \
                 {WATCHDOG:?}:\n{show}\njournal:\n{journal}"
            );
        }
    };
    let (_, why) = qemu.console.run(
        "journalctl -b -u flotta-agent --no-pager | grep -i -m2 watchdog",
        COMMAND,
    )?;
    println!(
        "  guest: the watchdog restarted the stopped agent: MainPID {pid} -> {new_pid}, \
         NRestarts {restarts} -> {new_restarts}\n    {}",
        why.trim().replace('\n', "\n    ")
    );
    mark("boot 2: watchdog restart", &mut phase);

    // --- boot 3: offline, then the server comes back ---------------------------------------
    server.stop();
    qemu.console.send("systemctl reboot\n")?;
    if qemu.wait_exit(SHUTDOWN)?.is_none() {
        bail!(
            "`systemctl reboot` did not end qemu within {SHUTDOWN:?}; last lines:\n{}",
            qemu.console.tail(40)
        );
    }
    drop(qemu);
    let cmdline = cat(&image_bin, &sd, "cmdline.txt")?;
    let mut qemu = Qemu::boot(&assets, &sd, &kernel_append(&cmdline), &dir, "boot-3")?;
    println!("  boot 3 (server down): qemu pid {}", qemu.pid());
    login(&mut qemu)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, state) = qemu
            .console
            .run("systemctl is-active flotta-agent", COMMAND)?;
        if state.trim().ends_with("active") && !state.contains("inactive") {
            break;
        }
        if Instant::now() > deadline {
            bail!("flotta-agent did not become active on boot 3: {state}");
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    let emitted = qemu.console.run_ok(
        &format!(
            "/usr/local/bin/flotta-agent emit --config /etc/flotta/agent.toml event --reason \
             {OFFLINE_REASON} --level warn emitted while the server was down"
        ),
        COMMAND,
    )?;
    println!(
        "  guest: event {OFFLINE_REASON} emitted, server down: {}",
        emitted.trim()
    );
    mark("boot 3: login, agent up, event queued offline", &mut phase);
    server.start()?;
    let caught_up = wait_catch_up(&server, &mut qemu.console)?;
    println!("  server (restarted on the same state): {caught_up}");
    mark("boot 3: server back, queue delivered", &mut phase);

    // --- the armhf .deb ----------------------------------------------------------------
    match &deb {
        Some(deb) => {
            let before = guest::heartbeats(&server.metrics()?);
            install_deb(deb, &mut qemu.console)?;
            // The packaged agent takes over the identity and queue in /var/lib/flotta.
            let deadline = Instant::now() + CATCH_UP;
            loop {
                let now = guest::heartbeats(&server.metrics().unwrap_or_default());
                if now > before {
                    println!("  deb: the packaged agent delivers: heartbeats {before} -> {now}");
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "the packaged agent delivered no heartbeat within {CATCH_UP:?} \
                         (still {before}); server log:\n{}",
                        crate::harness::read_tail(&server.log, 30)
                    );
                }
                std::thread::sleep(Duration::from_secs(5));
            }
            mark(
                "boot 3: armhf .deb installed, its agent delivers",
                &mut phase,
            );
        }
        None => println!(
            "  deb: no dist/flotta-agent_*_armhf.deb (`cargo xtask dist` builds it): phase skipped"
        ),
    }
    qemu.console.send("systemctl poweroff -ff\n")?;
    match qemu.wait_exit(SHUTDOWN)? {
        Some(status) => println!("  poweroff: qemu {status}"),
        None => bail!("`systemctl poweroff -ff` did not end qemu within {SHUTDOWN:?}"),
    }
    drop(qemu);
    mark("poweroff", &mut phase);
    drop(server);

    println!("  pi-boot phases:");
    for (name, took) in &phases {
        println!("    {:>8}  {name}", format_elapsed(*took));
    }
    println!(
        "  pi-boot ok in {}, files in {}",
        format_elapsed(started.elapsed()),
        dir.display()
    );
    if deb.is_none() {
        bail!("the armhf .deb phase could not run: dist/flotta-agent_*_armhf.deb is missing");
    }
    Ok(())
}

/// `dist/flotta-agent_*_armhf.deb`, if `dist` built it.
fn find_armhf_deb(root: &Path) -> Option<PathBuf> {
    let path = crate::deb::path(root, "armhf");
    path.is_file().then_some(path)
}

/// The host's `flotta-server` and `flotta-image` (debug), from the same build the test step
/// made (`cargo test --workspace --no-run`: after the test step a no-op; another package set
/// could unify features differently and rebuild).
fn build_host_tools(root: &Path) -> Result<(PathBuf, PathBuf)> {
    steps::run_cargo(steps::cargo_command(
        root,
        &["test", "--workspace", "--no-run"],
    ))?;
    let bins = steps::workspace_bin_dir(root);
    let (server, image) = (bins.join("flotta-server"), bins.join("flotta-image"));
    for bin in [&server, &image] {
        if !bin.is_file() {
            bail!(
                "`cargo test --workspace --no-run` left no {}",
                bin.display()
            );
        }
    }
    Ok((server, image))
}

#[cfg(test)]
mod tests {
    use super::guest::heartbeats;
    use super::*;

    #[test]
    fn the_agent_fragment_is_toml_with_a_link_table() {
        let t: toml::Table = AGENT_FRAGMENT.parse().unwrap();
        assert!(
            t["link"]
                .as_table()
                .unwrap()
                .contains_key("upload_interval_seconds")
        );
    }

    #[test]
    fn heartbeats_are_counted_by_class() {
        let m = "flotta_records_received_total{class=\"heartbeat\"} 3\n\
                 flotta_records_received_total{class=\"event\"} 1\n";
        assert!((heartbeats(m) - 3.0).abs() < f64::EPSILON);
    }

    #[test]
    fn the_boot_partition_listing_is_matched_by_name() {
        let p = BootPartition {
            listing: "::/cmdline.txt\n::/flotta/\n::/FIRSTRUN.SH\n".into(),
        };
        assert!(p.has("flotta") && p.has("firstrun.sh") && p.has("cmdline.txt"));
        assert!(!p.has("config.txt"));
        let p = BootPartition {
            listing: "::/cmdline.txt\n::/FLOTTA-AGENT\n::/flotta-install.sh\n::/overlays/\n".into(),
        };
        assert_eq!(
            p.starting_with(PAYLOAD_PREFIX),
            ["FLOTTA-AGENT", "flotta-install.sh"]
        );
    }
}
