//! Server configuration: compiled-in defaults, then a TOML file, then
//! `FLOTTA_SERVER_*` environment variables. Unknown keys are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::device_id::Namespace;
use crate::lorawan::downlink::ChirpstackProtocol;

mod admin;
mod frames;
mod kubernetes;
mod listeners;
mod lorawan;
mod pki;
mod retention;
mod rock7;
mod store;

pub use admin::{AdminToken, MAX_ADMIN_NAME_BYTES, is_loopback, valid_admin_name};
pub use kubernetes::{KubernetesSettings, ObjectsBackend};
pub use rock7::{DEFAULT_MT_URL, MAX_MT_BYTES};
pub use store::StoreBackend;

/// Prefix of environment variables overriding configuration keys
/// (`FLOTTA_SERVER_LISTEN_ADDR` sets `listen_addr`).
pub const ENV_PREFIX: &str = "FLOTTA_SERVER_";

const DAY_SECONDS: u64 = 86_400;
const MAX_VALIDITY_SECONDS: u64 = 100 * 365 * DAY_SECONDS;

/// Invalid configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, a variable or a value could not be read or parsed.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value parsed but is not acceptable.
    #[error("configuration: {key}: {reason}")]
    Invalid {
        /// The offending key.
        key: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

/// Everything the server can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the mTLS Edge API listener.
    pub listen_addr: SocketAddr,
    /// Address of the admin listener (object API, console, `/healthz`,
    /// `/readyz`, `/metrics`). Off loopback it needs credentials and speaks
    /// TLS (see `config/admin.rs`).
    pub admin_listen_addr: SocketAddr,
    /// Serve the admin listener over TLS on loopback too (always off loopback).
    pub admin_tls: bool,
    /// Bearer tokens of the admin listener, stored hashed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_tokens: Vec<AdminToken>,
    /// Accept operators' client certificates from this CA
    /// (`flotta-server issue-admin-cert`) on the admin listener (with TLS).
    pub admin_client_certs: bool,
    /// Serial numbers (lowercase hex) of admin certificates no longer accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_revoked_serials: Vec<String>,
    /// Directory holding the CA, the server certificate and the store.
    pub data_dir: PathBuf,
    /// DNS names and IP addresses devices use to reach the API (server certificate SANs).
    pub server_names: Vec<String>,
    /// Approve enrolled devices at once; when false they wait for `approve`.
    pub auto_approve: bool,
    /// Namespace of devices whose enrolment names none.
    pub default_namespace: String,
    /// Lifetime of device certificates.
    pub device_cert_validity_seconds: u64,
    /// How long after its `notAfter` an expired device certificate may still
    /// renew itself; after that the device must enrol again with the
    /// registration certificate (and is approved again per `auto_approve`).
    pub renewal_grace_seconds: u64,
    /// Default lifetime of registration certificates.
    pub registration_cert_validity_seconds: u64,
    /// Lifetime of a newly created CA.
    pub ca_validity_seconds: u64,
    /// Lifetime of the server certificate (re-issued on start when near expiry).
    pub server_cert_validity_seconds: u64,
    /// PEM files of previous CAs whose client certificates stay trusted.
    pub old_ca_files: Vec<PathBuf>,
    /// The CA certificate, when the CA is kept outside `data_dir` (one CA
    /// that replicas share, read-only); with `ca_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_file: Option<PathBuf>,
    /// The CA private key (PKCS#8 PEM) that goes with `ca_cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key_file: Option<PathBuf>,
    /// Largest batch request body.
    pub max_batch_bytes: usize,
    /// Largest JSON request body.
    pub max_json_bytes: usize,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout_seconds: u64,
    /// TLS sessions kept in memory for resumption (about 1 KiB each; 0: no
    /// resumption). Size it above the number of devices.
    pub tls_session_cache_entries: usize,
    /// Time allowed to receive a request's headers (from the moment the
    /// connection waits for them; also bounds an idle keep-alive connection).
    pub http_header_read_timeout_seconds: u64,
    /// Time allowed to receive a whole request, headers and body, counted
    /// as the header timeout is. At least `http_header_read_timeout_seconds`.
    pub http_request_timeout_seconds: u64,
    /// Slowest average body rate accepted once the grace period is over.
    pub http_body_min_rate_bytes_per_second: u64,
    /// Time after the headers before the minimum body rate applies.
    pub http_body_min_rate_grace_seconds: u64,
    /// Admitted connections on the API listener, all classes together.
    pub max_connections: usize,
    /// Of those, the most the registration certificate may hold.
    pub max_registration_connections: usize,
    /// Of those, the most expired certificates and certificates with
    /// neither role may hold.
    pub max_other_connections: usize,
    /// Most API connections one client may hold: one device id (whichever
    /// of its certificates), or one other certificate.
    pub max_connections_per_client: usize,
    /// API connections accepted and not yet admitted (TLS handshake, or a
    /// refusal being answered); more wait in the kernel's backlog.
    pub max_tls_handshakes: usize,
    /// Connections on the admin listener.
    pub max_admin_connections: usize,
    /// Of those, the most that may follow events or log lines (server-sent
    /// event streams, which stay open); at most `max_admin_connections - 1`
    /// whatever this says, so that approvals always find a connection.
    pub max_admin_streams: usize,
    /// Largest admin request body (manifests for `apply`).
    pub max_admin_body_bytes: usize,
    /// A device is offline after this many intervals without news; the
    /// interval is its heartbeat period, or the upload interval its agent
    /// reported (batch format 3: heartbeats queued and uploaded together
    /// once a window) when that is longer.
    pub offline_after_missed_heartbeats: u32,
    /// Heartbeat period sent to devices whose EdgeDevice/EdgeDeviceSet set none.
    pub default_heartbeat_period_seconds: u64,
    /// Seconds between two controller passes (each looks at the devices
    /// whose inputs changed).
    pub controller_interval_seconds: u64,
    /// Seconds between two full controller passes (every device, whatever
    /// changed): the safety net under the incremental passes.
    pub controller_resync_seconds: u64,
    /// Days records (every class) and events of Flotta JSON heartbeats are
    /// kept after the server received them; 0 keeps them forever. Audit
    /// records and each device's newest record are always kept.
    pub record_retention_days: u32,
    /// The store backend: `sqlite` (`data_dir/flotta.db`) or `postgres`.
    pub store: StoreBackend,
    /// PostgreSQL connection string for `store = "postgres"`
    /// (`postgres://user:password@host:port/db` or `host=… dbname=…`);
    /// also read from `FLOTTA_SERVER_POSTGRES_URL`. Connections are made
    /// without TLS for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_url: Option<String>,
    /// PostgreSQL connections in the pool at most.
    pub postgres_max_connections: u32,
    /// Deadline of connecting to PostgreSQL (and of waiting for a pooled
    /// connection).
    pub postgres_connect_timeout_seconds: u64,
    /// Where Flotta's objects live: `embedded` (the store) or `kubernetes`.
    pub objects: ObjectsBackend,
    /// Kubeconfig for `objects = "kubernetes"`; absent: `$KUBECONFIG`,
    /// `~/.kube/config`, then the in-cluster service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_path: Option<PathBuf>,
    /// Most status subresource writes per second (coalesced per object: a
    /// heartbeat never causes one; presence and phase changes do).
    pub kubernetes_status_writes_per_second: u32,
    /// Deadline of one Kubernetes API request (watches excepted).
    pub kubernetes_request_timeout_seconds: u64,
    /// Longest wait at start for the first list of every watched kind.
    pub kubernetes_sync_timeout_seconds: u64,
    /// With `store = "postgres"`: how often a replica tries to take the
    /// controller's leadership (an advisory lock), and the leader checks its
    /// session; a follower takes over within about this long after the
    /// leader's death.
    pub leader_check_interval_ms: u64,
    /// Address of the UDP listener for sealed frames (NB-IoT); absent: off,
    /// and no frame keys are handed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_listen_addr: Option<SocketAddr>,
    /// Longest datagram read; longer ones are dropped as malformed.
    pub udp_max_datagram_bytes: usize,
    /// Longest sealed answer sent (a configuration that does not fit is
    /// announced as pending instead).
    pub udp_answer_bytes: usize,
    /// Datagrams handed to the store at once; more are dropped (counted
    /// `overloaded`), never queued.
    pub udp_max_in_flight: usize,
    /// Failed datagrams (unknown key, bad tag, malformed, wrong epoch) one
    /// source address may send per minute before its datagrams are dropped
    /// unread (`rate_limited`); also the burst.
    pub udp_failures_per_source_per_minute: u32,
    /// Age of a device's frame context after which it gets a new epoch.
    pub frame_rotation_days: u64,
    /// Longest record reassembled from fragments.
    pub frame_max_record_bytes: u32,
    /// Most bytes of incomplete (fragmented) records kept per device.
    pub frame_max_pending_bytes_per_device: u64,
    /// Devices whose derived frame contexts are kept in memory.
    pub frame_context_cache_entries: usize,
    /// Bytes of sealed answers kept in memory so that duplicates (a device's
    /// retries, replays) get the same bytes again instead of a new seal.
    pub frame_answer_cache_bytes: usize,
    /// Address of the plain-HTTP webhook listener Rock7 posts MO messages
    /// to (put a TLS reverse proxy in front); absent: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_listen_addr: Option<SocketAddr>,
    /// Largest webhook request body (refused before reading when declared).
    pub webhook_max_body_bytes: usize,
    /// Connections on the webhook listener.
    pub webhook_max_connections: usize,
    /// Time allowed for a whole webhook request, headers and body.
    pub webhook_request_timeout_seconds: u64,
    /// Rock7's (Ground Control's) RSA public key, PEM: webhook JWTs are
    /// verified with it. Required with `webhook_listen_addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rock7_public_key_file: Option<PathBuf>,
    /// Rock7's MT API.
    pub rock7_mt_url: String,
    /// The Rock7 account MT messages are sent as.
    pub rock7_username: String,
    /// File holding the Rock7 account's password (one line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rock7_password_file: Option<PathBuf>,
    /// Deadline of one MT request.
    pub rock7_mt_timeout_seconds: u64,
    /// Attempts at one MT answer (network errors, 5xx) before giving up.
    pub rock7_mt_max_attempts: u32,
    /// First delay before an MT is tried again (doubled each time).
    pub rock7_mt_retry_initial_ms: u64,
    /// Longest delay between two MT attempts.
    pub rock7_mt_retry_max_ms: u64,
    /// IMEIs with an MT answer waiting at most (newest answer per IMEI).
    pub rock7_mt_queue_imeis: usize,
    /// Longest sealed SBD answer (MT is at most 270 bytes); a configuration
    /// that does not fit is announced as pending.
    pub sbd_answer_bytes: usize,
    /// LoRaWAN regional parameters (`EU868`, `US915`): data rates and airtime.
    pub lorawan_region: String,
    /// FPort our frames travel on (uplinks on other ports are ignored).
    pub lorawan_fport: u8,
    /// Longest sealed answer sent as a downlink (51: EU868 RX2 at DR0); a
    /// configuration that does not fit is announced as pending.
    pub lorawan_answer_bytes: usize,
    /// Deadline of one downlink request to a network server.
    pub lorawan_downlink_timeout_seconds: u64,
    /// Attempts at delivering one downlink (network errors, 429, 5xx).
    pub lorawan_downlink_max_attempts: u32,
    /// First downlink retry delay (doubled per attempt).
    pub lorawan_downlink_retry_initial_ms: u64,
    /// Longest downlink retry delay.
    pub lorawan_downlink_retry_max_ms: u64,
    /// Devices with a downlink waiting at most.
    pub lorawan_downlink_queue_devices: usize,
    /// Serve `POST /chirpstack` (ChirpStack v4 HTTP integration) on the webhook listener.
    pub chirpstack_enabled: bool,
    /// Header carrying the shared secret (set in the integration's "Headers").
    pub chirpstack_auth_header: String,
    /// The shared secret (or `chirpstack_auth_secret_file`).
    pub chirpstack_auth_secret: Option<String>,
    /// File holding the shared secret (one line).
    pub chirpstack_auth_secret_file: Option<PathBuf>,
    /// Base URL of ChirpStack's API, for downlinks: ChirpStack's gRPC API
    /// (`http://chirpstack:8080`), or its REST gateway (`chirpstack-rest-api`,
    /// `http://chirpstack-rest-api:8090`) with `chirpstack_api_protocol = "rest"`.
    pub chirpstack_api_url: String,
    /// `"grpc"` (ChirpStack's own API, the default) or `"rest"` (the REST gateway).
    pub chirpstack_api_protocol: ChirpstackProtocol,
    /// File holding a ChirpStack API token (one line).
    pub chirpstack_api_token_file: Option<PathBuf>,
    /// Serve `POST /tts/uplink` (The Things Stack v3 webhook) on the webhook listener.
    pub tts_enabled: bool,
    /// Header carrying the shared secret (one of the webhook's "Additional headers").
    pub tts_auth_header: String,
    /// The shared secret (or `tts_auth_secret_file`).
    pub tts_auth_secret: Option<String>,
    /// File holding the shared secret (one line).
    pub tts_auth_secret_file: Option<PathBuf>,
    /// Base URL of the TTS cluster (`https://eu1.cloud.thethings.network`).
    pub tts_api_url: String,
    /// The TTS application id the webhook belongs to.
    pub tts_application_id: String,
    /// The webhook id (its downlink queue paths name it).
    pub tts_webhook_id: String,
    /// File holding a TTS API key allowed to write downlinks (one line).
    pub tts_api_key_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 8043)),
            admin_listen_addr: SocketAddr::from(([127, 0, 0, 1], 8044)),
            admin_tls: false,
            admin_tokens: vec![],
            admin_client_certs: false,
            admin_revoked_serials: vec![],
            data_dir: PathBuf::from("/var/lib/flotta-server"),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            auto_approve: true,
            default_namespace: "default".into(),
            device_cert_validity_seconds: 30 * DAY_SECONDS,
            renewal_grace_seconds: 180 * DAY_SECONDS,
            registration_cert_validity_seconds: 365 * DAY_SECONDS,
            ca_validity_seconds: 10 * 365 * DAY_SECONDS,
            server_cert_validity_seconds: 365 * DAY_SECONDS,
            old_ca_files: vec![],
            ca_cert_file: None,
            ca_key_file: None,
            max_batch_bytes: flotta_proto::batch::MAX_BATCH_BYTES,
            max_json_bytes: 256 * 1024,
            tls_handshake_timeout_seconds: 10,
            tls_session_cache_entries: 16_384,
            http_header_read_timeout_seconds: 30,
            http_request_timeout_seconds: 300,
            http_body_min_rate_bytes_per_second: 32,
            http_body_min_rate_grace_seconds: 30,
            max_connections: 1024,
            max_registration_connections: 128,
            max_other_connections: 64,
            max_connections_per_client: 4,
            max_tls_handshakes: 256,
            max_admin_connections: 32,
            max_admin_streams: 8,
            max_admin_body_bytes: 4 * 1024 * 1024,
            offline_after_missed_heartbeats: 3,
            default_heartbeat_period_seconds:
                crate::controller::wire::DEFAULT_HEARTBEAT_PERIOD_SECONDS,
            controller_interval_seconds: 10,
            controller_resync_seconds: 600,
            record_retention_days: 30,
            store: StoreBackend::Sqlite,
            postgres_url: None,
            postgres_max_connections: 16,
            postgres_connect_timeout_seconds: 10,
            objects: ObjectsBackend::Embedded,
            kubeconfig_path: None,
            kubernetes_status_writes_per_second: 20,
            kubernetes_request_timeout_seconds: 10,
            kubernetes_sync_timeout_seconds: 60,
            leader_check_interval_ms: 1000,
            udp_listen_addr: None,
            udp_max_datagram_bytes: 1500,
            udp_answer_bytes: 1200,
            udp_max_in_flight: 64,
            udp_failures_per_source_per_minute: 60,
            frame_rotation_days: 30,
            frame_max_record_bytes: 64 * 1024,
            frame_max_pending_bytes_per_device: 256 * 1024,
            frame_context_cache_entries: 16_384,
            frame_answer_cache_bytes: 8 * 1024 * 1024,
            webhook_listen_addr: None,
            webhook_max_body_bytes: 16 * 1024,
            webhook_max_connections: 64,
            webhook_request_timeout_seconds: 10,
            rock7_public_key_file: None,
            rock7_mt_url: DEFAULT_MT_URL.into(),
            rock7_username: String::new(),
            rock7_password_file: None,
            rock7_mt_timeout_seconds: 10,
            rock7_mt_max_attempts: 8,
            rock7_mt_retry_initial_ms: 5_000,
            rock7_mt_retry_max_ms: 300_000,
            rock7_mt_queue_imeis: 10_000,
            sbd_answer_bytes: MAX_MT_BYTES,
            lorawan_region: "EU868".into(),
            lorawan_fport: 10,
            lorawan_answer_bytes: 51,
            lorawan_downlink_timeout_seconds: 10,
            lorawan_downlink_max_attempts: 6,
            lorawan_downlink_retry_initial_ms: 2_000,
            lorawan_downlink_retry_max_ms: 120_000,
            lorawan_downlink_queue_devices: 10_000,
            chirpstack_enabled: false,
            chirpstack_auth_header: "authorization".into(),
            chirpstack_auth_secret: None,
            chirpstack_auth_secret_file: None,
            chirpstack_api_url: "http://localhost:8080".into(),
            chirpstack_api_protocol: ChirpstackProtocol::Grpc,
            chirpstack_api_token_file: None,
            tts_enabled: false,
            tts_auth_header: "x-flotta-secret".into(),
            tts_auth_secret: None,
            tts_auth_secret_file: None,
            tts_api_url: "https://eu1.cloud.thethings.network".into(),
            tts_application_id: String::new(),
            tts_webhook_id: String::new(),
            tts_api_key_file: None,
        }
    }
}

impl Config {
    /// Defaults, then the TOML file (which must exist when given), then the
    /// environment; validated.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            fig = fig.merge(Toml::file_exact(file));
        }
        Self::extract(fig.merge(Env::prefixed(ENV_PREFIX)))
    }

    /// Defaults, then `toml` text (no file, no environment); validated. For tests and tools.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::extract(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml)),
        )
    }

    fn extract(fig: Figment) -> Result<Self, ConfigError> {
        let cfg: Config = fig.extract().map_err(Box::new)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        let max = flotta_proto::batch::MAX_BATCH_BYTES;
        if self.max_batch_bytes == 0 || self.max_batch_bytes > max {
            return invalid("max_batch_bytes", format!("must be 1..={max}"));
        }
        if self.max_json_bytes == 0 || self.max_json_bytes > 16 * 1024 * 1024 {
            return invalid("max_json_bytes", "must be 1..=16777216".into());
        }
        for (key, v) in [
            (
                "device_cert_validity_seconds",
                self.device_cert_validity_seconds,
            ),
            (
                "registration_cert_validity_seconds",
                self.registration_cert_validity_seconds,
            ),
            ("ca_validity_seconds", self.ca_validity_seconds),
            (
                "server_cert_validity_seconds",
                self.server_cert_validity_seconds,
            ),
        ] {
            if v == 0 || v > MAX_VALIDITY_SECONDS {
                return invalid(key, format!("must be 1..={MAX_VALIDITY_SECONDS}"));
            }
        }
        if self.renewal_grace_seconds > MAX_VALIDITY_SECONDS {
            return invalid(
                "renewal_grace_seconds",
                format!("must be 0..={MAX_VALIDITY_SECONDS}"),
            );
        }
        if self.ca_validity_seconds < self.device_cert_validity_seconds {
            return invalid(
                "ca_validity_seconds",
                "must not be shorter than device_cert_validity_seconds".into(),
            );
        }
        if self.server_names.is_empty() || self.server_names.iter().any(|n| n.trim().is_empty()) {
            return invalid(
                "server_names",
                "must list at least one non-empty name".into(),
            );
        }
        if let Err(e) = Namespace::parse(&self.default_namespace) {
            return invalid("default_namespace", e.to_string());
        }
        if !(1..=86_400).contains(&self.default_heartbeat_period_seconds) {
            return invalid(
                "default_heartbeat_period_seconds",
                "must be 1..=86400".into(),
            );
        }
        if self.offline_after_missed_heartbeats == 0 {
            return invalid(
                "offline_after_missed_heartbeats",
                "must be at least 1".into(),
            );
        }
        if self.controller_interval_seconds == 0 || self.controller_interval_seconds > 3600 {
            return invalid("controller_interval_seconds", "must be 1..=3600".into());
        }
        if !(1..=86_400).contains(&self.controller_resync_seconds) {
            return invalid("controller_resync_seconds", "must be 1..=86400".into());
        }
        self.validate_pki()?;
        self.validate_admin()?;
        self.validate_listeners()?;
        self.validate_frames()?;
        self.validate_rock7()?;
        self.validate_kubernetes()?;
        self.validate_store()?;
        self.validate_retention()?;
        if !(50..=60_000).contains(&self.leader_check_interval_ms) {
            return invalid("leader_check_interval_ms", "must be 50..=60000".into());
        }
        self.validate_lorawan()
    }

    /// Path of the SQLite store.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("flotta.db")
    }

    /// Lifetime of device certificates.
    pub fn device_cert_validity(&self) -> Duration {
        Duration::from_secs(self.device_cert_validity_seconds)
    }

    /// How long an expired device certificate may still renew itself.
    pub fn renewal_grace(&self) -> Duration {
        Duration::from_secs(self.renewal_grace_seconds)
    }

    /// What the controller needs.
    pub fn controller_settings(&self) -> crate::controller::Settings {
        crate::controller::Settings {
            offline_after_missed_heartbeats: self.offline_after_missed_heartbeats,
            default_heartbeat_period_seconds: self.default_heartbeat_period_seconds,
        }
    }

    /// The configuration as TOML (for `flotta-server config`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_roundtrip_through_toml() {
        let d = Config::default();
        d.validate().unwrap();
        assert_eq!(Config::from_toml_str(&d.to_toml()).unwrap(), d);
    }

    #[test]
    fn file_overrides_defaults() {
        let c = Config::from_toml_str(
            "listen_addr = \"127.0.0.1:9000\"\nauto_approve = false\ndevice_cert_validity_seconds = 60\n",
        )
        .unwrap();
        assert_eq!(c.listen_addr, "127.0.0.1:9000".parse().unwrap());
        assert!(!c.auto_approve);
        assert_eq!(c.device_cert_validity_seconds, 60);
        assert_eq!(c.max_json_bytes, Config::default().max_json_bytes);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = Config::from_toml_str("listen_adr = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("listen_adr"), "{err}");
        let err = Config::from_toml_str("max_batch_bytes = 2000000").unwrap_err();
        assert!(err.to_string().contains("max_batch_bytes"), "{err}");
        let err = Config::from_toml_str("device_cert_validity_seconds = 0").unwrap_err();
        assert!(
            err.to_string().contains("device_cert_validity_seconds"),
            "{err}"
        );
        let err = Config::from_toml_str("renewal_grace_seconds = 9999999999").unwrap_err();
        assert!(err.to_string().contains("renewal_grace_seconds"), "{err}");
        let err = Config::from_toml_str("default_namespace = \"Bad_NS\"").unwrap_err();
        assert!(err.to_string().contains("default_namespace"), "{err}");
        let err = Config::from_toml_str("listen_addr = \"nowhere\"").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/flotta.toml"))).unwrap_err();
        assert!(err.to_string().contains("flotta.toml"), "{err}");
    }
}
