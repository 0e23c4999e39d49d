//! `cargo xtask test`: the project's whole check, as one ordered list of steps:
//! `fmt`, `clippy`, `test` (nextest or cargo test, then doc tests), `no-std` (the sealed-frame
//! core of `flotta-proto` built for a bare-metal target without std), `dist` (static builds
//! for every target, ELF checks, qemu smoke runs, size budget) and `armv6-e2e` (the ARMv6
//! agent `dist` published, under `qemu-arm -cpu arm1176`, enrols, registers and uploads to a
//! real `flotta-server`; see `armv6_e2e`) and `pi-boot` (an emulated Raspberry Pi Zero boots
//! the SD image `flotta-image` wrote: first-boot install, the agent under systemd with its
//! watchdog, a reboot with the server down; see `pi_boot`), then `container` (the server's
//! static build in its `FROM scratch` image, built with podman and run; see `container_test`).
//!
//! To add a step (fuzz smoke, end-to-end suite, ...), add one entry to [`STEPS`] and, if it is
//! more than a cargo command, a function next to the others below. Steps run in order; the
//! first failure stops the run with the step's name and the command that failed. Each step's
//! elapsed time is printed, and a summary at the end.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::armv6_e2e;
use crate::container::{self, ContainerOptions};
use crate::disk;
use crate::dist::{self, DistOptions};
use crate::pi_boot;
use crate::process;
use crate::slowest;
use crate::toolchain;

/// One step of `cargo xtask test`.
pub(crate) struct Step {
    /// Short name, shown in progress lines and errors.
    pub(crate) name: &'static str,
    /// Does the work, from the repository root.
    pub(crate) run: fn(&Path) -> Result<()>,
}

/// Every step, in the order it runs.
pub(crate) const STEPS: &[Step] = &[
    Step {
        name: "fmt",
        run: fmt,
    },
    Step {
        name: "clippy",
        run: clippy,
    },
    Step {
        name: "test",
        run: test,
    },
    Step {
        name: "no-std",
        run: no_std,
    },
    Step {
        name: "dist",
        run: dist_all,
    },
    Step {
        name: "armv6-e2e",
        run: armv6_e2e::run,
    },
    Step {
        name: "pi-boot",
        run: pi_boot::run,
    },
    Step {
        name: "container",
        run: container,
    },
];

/// A `cargo` command from the repository root, on the toolchain `rust-toolchain.toml` names.
pub(crate) fn cargo_command(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root).args(args);
    // `cargo run` exported this; let rust-toolchain.toml choose the toolchain instead.
    cmd.env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTUP_TOOLCHAIN_SOURCE");
    cmd
}

/// Run `cmd` (from [`cargo_command`]), printing it first.
pub(crate) fn run_cargo(mut cmd: Command) -> Result<()> {
    println!("$ {}", process::describe(&cmd));
    process::run(&mut cmd)
}

/// Run a `cargo` command from the repository root.
fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    run_cargo(cargo_command(root, args))
}

fn fmt(root: &Path) -> Result<()> {
    cargo(root, &["fmt", "--all", "--check"])
}

fn clippy(root: &Path) -> Result<()> {
    cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )
}

/// What tells the end-to-end tests where the binaries they start are (see
/// `flotta_e2e::procs::bin_dir`).
pub(crate) const E2E_BIN_DIR_ENV: &str = "FLOTTA_E2E_BIN_DIR";

/// The debug binaries of the workspace build, where `cargo nextest run --workspace` (and
/// `cargo test --workspace`) leave `flotta-agent` and `flotta-server`: cargo builds a
/// package's binaries for its integration tests, before any test runs. The end-to-end tests
/// start these instead of building their own copy (which cost a second full debug build,
/// inside the first end-to-end test's time).
pub(crate) fn workspace_bin_dir(root: &Path) -> std::path::PathBuf {
    dist::target_dir(root).join("debug")
}

/// nextest when installed (then doc tests separately: nextest does not run them), else
/// `cargo test`, which runs both. The end-to-end tests start the binaries of this same build
/// ([`workspace_bin_dir`]); the slowest tests are printed at the end.
fn test(root: &Path) -> Result<()> {
    let bins = workspace_bin_dir(root);
    if process::can_spawn("cargo-nextest", &["--version"]) {
        let junit = root.join(slowest::JUNIT_PATH);
        // A report left by an earlier run must not pass for this one's.
        let _ = std::fs::remove_file(&junit);
        let mut cmd = cargo_command(root, &["nextest", "run", "--workspace", "--profile", "ci"]);
        cmd.env(E2E_BIN_DIR_ENV, &bins);
        let result = run_cargo(cmd);
        slowest::print(&junit, 12);
        result?;
        cargo(root, &["test", "--workspace", "--doc"])
    } else {
        println!("cargo-nextest not installed; using cargo test");
        let mut cmd = cargo_command(root, &["test", "--workspace"]);
        cmd.env(E2E_BIN_DIR_ENV, &bins);
        run_cargo(cmd)
    }
}

/// The bare-metal target of the `no-std` step: a Cortex-M4F, for which no `std` exists.
pub(crate) const NO_STD_TARGET: &str = "thumbv7em-none-eabihf";

/// `cargo` arguments that build `flotta-proto`'s `frame` feature alone for [`NO_STD_TARGET`],
/// with `core` built from the pinned nightly's `rust-src` (no rustup target needed), into
/// `target_dir/no-std` so that the main build's artifacts are never touched.
pub(crate) fn no_std_args(target_dir: &Path) -> Vec<String> {
    let mut args = vec![toolchain::nightly_arg()];
    args.extend(
        [
            "build",
            "-Zbuild-std=core",
            "--target",
            NO_STD_TARGET,
            "-p",
            "flotta-proto",
            "--no-default-features",
            "--features",
            "frame",
            "--target-dir",
        ]
        .map(String::from),
    );
    args.push(target_dir.join("no-std").display().to_string());
    args
}

/// Prove that the sealed-frame core really builds without `std` and `alloc`: neither exists
/// for the target, so any use of them (in our code or a dependency's features) fails here.
fn no_std(root: &Path) -> Result<()> {
    println!(
        "proves: flotta-proto `--no-default-features --features frame` builds for \
         {NO_STD_TARGET} with only `core` (no std, no alloc, dependencies included)"
    );
    let args = no_std_args(&dist::target_dir(root));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = cargo_command(root, &args);
    for var in toolchain::SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    run_cargo(cmd)
}

fn dist_all(root: &Path) -> Result<()> {
    dist::run(root, &DistOptions::default())
}

/// The server's image built and run (`cargo xtask container --test`).
fn container(root: &Path) -> Result<()> {
    container::run(
        root,
        ContainerOptions {
            test: true,
            ..ContainerOptions::default()
        },
    )
}

/// `12.3s` or `4m05s`.
pub(crate) fn format_elapsed(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// Run `steps` in order, stopping at the first failure. The timing table of the steps that
/// ran is printed either way, so the budget is visible on a red run too.
pub(crate) fn run_steps(root: &Path, steps: &[Step]) -> Result<()> {
    let all = Instant::now();
    let target = dist::target_dir(root);
    let free = || disk::free_bytes(if target.exists() { &target } else { root });
    match free() {
        Some(b) if (b as f64) < disk::COLD_RUN_NEEDS_GIB * f64::from(1u32 << 30) => println!(
            "disk: only {} free where the build writes; a cold run writes about {} GiB \
             (a full disk fails mid-link with a bus error)",
            disk::gib(b),
            disk::COLD_RUN_NEEDS_GIB
        ),
        Some(b) => println!("disk: {} free where the build writes", disk::gib(b)),
        None => println!("disk: free space unknown (`df` failed)"),
    }
    let mut done: Vec<(&str, Duration, bool)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        println!("\n==> [{}/{}] {}", i + 1, steps.len(), step.name);
        let started = Instant::now();
        let result = (step.run)(root);
        let took = started.elapsed();
        println!(
            "<== {} {} in {}{}",
            step.name,
            if result.is_ok() { "passed" } else { "FAILED" },
            format_elapsed(took),
            free().map_or_else(String::new, |b| format!(" ({} disk free)", disk::gib(b)))
        );
        done.push((step.name, took, result.is_ok()));
        if let Err(e) = result {
            print!("{}", timing_table(&done, steps.len(), all.elapsed()));
            return Err(e.context(format!(
                "step `{}` failed after {}; fix it and rerun `cargo xtask test`",
                step.name,
                format_elapsed(took)
            )));
        }
    }
    print!("{}", timing_table(&done, steps.len(), all.elapsed()));
    Ok(())
}

/// `all 5 steps passed in 9m12s:` (or how many of them ran) and one line per step.
fn timing_table(done: &[(&str, Duration, bool)], planned: usize, total: Duration) -> String {
    let passed = done.iter().all(|(_, _, ok)| *ok) && done.len() == planned;
    let mut out = if passed {
        format!(
            "\nall {planned} steps passed in {}:\n",
            format_elapsed(total)
        )
    } else {
        format!(
            "\n{} of {planned} steps ran in {}:\n",
            done.len(),
            format_elapsed(total)
        )
    };
    for (name, took, ok) in done {
        out.push_str(&format!(
            "  {name:<10} {:>8}{}\n",
            format_elapsed(*took),
            if *ok { "" } else { "  FAILED" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn ok(_: &Path) -> Result<()> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn fails(_: &Path) -> Result<()> {
        anyhow::bail!("boom")
    }

    fn never(_: &Path) -> Result<()> {
        panic!("a step after a failure must not run")
    }

    #[test]
    fn stops_at_the_first_failure_and_names_the_step() {
        let steps = [
            Step { name: "a", run: ok },
            Step {
                name: "b",
                run: fails,
            },
            Step {
                name: "c",
                run: never,
            },
        ];
        let err = run_steps(Path::new("."), &steps).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("step `b` failed") && msg.contains("boom"),
            "{msg}"
        );
        assert_eq!(
            CALLS.load(Ordering::SeqCst),
            1,
            "only the step before the failure ran"
        );
    }

    #[test]
    fn the_armv6_end_to_end_run_comes_right_after_dist() {
        let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
        let dist = names.iter().position(|n| *n == "dist").unwrap();
        assert_eq!(names.get(dist + 1), Some(&"armv6-e2e"));
    }

    #[test]
    fn the_emulated_pi_boot_comes_right_after_the_armv6_run() {
        let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
        let armv6 = names.iter().position(|n| *n == "armv6-e2e").unwrap();
        assert_eq!(names.get(armv6 + 1), Some(&"pi-boot"));
    }

    #[test]
    fn the_server_image_is_built_and_run_last() {
        let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
        assert_eq!(names.last(), Some(&"container"));
    }

    #[test]
    fn the_no_std_build_comes_right_after_test() {
        let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
        let test = names.iter().position(|n| *n == "test").unwrap();
        assert_eq!(names.get(test + 1), Some(&"no-std"));
        assert_eq!(names.get(test + 2), Some(&"dist"));
    }

    #[test]
    fn the_no_std_build_uses_the_pinned_nightly_and_its_own_target_dir() {
        let args = no_std_args(Path::new("/t"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let nightly = format!("+{}", toolchain::NIGHTLY);
        assert_eq!(
            args,
            [
                nightly.as_str(),
                "build",
                "-Zbuild-std=core",
                "--target",
                "thumbv7em-none-eabihf",
                "-p",
                "flotta-proto",
                "--no-default-features",
                "--features",
                "frame",
                "--target-dir",
                "/t/no-std",
            ]
        );
    }

    #[test]
    fn step_names_are_unique() {
        let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }

    #[test]
    fn elapsed_is_human_readable() {
        assert_eq!(format_elapsed(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_elapsed(Duration::from_secs(245)), "4m05s");
        assert_eq!(format_elapsed(Duration::from_secs(3600)), "60m00s");
    }
}
