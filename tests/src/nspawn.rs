//! A Debian 13 machine booted with `systemd-nspawn`: systemd 257 as its
//! PID 1 and podman 5 with Quadlet, for the tests of what only such a
//! machine does (workloads started by systemd at boot). Its root is a
//! fresh copy of the tarball `scripts/trixie-rootfs.sh` builds into
//! `~/.cache/flotta/nspawn` (`scripts/setup.sh` runs it); it shares the
//! host's network (the server is on `localhost`) and sees the host
//! directories it is given at the same paths.
//!
//! What this host needs, measured (cgroup v1 with a v2 hierarchy beside it,
//! no systemd on the host):
//! - `SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1`: systemd 257 refuses cgroup v1;
//!   the machine gets the v2 hierarchy (no controllers in it, so podman is
//!   told `pids_limit = 0`);
//! - `--register=no --keep-unit`: there is no machined to register with;
//! - `--capability=all` and the `@keyring @mount @privileged bpf` system
//!   calls: runc inside needs them; `keyring = false` all the same (a
//!   session keyring is refused);
//! - `tmp.mount` and `tmp.conf` masked, so the bound directories under
//!   `/tmp` stay seen and are never cleaned.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/trixie-rootfs.sh` links the current root tarball.
pub fn rootfs_tar() -> PathBuf {
    if let Some(p) = std::env::var_os("FLOTTA_TRIXIE_ROOTFS") {
        return p.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".cache/flotta/nspawn/trixie-podman.tar")
}

/// podman's settings in the machine (module docs).
const CONTAINERS_CONF: &str = "[containers]\nkeyring = false\ndefault_ulimits = []\n\
     pids_limit = 0\n[engine]\nruntime = \"runc\"\n";

/// A booted machine; powered off and removed when dropped.
pub struct Machine {
    dir: tempfile::TempDir,
    name: String,
    binds: Vec<PathBuf>,
    nspawn: Option<Child>,
}

impl Machine {
    /// Boot a fresh copy of the root, with the host directories `binds`
    /// seen at the same paths.
    ///
    /// # Panics
    /// If the root tarball is missing (run `scripts/setup.sh`) or the machine
    /// does not boot within a minute.
    pub fn boot(binds: &[&Path]) -> Machine {
        let tar = rootfs_tar();
        assert!(
            tar.exists(),
            "{} missing: run scripts/setup.sh (scripts/trixie-rootfs.sh builds it)",
            tar.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("flotta-nspawn")
            .tempdir_in("/var/tmp")
            .expect("machine directory");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("root directory");
        run_ok(
            Command::new("tar")
                .arg("-xf")
                .arg(&tar)
                .arg("-C")
                .arg(&root),
        );
        std::fs::write(root.join("etc/containers/containers.conf"), CONTAINERS_CONF)
            .expect("containers.conf");
        // The host directories bound under /tmp stay seen, and are never
        // cleaned by the machine's systemd-tmpfiles.
        std::os::unix::fs::symlink("/dev/null", root.join("etc/systemd/system/tmp.mount"))
            .expect("tmp.mount masked");
        std::fs::create_dir_all(root.join("etc/tmpfiles.d")).expect("tmpfiles.d");
        std::os::unix::fs::symlink("/dev/null", root.join("etc/tmpfiles.d/tmp.conf"))
            .expect("tmp.conf masked");
        let name = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().replace(['.', '_'], "-"))
            .unwrap_or_default();
        let mut m = Machine {
            dir,
            name,
            binds: binds.iter().map(|p| p.to_path_buf()).collect(),
            nspawn: None,
        };
        m.start();
        m
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Boot (again) and wait until systemd says the boot is done.
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("console.log"))
            .expect("console log");
        let mut c = Command::new("systemd-nspawn");
        c.env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .args(["--quiet", "--register=no", "--keep-unit", "--boot"])
            .args([
                "--capability=all",
                "--system-call-filter=@keyring @mount @privileged bpf",
            ])
            .arg(format!("--machine={}", self.name))
            .arg("--console=pipe")
            .arg("-D")
            .arg(self.root());
        for b in &self.binds {
            c.arg(format!("--bind={}", b.display()));
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn runs (scripts/setup.sh installs systemd-container)");
        self.nspawn = Some(child);
        let began = Instant::now();
        loop {
            if let Some(status) = self
                .nspawn
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the machine stopped while booting ({status}):\n{}",
                    self.console()
                );
            }
            if self.leader().is_some() {
                let out = self.exec(&["systemctl", "is-system-running", "--wait"]);
                let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                if state == "running" || state == "degraded" {
                    return;
                }
            }
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "the machine did not boot within a minute:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The machine's PID 1, as the host sees it.
    fn leader(&self) -> Option<u32> {
        leader_of(self.nspawn.as_ref()?.id())
    }

    /// Import the busybox image ([`crate::podman::BUSYBOX_IMAGE`]) into the
    /// machine's podman, its tarball made in the host directory `scratch`.
    pub fn import_busybox(&self, scratch: &Path) {
        let tar = crate::podman::busybox_rootfs_tar(scratch);
        std::fs::copy(&tar, self.path(Path::new("/root/busybox.tar"))).expect("tarball copied");
        let import = crate::podman::busybox_import_args(Path::new("/root/busybox.tar"));
        let mut args = vec!["podman"];
        args.extend(import.iter().map(String::as_str));
        self.ok(&args);
    }

    /// Where the machine's `path` is on the host.
    pub fn path(&self, path: &Path) -> PathBuf {
        self.root().join(path.strip_prefix("/").unwrap_or(path))
    }

    /// What the machine printed on its console.
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    /// Run `args` in the machine (every namespace of its PID 1).
    ///
    /// # Panics
    /// If the machine does not run.
    pub fn exec(&self, args: &[&str]) -> Output {
        let leader = self.leader().expect("the machine runs");
        Command::new("nsenter")
            .arg("--target")
            .arg(leader.to_string())
            .arg("--all")
            .arg("--")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    /// [`Self::exec`] that must succeed: its standard output.
    ///
    /// # Panics
    /// If the command fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} in the machine: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The trimmed standard output of `args` run in the machine, whatever its exit status
    /// ("" when it printed nothing, e.g. for an object that does not exist).
    pub fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(args).stdout)
            .trim()
            .to_owned()
    }

    /// The id of podman pod `name` in the machine ("" when there is none).
    pub fn pod_id(&self, name: &str) -> String {
        self.stdout(&["podman", "pod", "inspect", "--format", "{{.Id}}", name])
    }

    /// `systemctl poweroff`, then boot again.
    pub fn reboot(&mut self) {
        self.power_off();
        self.start();
    }

    fn power_off(&mut self) {
        let Some(mut child) = self.nspawn.take() else {
            return;
        };
        if let Some(leader) = leader_of(child.id()) {
            let _ = Command::new("nsenter")
                .arg("--target")
                .arg(leader.to_string())
                .args(["--all", "--", "systemctl", "poweroff"])
                .stdin(Stdio::null())
                .output();
        }
        let began = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if began.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The first child of the process `pid` (nspawn's: the machine's PID 1).
fn leader_of(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.power_off();
    }
}

fn run_ok(c: &mut Command) {
    let out = c.output().expect("command runs");
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
