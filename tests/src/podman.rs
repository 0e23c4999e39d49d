//! A private podman for a test: its own storage and state (`--root`,
//! `--runroot`, `--tmpdir` under a temporary directory, so tests running
//! at once never see each other's pods), the repository's `tests/podman/containers.conf`, and a
//! busybox image built locally from Debian's `busybox-static` (no registry
//! is reachable). Torn down (pods removed, then the directory) on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use flotta_agent::workloads::PodmanCli;

/// The test image: busybox from `busybox-static`, `PATH=/bin`.
pub const BUSYBOX_IMAGE: &str = "localhost/busybox:test";
/// Where Debian's `busybox-static` puts busybox.
const BUSYBOX: &str = "/bin/busybox";

/// A private podman (module docs).
pub struct TestPodman {
    dir: tempfile::TempDir,
    /// The agent's podman runner, pointed at this storage.
    pub cli: PodmanCli,
}

impl TestPodman {
    /// Storage under a new temporary directory, with [`BUSYBOX_IMAGE`].
    ///
    /// # Panics
    /// Podman or busybox-static missing (`scripts/setup.sh` installs
    /// them), or the image cannot be made: a test needing podman fails
    /// loudly rather than passing without it.
    #[must_use]
    pub fn start() -> TestPodman {
        let dir = tempfile::tempdir().expect("temporary directory");
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("podman/containers.conf");
        let cli = PodmanCli {
            global_args: vec![
                "--root".into(),
                dir.path().join("root").display().to_string(),
                "--runroot".into(),
                dir.path().join("run").display().to_string(),
                // libpod's own state (its "alive" file, events): shared
                // /run/libpod would make one test's podman think the
                // machine rebooted when another's is torn down.
                "--tmpdir".into(),
                dir.path().join("tmp").display().to_string(),
            ],
            play_args: vec!["--network".into(), "none".into()],
            env: vec![("CONTAINERS_CONF".into(), conf.display().to_string())],
            stop_timeout_seconds: 1,
            timeout: Duration::from_secs(120),
            ..PodmanCli::default()
        };
        let p = TestPodman { dir, cli };
        p.import_busybox();
        p
    }

    /// `podman ARGS` on this storage (panics if it cannot run).
    pub fn podman(&self, args: &[&str]) -> Output {
        Command::new(&self.cli.program)
            .args(&self.cli.global_args)
            .args(args)
            .envs(self.cli.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("podman runs (scripts/setup.sh installs it)")
    }

    /// `podman ARGS`, which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A directory for play files.
    #[must_use]
    pub fn files(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    fn import_busybox(&self) {
        let tar = busybox_rootfs_tar(self.dir.path());
        let args = busybox_import_args(&tar);
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

/// `podman` arguments importing the tarball `tar` ([`busybox_rootfs_tar`])
/// as [`BUSYBOX_IMAGE`].
#[must_use]
pub fn busybox_import_args(tar: &Path) -> Vec<String> {
    ["import", "--quiet", "--change", "ENV PATH=/bin"]
        .into_iter()
        .map(str::to_owned)
        .chain([tar.display().to_string(), BUSYBOX_IMAGE.to_owned()])
        .collect()
}

/// A tarball of a root holding Debian's static busybox and its applets,
/// made in `dir`, for `podman import` ([`busybox_import_args`]).
///
/// # Panics
/// If busybox-static is not installed (`scripts/setup.sh`).
pub fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing: install busybox-static (scripts/setup.sh)"
    );
    let rootfs = dir.join("rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).expect("rootfs directory");
    std::fs::copy(BUSYBOX, bin.join("busybox")).expect("copy of busybox");
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet link");
        }
    }
    let tar = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar of the busybox rootfs");
    tar
}

impl Drop for TestPodman {
    fn drop(&mut self) {
        let _ = self.podman(&["pod", "rm", "--all", "--force", "--time", "0"]);
    }
}
