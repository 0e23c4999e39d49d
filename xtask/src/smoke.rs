//! Smoke runs of a built agent on this machine: natively or under qemu-user with a named CPU.
//!
//! Two runs per CPU: `--version` (must exit 0 and print the agent's banner) and
//! `selftest <fresh temp dir>` (must exit 0). Any other outcome fails with the full output.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::process::{captured, describe};
use crate::targets::Runner;

/// The command that runs `binary` with `args` via `runner` on `cpu`.
pub(crate) fn command(runner: Runner, cpu: &str, binary: &Path, args: &[&str]) -> Command {
    let mut cmd = match runner {
        Runner::Native => Command::new(binary),
        Runner::Qemu { program, .. } => {
            let mut c = Command::new(program);
            c.arg("-cpu").arg(cpu).arg(binary);
            c
        }
    };
    cmd.args(args);
    cmd
}

/// Run one command; it must exit 0. Returns its stdout.
fn expect_success(mut cmd: Command) -> Result<String> {
    let out = captured(&mut cmd)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "`{}` failed ({})\nstdout: {}\nstderr: {}",
            describe(&cmd),
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(stdout)
}

/// Smoke-test `binary` on `cpu`; returns the version line it printed.
pub(crate) fn run(runner: Runner, cpu: &str, binary: &Path) -> Result<String> {
    let version = expect_success(command(runner, cpu, binary, &["--version"]))?;
    let version = version.trim().to_owned();
    if !version.starts_with("flotta-agent ") {
        bail!(
            "`{} --version` printed `{version}`, expected `flotta-agent <version> ...`",
            binary.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("flotta-smoke-")
        .tempdir()
        .context("creating a temporary directory for the selftest")?;
    let state = dir.path().join("state");
    let state = state.to_str().context("temporary path is not UTF-8")?;
    expect_success(command(runner, cpu, binary, &["selftest", state]))?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A stand-in agent: a shell script, so the smoke logic is tested without a cross build.
    fn fake_agent(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("agent");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn qemu_command_always_names_the_cpu() {
        let runner = Runner::Qemu {
            program: "qemu-arm",
            default_cpu: "arm1176",
        };
        let cmd = command(runner, "arm1176", Path::new("/d/agent"), &["--version"]);
        assert_eq!(describe(&cmd), "qemu-arm -cpu arm1176 /d/agent --version");
    }

    #[test]
    fn a_working_agent_passes_and_its_selftest_dir_is_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let agent = fake_agent(
            dir.path(),
            r#"case "$1" in
                 --version) echo "flotta-agent 9.9.9 (test)";;
                 selftest) [ ! -e "$2" ] && mkdir "$2" && echo ok;;
                 *) exit 2;;
               esac"#,
        );
        let version = run(Runner::Native, "unused", &agent).unwrap();
        assert_eq!(version, "flotta-agent 9.9.9 (test)");
    }

    #[test]
    fn a_failing_selftest_fails_the_smoke_run_with_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let agent = fake_agent(
            dir.path(),
            r#"[ "$1" = --version ] && { echo "flotta-agent 1"; exit 0; }
               echo "queue corrupt" >&2; exit 1"#,
        );
        let err = run(Runner::Native, "unused", &agent).unwrap_err();
        assert!(format!("{err:#}").contains("queue corrupt"), "{err:#}");
    }

    #[test]
    fn a_wrong_banner_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let agent = fake_agent(dir.path(), "echo busybox; exit 0");
        let err = run(Runner::Native, "unused", &agent).unwrap_err();
        assert!(format!("{err:#}").contains("busybox"), "{err:#}");
    }
}
