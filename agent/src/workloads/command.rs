//! A bounded run of a helper program (`podman`, `systemctl`,
//! `journalctl`): a deadline (a wedged helper is killed, not waited on
//! forever), standard output kept up to a limit, both pipes drained at
//! once so neither can fill and wedge the helper, and on failure the end
//! of its standard error (the helper's own `Error: …` line is last).

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Standard error kept for a failure's message.
const STDERR_KEPT: usize = 2048;

/// How a bounded run failed.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started.
    Spawn(std::io::Error),
    /// It ran past its deadline and was killed.
    Timeout,
    /// It exited unsuccessfully.
    Failed {
        /// Its exit status.
        status: ExitStatus,
        /// The end of its standard error.
        stderr: String,
    },
}

/// Run `command` (arguments and environment already set) with `input` on
/// its standard input (else none), within `timeout`: its standard output,
/// up to `max_out` + 1 bytes (so a caller can tell "too long").
pub(crate) fn run_bounded(
    command: &mut Command,
    input: Option<&[u8]>,
    max_out: usize,
    timeout: Duration,
) -> Result<Vec<u8>, RunError> {
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RunError::Spawn)?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // Written by a thread while the output is drained, then closed
        // (the helper reads to the end of its input).
        let input = input.to_vec();
        std::thread::spawn(move || {
            use std::io::Write as _;
            let _ = stdin.write_all(&input);
        });
    }
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    // A reader stops storing at its limit but keeps draining.
    let out = std::thread::spawn(move || drain(&mut stdout, max_out));
    let err = std::thread::spawn(move || drain(&mut stderr, usize::MAX));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(RunError::Spawn)? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::Timeout);
        }
        // Only while a command runs (seconds at most): no idle polling.
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if status.success() {
        return Ok(out);
    }
    Err(RunError::Failed {
        status,
        stderr: tail(&String::from_utf8_lossy(&err)).to_owned(),
    })
}

/// The last [`STDERR_KEPT`] bytes of `text`, trimmed, on a character
/// boundary.
fn tail(text: &str) -> &str {
    let text = text.trim_end();
    let mut start = text.len().saturating_sub(STDERR_KEPT);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// `program args…` as shown in messages.
pub(crate) fn shown(args: &[impl AsRef<OsStr>]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Read `r` to its end, keeping at most `limit` + 1 bytes.
fn drain(r: &mut impl Read, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = limit.saturating_add(1).saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded_stderr_kept_and_a_wedged_program_killed() {
        let out = run_bounded(
            Command::new("sh").args(["-c", "head -c 100000 /dev/zero"]),
            None,
            10,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.len(), 11);
        let echoed = run_bounded(
            Command::new("cat").arg("-"),
            Some(b"secret data"),
            100,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(echoed, b"secret data");
        match run_bounded(
            Command::new("sh").args(["-c", "echo noise; echo 'Error: it broke' >&2; exit 3"]),
            None,
            100,
            Duration::from_secs(10),
        ) {
            Err(RunError::Failed { status, stderr }) => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr, "Error: it broke");
            }
            other => panic!("{other:?}"),
        }
        let began = Instant::now();
        assert!(matches!(
            run_bounded(
                Command::new("sleep").arg("30"),
                None,
                10,
                Duration::from_millis(200)
            ),
            Err(RunError::Timeout)
        ));
        assert!(began.elapsed() < Duration::from_secs(10));
        assert!(matches!(
            run_bounded(
                &mut Command::new("/nonexistent/helper"),
                None,
                10,
                Duration::from_secs(1)
            ),
            Err(RunError::Spawn(_))
        ));
    }

    #[test]
    fn the_tail_is_cut_on_a_character_boundary() {
        let long = "é".repeat(STDERR_KEPT);
        let t = tail(&long);
        assert!(t.len() <= STDERR_KEPT && t.chars().all(|c| c == 'é'));
        assert_eq!(shown(&["kube", "play", "f.json"]), "kube play f.json");
    }
}
