//! Agent configuration: compiled-in defaults, then a TOML file, then
//! environment variables (`FLOTTA_AGENT_<KEY>` for top-level keys,
//! `FLOTTA_AGENT_LINKS`, `FLOTTA_AGENT_UDP_<KEY>` and `FLOTTA_AGENT_SBD_<KEY>` for the carriers, see
//! `carrier/config.rs`). Unknown keys are rejected; units are in key names.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::carrier::{LinkKind, LorawanConfig, SbdConfig, UdpConfig};
use crate::governor::GovernorConfig;
use crate::link::LinkProfile;
use crate::queue::QueueConfig;
use crate::workloads::WorkloadsConfig;

/// Everything the agent needs to run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Edge API base URL, e.g. `https://flotta.example:8043`.
    pub server_url: String,
    /// Device id; empty: read from `/etc/machine-id`.
    pub device_id: String,
    /// Namespace to enrol into.
    pub target_namespace: String,
    /// Where the queue, identity and cached configuration live.
    pub data_dir: PathBuf,
    /// CA certificate (PEM) that signed the server's certificate.
    pub ca_cert_path: PathBuf,
    /// Factory registration certificate (PEM, CN=register).
    pub registration_cert_path: PathBuf,
    /// Its private key (PEM).
    pub registration_key_path: PathBuf,
    /// Heartbeat period when the server's configuration does not set one.
    pub heartbeat_period_seconds: u64,
    /// Renew the device certificate when less than this fraction (in percent)
    /// of its lifetime is left.
    pub renew_at_remaining_percent: u8,
    /// Link profile name: `ethernet`, `nb-iot`, `satellite`, `lora`.
    pub link_profile: String,
    /// Events at this level or above open an upload window at once ("send
    /// now"), no sooner than `link.urgent_min_interval_seconds` after the
    /// last one: `error`, `warn`, or `off`.
    pub urgent_event_level: UrgentLevel,
    /// Overrides of the chosen link profile's values.
    pub link: LinkOverrides,
    /// On-disk queue bounds.
    pub queue: QueueConfig,
    /// Carriers a window may use, tried in this order: `tls`, `udp`, `sbd`,
    /// `lorawan` (`wifi` and `ethernet` are aliases of `tls`).
    pub links: Vec<LinkKind>,
    /// Sealed frames over UDP (used when `links` lists `udp`).
    pub udp: UdpConfig,
    /// Sealed frames over Iridium SBD (used when `links` lists `sbd`).
    pub sbd: SbdConfig,
    /// Sealed frames over LoRaWAN (used when `links` lists `lorawan`).
    pub lorawan: LorawanConfig,
    /// The budgets narrow-link carriers keep (`[governor]`: EU868 duty
    /// cycle, TTN fair use, SBD credits per day); env
    /// `FLOTTA_AGENT_GOVERNOR_<KEY>`.
    pub governor: GovernorConfig,
    /// Running the configuration's workloads with podman (`[workloads]`,
    /// `workloads/config.rs`); env `FLOTTA_AGENT_WORKLOADS_<KEY>`.
    pub workloads: WorkloadsConfig,
}

/// Optional overrides of a link profile (the `[link]` table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverrides {
    /// Seconds between upload windows.
    pub upload_interval_seconds: Option<u64>,
    /// Largest batch body.
    pub max_batch_bytes: Option<usize>,
    /// TCP + TLS connect timeout.
    pub connect_timeout_seconds: Option<u64>,
    /// Whole-request timeout.
    pub request_timeout_seconds: Option<u64>,
    /// First retry delay after a failed window.
    pub backoff_initial_seconds: Option<u64>,
    /// Longest retry delay.
    pub backoff_max_seconds: Option<u64>,
    /// Shortest gap before an early window for an urgent event.
    pub urgent_min_interval_seconds: Option<u64>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            server_url: "https://localhost:8043".into(),
            device_id: String::new(),
            target_namespace: "default".into(),
            data_dir: PathBuf::from("/var/lib/flotta"),
            ca_cert_path: PathBuf::from("/etc/flotta/ca.pem"),
            registration_cert_path: PathBuf::from("/etc/flotta/register.pem"),
            registration_key_path: PathBuf::from("/etc/flotta/register.key"),
            heartbeat_period_seconds: 60,
            renew_at_remaining_percent: 33,
            link_profile: "ethernet".into(),
            urgent_event_level: UrgentLevel::Error,
            link: LinkOverrides::default(),
            queue: QueueConfig::default(),
            links: vec![LinkKind::Tls],
            udp: UdpConfig::default(),
            sbd: SbdConfig::default(),
            lorawan: LorawanConfig::default(),
            governor: GovernorConfig::default(),
            workloads: WorkloadsConfig::default(),
        }
    }
}

/// Which events are urgent enough to open an upload window early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UrgentLevel {
    /// None: events wait for the next scheduled window.
    Off,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

impl UrgentLevel {
    /// Whether `payload` asks for a window now.
    pub fn is_urgent(self, payload: &flotta_proto::payload::Payload) -> bool {
        use flotta_proto::payload::{Level, Payload};
        let Payload::Event(e) = payload else {
            return false;
        };
        match self {
            UrgentLevel::Off => false,
            UrgentLevel::Warn => matches!(e.level, Level::Warn | Level::Error),
            UrgentLevel::Error => e.level == Level::Error,
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file (or `environment`).
        path: PathBuf,
        /// What is wrong, with the key.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Keys that may be set from the environment as `FLOTTA_AGENT_<KEY>`.
const ENV_KEYS: &[&str] = &[
    "server_url",
    "device_id",
    "target_namespace",
    "data_dir",
    "ca_cert_path",
    "registration_cert_path",
    "registration_key_path",
    "heartbeat_period_seconds",
    "link_profile",
    "urgent_event_level",
];

impl AgentConfig {
    /// Defaults, then `file` (if given), then the environment from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: path.into(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        for key in ENV_KEYS {
            if let Some(value) = env(&format!("FLOTTA_AGENT_{}", key.to_ascii_uppercase())) {
                let value = match key.ends_with("_seconds") {
                    true => value
                        .parse::<i64>()
                        .map(toml::Value::Integer)
                        .map_err(|e| ConfigError::Parse {
                            path: "environment".into(),
                            message: format!("{key}: {e}"),
                        })?,
                    false => toml::Value::String(value),
                };
                table.insert((*key).into(), value);
            }
        }
        crate::carrier::apply_env(&mut table, &env)?;
        crate::workloads::config::apply_env(&mut table, &env)?;
        let mut cfg: AgentConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: file.map_or_else(|| "environment".into(), Path::to_path_buf),
                    message: e.to_string(),
                })?;
        cfg.governor
            .apply_env("FLOTTA_AGENT_GOVERNOR", &env)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.server_url.starts_with("https://") {
            return Err(ConfigError::Invalid(format!(
                "server_url must be https://, got {:?}",
                self.server_url
            )));
        }
        if self.heartbeat_period_seconds == 0 {
            return Err(ConfigError::Invalid(
                "heartbeat_period_seconds must be positive".into(),
            ));
        }
        if !(1..=90).contains(&self.renew_at_remaining_percent) {
            return Err(ConfigError::Invalid(
                "renew_at_remaining_percent must be 1..=90".into(),
            ));
        }
        self.link()?;
        self.workloads.validate()?;
        crate::carrier::validate(&self.links, &self.udp, &self.sbd, &self.lorawan)?;
        self.queue
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The effective link profile: the named preset with overrides applied.
    pub fn link(&self) -> Result<LinkProfile, ConfigError> {
        let mut p = LinkProfile::preset(&self.link_profile).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "unknown link_profile {:?} (known: ethernet, wifi, nb-iot, satellite, lora)",
                self.link_profile
            ))
        })?;
        let o = &self.link;
        p.upload_interval_seconds = o
            .upload_interval_seconds
            .unwrap_or(p.upload_interval_seconds);
        p.max_batch_bytes = o.max_batch_bytes.unwrap_or(p.max_batch_bytes);
        p.connect_timeout_seconds = o
            .connect_timeout_seconds
            .unwrap_or(p.connect_timeout_seconds);
        p.request_timeout_seconds = o
            .request_timeout_seconds
            .unwrap_or(p.request_timeout_seconds);
        p.backoff_initial_seconds = o
            .backoff_initial_seconds
            .unwrap_or(p.backoff_initial_seconds);
        p.backoff_max_seconds = o.backoff_max_seconds.unwrap_or(p.backoff_max_seconds);
        p.urgent_min_interval_seconds = o
            .urgent_min_interval_seconds
            .unwrap_or(p.urgent_min_interval_seconds);
        if p.max_batch_bytes < 1024 || p.max_batch_bytes > flotta_proto::batch::MAX_BATCH_BYTES {
            return Err(ConfigError::Invalid(format!(
                "link.max_batch_bytes must be 1024..={}",
                flotta_proto::batch::MAX_BATCH_BYTES
            )));
        }
        Ok(p)
    }

    /// The device id: configured, or `/etc/machine-id`.
    pub fn device_id(&self) -> Result<String, ConfigError> {
        if !self.device_id.is_empty() {
            return Ok(self.device_id.clone());
        }
        let path = Path::new("/etc/machine-id");
        let id = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let id = id.trim().to_ascii_lowercase();
        if id.is_empty() {
            return Err(ConfigError::Invalid(
                "/etc/machine-id is empty; set device_id".into(),
            ));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_then_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "server_url = \"https://a:1\"\nheartbeat_period_seconds = 30\nlink_profile = \"satellite\"\n[link]\nmax_batch_bytes = 4096\n[queue]\nmax_total_bytes = 8388608\n",
        )
        .unwrap();
        let cfg = AgentConfig::load(Some(&file), |k| {
            (k == "FLOTTA_AGENT_HEARTBEAT_PERIOD_SECONDS").then(|| "15".to_string())
        })
        .unwrap();
        assert_eq!(cfg.server_url, "https://a:1");
        assert_eq!(cfg.heartbeat_period_seconds, 15);
        assert_eq!(cfg.queue.max_total_bytes, 8 << 20);
        assert_eq!(
            cfg.queue.segment_bytes,
            QueueConfig::default().segment_bytes
        );
        let link = cfg.link().unwrap();
        assert_eq!(link.max_batch_bytes, 4096);
        assert_eq!(
            link,
            LinkProfile {
                max_batch_bytes: 4096,
                ..LinkProfile::preset("satellite").unwrap()
            }
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, "heartbeat_period = 30\n").unwrap();
        let err = AgentConfig::load(Some(&file), no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("heartbeat_period"), "{err}");
        std::fs::write(&file, "[queue]\nsegment_size = 1\n").unwrap();
        let err = AgentConfig::load(Some(&file), no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment_size"), "{err}");
        let err = AgentConfig::load(None, |k| {
            (k == "FLOTTA_AGENT_HEARTBEAT_PERIOD_SECONDS").then(|| "soon".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("heartbeat_period_seconds"), "{err}");
        let err = AgentConfig::load(None, |k| {
            (k == "FLOTTA_AGENT_LINK_PROFILE").then(|| "smoke-signals".into())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("smoke-signals"), "{err}");
    }

    #[test]
    fn urgent_event_level_parses_and_selects_events() {
        use flotta_proto::payload::{Event, Level, LogLine, Payload};
        let ev = |level| {
            Payload::Event(Event {
                reason: "R".into(),
                message: String::new(),
                level,
            })
        };
        let log = Payload::Log(LogLine {
            source: "a".into(),
            level: Level::Error,
            message: String::new(),
        });
        let cfg = AgentConfig::load(None, no_env).unwrap();
        assert_eq!(cfg.urgent_event_level, UrgentLevel::Error);
        assert!(cfg.urgent_event_level.is_urgent(&ev(Level::Error)));
        assert!(!cfg.urgent_event_level.is_urgent(&ev(Level::Warn)));
        assert!(!cfg.urgent_event_level.is_urgent(&log), "logs wait");
        let warn = AgentConfig::load(None, |k| {
            (k == "FLOTTA_AGENT_URGENT_EVENT_LEVEL").then(|| "warn".into())
        })
        .unwrap();
        assert!(warn.urgent_event_level.is_urgent(&ev(Level::Warn)));
        assert!(!warn.urgent_event_level.is_urgent(&ev(Level::Info)));
        assert!(!UrgentLevel::Off.is_urgent(&ev(Level::Error)));
        let err = AgentConfig::load(None, |k| {
            (k == "FLOTTA_AGENT_URGENT_EVENT_LEVEL").then(|| "panic".into())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("panic"), "{err}");
    }
}
