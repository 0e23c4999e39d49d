//! The podman the reconciler drives, behind a small trait ([`Podman`]) so
//! the reconcile logic is tested against a model (`reconcile.rs`) and the
//! real one ([`PodmanCli`]) is a thin layer over the `podman` command,
//! each call bounded (`command.rs`: a deadline, output up to a limit), a
//! failure carrying podman's own error text for the `Failed` event.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::command::{RunError, run_bounded, shown};
use super::containers::{ContainersError, MAX_PS_BYTES, ObservedContainer, decode_ps};
use super::follow::{Follower, Sink};
use super::plan::{MANAGED_LABEL, ObservedPod, SPEC_HASH_LABEL};
use super::pods::{MAX_POD_PS_BYTES, PodsError, decode_pod_ps};
use super::secrets::{ObservedSecret, decode_inspect, inspect_format};
use super::tail::FileFollower;

/// What the reconciler needs from podman.
pub trait Podman {
    /// Every pod podman knows (ours and others').
    fn pods(&mut self) -> Result<Vec<ObservedPod>, PodmanError>;
    /// `podman kube play` of `file` (a pod and its ConfigMaps), with the
    /// registry credentials in `auth_file` if given.
    fn play(&mut self, file: &Path, auth_file: Option<&Path>) -> Result<(), PodmanError>;
    /// Remove the pod `name` and its containers (stopping them).
    fn remove(&mut self, name: &str) -> Result<(), PodmanError>;
    /// Whether `image` is in local storage.
    fn image_exists(&mut self, image: &str) -> Result<bool, PodmanError>;
    /// The app containers of this agent's pods.
    fn containers(&mut self) -> Result<Vec<ObservedContainer>, PodmanError>;
    /// Start the pod `name`'s containers that do not run.
    fn start(&mut self, name: &str) -> Result<(), PodmanError>;
    /// `podman load` of an image archive: the images it held.
    fn load(&mut self, archive: &Path) -> Result<Vec<String>, PodmanError>;
    /// Every podman secret, with this agent's labels (`secrets.rs`).
    fn secrets(&mut self) -> Result<Vec<ObservedSecret>, PodmanError> {
        Err(unsupported("podman secret inspect"))
    }
    /// Create the secret `name` holding `data`, labelled as this agent's
    /// with `hash`.
    fn create_secret(&mut self, name: &str, data: &[u8], hash: &str) -> Result<(), PodmanError> {
        let _ = (name, data, hash);
        Err(unsupported("podman secret create"))
    }
    /// Remove the secret `name`.
    fn remove_secret(&mut self, name: &str) -> Result<(), PodmanError> {
        let _ = name;
        Err(unsupported("podman secret rm"))
    }
    /// Remove Quadlet units of this agent's for pods not in `desired`
    /// (`quadlet`); (pod, why) for each that could not be. Nothing to do
    /// where the agent plays pods itself.
    fn retire_except(&mut self, desired: &BTreeSet<String>) -> Vec<(String, String)> {
        let _ = desired;
        Vec::new()
    }
    /// Podman's version, `(major, minor)`.
    fn version(&mut self) -> Result<(u32, u32), PodmanError> {
        Err(unsupported("podman version"))
    }
    /// Follow `container`'s log from `since` (all of it when `None`),
    /// each line to `sink`, until the container stops.
    fn follow_logs(
        &mut self,
        container: &str,
        since: Option<&str>,
        sink: Sink,
    ) -> Result<Box<dyn Following>, PodmanError> {
        let _ = (container, since, sink);
        Err(unsupported("podman logs"))
    }
}

fn unsupported(program: &str) -> PodmanError {
    PodmanError::Spawn {
        program: program.into(),
        source: std::io::ErrorKind::Unsupported.into(),
    }
}

/// A log stream being followed ([`Podman::follow_logs`]); dropping it
/// stops it.
pub trait Following: Send {
    /// The stream ended (the container stopped).
    fn is_done(&self) -> bool;
}

impl Following for FileFollower {
    fn is_done(&self) -> bool {
        FileFollower::is_done(self)
    }
}

impl Following for Follower {
    fn is_done(&self) -> bool {
        Follower::is_done(self)
    }
}

/// A podman call that failed.
#[derive(Debug, thiserror::Error)]
pub enum PodmanError {
    /// The command could not be started (not installed?).
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran past its deadline and was killed.
    #[error("podman {args} did not finish within {timeout:?}")]
    Timeout {
        /// Its arguments.
        args: String,
        /// The deadline.
        timeout: Duration,
    },
    /// It exited unsuccessfully: podman's message.
    #[error("podman {args} failed ({status}): {stderr}")]
    Failed {
        /// Its arguments.
        args: String,
        /// Its exit status, as shown.
        status: String,
        /// Its exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// The end of its standard error.
        stderr: String,
    },
    /// A workload's Quadlet unit could not be written, started or stopped.
    #[error("{unit}: {why}")]
    Unit {
        /// The service.
        unit: String,
        /// Why (podman's error from the unit's journal, or systemd's).
        why: String,
    },
    /// `pod ps` printed what could not be read.
    #[error(transparent)]
    Pods(#[from] PodsError),
    /// `ps` printed what could not be read.
    #[error(transparent)]
    Containers(#[from] ContainersError),
}

impl PodmanError {
    /// Whether the same call may succeed later (a busy or wedged podman may
    /// recover; a refused manifest or a missing podman will not).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Spawn { .. } | Self::Failed { .. } | Self::Unit { .. } => false,
            Self::Timeout { .. } => true,
            Self::Pods(e) => e.is_retriable(),
            Self::Containers(e) => e.is_retriable(),
        }
    }
}

/// The `podman` command.
#[derive(Debug, Clone)]
pub struct PodmanCli {
    /// The program (`podman`, or a path).
    pub program: PathBuf,
    /// Arguments before every command (e.g. `--root DIR --runroot DIR`).
    pub global_args: Vec<String>,
    /// Extra `kube play` arguments (e.g. `--network none`).
    pub play_args: Vec<String>,
    /// Environment for podman (e.g. `CONTAINERS_CONF`).
    pub env: Vec<(String, String)>,
    /// Seconds a removed pod's containers get to stop before SIGKILL.
    pub stop_timeout_seconds: u32,
    /// Deadline of one call.
    pub timeout: Duration,
    /// Size at which conmon starts a container's log file anew (the
    /// `k8s-file` driver's `max-size`); 0: podman's default (no limit).
    pub log_max_bytes: u64,
}

impl Default for PodmanCli {
    fn default() -> Self {
        Self {
            program: "podman".into(),
            global_args: Vec::new(),
            play_args: Vec::new(),
            env: Vec::new(),
            stop_timeout_seconds: 10,
            timeout: Duration::from_secs(300),
            log_max_bytes: 0,
        }
    }
}

impl PodmanCli {
    /// Run `podman args…`; its standard output (up to `max_out` bytes) on
    /// success.
    fn run(&self, args: &[&str], max_out: usize) -> Result<Vec<u8>, PodmanError> {
        self.run_with_input(args, None, max_out)
    }

    /// [`Self::run`] with `input` on podman's standard input (else none).
    fn run_with_input(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
        max_out: usize,
    ) -> Result<Vec<u8>, PodmanError> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.global_args)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        run_bounded(&mut command, input, max_out, self.timeout).map_err(|e| match e {
            RunError::Spawn(source) => PodmanError::Spawn {
                program: self.program.display().to_string(),
                source,
            },
            RunError::Timeout => PodmanError::Timeout {
                args: shown(args),
                timeout: self.timeout,
            },
            RunError::Failed { status, stderr } => PodmanError::Failed {
                args: shown(args),
                status: status.to_string(),
                code: status.code(),
                stderr,
            },
        })
    }
}

impl PodmanCli {
    /// `podman pull` of `image` with the registry credentials `auth` (and
    /// the `--tls-verify` of the play arguments, if any).
    pub fn pull(&mut self, image: &str, auth: &Path) -> Result<(), PodmanError> {
        let auth = auth.to_string_lossy();
        let mut args = vec!["pull", "--quiet", "--authfile", &auth];
        args.extend(
            self.play_args
                .iter()
                .map(String::as_str)
                .filter(|a| a.starts_with("--tls-verify")),
        );
        args.push(image);
        self.run(&args, 64 << 10).map(drop)
    }
}

impl Podman for PodmanCli {
    fn pods(&mut self) -> Result<Vec<ObservedPod>, PodmanError> {
        let out = self.run(&["pod", "ps", "--format", "json"], MAX_POD_PS_BYTES)?;
        Ok(decode_pod_ps(&out)?)
    }

    fn play(&mut self, file: &Path, auth_file: Option<&Path>) -> Result<(), PodmanError> {
        let file = file.to_string_lossy();
        let auth = auth_file.map(|a| a.to_string_lossy());
        // Logs to a file the agent reads (`tail.rs`), bounded on flash.
        let max_size = format!("max-size={}", self.log_max_bytes);
        let mut args = vec!["kube", "play", "--log-driver", "k8s-file"];
        if self.log_max_bytes > 0 {
            args.extend(["--log-opt", &max_size]);
        }
        args.extend(self.play_args.iter().map(String::as_str));
        if let Some(auth) = &auth {
            args.extend(["--authfile", auth]);
        }
        args.push(&file);
        self.run(&args, 64 << 10).map(drop)
    }

    fn secrets(&mut self) -> Result<Vec<ObservedSecret>, PodmanError> {
        let out = self.run(
            &["secret", "ls", "--noheading", "--format", "{{.Name}}"],
            MAX_SECRET_LIST_BYTES,
        )?;
        let text = String::from_utf8_lossy(&out);
        let names: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let format = inspect_format();
        let mut args = vec!["secret", "inspect", "--format", &format];
        args.extend(names);
        let out = self.run(&args, MAX_SECRET_LIST_BYTES)?;
        Ok(decode_inspect(&String::from_utf8_lossy(&out)))
    }

    fn create_secret(&mut self, name: &str, data: &[u8], hash: &str) -> Result<(), PodmanError> {
        let managed = format!("{MANAGED_LABEL}=true");
        let hash = format!("{SPEC_HASH_LABEL}={hash}");
        let args = [
            "secret", "create", "--label", &managed, "--label", &hash, name, "-",
        ];
        self.run_with_input(&args, Some(data), 4 << 10).map(drop)
    }

    fn remove_secret(&mut self, name: &str) -> Result<(), PodmanError> {
        self.run(&["secret", "rm", name], 4 << 10).map(drop)
    }

    fn version(&mut self) -> Result<(u32, u32), PodmanError> {
        let out = self.run(&["version", "--format", "{{.Client.Version}}"], 4 << 10)?;
        let text = String::from_utf8_lossy(&out);
        parse_version(&text).ok_or_else(|| PodmanError::Failed {
            args: "version".into(),
            status: "unreadable output".into(),
            code: None,
            stderr: text.trim().to_owned(),
        })
    }

    fn remove(&mut self, name: &str) -> Result<(), PodmanError> {
        let time = self.stop_timeout_seconds.to_string();
        self.run(
            &["pod", "rm", "--force", "--ignore", "--time", &time, name],
            64 << 10,
        )
        .map(drop)
    }

    fn image_exists(&mut self, image: &str) -> Result<bool, PodmanError> {
        match self.run(&["image", "exists", image], 0) {
            Ok(_) => Ok(true),
            Err(PodmanError::Failed { code: Some(1), .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn containers(&mut self) -> Result<Vec<ObservedContainer>, PodmanError> {
        let filter = format!("label={MANAGED_LABEL}=true");
        let args = [
            "ps", "--all", "--pod", "--format", "json", "--filter", &filter,
        ];
        let out = self.run(&args, MAX_PS_BYTES)?;
        Ok(decode_ps(&out)?)
    }

    fn start(&mut self, name: &str) -> Result<(), PodmanError> {
        self.run(&["pod", "start", name], 64 << 10).map(drop)
    }

    fn load(&mut self, archive: &Path) -> Result<Vec<String>, PodmanError> {
        let archive = archive.to_string_lossy();
        let out = self.run(&["load", "--input", &archive], 64 << 10)?;
        Ok(loaded_images(&String::from_utf8_lossy(&out)))
    }

    fn follow_logs(
        &mut self,
        container: &str,
        since: Option<&str>,
        sink: Sink,
    ) -> Result<Box<dyn Following>, PodmanError> {
        let spawn = |source| PodmanError::Spawn {
            program: self.program.display().to_string(),
            source,
        };
        let format = "{{.HostConfig.LogConfig.Type}}\t{{.HostConfig.LogConfig.Path}}";
        let out = self.run(
            &["container", "inspect", "--format", format, container],
            64 << 10,
        )?;
        let text = String::from_utf8_lossy(&out);
        if let Some(("k8s-file", path)) = text.trim_end().split_once('\t') {
            // The file itself: no podman process while the container runs.
            return FileFollower::start(Path::new(path), container, sink)
                .map(|f| Box::new(f) as Box<dyn Following>)
                .map_err(spawn);
        }
        // Another log driver (a pod made before, or by hand): podman reads it.
        Follower::start(self, container, since, sink)
            .map(|f| Box::new(f) as Box<dyn Following>)
            .map_err(spawn)
    }
}

/// Most bytes read from `podman secret ls` or `inspect`.
const MAX_SECRET_LIST_BYTES: usize = 1 << 20;

/// `4.3.1` → `(4, 3)`; `5.4.2-dev` → `(5, 4)`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The images `podman load` printed (`Loaded image: NAME` lines, one per
/// image; `Loaded image(s): A,B` in some versions).
pub fn loaded_images(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Loaded image: ")
                .or_else(|| l.strip_prefix("Loaded image(s): "))
        })
        .flat_map(|names| names.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_as_podman_prints_them() {
        assert_eq!(super::parse_version("4.3.1\n"), Some((4, 3)));
        assert_eq!(super::parse_version("5.4.2-dev"), Some((5, 4)));
        assert_eq!(super::parse_version("4"), None);
        assert_eq!(super::parse_version("four.three"), None);
    }

    #[test]
    fn loaded_images_as_podman_prints_them() {
        let out = "Loaded image: localhost/bbload:1\nLoaded image: localhost/bbload:2\n";
        assert_eq!(
            super::loaded_images(out),
            ["localhost/bbload:1", "localhost/bbload:2"]
        );
        assert_eq!(
            super::loaded_images("Loaded image(s): a:1, b:2\n"),
            ["a:1", "b:2"]
        );
        assert!(super::loaded_images("Getting image source signatures\n").is_empty());
    }
}
