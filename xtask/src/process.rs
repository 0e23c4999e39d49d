//! Running external commands with clear errors: every failure names the command line.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::process::{Command, ExitStatus, Output};

use anyhow::{Context as _, Result, bail};

/// `program arg1 arg2 ...`, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Explain how a finished process ended.
fn describe_status(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("was killed ({status})"),
    }
}

/// Run `cmd` with inherited stdio; fail unless it exits 0.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let line = describe(cmd);
    let status = cmd.status().with_context(|| spawn_hint(cmd, &line))?;
    if !status.success() {
        bail!("`{line}` {}", describe_status(status));
    }
    Ok(())
}

/// Run `cmd` capturing stdout and stderr; fail unless it exits 0. Returns stdout as text.
pub(crate) fn stdout_of(cmd: &mut Command) -> Result<String> {
    let out = captured(cmd)?;
    if !out.status.success() {
        bail!(
            "`{}` {}\n{}{}",
            describe(cmd),
            describe_status(out.status),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run `cmd` capturing output, whatever its exit status; fail only if it cannot start.
pub(crate) fn captured(cmd: &mut Command) -> Result<Output> {
    let line = describe(cmd);
    cmd.output().with_context(|| spawn_hint(cmd, &line))
}

/// Whether `program` can be started at all (it exists on PATH and is executable).
pub(crate) fn can_spawn<S: AsRef<OsStr>>(program: S, args: &[&str]) -> bool {
    match Command::new(program).args(args).output() {
        Ok(_) => true,
        Err(e) => e.kind() != ErrorKind::NotFound && e.kind() != ErrorKind::PermissionDenied,
    }
}

fn spawn_hint(cmd: &Command, line: &str) -> String {
    let program = cmd.get_program().to_string_lossy();
    format!(
        "could not start `{line}` (is `{program}` installed? `bash scripts/setup.sh` installs the build tools)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_reports_the_command_and_exit_code() {
        let err = run(Command::new("sh").args(["-c", "exit 3"])).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("sh -c exit 3"), "{msg}");
        assert!(msg.contains("status 3"), "{msg}");
        run(&mut Command::new("true")).expect("true succeeds");
    }

    #[test]
    fn stdout_of_returns_output_and_includes_stderr_on_failure() {
        assert_eq!(stdout_of(Command::new("echo").arg("hi")).unwrap(), "hi\n");
        let err = stdout_of(Command::new("sh").args(["-c", "echo oops >&2; exit 1"])).unwrap_err();
        assert!(format!("{err:#}").contains("oops"));
    }

    #[test]
    fn missing_programs_are_named() {
        let err = run(&mut Command::new("flotta-no-such-tool")).unwrap_err();
        assert!(format!("{err:#}").contains("flotta-no-such-tool"));
        assert!(!can_spawn("flotta-no-such-tool", &[]));
        assert!(can_spawn("true", &[]));
    }
}
