//! The host's `flotta-server` for the emulated board: its certificate names the address the
//! guest uses, and it stops and starts again on the same state.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::*;
use crate::harness::{Running, free_port, read_tail, scrub_flotta_env, wait_for_port};
use crate::process;

/// A `flotta-server` in `<dir>/server*`, its certificate valid for the guest's view of the
/// host (10.0.2.2), stopped and started again on the same state and ports.
pub(super) struct PiServer {
    bin: PathBuf,
    config: PathBuf,
    /// The Edge API's port on 127.0.0.1 (the guest's 10.0.2.2).
    pub(super) api_port: u16,
    /// The admin listener's port.
    pub(super) admin_port: u16,
    /// `issue-registration-cert`'s output: CA, registration certificate and key.
    pub(super) factory_dir: PathBuf,
    /// The server's log (both runs).
    pub(super) log: PathBuf,
    serving: Option<Running>,
    starts: u32,
}

impl PiServer {
    /// Write the configuration, `init`, `issue-registration-cert --out-dir <dir>/factory`.
    pub(super) fn init(bin: &Path, dir: &Path) -> Result<Self> {
        let (api_port, admin_port) = (free_port()?, free_port()?);
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "listen_addr = \"127.0.0.1:{api_port}\"\n\
                 admin_listen_addr = \"127.0.0.1:{admin_port}\"\n\
                 data_dir = {}\n\
                 server_names = [\"localhost\", \"127.0.0.1\", \"{HOST_FROM_GUEST}\"]\n\
                 auto_approve = true\n",
                toml_path(&dir.join("server"))?
            ),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let s = Self {
            bin: bin.to_owned(),
            config,
            api_port,
            admin_port,
            factory_dir: dir.join("factory"),
            log: dir.join("server.log"),
            serving: None,
            starts: 0,
        };
        process::stdout_of(&mut s.command(&["init"]))?;
        let mut issue = s.command(&["issue-registration-cert", "--out-dir"]);
        process::stdout_of(issue.arg(&s.factory_dir))?;
        Ok(s)
    }

    pub(super) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        scrub_flotta_env(&mut cmd, "FLOTTA_SERVER_");
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }

    /// `serve` (its output appended to the log) until the API and admin ports answer.
    pub(super) fn start(&mut self) -> Result<()> {
        self.starts += 1;
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        writeln!(out, "=== pi-boot: serve (start {})", self.starts)?;
        let serving = Running::spawn(
            self.command(&["serve"])
                .stdout(out.try_clone()?)
                .stderr(out),
            "flotta-server",
        )?;
        self.serving = Some(serving);
        wait_for_port(self.api_port, Duration::from_secs(20)).with_context(|| {
            format!(
                "flotta-server did not start; its log:\n{}",
                read_tail(&self.log, 40)
            )
        })?;
        wait_for_port(self.admin_port, Duration::from_secs(5))
    }

    /// Stop `serve` (SIGTERM, then SIGKILL).
    pub(super) fn stop(&mut self) {
        self.serving = None;
    }

    /// `flotta-server --config .. --admin-addr .. <args>`; its stdout.
    pub(super) fn admin(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.command(&["--admin-addr"]);
        cmd.arg(format!("127.0.0.1:{}", self.admin_port)).args(args);
        process::stdout_of(&mut cmd)
    }

    /// The admin listener's `/metrics`.
    pub(super) fn metrics(&self) -> Result<String> {
        crate::armv6_e2e::http_get(self.admin_port, "/metrics")
    }
}

/// `p` as a TOML basic string.
pub(super) fn toml_path(p: &Path) -> Result<String> {
    let s = p.to_str().context("scratch path is not UTF-8")?;
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}
