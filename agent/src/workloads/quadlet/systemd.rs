//! The systemd the Quadlet path drives, behind a small trait
//! ([`Systemd`]) so the path is tested against a model, and the real one
//! ([`Systemctl`]): `systemctl` and `journalctl`, each call bounded
//! (`command.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::workloads::command::{RunError, run_bounded, shown};

/// What the Quadlet path needs from systemd. Errors are systemd's words.
pub trait Systemd {
    /// Regenerate units from the Quadlet files (`daemon-reload`).
    fn daemon_reload(&mut self) -> Result<(), String>;
    /// Start `service`, or start it anew if it runs; returns once it has
    /// started (or failed to).
    fn restart(&mut self, service: &str) -> Result<(), String>;
    /// Stop `service` (nothing if it does not run).
    fn stop(&mut self, service: &str) -> Result<(), String>;
    /// Why `service` last failed: podman's `Error:` line from its journal
    /// (empty when none is found).
    fn why_failed(&mut self, service: &str) -> String;
}

/// `systemctl` and `journalctl`.
#[derive(Debug, Clone)]
pub struct Systemctl {
    /// The `systemctl` program.
    pub systemctl: PathBuf,
    /// The `journalctl` program.
    pub journalctl: PathBuf,
    /// Deadline of one call (a start may pull images).
    pub timeout: Duration,
}

/// Journal lines read for a failure's reason.
const JOURNAL_LINES: &str = "40";

impl Systemctl {
    fn run(&self, program: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
        let mut command = Command::new(program);
        command.args(args);
        run_bounded(&mut command, None, 64 << 10, self.timeout).map_err(|e| match e {
            RunError::Spawn(e) => format!("cannot run {}: {e}", program.display()),
            RunError::Timeout => format!(
                "{} {} did not finish within {:?}",
                program.display(),
                shown(args),
                self.timeout
            ),
            RunError::Failed { status, stderr } => format!(
                "{} {} failed ({status}): {stderr}",
                program.display(),
                shown(args)
            ),
        })
    }
}

impl Systemd for Systemctl {
    fn daemon_reload(&mut self) -> Result<(), String> {
        self.run(&self.systemctl, &["daemon-reload"]).map(drop)
    }

    fn restart(&mut self, service: &str) -> Result<(), String> {
        self.run(&self.systemctl, &["restart", service]).map(drop)
    }

    fn stop(&mut self, service: &str) -> Result<(), String> {
        self.run(&self.systemctl, &["stop", service]).map(drop)
    }

    fn why_failed(&mut self, service: &str) -> String {
        let out = self.run(
            &self.journalctl,
            &[
                "--unit",
                service,
                "--lines",
                JOURNAL_LINES,
                "--output",
                "cat",
                "--no-pager",
            ],
        );
        out.map(|o| reason_in(&String::from_utf8_lossy(&o)))
            .unwrap_or_default()
    }
}

/// Most bytes of a failure's reason.
const REASON_KEPT: usize = 1024;

/// What podman said went wrong in a unit's last start: its `Error: …`
/// lines and the containers it could not start (`starting container ID:
/// why`; podman's final `Error:` only counts them), after the last
/// `Starting …` line systemd logged.
pub(crate) fn reason_in(journal: &str) -> String {
    let lines: Vec<&str> = journal.lines().map(str::trim).collect();
    let from = lines
        .iter()
        .rposition(|l| l.starts_with("Starting "))
        .map_or(0, |i| i + 1);
    let mut reason = lines[from..]
        .iter()
        .filter_map(|l| {
            l.strip_prefix("Error: ")
                .or_else(|| l.starts_with("starting container ").then_some(*l))
        })
        .collect::<Vec<_>>()
        .join("; ");
    if reason.len() > REASON_KEPT {
        let mut end = REASON_KEPT;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reason_is_what_podman_said_in_the_last_start() {
        let journal = "Starting flotta-web.service - flotta workload web...\n\
             Error: an older start's error\n\
             flotta-web.service: Failed with result 'exit-code'.\n\
             Starting flotta-web.service - flotta workload web...\n\
             Pods stopped:\n\
             starting container 8f2c: runc: exec: \"/no/such\": no such file or directory\n\
             Error: failed to start 1 containers\n\
             time=\"2026-12-02T17:43:28Z\" level=error msg=\"Checking whether service...\"\n\
             flotta-web.service: Main process exited, code=exited, status=125/n/a\n";
        assert_eq!(
            super::reason_in(journal),
            "starting container 8f2c: runc: exec: \"/no/such\": no such file or directory; \
             failed to start 1 containers"
        );
        assert_eq!(
            super::reason_in("Error: localhost/nope:1: image not known\n"),
            "localhost/nope:1: image not known"
        );
        assert_eq!(super::reason_in("all fine\n"), "");
        let long = format!("Error: {}\n", "é".repeat(2000));
        let r = super::reason_in(&long);
        assert!(r.len() <= super::REASON_KEPT + '…'.len_utf8() && r.ends_with('…'));
    }
}
