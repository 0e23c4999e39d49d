//! The guest side and the server's view of it: login on the serial console, the unit's
//! properties, the device online, the queue delivered after the server's restart.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::qemu::{Console, Qemu, show_value};
use super::server::PiServer;
use super::*;
use crate::e2e_parse;
use crate::harness::read_tail;
use crate::steps::format_elapsed;

/// Wait for the serial autologin, then make the shell quiet and wide.
pub(super) fn login(qemu: &mut Qemu) -> Result<()> {
    qemu.console
        .expect("INITRD: switching root", Duration::from_secs(120))?;
    qemu.console.expect("automatic login", LOGIN)?;
    println!(
        "  {}: serial autologin after {}",
        qemu.name,
        format_elapsed(qemu.elapsed())
    );
    std::thread::sleep(Duration::from_secs(2));
    qemu.console.run(
        "dmesg -n 1; stty cols 250; export SYSTEMD_PAGER= SYSTEMD_COLORS=0 TERM=dumb; date",
        COMMAND,
    )?;
    Ok(())
}

/// `systemctl show flotta-agent -p ...`.
pub(super) fn unit_state(console: &mut Console) -> Result<String> {
    console.run_ok(
        "systemctl show flotta-agent -p ActiveState -p SubState -p WatchdogUSec -p NRestarts -p MainPID",
        COMMAND,
    )
}

pub(super) fn number(show: &str, key: &str) -> Result<u32> {
    show_value(show, key)
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no numeric {key} in:\n{show}"))
}

/// Poll the server until the device is online with the ARM architecture label.
pub(super) fn wait_online(server: &PiServer, console: &mut Console) -> Result<String> {
    let deadline = Instant::now() + ONLINE;
    let mut last = String::new();
    loop {
        if let Ok(table) = server.admin(&["get", "edgedevice", DEVICE_ID]) {
            if let Some(row) = e2e_parse::table_row(&table, DEVICE_ID) {
                let cell = |n: &str| row.get(n).cloned().unwrap_or_default();
                let yaml = server
                    .admin(&["get", "edgedevice", DEVICE_ID, "-o", "yaml"])
                    .unwrap_or_default();
                let arch = e2e_parse::yaml_value(&yaml, ARCH_LABEL)
                    .unwrap_or("")
                    .to_owned();
                let metrics = server.metrics().unwrap_or_default();
                let heartbeats = heartbeats(&metrics);
                if cell("PRESENCE") == "online" && arch == DEVICE_ARCH && heartbeats >= 1.0 {
                    return Ok(format!(
                        "edgedevice {DEVICE_ID}: presence online, phase {}, last seen {} ago, \
                         {ARCH_LABEL}: {arch}, {heartbeats} heartbeats received",
                        cell("PHASE"),
                        cell("LAST SEEN")
                    ));
                }
                last = format!("{table}\n{ARCH_LABEL}: {arch:?}, heartbeats {heartbeats}");
            } else {
                last = table;
            }
        }
        if Instant::now() > deadline {
            let journal = console
                .run(
                    "journalctl -b -u flotta-agent --no-pager -n 40; date",
                    COMMAND,
                )
                .map(|(_, o)| o)
                .unwrap_or_default();
            bail!(
                "the server did not see {DEVICE_ID} online with {ARCH_LABEL} {DEVICE_ARCH} \
                 within {ONLINE:?}; server says:\n{last}\nserver log:\n{}\nagent journal:\n{journal}",
                read_tail(&server.log, 30)
            );
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// Heartbeats the server received since it started.
pub(super) fn heartbeats(metrics: &str) -> f64 {
    e2e_parse::samples(metrics, "flotta_records_received_total")
        .iter()
        .filter(|(labels, _)| labels.contains("heartbeat"))
        .map(|(_, v)| v)
        .sum()
}

/// After the server restarts: the event queued while it was down and new heartbeats arrive.
pub(super) fn wait_catch_up(server: &PiServer, console: &mut Console) -> Result<String> {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let described = server
            .admin(&["describe", "edgedevice", DEVICE_ID])
            .unwrap_or_default();
        let metrics = server.metrics().unwrap_or_default();
        let beats = heartbeats(&metrics);
        if described.contains(OFFLINE_REASON) && beats >= 1.0 {
            let line = described
                .lines()
                .find(|l| l.contains(OFFLINE_REASON))
                .unwrap_or("")
                .trim()
                .to_owned();
            return Ok(format!(
                "event `{line}`; {beats} heartbeats since the restart"
            ));
        }
        if Instant::now() > deadline {
            let last = format!("{described}\nheartbeats since the restart: {beats}");
            let journal = console
                .run("journalctl -b -u flotta-agent --no-pager -n 40", COMMAND)
                .map(|(_, o)| o)
                .unwrap_or_default();
            bail!(
                "within {CATCH_UP:?} of the server's restart the queued {OFFLINE_REASON} event \
                 and new heartbeats did not both arrive:\n{last}\nserver log:\n{}\nagent journal:\n{journal}",
                read_tail(&server.log, 30)
            );
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}
