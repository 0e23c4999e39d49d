//! `.deb` packages of the agent, one per `dist` target (`armhf`: the ARMv6
//! static binary, which runs on Raspberry Pi OS 32-bit; `arm64`; `amd64`),
//! built with Debian's own `dpkg-deb` and checked with `lintian`.
//!
//! A package holds the static binary as `/usr/bin/flotta-agent`, the unit
//! (`agent/systemd/flotta-agent.service`, run from `/usr/bin`), a default
//! configuration `/etc/flotta/agent.toml` (a conffile: an edited one
//! survives upgrades) and `/var/lib/flotta` (0700). Its maintainer scripts
//! are the ones `dh_installsystemd` writes: enabled on first install,
//! started when systemd runs the machine, restarted on upgrade, stopped on
//! removal; a purge removes the state. A configuration the agent refuses
//! makes it exit 78, which the unit does not restart.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::process;

/// The package's name.
const PACKAGE: &str = "flotta-agent";

/// Who the package names as its maintainer: whoever builds it for their
/// fleet sets this.
const MAINTAINER_ENV: &str = "FLOTTA_DEB_MAINTAINER";
const DEFAULT_MAINTAINER: &str = "flotta maintainers <flotta@example.org>";

/// Debian's architecture for a `dist` target.
pub(crate) fn debian_arch(triple: &str) -> Option<&'static str> {
    match triple {
        "x86_64-unknown-linux-musl" => Some("amd64"),
        "aarch64-unknown-linux-musl" => Some("arm64"),
        "arm-unknown-linux-musleabihf" => Some("armhf"),
        _ => None,
    }
}

/// `dist/flotta-agent_VERSION_ARCH.deb`.
pub(crate) fn path(root: &Path, arch: &str) -> PathBuf {
    root.join("dist").join(format!(
        "{PACKAGE}_{}_{arch}.deb",
        env!("CARGO_PKG_VERSION")
    ))
}

/// The default configuration (a conffile).
const DEFAULT_CONFIG: &str = "\
# flotta-agent's configuration (flotta-agent README, \"Configuration\").
# Set server_url and put the enrolment files in place, then:
#   systemctl restart flotta-agent
# Until then the agent runs and queues, and `systemctl status flotta-agent` says
# what its uploads lack. A configuration it refuses stops it (exit status 78)
# until it is mended: the unit does not restart it.
#server_url = \"https://flotta.example.net:8043\"
data_dir = \"/var/lib/flotta\"
ca_cert_path = \"/etc/flotta/ca.pem\"
registration_cert_path = \"/etc/flotta/register.pem\"
registration_key_path = \"/etc/flotta/register.key\"
";

const POSTINST: &str = "#!/bin/sh
set -e
if [ \"$1\" = configure ] || [ \"$1\" = abort-upgrade ] || [ \"$1\" = abort-deconfigure ] || [ \"$1\" = abort-remove ]; then
\t# Only removes masks made by deb-systemd-helper on removal.
\t# The device's identity and queue, and its enrolment key: root's only.
\tchmod 0700 /var/lib/flotta /etc/flotta
\tdeb-systemd-helper unmask 'flotta-agent.service' >/dev/null || true
\t# was-enabled is true on a first install: the unit is enabled.
\tif deb-systemd-helper --quiet was-enabled 'flotta-agent.service'; then
\t\tdeb-systemd-helper enable 'flotta-agent.service' >/dev/null || true
\telse
\t\tdeb-systemd-helper update-state 'flotta-agent.service' >/dev/null || true
\tfi
\tif [ -d /run/systemd/system ]; then
\t\tsystemctl --system daemon-reload >/dev/null || true
\t\tif [ -n \"$2\" ]; then action=restart; else action=start; fi
\t\tdeb-systemd-invoke \"$action\" 'flotta-agent.service' >/dev/null || true
\tfi
fi
";

const PRERM: &str = "#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then
\tdeb-systemd-invoke stop 'flotta-agent.service' >/dev/null || true
fi
";

const POSTRM: &str = "#!/bin/sh
set -e
if [ \"$1\" = remove ] && [ -d /run/systemd/system ]; then
\tsystemctl --system daemon-reload >/dev/null || true
fi
if [ \"$1\" = remove ] && command -v deb-systemd-helper >/dev/null; then
\tdeb-systemd-helper mask 'flotta-agent.service' >/dev/null || true
fi
if [ \"$1\" = purge ]; then
\tif command -v deb-systemd-helper >/dev/null; then
\t\tdeb-systemd-helper purge 'flotta-agent.service' >/dev/null || true
\t\tdeb-systemd-helper unmask 'flotta-agent.service' >/dev/null || true
\tfi
\t# The device's identity, queue and cached configuration.
\trm -rf /var/lib/flotta
fi
";

/// Build the package for `arch` from the static `binary`; its path.
pub(crate) fn build(root: &Path, arch: &str, binary: &Path) -> Result<PathBuf> {
    let stage = root.join("target").join("deb").join(arch);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    let unit = std::fs::read_to_string(root.join("agent/systemd/flotta-agent.service"))
        .context("reading agent/systemd/flotta-agent.service")?;
    let unit = unit
        .replace("/usr/local/bin/flotta-agent", "/usr/bin/flotta-agent")
        .replace(
            "[Unit]\n",
            "[Unit]\nDocumentation=file:/usr/share/doc/flotta-agent/README.md\n",
        );
    let version = env!("CARGO_PKG_VERSION");
    let maintainer =
        std::env::var(MAINTAINER_ENV).unwrap_or_else(|_| DEFAULT_MAINTAINER.to_owned());
    let doc = "usr/share/doc/flotta-agent";
    // The workspace's license (Cargo.toml).
    let copyright = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: flotta\n\nFiles: *\nCopyright: 2026 the flotta authors\nLicense: Apache-2.0\n \
         On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.\n";
    let changelog = format!(
        "flotta-agent ({version}) unstable; urgency=medium\n\n  * Built by cargo xtask dist.\n\n \
         -- {maintainer}  Thu, 01 Jan 1970 00:00:00 +0000\n"
    );
    let readme = std::fs::read(root.join("agent/README.md")).context("agent/README.md")?;
    let files: &[(&str, &[u8], u32)] = &[
        ("usr/bin/flotta-agent", &std::fs::read(binary)?, 0o755),
        (
            "lib/systemd/system/flotta-agent.service",
            unit.as_bytes(),
            0o644,
        ),
        ("etc/flotta/agent.toml", DEFAULT_CONFIG.as_bytes(), 0o644),
        (&format!("{doc}/copyright"), copyright.as_bytes(), 0o644),
        // A native package's changelog is changelog.gz.
        (
            &format!("{doc}/changelog.gz"),
            &gzip(changelog.as_bytes())?,
            0o644,
        ),
        (&format!("{doc}/README.md"), &readme, 0o644),
    ];
    let mut installed = 0u64;
    for (rel, bytes, mode) in files {
        write(&stage.join(rel), bytes, *mode)?;
        installed += bytes.len() as u64;
    }
    let md5sums = process::stdout_of(
        Command::new("md5sum")
            .current_dir(&stage)
            .args(files.iter().map(|(rel, _, _)| *rel)),
    )?;
    // 0700 is set by postinst (lintian wants 0755 in the archive).
    std::fs::create_dir_all(stage.join("var/lib/flotta"))?;
    let control = format!(
        "Package: {PACKAGE}\nVersion: {version}\nArchitecture: {arch}\n\
         Maintainer: {maintainer}\nInstalled-Size: {}\nSection: admin\n\
         Priority: optional\nRecommends: podman\n\
         Homepage: https://project-flotta.io\n\
         Description: edge device agent for flotta (Project Flotta compatible)\n \
         Enrols and registers the device, queues heartbeats, events and logs on\n \
         disk and sends them in batches over TLS, UDP, LoRaWAN or Iridium SBD,\n \
         and runs the device's EdgeWorkloads with podman. A static binary.\n",
        installed.div_ceil(1024)
    );
    let debian = stage.join("DEBIAN");
    write(&debian.join("control"), control.as_bytes(), 0o644)?;
    write(
        &debian.join("conffiles"),
        b"/etc/flotta/agent.toml\n",
        0o644,
    )?;
    write(&debian.join("md5sums"), md5sums.as_bytes(), 0o644)?;
    write(&debian.join("postinst"), POSTINST.as_bytes(), 0o755)?;
    write(&debian.join("prerm"), PRERM.as_bytes(), 0o755)?;
    write(&debian.join("postrm"), POSTRM.as_bytes(), 0o755)?;
    let out = path(root, arch);
    process::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&out),
    )?;
    Ok(out)
}

/// Tags lintian may give, each with why it stays.
pub(crate) const EXPLAINED: &[(&str, &str)] = &[
    (
        "statically-linked-binary",
        "the agent is one static musl binary on purpose: the same file runs on every board",
    ),
    (
        "shared-library-lacks-prerequisites",
        "a static-pie executable is ET_DYN with no DT_NEEDED: lintian takes it for a library",
    ),
    (
        "embedded-library",
        "libyaml: serde_norway carries a Rust translation of libyaml (unsafe-libyaml); a static \
         musl binary cannot link Debian's",
    ),
    (
        "no-manual-page",
        "`flotta-agent --help` and README.md (shipped in /usr/share/doc) document it; no manual \
         page is written yet",
    ),
    (
        "binary-has-unneeded-section",
        "info: the .comment section of the compilers' version strings, a few hundred bytes",
    ),
    (
        "package-supports-alternative-init-but-no-init.d-script",
        "info: the agent runs under any init, but only systemd's unit is shipped (the watchdog \
         and notifications are systemd's)",
    ),
    (
        "spelling-error-in-binary",
        "info: \"preceeding\" is in a dependency's text, not the agent's",
    ),
];

/// `lintian` on `deb`: every tag it gives must be in [`EXPLAINED`].
pub(crate) fn lint(deb: &Path) -> Result<()> {
    let out = process::captured(
        Command::new("lintian")
            .args(["--tag-display-limit", "0", "--display-info"])
            .arg(deb),
    )
    .context("lintian (scripts/setup.sh installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (explained, unexplained) = sort_tags(&text);
    for l in explained {
        println!("  lintian (explained): {l}");
    }
    if !unexplained.is_empty() {
        bail!(
            "lintian on {}:\n{}\n{}",
            deb.display(),
            unexplained.join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The end-to-end test that installs the amd64 package in a Debian 13
/// machine (`tests/tests/agent_systemd_e2e.rs`, ignored in the plain test
/// run because it needs this package): it must have run and passed.
const E2E_TEST: &str = "the_package_installs_enables_and_starts_the_agent";

/// Run [`E2E_TEST`] with `package`.
pub(crate) fn e2e(root: &Path, package: &Path) -> Result<()> {
    let mut cmd = crate::steps::cargo_command(
        root,
        &[
            "test",
            "-p",
            "flotta-e2e",
            "--test",
            "agent_systemd_e2e",
            "--",
            "--exact",
            E2E_TEST,
            "--ignored",
        ],
    );
    cmd.env(
        crate::steps::E2E_BIN_DIR_ENV,
        crate::steps::workspace_bin_dir(root),
    )
    .env("FLOTTA_E2E_DEB", package);
    println!("$ {}", process::describe(&cmd));
    let out = process::captured(&mut cmd)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("test result: ok. 1 passed") {
        bail!(
            "{E2E_TEST} with {} failed (or did not run):\n{stdout}\n{}",
            package.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!("  {E2E_TEST} ok");
    Ok(())
}

/// lintian's tag lines (`E: package: tag [where]`), as (explained,
/// unexplained) by [`EXPLAINED`]; other lines are not tags.
fn sort_tags(text: &str) -> (Vec<&str>, Vec<&str>) {
    text.lines()
        .filter(|l| l.len() > 3 && l.as_bytes()[1] == b':' && "EWIPX".contains(&l[..1]))
        .partition(|l| {
            let tag = l.split_whitespace().nth(2).unwrap_or_default();
            EXPLAINED.iter().any(|(t, _)| *t == tag)
        })
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// `gzip -9n` of `bytes` (no name or time: the package is reproducible).
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .args(["-9n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("gzip")?;
    child.stdin.take().context("stdin")?.write_all(bytes)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("gzip failed");
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_explained_tags_pass() {
        let out = "E: flotta-agent: embedded-library libyaml [usr/bin/flotta-agent]\n\
                   N: a note\n\
                   W: flotta-agent: no-manual-page [usr/bin/flotta-agent]\n\
                   E: flotta-agent: bogus-mail-host Maintainer x@localhost\n\
                   running with root privileges is not recommended!\n";
        let (explained, unexplained) = super::sort_tags(out);
        assert_eq!(explained.len(), 2);
        assert_eq!(
            unexplained,
            ["E: flotta-agent: bogus-mail-host Maintainer x@localhost"]
        );
    }

    #[test]
    fn every_dist_target_has_a_debian_architecture() {
        for t in crate::targets::TARGETS {
            assert!(super::debian_arch(t.triple).is_some(), "{}", t.triple);
        }
        assert_eq!(super::debian_arch("riscv64gc-unknown-linux-musl"), None);
    }
}
