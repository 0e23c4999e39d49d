//! `cargo xtask dist`: build the static agent for each target, check it, smoke-run it, copy it
//! to `dist/<triple>/flotta-agent` and print the size table against the budgets.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::armv6_e2e;
use crate::boards;
use crate::checks;
use crate::deb;
use crate::preflight;
use crate::process;
use crate::size::{self, SizeRow};
use crate::smoke;
use crate::targets::{Runner, TARGETS, Target};
use crate::toolchain::{self, AGENT_PACKAGE, AGENT_PROFILE, BuildOptions, SCRUBBED_ENV};

/// Options of `cargo xtask dist`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DistOptions {
    /// Triples to build; empty means all.
    pub(crate) targets: Vec<String>,
    /// Skip the qemu/native smoke runs.
    pub(crate) no_run: bool,
    /// Build options passed through to every target.
    pub(crate) build: BuildOptions,
    /// Afterwards, run the ARMv6 agent against a real server (`cargo xtask armv6-e2e`).
    pub(crate) e2e: bool,
}

/// Resolve the requested triples (all when none are given), in table order, without repeats.
pub(crate) fn select(requested: &[String]) -> Result<Vec<&'static Target>> {
    for triple in requested {
        if crate::targets::find(triple).is_none() {
            bail!(
                "unknown target `{triple}`; known: {}",
                crate::targets::known_triples()
            );
        }
    }
    Ok(TARGETS
        .iter()
        .filter(|t| requested.is_empty() || requested.iter().any(|r| r == t.triple))
        .collect())
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR`, else `<root>/target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Build `package` in `profile` (the agent, or the server for its image) for `target` and
/// return the path of the cargo-built binary.
pub(crate) fn build(
    target: &Target,
    root: &Path,
    opts: BuildOptions,
    (package, profile): (&str, &str),
) -> Result<PathBuf> {
    let plan = toolchain::build_command(target, root, opts, (package, profile));
    println!("$ {}", plan.display());
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .args(&plan.args)
        .envs(plan.env.iter().map(|(k, v)| (k, v)));
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    process::run(&mut cmd).with_context(|| format!("building {package} for {}", target.triple))?;
    Ok(target_dir(root)
        .join(target.triple)
        .join(profile)
        .join(package))
}

/// Where `dist` publishes the agent for `triple`: `dist/<triple>/flotta-agent`.
pub(crate) fn published(root: &Path, triple: &str) -> PathBuf {
    root.join("dist").join(triple).join(AGENT_PACKAGE)
}

/// Copy `built` to `dist/<triple>/flotta-agent` and return the copy's path.
fn publish(root: &Path, triple: &str, built: &Path) -> Result<PathBuf> {
    let dest = published(root, triple);
    let dir = dest.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::copy(built, &dest)
        .with_context(|| format!("copying {} to {}", built.display(), dest.display()))?;
    Ok(dest)
}

/// Smoke-run `binary` on every CPU the board profiles name for `target` (once if native).
fn smoke_all(target: &Target, binary: &Path, cpus: &[&str]) -> Result<()> {
    match target.runner {
        Runner::Native => {
            let version = smoke::run(target.runner, "native", binary)?;
            println!("  smoke ok natively: {version}");
        }
        Runner::Qemu {
            program,
            default_cpu,
        } => {
            let cpus = if cpus.is_empty() {
                vec![default_cpu]
            } else {
                cpus.to_vec()
            };
            for cpu in cpus {
                let version = smoke::run(target.runner, cpu, binary)?;
                println!("  smoke ok under `{program} -cpu {cpu}`: {version}");
            }
        }
    }
    Ok(())
}

/// Run `cargo xtask dist` from the repository at `root`.
pub(crate) fn run(root: &Path, opts: &DistOptions) -> Result<()> {
    let selected = select(&opts.targets)?;
    check_e2e(opts, &selected)?;
    let boards = boards::load_dir(&root.join("boards"))?;
    preflight::check(root, &selected, !opts.no_run)?;
    if opts.build.panic_immediate_abort {
        println!(
            "note: --panic-immediate-abort: panics on build-std targets abort with no message"
        );
    }

    let mut rows = Vec::new();
    for target in &selected {
        let started = Instant::now();
        println!("== {} ==", target.triple);
        let built = build(target, root, opts.build, (AGENT_PACKAGE, AGENT_PROFILE))?;
        let binary = publish(root, target.triple, &built)?;
        checks::verify(target, &binary)?;
        let attrs: Vec<String> = target
            .arm_attributes
            .iter()
            .map(|(tag, value)| format!(", {tag}: {value}"))
            .collect();
        println!(
            "  checks ok: static, stripped, {}{}",
            target.file_arch,
            attrs.concat()
        );
        if opts.no_run {
            println!("  smoke run skipped (--no-run)");
        } else {
            smoke_all(
                target,
                &binary,
                &boards::qemu_cpus_for(&boards, target.triple),
            )?;
        }
        let bytes = std::fs::metadata(&binary)
            .with_context(|| format!("reading size of {}", binary.display()))?
            .len();
        println!("  {} ({:.1?})", binary.display(), started.elapsed());
        rows.push(SizeRow {
            triple: target.triple.to_owned(),
            bytes,
            budget_bytes: target.size_budget_bytes,
        });
    }

    println!("\n{}", size::table(&rows));
    let over: Vec<&SizeRow> = rows.iter().filter(|r| r.over_budget()).collect();
    if let Some(first) = over.first() {
        bail!(
            "{} is {} bytes, over its budget of {} bytes: shrink it before shipping",
            first.triple,
            first.bytes,
            first.budget_bytes.unwrap_or_default()
        );
    }
    println!("binaries are in {}", root.join("dist").display());
    for target in &selected {
        let Some(arch) = deb::debian_arch(target.triple) else {
            bail!("{} has no Debian architecture", target.triple);
        };
        let package = deb::build(root, arch, &published(root, target.triple))?;
        deb::lint(&package)?;
        println!("  {} (lintian: no unexplained tag)", package.display());
        if arch == "amd64" && !opts.no_run {
            deb::e2e(root, &package)?;
        }
    }
    if opts.e2e {
        println!("\n== {} against flotta-server ==", armv6_e2e::TRIPLE);
        armv6_e2e::run(root)?;
    }
    Ok(())
}

/// `--e2e` needs the ARMv6 build and the runs: refuse before building anything.
fn check_e2e(opts: &DistOptions, selected: &[&Target]) -> Result<()> {
    if !opts.e2e {
        return Ok(());
    }
    if opts.no_run {
        bail!("--e2e runs the agent; it cannot be combined with --no-run");
    }
    if !selected.iter().any(|t| t.triple == armv6_e2e::TRIPLE) {
        bail!(
            "--e2e runs the {} agent; add `--target {}` or select no target",
            armv6_e2e::TRIPLE,
            armv6_e2e::TRIPLE
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selecting_nothing_means_everything_in_table_order() {
        let all = select(&[]).unwrap();
        assert_eq!(all.len(), TARGETS.len());
        let some = select(&[
            "arm-unknown-linux-musleabihf".to_owned(),
            "x86_64-unknown-linux-musl".to_owned(),
            "arm-unknown-linux-musleabihf".to_owned(),
        ])
        .unwrap();
        let triples: Vec<&str> = some.iter().map(|t| t.triple).collect();
        assert_eq!(
            triples,
            ["x86_64-unknown-linux-musl", "arm-unknown-linux-musleabihf"]
        );
    }

    #[test]
    fn e2e_needs_the_armv6_target_and_the_runs() {
        let armv6 = select(&[armv6_e2e::TRIPLE.to_owned()]).unwrap();
        let x86 = select(&["x86_64-unknown-linux-musl".to_owned()]).unwrap();
        let e2e = DistOptions {
            e2e: true,
            ..DistOptions::default()
        };
        check_e2e(&e2e, &armv6).unwrap();
        check_e2e(&e2e, &select(&[]).unwrap()).unwrap();
        let err = check_e2e(&e2e, &x86).unwrap_err();
        assert!(format!("{err:#}").contains("--target arm-unknown-linux-musleabihf"));
        let no_run = DistOptions {
            no_run: true,
            ..e2e.clone()
        };
        assert!(check_e2e(&no_run, &armv6).is_err());
        check_e2e(&DistOptions::default(), &x86).unwrap();
    }

    #[test]
    fn the_published_path_is_per_triple() {
        assert_eq!(
            published(Path::new("/r"), armv6_e2e::TRIPLE),
            Path::new("/r/dist/arm-unknown-linux-musleabihf/flotta-agent")
        );
    }

    #[test]
    fn unknown_targets_are_rejected_with_the_known_list() {
        let err = select(&["mips-unknown-linux-musl".to_owned()]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("mips-unknown-linux-musl") && msg.contains("aarch64"),
            "{msg}"
        );
    }
}
