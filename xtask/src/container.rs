//! `cargo xtask container`: the flotta-server image without Docker. The server is built
//! static for musl as `dist` builds the agent (same target table, same C toolchain for the
//! bundled SQLite and ring; the `server-release` profile), checked static and stripped, copied alone into a build
//! context under `target/container/<triple>/`, and `podman build -f
//! deploy/container/Containerfile` makes `flotta-server:<version>` (`FROM scratch`, user
//! 65532) from it. `--test` then runs the image (`container_test`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::checks;
use crate::container_test;
use crate::dist;
use crate::process;
use crate::targets::{self, Target};
use crate::toolchain::{BuildOptions, SERVER_PACKAGE, SERVER_PROFILE};

/// The workspace's version, which flotta-server shares (`version.workspace = true`).
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Containerfile, relative to the repository root.
pub(crate) const CONTAINERFILE: &str = "deploy/container/Containerfile";

/// podman's settings for this machine (runc, cgroupfs, no default ulimits), shared with the
/// tests' private podman; `CONTAINERS_CONF` points at it, /etc/containers is never changed.
pub(crate) const CONTAINERS_CONF: &str = "tests/podman/containers.conf";

/// An architecture the image is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    /// `x86_64-unknown-linux-musl`, `linux/amd64`: tagged `flotta-server:<version>`.
    X86_64,
    /// `aarch64-unknown-linux-musl`, `linux/arm64`: tagged `flotta-server:<version>-aarch64`.
    Aarch64,
}

impl Arch {
    /// `--arch` values.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        match text {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            other => bail!("unknown architecture `{other}`: x86_64 or aarch64"),
        }
    }

    fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    fn platform(self) -> &'static str {
        match self {
            Arch::X86_64 => "linux/amd64",
            Arch::Aarch64 => "linux/arm64",
        }
    }

    /// The image's name and tag.
    pub(crate) fn image(self) -> String {
        match self {
            Arch::X86_64 => format!("localhost/flotta-server:{VERSION}"),
            Arch::Aarch64 => format!("localhost/flotta-server:{VERSION}-aarch64"),
        }
    }
}

/// Options of `cargo xtask container`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContainerOptions {
    /// What to build for.
    pub(crate) arch: Arch,
    /// Run the image afterwards (x86_64 only: it runs natively).
    pub(crate) test: bool,
}

impl Default for ContainerOptions {
    fn default() -> Self {
        Self {
            arch: Arch::X86_64,
            test: false,
        }
    }
}

/// `podman ARGS` with the project's containers.conf.
pub(crate) fn podman(root: &Path) -> Command {
    let mut cmd = Command::new("podman");
    cmd.current_dir(root)
        .env("CONTAINERS_CONF", root.join(CONTAINERS_CONF));
    cmd
}

fn target_of(arch: Arch) -> Result<&'static Target> {
    targets::find(arch.triple()).with_context(|| format!("{} is not in targets.rs", arch.triple()))
}

/// The build context: the binary alone, at its root, as the Containerfile copies it.
fn context(root: &Path, arch: Arch, built: &Path) -> Result<PathBuf> {
    let dir = dist::target_dir(root).join("container").join(arch.triple());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::copy(built, dir.join(SERVER_PACKAGE))
        .with_context(|| format!("copying {} into {}", built.display(), dir.display()))?;
    Ok(dir)
}

/// Build the image (and run it with `--test`).
pub(crate) fn run(root: &Path, opts: ContainerOptions) -> Result<()> {
    if opts.test && opts.arch != Arch::X86_64 {
        bail!("--test runs the image natively: x86_64 only");
    }
    let target = target_of(opts.arch)?;
    let started = Instant::now();
    let built = dist::build(
        target,
        root,
        BuildOptions::default(),
        (SERVER_PACKAGE, SERVER_PROFILE),
    )?;
    let build_time = started.elapsed();
    checks::verify(target, &built)?;
    let bytes = std::fs::metadata(&built)
        .with_context(|| format!("reading {}", built.display()))?
        .len();
    println!(
        "  {} static, stripped, {} ({:.1} MiB, built in {build_time:.1?})",
        built.display(),
        target.file_arch,
        bytes as f64 / 1_048_576.0
    );
    let context = context(root, opts.arch, &built)?;
    let image = opts.arch.image();
    let started = Instant::now();
    let mut cmd = podman(root);
    cmd.args(["build", "--quiet", "--platform", opts.arch.platform(), "-f"])
        .arg(root.join(CONTAINERFILE))
        .args(["-t", &image])
        .arg(&context);
    let id = process::stdout_of(&mut cmd).context("podman build")?;
    println!(
        "  {image} ({}, podman build {:.1?})",
        id.trim().get(..12).unwrap_or(id.trim()),
        started.elapsed()
    );
    if opts.test {
        let started = Instant::now();
        container_test::run(root, &image)?;
        println!("  image checks passed ({:.1?})", started.elapsed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_name_their_target_platform_and_tag() {
        assert_eq!(Arch::parse("amd64").unwrap(), Arch::X86_64);
        assert_eq!(Arch::parse("aarch64").unwrap(), Arch::Aarch64);
        assert!(Arch::parse("armv6").is_err());
        for (arch, cpu, platform) in [
            (Arch::X86_64, "x86_64", "linux/amd64"),
            (Arch::Aarch64, "aarch64", "linux/arm64"),
        ] {
            assert!(target_of(arch).unwrap().triple.starts_with(cpu));
            assert_eq!(arch.platform(), platform);
        }
        assert_eq!(
            Arch::X86_64.image(),
            format!("localhost/flotta-server:{VERSION}")
        );
    }

    #[test]
    fn the_containerfile_runs_the_binary_as_65532_from_scratch() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join(CONTAINERFILE)).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .collect();
        assert_eq!(lines[0], "FROM scratch");
        assert!(lines.contains(&"COPY flotta-server /flotta-server"));
        assert!(lines.contains(&"USER 65532:65532"));
        assert!(lines.contains(&"ENTRYPOINT [\"/flotta-server\"]"));
    }
}
