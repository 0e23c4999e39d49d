//! The `[workloads]` table of the agent's configuration: how the agent
//! runs podman, when it may pull images, and how it restarts workloads;
//! with `FLOTTA_AGENT_WORKLOADS_<KEY>` environment overrides (lists
//! whitespace-separated, `pull_on_link_profiles` comma-separated). Units
//! are in the key names; unknown keys are rejected.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::podman::PodmanCli;
use crate::config::ConfigError;

/// The `[workloads]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadsConfig {
    /// Run the configuration's workloads. Off: the agent never calls
    /// podman and reports no workloads.
    pub enabled: bool,
    /// The podman program.
    pub podman_path: PathBuf,
    /// Arguments before every podman command (e.g. `--root DIR`).
    pub podman_args: Vec<String>,
    /// Extra `podman kube play` arguments (e.g. `--network none`).
    pub play_args: Vec<String>,
    /// Link profiles on which images may be pulled from a registry; on
    /// any other, a missing image is reported, never fetched over the
    /// radio.
    pub pull_on_link_profiles: Vec<String>,
    /// Image archives loaded with `podman load` at start (empty:
    /// `<data_dir>/images`).
    pub images_dir: PathBuf,
    /// Seconds a removed workload's containers get to stop.
    pub stop_timeout_seconds: u32,
    /// Deadline of one podman command.
    pub command_timeout_seconds: u64,
    /// Seconds between two looks at podman when the configuration does not
    /// set `workloads_monitoring_interval` (and no podman event came).
    pub monitoring_interval_seconds: u64,
    /// First delay before a stopped or crashed workload is started again
    /// (or a failed deployment retried); doubles at each further try.
    pub restart_backoff_initial_seconds: u64,
    /// Longest such delay.
    pub restart_backoff_max_seconds: u64,
    /// A workload that ran this long without stopping starts again from
    /// the first back-off delay.
    pub restart_backoff_reset_seconds: u64,
    /// Log lines per second taken from one workload (with a workload
    /// naming a `logCollection` receiver); the rest is counted, reported
    /// and dropped.
    pub log_lines_per_second: u32,
    /// Bytes of log lines per day taken from one workload.
    pub log_bytes_per_day: u64,
    /// Size at which a container's log file on the device is started anew
    /// (podman's `k8s-file` `max-size`; what the agent took is kept).
    pub container_log_max_bytes: u64,
    /// Deploy workloads as Quadlet `.kube` units where podman ≥ 4.4 and
    /// systemd run the machine, so systemd starts them at boot
    /// (`quadlet/`); off: the agent plays them itself.
    pub quadlet: bool,
    /// Where the units go (systemd's Quadlet directory for system units).
    pub quadlet_units_dir: PathBuf,
    /// The `systemctl` program.
    pub systemctl_path: PathBuf,
    /// The `journalctl` program.
    pub journalctl_path: PathBuf,
}

impl Default for WorkloadsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            podman_path: "podman".into(),
            podman_args: Vec::new(),
            play_args: Vec::new(),
            pull_on_link_profiles: vec!["ethernet".into(), "wifi".into()],
            images_dir: PathBuf::new(),
            stop_timeout_seconds: 10,
            command_timeout_seconds: 300,
            monitoring_interval_seconds: 60,
            restart_backoff_initial_seconds: 10,
            restart_backoff_max_seconds: 300,
            restart_backoff_reset_seconds: 600,
            log_lines_per_second: 5,
            log_bytes_per_day: 1 << 20,
            container_log_max_bytes: 1 << 20,
            quadlet: true,
            quadlet_units_dir: super::quadlet::DEFAULT_UNITS_DIR.into(),
            systemctl_path: "systemctl".into(),
            journalctl_path: "journalctl".into(),
        }
    }
}

/// Keys settable from the environment: (key, kind).
const ENV_KEYS: &[(&str, EnvKind)] = &[
    ("enabled", EnvKind::Bool),
    ("podman_path", EnvKind::Text),
    ("podman_args", EnvKind::Words),
    ("play_args", EnvKind::Words),
    ("pull_on_link_profiles", EnvKind::Commas),
    ("images_dir", EnvKind::Text),
    ("stop_timeout_seconds", EnvKind::Integer),
    ("command_timeout_seconds", EnvKind::Integer),
    ("monitoring_interval_seconds", EnvKind::Integer),
    ("restart_backoff_initial_seconds", EnvKind::Integer),
    ("restart_backoff_max_seconds", EnvKind::Integer),
    ("restart_backoff_reset_seconds", EnvKind::Integer),
    ("log_lines_per_second", EnvKind::Integer),
    ("log_bytes_per_day", EnvKind::Integer),
    ("container_log_max_bytes", EnvKind::Integer),
    ("quadlet", EnvKind::Bool),
    ("quadlet_units_dir", EnvKind::Text),
    ("systemctl_path", EnvKind::Text),
    ("journalctl_path", EnvKind::Text),
];

#[derive(Clone, Copy)]
enum EnvKind {
    Bool,
    Text,
    Words,
    Commas,
    Integer,
}

/// Put `FLOTTA_AGENT_WORKLOADS_<KEY>` values into the `[workloads]` table
/// of `table`.
pub(crate) fn apply_env(
    table: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (key, kind) in ENV_KEYS {
        let var = format!("FLOTTA_AGENT_WORKLOADS_{}", key.to_ascii_uppercase());
        let Some(text) = env(&var) else { continue };
        let bad = |why: &str| ConfigError::Parse {
            path: "environment".into(),
            message: format!("{var}: {why}"),
        };
        let list = |items: Vec<&str>| {
            toml::Value::Array(
                items
                    .into_iter()
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            )
        };
        let value = match kind {
            EnvKind::Bool => match text.trim() {
                "true" | "1" | "on" => toml::Value::Boolean(true),
                "false" | "0" | "off" => toml::Value::Boolean(false),
                _ => return Err(bad("expected true or false")),
            },
            EnvKind::Text => toml::Value::String(text),
            EnvKind::Words => list(text.split_whitespace().collect()),
            EnvKind::Commas => list(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            EnvKind::Integer => toml::Value::Integer(
                text.trim()
                    .parse()
                    .map_err(|e: std::num::ParseIntError| bad(&e.to_string()))?,
            ),
        };
        let section = table
            .entry("workloads")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(section) = section else {
            return Err(bad("[workloads] is not a table"));
        };
        section.insert((*key).into(), value);
    }
    Ok(())
}

impl WorkloadsConfig {
    /// Refuse values that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("workloads.{m}")));
        if self.podman_path.as_os_str().is_empty() {
            return bad("podman_path must not be empty");
        }
        if self.quadlet && !self.quadlet_units_dir.is_absolute() {
            return bad("quadlet_units_dir must be an absolute path");
        }
        if self.command_timeout_seconds == 0 {
            return bad("command_timeout_seconds must be positive");
        }
        if self.monitoring_interval_seconds == 0 {
            return bad("monitoring_interval_seconds must be positive");
        }
        if self.restart_backoff_initial_seconds == 0
            || self.restart_backoff_max_seconds < self.restart_backoff_initial_seconds
        {
            return bad(
                "restart_backoff_initial_seconds must be positive and at most restart_backoff_max_seconds",
            );
        }
        if self.log_lines_per_second == 0 || self.log_bytes_per_day == 0 {
            return bad("log_lines_per_second and log_bytes_per_day must be positive");
        }
        for p in &self.pull_on_link_profiles {
            if crate::link::LinkProfile::preset(p).is_none() {
                return bad(&format!(
                    "pull_on_link_profiles: unknown link profile {p:?}"
                ));
            }
        }
        Ok(())
    }

    /// Whether images may be pulled on the link profile `profile`.
    pub fn pulls_allowed(&self, profile: &str) -> bool {
        self.pull_on_link_profiles.iter().any(|p| p == profile)
    }

    /// The podman command these settings describe.
    pub fn podman(&self) -> PodmanCli {
        PodmanCli {
            program: self.podman_path.clone(),
            global_args: self.podman_args.clone(),
            play_args: self.play_args.clone(),
            env: Vec::new(),
            stop_timeout_seconds: self.stop_timeout_seconds,
            timeout: Duration::from_secs(self.command_timeout_seconds),
            log_max_bytes: self.container_log_max_bytes,
        }
    }

    /// The systemd commands these settings describe.
    pub fn systemctl(&self) -> super::quadlet::Systemctl {
        super::quadlet::Systemctl {
            systemctl: self.systemctl_path.clone(),
            journalctl: self.journalctl_path.clone(),
            // Past the units' TimeoutStartSec (the podman deadline), so that
            // systemd's own verdict on a slow start is what is reported.
            timeout: Duration::from_secs(self.command_timeout_seconds + 30),
        }
    }

    /// Where image archives are looked for.
    pub fn images_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        if self.images_dir.as_os_str().is_empty() {
            data_dir.join("images")
        } else {
            self.images_dir.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;

    #[test]
    fn toml_then_env_and_bad_values_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "[workloads]\nplay_args = [\"--network\", \"none\"]\nstop_timeout_seconds = 3\n",
        )
        .unwrap();
        let cfg = AgentConfig::load(Some(&file), |k| match k {
            "FLOTTA_AGENT_WORKLOADS_PODMAN_ARGS" => Some("--root /r  --runroot /rr".into()),
            "FLOTTA_AGENT_WORKLOADS_PULL_ON_LINK_PROFILES" => Some("ethernet, nb-iot".into()),
            "FLOTTA_AGENT_WORKLOADS_ENABLED" => Some("off".into()),
            "FLOTTA_AGENT_WORKLOADS_QUADLET" => Some("false".into()),
            _ => None,
        })
        .unwrap();
        let w = &cfg.workloads;
        assert_eq!(w.play_args, ["--network", "none"]);
        assert_eq!(w.podman_args, ["--root", "/r", "--runroot", "/rr"]);
        assert_eq!(w.stop_timeout_seconds, 3);
        assert!(!w.enabled && !w.quadlet);
        assert!(w.pulls_allowed("nb-iot") && !w.pulls_allowed("satellite"));
        assert_eq!(w.images_dir(dir.path()), dir.path().join("images"));

        std::fs::write(&file, "[workloads]\nrestart_back_off = 3\n").unwrap();
        let err = AgentConfig::load(Some(&file), |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("restart_back_off"), "{err}");
        std::fs::write(&file, "[workloads]\npull_on_link_profiles = [\"pigeon\"]\n").unwrap();
        let err = AgentConfig::load(Some(&file), |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pigeon"), "{err}");
        std::fs::write(&file, "[workloads]\nquadlet_units_dir = \"units\"\n").unwrap();
        let err = AgentConfig::load(Some(&file), |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("quadlet_units_dir"), "{err}");
        let err = AgentConfig::load(None, |k| {
            (k == "FLOTTA_AGENT_WORKLOADS_STOP_TIMEOUT_SECONDS").then(|| "ten".into())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("STOP_TIMEOUT_SECONDS"), "{err}");
    }

    #[test]
    fn defaults_pull_only_on_wide_links() {
        let w = WorkloadsConfig::default();
        w.validate().unwrap();
        assert!(w.pulls_allowed("ethernet") && w.pulls_allowed("wifi"));
        for narrow in ["nb-iot", "satellite", "lora"] {
            assert!(!w.pulls_allowed(narrow), "{narrow}");
        }
    }
}
