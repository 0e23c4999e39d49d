//! The narrow-link half of `armv6-e2e`: the RTC-woken end-to-end tests of
//! the LoRaWAN (RAK3172 over ChirpStack, RN2483 over TTS) and Iridium SBD
//! carriers (`tests/tests/lorawan_e2e.rs`, `lorawan_tts_e2e.rs`,
//! `sbd_e2e.rs`: `run --once` on a simulated modem on a pseudo-terminal,
//! a simulated network server, a real `flotta-server`) run again with the
//! ARMv6 agent from `dist/` under `qemu-arm -cpu arm1176` in place of the
//! host's (`FLOTTA_E2E_AGENT` and `FLOTTA_E2E_AGENT_RUNNER`, see
//! `tests/src/procs.rs`): termios, poll deadlines and the modem dialects
//! on the Pi Zero's own instruction set.
//!
//! Each test is named exactly and must have run and passed: a filter that
//! matches nothing is an error, never a silent pass.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::process;
use crate::steps::{self, format_elapsed};

/// (test binary, test name) run with the ARMv6 agent.
const TESTS: &[(&str, &str)] = &[
    (
        "lorawan_e2e",
        "run_once_over_lorawan_sends_once_and_the_ack_rides_on_the_next_uplink",
    ),
    (
        "lorawan_tts_e2e",
        "run_once_over_tts_and_an_rn2483_sends_once_and_the_ack_rides_on_the_next_uplink",
    ),
    (
        "sbd_e2e",
        "run_once_over_sbd_is_one_mo_session_and_the_answer_by_ring_alert",
    ),
];

/// Run [`TESTS`] with `agent` under `runner` (e.g. `qemu-arm -cpu arm1176`).
pub(crate) fn run(root: &Path, agent: &Path, runner: &str) -> Result<()> {
    let bins = steps::workspace_bin_dir(root);
    for (binary, name) in TESTS {
        let started = Instant::now();
        let mut cmd = steps::cargo_command(
            root,
            &[
                "test",
                "-p",
                "flotta-e2e",
                "--test",
                binary,
                "--",
                "--exact",
                name,
            ],
        );
        cmd.env(steps::E2E_BIN_DIR_ENV, &bins)
            .env("FLOTTA_E2E_AGENT", agent)
            .env("FLOTTA_E2E_AGENT_RUNNER", runner);
        println!("$ {}", process::describe(&cmd));
        let out = process::captured(&mut cmd)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !passed_one(&stdout) {
            bail!(
                "{binary}::{name} with the ARMv6 agent under `{runner}` failed \
                 (or did not run):\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        println!(
            "  armv6 {binary}::{name} ok in {}",
            format_elapsed(started.elapsed())
        );
    }
    Ok(())
}

/// Whether libtest's summary says exactly one test ran and passed.
fn passed_one(stdout: &str) -> bool {
    stdout
        .lines()
        .any(|l| l.starts_with("test result: ok. 1 passed; 0 failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_passed_test_counts() {
        assert!(passed_one(
            "running 1 test\ntest x ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored"
        ));
        assert!(!passed_one(
            "test result: ok. 0 passed; 0 failed; 0 ignored"
        ));
        assert!(!passed_one("test result: FAILED. 0 passed; 1 failed"));
    }
}
