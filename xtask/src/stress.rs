//! `cargo xtask stress-tests [N]`: run every test of the workspace N times in a row under
//! `cargo nextest run --stress-count N` while the machine is kept busy, to find flaky tests
//! before CI does.
//!
//! A test that passes on an idle machine can still race when its threads are starved: CI has
//! two cores that the build, the test binaries and the servers they start all share. So
//! by default a real `cargo build` of the workspace runs alongside in a scratch target
//! directory, over and over (compilers compete for the cores and the linker and the
//! build's writes for the disk, as in CI). `--load spin` busies every core with spinning
//! threads instead (no disk traffic, quicker to start); `--load none` runs on an idle machine.
//!
//! The tests are built once first (so the load does not slow the build being measured).
//! All N iterations run (`--no-fail-fast`); nextest names every test that failed in any of
//! them. Arguments after `--` go to nextest (a filter, `-p flotta-e2e`, ...).

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::process;
use crate::steps::{self, cargo_command, format_elapsed, run_cargo};

/// What keeps the machine busy while the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Load {
    /// `cargo build --workspace --all-targets` into a scratch target dir, again and again.
    #[default]
    Cargo,
    /// One spinning thread per core.
    Spin,
    /// No load.
    None,
}

impl Load {
    /// Parses `cargo`, `spin` or `none`.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "cargo" => Self::Cargo,
            "spin" => Self::Spin,
            "none" => Self::None,
            other => bail!("unknown load `{other}` (cargo, spin or none)"),
        })
    }
}

/// Options of `cargo xtask stress-tests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StressOptions {
    /// How many times every test runs.
    pub(crate) runs: u32,
    /// The background load.
    pub(crate) load: Load,
    /// Extra arguments for `cargo nextest run`.
    pub(crate) nextest_args: Vec<String>,
}

impl Default for StressOptions {
    fn default() -> Self {
        Self {
            runs: 20,
            load: Load::default(),
            nextest_args: Vec::new(),
        }
    }
}

/// The `cargo nextest run` arguments for `opts` (without the build-only pass).
pub(crate) fn nextest_args(opts: &StressOptions) -> Vec<String> {
    let mut args: Vec<String> = ["nextest", "run"].iter().map(|s| (*s).to_owned()).collect();
    // `--workspace` would override a package chosen with `-p` (which then ran everything).
    let picks_packages = opts
        .nextest_args
        .iter()
        .any(|a| a == "-p" || a.starts_with("--package") || a.starts_with("-p"));
    if !picks_packages {
        args.push("--workspace".to_owned());
    }
    args.extend(["--no-fail-fast".to_owned(), "--stress-count".to_owned()]);
    args.push(opts.runs.to_string());
    args.extend(opts.nextest_args.iter().cloned());
    args
}

/// Runs the stress test.
pub(crate) fn run(root: &Path, opts: &StressOptions) -> Result<()> {
    if !process::can_spawn("cargo-nextest", &["--version"]) {
        bail!("stress-tests needs cargo-nextest (cargo install --locked cargo-nextest)");
    }
    println!("==> building the tests once");
    run_cargo(cargo_command(
        root,
        &["nextest", "run", "--workspace", "--no-run"],
    ))?;
    // That build made the binaries the end-to-end suites start, too.
    let bins = steps::workspace_bin_dir(root);

    let load = start_load(root, opts.load)?;
    println!(
        "==> {} runs of every test, load: {:?}",
        opts.runs, opts.load
    );
    let started = Instant::now();
    let args = nextest_args(opts);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = cargo_command(root, &args);
    cmd.env(steps::E2E_BIN_DIR_ENV, &bins);
    println!("$ {}", process::describe(&cmd));
    // nextest 0.9.143 exits 0 after a stress run with a failed iteration (seen: "20/20 stress
    // run iterations: 19 passed, 1 failed", status 0), so its output is read, not only its
    // status: every `FAIL` line counts.
    let run = tee_failures(cmd);
    let took = started.elapsed();
    load.stop();
    let (status, failures) = run?;
    let passed = status.success() && failures.is_empty();
    println!(
        "==> stress-tests: {} runs {} in {}",
        opts.runs,
        if passed { "passed" } else { "FAILED" },
        format_elapsed(took)
    );
    if !failures.is_empty() {
        bail!(
            "{} failed test runs:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    if !status.success() {
        bail!("nextest {status}");
    }
    Ok(())
}

/// Runs `cmd`, passing its output through, and returns its status and every line that
/// reports a failed test.
fn tee_failures(mut cmd: std::process::Command) -> Result<(std::process::ExitStatus, Vec<String>)> {
    use std::io::{BufRead as _, BufReader};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting cargo nextest")?;
    let stdout = child.stdout.take().context("nextest's stdout")?;
    let stderr = child.stderr.take().context("nextest's stderr")?;
    let relay = |stream: Box<dyn std::io::Read + Send>, to_stderr: bool| {
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if to_stderr {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
                if is_failure(&line) {
                    failures.push(line.trim().to_owned());
                }
            }
            failures
        })
    };
    let out = relay(Box::new(stdout), false);
    let err = relay(Box::new(stderr), true);
    let status = child.wait().context("waiting for cargo nextest")?;
    let mut failures = out.join().unwrap_or_default();
    failures.extend(err.join().unwrap_or_default());
    // nextest repeats each failure in its final summary.
    failures.sort();
    failures.dedup();
    Ok((status, failures))
}

/// nextest's line for one failed (or timed-out) test run, e.g.
/// `        FAIL [   8.677s] [ 2/20] (131/318) flotta-e2e::urgent_e2e an_error_…`.
fn is_failure(line: &str) -> bool {
    let line = line.trim_start();
    ["FAIL [", "TIMEOUT [", "SIGKILL [", "SIGSEGV [", "SIGABRT ["]
        .iter()
        .any(|prefix| line.starts_with(prefix))
}

/// A running background load; [`LoadGuard::stop`] (or drop) ends it.
struct LoadGuard {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    scratch: Option<tempfile::TempDir>,
}

impl LoadGuard {
    fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        drop(self.scratch.take());
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.halt();
    }
}

fn start_load(root: &Path, load: Load) -> Result<LoadGuard> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut guard = LoadGuard {
        stop: Arc::clone(&stop),
        threads: Vec::new(),
        scratch: None,
    };
    match load {
        Load::None => {}
        Load::Spin => {
            let cores = std::thread::available_parallelism().map_or(2, usize::from);
            for _ in 0..cores {
                let stop = Arc::clone(&stop);
                guard.threads.push(std::thread::spawn(move || spin(&stop)));
            }
        }
        Load::Cargo => {
            let scratch = tempfile::Builder::new()
                .prefix("flotta-stress-load-")
                .tempdir()
                .context("scratch target directory for the load build")?;
            let target = scratch.path().to_path_buf();
            let root = root.to_path_buf();
            guard.scratch = Some(scratch);
            guard.threads.push(std::thread::spawn(move || {
                rebuild_forever(&root, &target, &stop)
            }));
        }
    }
    Ok(guard)
}

fn spin(stop: &AtomicBool) {
    let mut x: u64 = 1;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

/// Builds the workspace into `target` from scratch, again and again, until `stop`.
fn rebuild_forever(root: &Path, target: &Path, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let _ = std::fs::remove_dir_all(target);
        let mut cmd = cargo_command(root, &["build", "--workspace", "--all-targets", "--quiet"]);
        cmd.arg("--target-dir")
            .arg(target)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let Ok(child) = cmd.spawn() else {
            eprintln!("stress-tests: could not start the load build; going on without load");
            return;
        };
        if !wait_or_kill(child, stop) {
            return;
        }
    }
}

/// Waits for `child`; kills it once `stop` is set. Whether it ended by itself.
fn wait_or_kill(mut child: Child, stop: &AtomicBool) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if stop.load(Ordering::SeqCst) => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nextest_gets_the_count_and_extra_arguments() {
        let opts = StressOptions {
            runs: 7,
            load: Load::None,
            nextest_args: vec!["-p".into(), "flotta-e2e".into()],
        };
        let args = nextest_args(&opts);
        let joined = args.join(" ");
        assert_eq!(
            joined, "nextest run --no-fail-fast --stress-count 7 -p flotta-e2e",
            "a chosen package is not widened to the workspace"
        );
        let all = nextest_args(&StressOptions {
            runs: 3,
            ..StressOptions::default()
        });
        assert_eq!(
            all.join(" "),
            "nextest run --workspace --no-fail-fast --stress-count 3"
        );
    }

    #[test]
    fn failed_runs_are_recognised_in_nextest_output() {
        assert!(is_failure(
            "        FAIL [   8.677s] [ 2/20] (131/318) flotta-e2e::urgent_e2e an_error"
        ));
        assert!(is_failure(
            "     TIMEOUT [ 300.002s] flotta-e2e::agent_e2e every_record"
        ));
        assert!(!is_failure(
            "        PASS [   0.019s] [19/20] (268/318) xtask::bin/xtask cli::tests::x"
        ));
        assert!(!is_failure(
            "    test result: FAILED. 0 passed; 1 failed; 0 ignored"
        ));
    }

    #[test]
    fn loads_parse() {
        assert_eq!(Load::parse("cargo").unwrap(), Load::Cargo);
        assert_eq!(Load::parse("spin").unwrap(), Load::Spin);
        assert_eq!(Load::parse("none").unwrap(), Load::None);
        assert!(Load::parse("heavy").is_err());
    }

    #[test]
    fn spinning_load_stops_when_asked() {
        let guard = start_load(Path::new("."), Load::Spin).unwrap();
        assert!(!guard.threads.is_empty());
        guard.stop();
    }
}
