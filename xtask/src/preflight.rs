//! Before a long build: are the compilers, linkers, Rust targets and emulators all here?
//!
//! Every missing piece is listed at once, with the one command that installs them all.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::process::{can_spawn, captured};
use crate::targets::{CcSetup, Runner, Target, Toolchain};
use crate::toolchain::{self, SCRUBBED_ENV};

/// A program (with arguments that make it exit quickly) that must be startable.
fn need_program(missing: &mut Vec<String>, program: &str, args: &[&str], why: &str) {
    if !can_spawn(program, args) {
        missing.push(format!("`{program}` ({why})"));
    }
}

/// `python3 -m ziglang version` must succeed (zig is a PyPI package here).
fn need_zig(missing: &mut Vec<String>) {
    let python = std::env::var("FLOTTA_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ok = captured(Command::new(&python).args(["-m", "ziglang", "version"]))
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing.push(format!(
            "zig (`{python} -m ziglang version` fails; PyPI package `ziglang`)"
        ));
    }
}

/// The toolchain rustup picks in `root` (or the pinned nightly) must have `triple`'s std installed,
/// or for build-std, the `rust-src` component.
fn need_rust(missing: &mut Vec<String>, root: &Path, target: &Target) {
    let mut cmd = Command::new("rustc");
    cmd.current_dir(root);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    let (what, ok) = match target.toolchain {
        Toolchain::Stable => {
            cmd.args(["--print", "target-libdir", "--target", target.triple]);
            let dir = captured(&mut cmd)
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
            let has_std = dir.is_some_and(|d| {
                std::fs::read_dir(d).is_ok_and(|mut es| {
                    es.any(|e| {
                        e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
                    })
                })
            });
            (
                format!("Rust std for {} (rustup target add)", target.triple),
                has_std,
            )
        }
        Toolchain::NightlyBuildStd => {
            cmd.args([&toolchain::nightly_arg(), "--print", "sysroot"]);
            let sysroot = captured(&mut cmd)
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
            let has_src = sysroot.is_some_and(|s| {
                Path::new(&s)
                    .join("lib/rustlib/src/rust/library/std/Cargo.toml")
                    .is_file()
            });
            (
                format!(
                    "{} with rust-src (for -Zbuild-std; scripts/setup.sh installs it)",
                    toolchain::NIGHTLY
                ),
                has_src,
            )
        }
    };
    if !ok {
        missing.push(what);
    }
}

/// Check everything building (and, if `will_run`, smoke-running) `targets` needs.
pub(crate) fn check(root: &Path, targets: &[&Target], will_run: bool) -> Result<()> {
    let mut missing = Vec::new();
    need_program(&mut missing, "file", &["--version"], "binary checks");
    need_program(
        &mut missing,
        "readelf",
        &["--version"],
        "binary checks, binutils",
    );
    for target in targets {
        need_rust(&mut missing, root, target);
        match target.cc {
            CcSetup::MuslGcc => {
                need_program(&mut missing, "musl-gcc", &["--version"], "musl-tools")
            }
            CcSetup::GnuCross { prefix } => {
                need_program(
                    &mut missing,
                    &format!("{prefix}-gcc"),
                    &["--version"],
                    "cross gcc",
                );
                need_program(
                    &mut missing,
                    &format!("{prefix}-ar"),
                    &["--version"],
                    "cross binutils",
                );
            }
            CcSetup::Zig { wrapper } => {
                need_program(&mut missing, "sh", &["-c", "true"], "runs the zig wrapper");
                if !root.join(wrapper).is_file() {
                    missing.push(format!("{wrapper} (the zig wrapper script)"));
                }
                need_zig(&mut missing);
            }
        }
        if let (true, Runner::Qemu { program, .. }) = (will_run, target.runner) {
            need_program(&mut missing, program, &["--version"], "qemu-user");
        }
    }
    missing.dedup();
    if !missing.is_empty() {
        bail!(
            "missing build tools:\n  - {}\ninstall them with: bash scripts/setup.sh",
            missing.join("\n  - ")
        );
    }
    Ok(())
}
