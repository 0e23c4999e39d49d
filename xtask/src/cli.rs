//! Command-line parsing for `cargo xtask` (lexopt: strict, no surprises).

use std::ffi::OsString;

use anyhow::{Result, bail};
use lexopt::prelude::*;

use crate::container::{Arch, ContainerOptions};
use crate::dist::DistOptions;
use crate::stress::{Load, StressOptions};

/// What `cargo xtask` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Task {
    /// Build, check, smoke-run and size the static agent binaries.
    Dist(DistOptions),
    /// Build the flotta-server container image (and run it with `--test`).
    Container(ContainerOptions),
    /// Run every check the project has, in order.
    Test,
    /// Run every test many times under load, to find flaky ones.
    StressTests(StressOptions),
    /// Run the published ARMv6 agent under qemu against a real server.
    Armv6E2e,
    /// Boot the written SD image in an emulated Raspberry Pi Zero against a real server
    /// (`smoke`: only boot the unwritten base image and reach the host).
    PiBoot { smoke: bool },
    /// Print the board profiles as a markdown table.
    Boards,
    /// Run the demo: a server and an agent that registers and delivers data.
    Demo,
    /// Print usage.
    Help,
}

/// Usage text.
pub(crate) const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  dist      build flotta-agent fully static for every target, check it (static, stripped,
            ARM ABI), smoke-run it (qemu-user with a named CPU, or natively), copy it to
            dist/<triple>/flotta-agent and print sizes against the budgets
              --target <triple>        build only this target (repeatable)
              --no-run                 skip the smoke runs
              --panic-immediate-abort  build-std targets only: -Cpanic=immediate-abort
                                       (smaller; panics then abort without a message)
              --e2e                    then run armv6-e2e (needs the ARMv6 target)
  container build flotta-server static (musl, release), check it, and make the image
            flotta-server:<version> from deploy/container/Containerfile with podman
              --arch x86_64|aarch64    the image's architecture (default x86_64; aarch64
                                       is tagged <version>-aarch64)
              --test                   then run it as deploy/kubernetes does: --version,
                                       init, serve with a read-only CA, probes, HTTPS, SIGTERM
  test      fmt, clippy, tests, no-std, dist, armv6-e2e, pi-boot, then container: what CI runs
            (after scripts/setup.sh)
  stress-tests [N]
            run every test of the workspace N times (default 20) with nextest's
            --stress-count while the machine is busy, to find flaky tests
              --load cargo|spin|none   what keeps the machine busy (default cargo: a
                                       workspace build in a scratch target dir, looped)
              -- <nextest args>        e.g. -- -p flotta-e2e, or a test filter
  armv6-e2e run the ARMv6 agent from dist/ under `qemu-arm -cpu arm1176` against a real
            flotta-server: `run --once` must enrol, register and upload; the server's
            `get edgedevice` and /metrics must show the device and its records
  pi-boot   boot an emulated Raspberry Pi Zero (qemu-system-arm -M raspi0, assets cached by
            scripts/pi-zero-assets.sh) from an SD image flotta-image wrote: the first boot
            installs the agent; systemd runs it, it enrols and heartbeats to a real server,
            its watchdog restarts a stopped agent; an event queued offline arrives after a
            reboot; the armhf .deb installs and starts. Files in target/pi-boot
              --smoke   only boot the cached base image (no agent, no flotta-image), log in
                        on the serial console and fetch a file from the host: checks the
                        assets and the emulation
  boards    print the board profiles in boards/ as a markdown table
  demo      start a server on its embedded store and an agent that enrols, registers and
            delivers heartbeats and events in batches; print what the server stored
  help      print this
";

/// Parse `args` (without the program name).
pub(crate) fn parse<I>(args: I) -> Result<Task>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = lexopt::Parser::from_args(args);
    let task = match parser.next()? {
        None => return Ok(Task::Help),
        Some(Value(v)) => v.string()?,
        Some(Short('h') | Long("help")) => return Ok(Task::Help),
        Some(other) => return Err(other.unexpected().into()),
    };
    let parsed = match task.as_str() {
        "dist" => {
            let mut opts = DistOptions::default();
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("target") => opts.targets.push(parser.value()?.string()?),
                    Long("no-run") => opts.no_run = true,
                    Long("panic-immediate-abort") => opts.build.panic_immediate_abort = true,
                    Long("e2e") => opts.e2e = true,
                    other => return Err(other.unexpected().into()),
                }
            }
            Task::Dist(opts)
        }
        "container" => {
            let mut opts = ContainerOptions::default();
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("arch") => opts.arch = Arch::parse(&parser.value()?.string()?)?,
                    Long("test") => opts.test = true,
                    other => return Err(other.unexpected().into()),
                }
            }
            Task::Container(opts)
        }
        "test" => Task::Test,
        "stress-tests" => {
            let mut opts = StressOptions::default();
            let mut counted = false;
            while let Some(arg) = parser.next()? {
                match arg {
                    // After `--` lexopt yields everything as values: a leading count is N,
                    // the rest is nextest's.
                    Value(v) => {
                        let v = v.string()?;
                        match v.parse::<u32>() {
                            Ok(n) if !counted && opts.nextest_args.is_empty() => {
                                if n == 0 {
                                    bail!("N must be a positive count");
                                }
                                opts.runs = n;
                                counted = true;
                            }
                            _ => opts.nextest_args.push(v),
                        }
                    }
                    Long("load") => opts.load = Load::parse(&parser.value()?.string()?)?,
                    other => return Err(other.unexpected().into()),
                }
            }
            Task::StressTests(opts)
        }
        "armv6-e2e" => Task::Armv6E2e,
        "pi-boot" => {
            let mut smoke = false;
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("smoke") => smoke = true,
                    other => return Err(other.unexpected().into()),
                }
            }
            Task::PiBoot { smoke }
        }
        "boards" => Task::Boards,
        "demo" => Task::Demo,
        "help" => Task::Help,
        other => bail!("unknown task `{other}`\n\n{USAGE}"),
    };
    if !matches!(
        parsed,
        Task::Dist(_) | Task::Container(_) | Task::StressTests(_) | Task::PiBoot { .. }
    ) && let Some(arg) = parser.next()?
    {
        return Err(arg.unexpected().into());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stress_tests_parse() {
        assert_eq!(
            parse(["stress-tests"]).unwrap(),
            Task::StressTests(StressOptions::default())
        );
        let Task::StressTests(opts) = parse([
            "stress-tests",
            "5",
            "--load",
            "spin",
            "--",
            "-p",
            "flotta-e2e",
        ])
        .unwrap() else {
            panic!("stress-tests")
        };
        assert_eq!(opts.runs, 5);
        assert_eq!(opts.load, Load::Spin);
        assert_eq!(opts.nextest_args, ["-p", "flotta-e2e"]);
        assert!(parse(["stress-tests", "0"]).is_err());
        assert!(parse(["stress-tests", "--load", "heavy"]).is_err());
    }

    #[test]
    fn dist_options_parse() {
        let task = parse([
            "dist",
            "--target",
            "aarch64-unknown-linux-musl",
            "--target=x86_64-unknown-linux-musl",
            "--no-run",
        ])
        .unwrap();
        let Task::Dist(opts) = task else {
            panic!("{task:?}")
        };
        assert_eq!(
            opts.targets,
            ["aarch64-unknown-linux-musl", "x86_64-unknown-linux-musl"]
        );
        assert!(opts.no_run);
        assert!(!opts.build.panic_immediate_abort);
        assert!(!opts.e2e);
        let Task::Dist(opts) = parse(["dist", "--e2e"]).unwrap() else {
            panic!("dist")
        };
        assert!(opts.e2e);
    }

    #[test]
    fn container_options_parse() {
        assert_eq!(
            parse(["container"]).unwrap(),
            Task::Container(ContainerOptions::default())
        );
        assert_eq!(
            parse(["container", "--arch", "aarch64"]).unwrap(),
            Task::Container(ContainerOptions {
                arch: Arch::Aarch64,
                test: false
            })
        );
        assert_eq!(
            parse(["container", "--test"]).unwrap(),
            Task::Container(ContainerOptions {
                arch: Arch::X86_64,
                test: true
            })
        );
        assert!(parse(["container", "--arch", "mips"]).is_err());
        assert!(parse(["container", "extra"]).is_err());
    }

    #[test]
    fn simple_tasks_parse_and_take_no_arguments() {
        assert_eq!(parse(["test"]).unwrap(), Task::Test);
        assert_eq!(parse(["boards"]).unwrap(), Task::Boards);
        assert_eq!(parse(["armv6-e2e"]).unwrap(), Task::Armv6E2e);
        assert_eq!(parse(["pi-boot"]).unwrap(), Task::PiBoot { smoke: false });
        assert_eq!(
            parse(["pi-boot", "--smoke"]).unwrap(),
            Task::PiBoot { smoke: true }
        );
        assert!(parse(["pi-boot", "--fast"]).is_err());
        assert!(parse(["armv6-e2e", "--e2e"]).is_err());
        assert_eq!(parse(Vec::<String>::new()).unwrap(), Task::Help);
        assert!(parse(["test", "--no-run"]).is_err());
        assert!(parse(["boards", "extra"]).is_err());
    }

    #[test]
    fn unknown_tasks_and_flags_are_rejected() {
        assert!(format!("{:#}", parse(["deploy"]).unwrap_err()).contains("unknown task `deploy`"));
        assert!(parse(["dist", "--targte", "x"]).is_err());
        assert!(parse(["dist", "--target"]).is_err());
    }
}
