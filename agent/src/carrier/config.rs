//! The carrier part of the agent's configuration: `links` (which carriers a
//! window may use, in order), the `[udp]` table, the `[sbd]` table
//! (`sbd/config.rs`) and the `[lorawan]` table (`lorawan/config.rs`), with
//! their `FLOTTA_AGENT_LINKS` (comma-separated), `FLOTTA_AGENT_UDP_<KEY>`,
//! `FLOTTA_AGENT_SBD_<KEY>` and `FLOTTA_AGENT_LORAWAN_<KEY>` environment
//! overrides. The packing keys every frame carrier has (`max_record_bytes`,
//! `min_log_level`, `max_text_bytes`) are one trait, [`FramePacking`], with
//! one validation and one list of environment keys. Units are in the key
//! names.

use serde::Deserialize;

use super::lorawan::{LORAWAN_BOOL_KEYS, LORAWAN_ENV_KEYS, LorawanConfig, validate_lorawan};
use super::sbd::{SBD_ENV_KEYS, SbdConfig, validate_sbd};
use crate::config::ConfigError;
use crate::frames::{MinLogLevel, PackPolicy};

/// One carrier a window may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// The Edge API over mTLS (`uplink.rs`); `wifi` and `ethernet` are
    /// accepted as its aliases.
    #[serde(alias = "wifi", alias = "ethernet")]
    Tls,
    /// Sealed frames in UDP datagrams (`[udp]`).
    Udp,
    /// Sealed frames in Iridium SBD messages through a RockBLOCK 9603
    /// (`[sbd]`).
    Sbd,
    /// Sealed frames in LoRaWAN uplinks through a RAK3172 or RN2483 modem
    /// (`[lorawan]`).
    Lorawan,
}

impl LinkKind {
    /// Its name in logs and in the configuration.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::Udp => "udp",
            Self::Sbd => "sbd",
            Self::Lorawan => "lorawan",
        }
    }
}

/// The `[udp]` table: where and how sealed frames go over UDP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpConfig {
    /// The server's frame listener, `host:port` (required when `links`
    /// lists `udp`); resolved once per window.
    pub server_addr: String,
    /// Largest datagram sent: the sealed frame (16 bytes of overhead with
    /// the key id, the rest plaintext).
    pub frame_bytes: usize,
    /// Wait for the answer before the first retransmission; doubles for
    /// each further one.
    pub answer_timeout_ms: u64,
    /// Transmissions of one frame (the first included) before the window
    /// gives up.
    pub attempts: u32,
    /// Records larger than this are left for a TLS window when `links` lists
    /// `tls` (otherwise they go as fragments).
    pub max_record_bytes: usize,
    /// Log lines below this level (`info`, `warn`, `error`) do not travel
    /// in frames: left for a TLS window when `links` lists `tls`, else
    /// deleted unsent and counted.
    pub min_log_level: MinLogLevel,
    /// Longest message of an event or a log line in frames, in bytes, a
    /// trailing `…` included (0: no limit); the queued record keeps it whole.
    pub max_text_bytes: usize,
}

/// The packing keys of a frame carrier's table (`[udp]`, `[sbd]`).
pub trait FramePacking {
    /// `max_record_bytes`: larger records are left for TLS when listed.
    fn max_record_bytes(&self) -> usize;
    /// `min_log_level`: lower log lines do not travel in frames.
    fn min_log_level(&self) -> MinLogLevel;
    /// `max_text_bytes`: longest message text in frames (0: no limit).
    fn max_text_bytes(&self) -> usize;

    /// The packing policy of this carrier.
    fn pack_policy(&self) -> PackPolicy {
        PackPolicy {
            min_log_level: self.min_log_level(),
            max_text_bytes: self.max_text_bytes(),
        }
    }
}

/// [`FramePacking`] for tables with the three packing fields.
macro_rules! frame_packing {
    ($($table:ty),+) => {$(
        impl FramePacking for $table {
            fn max_record_bytes(&self) -> usize {
                self.max_record_bytes
            }
            fn min_log_level(&self) -> MinLogLevel {
                self.min_log_level
            }
            fn max_text_bytes(&self) -> usize {
                self.max_text_bytes
            }
        }
    )+};
}
frame_packing!(UdpConfig, SbdConfig, LorawanConfig);

/// Check the packing keys of `[table]`.
fn validate_packing(table: &str, p: &impl FramePacking) -> Result<(), ConfigError> {
    if p.max_record_bytes() == 0 {
        return Err(ConfigError::Invalid(format!(
            "{table}.max_record_bytes must be positive"
        )));
    }
    if (1..MIN_TEXT_BYTES).contains(&p.max_text_bytes()) {
        return Err(ConfigError::Invalid(format!(
            "{table}.max_text_bytes must be 0 (no limit) or at least {MIN_TEXT_BYTES}"
        )));
    }
    Ok(())
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            server_addr: String::new(),
            frame_bytes: 1200,
            answer_timeout_ms: 4000,
            attempts: 3,
            max_record_bytes: 16 * 1024,
            min_log_level: MinLogLevel::Info,
            max_text_bytes: 0,
        }
    }
}

/// Smallest `udp.frame_bytes`: overhead, a full status item and a fragment.
pub const MIN_FRAME_BYTES: usize = 128;
/// Largest `udp.frame_bytes`: the largest UDP payload over IPv4.
pub const MAX_FRAME_BYTES: usize = 65_507;

/// Smallest non-zero `udp.max_text_bytes`: one byte and the `…`.
pub const MIN_TEXT_BYTES: usize = 4;

/// The `[udp]` keys `FLOTTA_AGENT_UDP_<KEY>` may set (besides the packing
/// keys), and whether each is a string (else an integer).
const UDP_ENV_KEYS: &[(&str, bool)] = &[
    ("server_addr", true),
    ("frame_bytes", false),
    ("answer_timeout_ms", false),
    ("attempts", false),
];

/// The packing keys every frame carrier's table has, for the environment.
const PACKING_ENV_KEYS: &[(&str, bool)] = &[
    ("max_record_bytes", false),
    ("min_log_level", true),
    ("max_text_bytes", false),
];

/// Apply `FLOTTA_AGENT_LINKS` and `FLOTTA_AGENT_UDP_*` from `env` to the
/// configuration `table` (before it is deserialized and checked).
///
/// # Errors
/// [`ConfigError::Parse`] naming the key if a number does not parse or
/// `[udp]` in the file is not a table.
pub(crate) fn apply_env(
    table: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let parse_err = |key: &str, message: String| ConfigError::Parse {
        path: "environment".into(),
        message: format!("{key}: {message}"),
    };
    if let Some(list) = env("FLOTTA_AGENT_LINKS") {
        let items = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| toml::Value::String(s.to_owned()))
            .collect();
        table.insert("links".into(), toml::Value::Array(items));
    }
    for (name, keys) in [
        ("udp", UDP_ENV_KEYS),
        ("sbd", SBD_ENV_KEYS),
        ("lorawan", LORAWAN_ENV_KEYS),
    ] {
        for (key, is_string) in keys.iter().chain(PACKING_ENV_KEYS) {
            let var = format!(
                "FLOTTA_AGENT_{}_{}",
                name.to_ascii_uppercase(),
                key.to_ascii_uppercase()
            );
            let Some(value) = env(&var) else {
                continue;
            };
            let value = if *is_string {
                toml::Value::String(value)
            } else if name == "lorawan" && LORAWAN_BOOL_KEYS.contains(key) {
                match value.trim() {
                    "true" | "1" | "on" => toml::Value::Boolean(true),
                    "false" | "0" | "off" => toml::Value::Boolean(false),
                    _ => {
                        return Err(parse_err(
                            &format!("{name}.{key}"),
                            "expected true or false".into(),
                        ));
                    }
                }
            } else {
                value
                    .trim()
                    .parse::<i64>()
                    .map(toml::Value::Integer)
                    .map_err(|e| parse_err(&format!("{name}.{key}"), e.to_string()))?
            };
            let t = table
                .entry(name)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(t) = t else {
                return Err(parse_err(name, "must be a table".into()));
            };
            t.insert((*key).into(), value);
        }
    }
    Ok(())
}

/// Check `links` and the tables of the frame carriers it lists.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the key.
pub(crate) fn validate(
    links: &[LinkKind],
    udp: &UdpConfig,
    sbd: &SbdConfig,
    lorawan: &LorawanConfig,
) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    if links.is_empty() {
        return invalid("links must list at least one of tls, udp, sbd, lorawan".into());
    }
    for (i, l) in links.iter().enumerate() {
        if links[..i].contains(l) {
            return invalid(format!("links lists {} twice", l.name()));
        }
    }
    if links.contains(&LinkKind::Sbd) {
        validate_sbd(sbd).map_err(ConfigError::Invalid)?;
        validate_packing("sbd", sbd)?;
    }
    if links.contains(&LinkKind::Lorawan) {
        validate_lorawan(lorawan).map_err(ConfigError::Invalid)?;
        validate_packing("lorawan", lorawan)?;
    }
    if !links.contains(&LinkKind::Udp) {
        return Ok(());
    }
    let port = udp
        .server_addr
        .rsplit_once(':')
        .and_then(|(host, port)| (!host.is_empty()).then_some(port))
        .and_then(|p| p.parse::<u16>().ok());
    if udp.server_addr.is_empty() {
        return invalid("udp.server_addr is required when links lists udp".into());
    }
    if port.is_none_or(|p| p == 0) {
        return invalid(format!(
            "udp.server_addr must be host:port, got {:?}",
            udp.server_addr
        ));
    }
    if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&udp.frame_bytes) {
        return invalid(format!(
            "udp.frame_bytes must be {MIN_FRAME_BYTES}..={MAX_FRAME_BYTES}"
        ));
    }
    if !(1..=600_000).contains(&udp.answer_timeout_ms) {
        return invalid("udp.answer_timeout_ms must be 1..=600000".into());
    }
    if !(1..=20).contains(&udp.attempts) {
        return invalid("udp.attempts must be 1..=20".into());
    }
    validate_packing("udp", udp)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::AgentConfig;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<AgentConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, toml).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AgentConfig::load(Some(&file), |k| env.get(k).cloned()).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_tls_only() {
        let cfg = load("", &[]).unwrap();
        assert_eq!(cfg.links, vec![LinkKind::Tls]);
        assert_eq!(cfg.udp, UdpConfig::default());
        assert_eq!(
            (
                cfg.udp.frame_bytes,
                cfg.udp.answer_timeout_ms,
                cfg.udp.attempts
            ),
            (1200, 4000, 3)
        );
        assert_eq!(cfg.udp.max_record_bytes, 16384);
    }

    #[test]
    fn file_then_env_with_aliases() {
        let cfg = load(
            "links = [\"wifi\", \"udp\"]\n[udp]\nserver_addr = \"frames.example:5683\"\nframe_bytes = 512\n",
            &[("FLOTTA_AGENT_UDP_ATTEMPTS", "5")],
        )
        .unwrap();
        assert_eq!(cfg.links, vec![LinkKind::Tls, LinkKind::Udp]);
        assert_eq!(
            (
                cfg.udp.server_addr.as_str(),
                cfg.udp.frame_bytes,
                cfg.udp.attempts
            ),
            ("frames.example:5683", 512, 5)
        );
        let cfg = load(
            "",
            &[
                ("FLOTTA_AGENT_LINKS", "udp, ethernet"),
                ("FLOTTA_AGENT_UDP_SERVER_ADDR", "10.0.0.1:5683"),
                ("FLOTTA_AGENT_UDP_ANSWER_TIMEOUT_MS", "250"),
                ("FLOTTA_AGENT_UDP_FRAME_BYTES", "240"),
                ("FLOTTA_AGENT_UDP_MAX_RECORD_BYTES", "4096"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.links, vec![LinkKind::Udp, LinkKind::Tls]);
        assert_eq!(
            (
                cfg.udp.answer_timeout_ms,
                cfg.udp.frame_bytes,
                cfg.udp.max_record_bytes
            ),
            (250, 240, 4096)
        );
    }

    #[test]
    fn packing_policy_from_file_then_env() {
        let cfg = load("", &[]).unwrap();
        assert_eq!(cfg.udp.pack_policy(), PackPolicy::default());
        assert_eq!(cfg.udp.pack_policy().min_log_level, MinLogLevel::Info);
        let udp = "links = [\"udp\"]\n[udp]\nserver_addr = \"h:1\"\n";
        let cfg = load(
            &format!("{udp}min_log_level = \"error\"\nmax_text_bytes = 64\n"),
            &[("FLOTTA_AGENT_UDP_MIN_LOG_LEVEL", "warn")],
        )
        .unwrap();
        assert_eq!(
            cfg.udp.pack_policy(),
            PackPolicy {
                min_log_level: MinLogLevel::Warn,
                max_text_bytes: 64
            }
        );
        let cfg = load(udp, &[("FLOTTA_AGENT_UDP_MAX_TEXT_BYTES", "120")]).unwrap();
        assert_eq!(cfg.udp.max_text_bytes, 120);
        for (toml, env, needle) in [
            (
                format!("{udp}min_log_level = \"debug\"\n"),
                vec![],
                "min_log_level",
            ),
            (
                udp.to_owned(),
                vec![("FLOTTA_AGENT_UDP_MIN_LOG_LEVEL", "loud")],
                "min_log_level",
            ),
            (
                udp.to_owned(),
                vec![("FLOTTA_AGENT_UDP_MAX_TEXT_BYTES", "many")],
                "udp.max_text_bytes",
            ),
            (
                udp.to_owned(),
                vec![("FLOTTA_AGENT_UDP_MAX_TEXT_BYTES", "3")],
                "udp.max_text_bytes",
            ),
        ] {
            let err = load(&toml, &env).unwrap_err();
            assert!(err.contains(needle), "{toml:?} {env:?}: {err}");
        }
    }

    #[test]
    fn sbd_table_from_file_then_env_with_shared_packing_keys() {
        let cfg = load("", &[]).unwrap();
        assert_eq!(cfg.sbd, SbdConfig::default());
        assert_eq!(
            (cfg.sbd.baud, cfg.sbd.retry_backoff_ms, cfg.sbd.attempts),
            (19_200, 60_000, 3)
        );
        let cfg = load(
            "links = [\"tls\", \"sbd\"]\n[sbd]\ndevice = \"/dev/serial0\"\nsession_timeout_ms = 70000\nmin_log_level = \"error\"\n",
            &[
                ("FLOTTA_AGENT_SBD_ATTEMPTS", "5"),
                ("FLOTTA_AGENT_SBD_BAUD", "9600"),
                ("FLOTTA_AGENT_SBD_MAX_TEXT_BYTES", "64"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.links, vec![LinkKind::Tls, LinkKind::Sbd]);
        assert_eq!(
            (
                cfg.sbd.device.as_str(),
                cfg.sbd.session_timeout_ms,
                cfg.sbd.attempts,
                cfg.sbd.baud
            ),
            ("/dev/serial0", 70_000, 5, 9600)
        );
        assert_eq!(
            cfg.sbd.pack_policy(),
            PackPolicy {
                min_log_level: MinLogLevel::Error,
                max_text_bytes: 64
            }
        );
        let cfg = load(
            "",
            &[
                ("FLOTTA_AGENT_LINKS", "sbd"),
                ("FLOTTA_AGENT_SBD_DEVICE", "/dev/ttyUSB0"),
            ],
        )
        .unwrap();
        assert_eq!(
            (cfg.links, cfg.sbd.device.as_str()),
            (vec![LinkKind::Sbd], "/dev/ttyUSB0")
        );
        let sbd = "links = [\"sbd\"]\n[sbd]\ndevice = \"/dev/ttyS0\"\n";
        for (toml, env, needle) in [
            ("links = [\"sbd\"]\n", vec![], "sbd.device is required"),
            ("[sbd]\nbaudrate = 1\n", vec![], "baudrate"),
            (sbd, vec![("FLOTTA_AGENT_SBD_BAUD", "12345")], "sbd.baud"),
            (
                sbd,
                vec![("FLOTTA_AGENT_SBD_ATTEMPTS", "0")],
                "sbd.attempts",
            ),
            (
                sbd,
                vec![("FLOTTA_AGENT_SBD_RETRY_BACKOFF_MS", "0")],
                "sbd.retry_backoff_ms",
            ),
            (
                sbd,
                vec![("FLOTTA_AGENT_SBD_SESSION_TIMEOUT_MS", "soon")],
                "sbd.session_timeout_ms",
            ),
            (
                sbd,
                vec![("FLOTTA_AGENT_SBD_MAX_RECORD_BYTES", "0")],
                "sbd.max_record_bytes",
            ),
            (
                sbd,
                vec![("FLOTTA_AGENT_SBD_MAX_TEXT_BYTES", "2")],
                "sbd.max_text_bytes",
            ),
            (
                sbd,
                vec![("FLOTTA_AGENT_SBD_MIN_LOG_LEVEL", "loud")],
                "min_log_level",
            ),
        ] {
            let err = load(toml, &env).unwrap_err();
            assert!(err.contains(needle), "{toml:?} {env:?}: {err}");
        }
    }

    #[test]
    fn lorawan_table_from_file_then_env_with_shared_packing_keys() {
        use crate::carrier::lorawan::{ModemKind, Region};
        let cfg = load("", &[]).unwrap();
        assert_eq!(cfg.lorawan, LorawanConfig::default());
        assert_eq!(
            (cfg.lorawan.baud(), cfg.lorawan.port, cfg.lorawan.adr),
            (115_200, 10, true)
        );
        let cfg = load(
            "links = [\"lorawan\", \"tls\"]\n[lorawan]\ndevice = \"/dev/ttyUSB0\"\nmodem = \"rn2483\"\nregion = \"us915\"\ndata_rate = 1\nmin_log_level = \"error\"\n",
            &[
                ("FLOTTA_AGENT_LORAWAN_ADR", "false"),
                ("FLOTTA_AGENT_LORAWAN_PORT", "42"),
                ("FLOTTA_AGENT_LORAWAN_TX_TIMEOUT_MS", "8000"),
                ("FLOTTA_AGENT_LORAWAN_MAX_TEXT_BYTES", "32"),
            ],
        )
        .unwrap();
        let l = &cfg.lorawan;
        assert_eq!(cfg.links, vec![LinkKind::Lorawan, LinkKind::Tls]);
        assert_eq!(
            (
                l.modem,
                l.region,
                l.data_rate,
                l.adr,
                l.port,
                l.tx_timeout_ms
            ),
            (ModemKind::Rn2483, Region::Us915, 1, false, 42, 8000)
        );
        assert_eq!(l.baud(), 57_600, "the RN2483's factory rate");
        assert_eq!(
            l.pack_policy(),
            PackPolicy {
                min_log_level: MinLogLevel::Error,
                max_text_bytes: 32
            }
        );
        let lw = "links = [\"lorawan\"]\n[lorawan]\ndevice = \"/dev/ttyS0\"\n";
        for (toml, env, needle) in [
            (
                "links = [\"lorawan\"]\n",
                vec![],
                "lorawan.device is required",
            ),
            ("[lorawan]\nsf = 12\n", vec![], "sf"),
            ("[lorawan]\nmodem = \"sx1276\"\n", vec![], "sx1276"),
            ("[lorawan]\nregion = \"as923\"\n", vec![], "as923"),
            (
                lw,
                vec![("FLOTTA_AGENT_LORAWAN_ADR", "maybe")],
                "lorawan.adr",
            ),
            (
                lw,
                vec![("FLOTTA_AGENT_LORAWAN_BAUD", "12345")],
                "lorawan.baud",
            ),
            (lw, vec![("FLOTTA_AGENT_LORAWAN_PORT", "0")], "lorawan.port"),
            (
                lw,
                vec![("FLOTTA_AGENT_LORAWAN_PORT", "224")],
                "lorawan.port",
            ),
            (
                lw,
                vec![("FLOTTA_AGENT_LORAWAN_DATA_RATE", "7")],
                "lorawan.data_rate",
            ),
            (
                &format!("{lw}region = \"us915\"\ndata_rate = 0\n"),
                vec![],
                "too few for a sealed frame",
            ),
            (
                lw,
                vec![("FLOTTA_AGENT_LORAWAN_FOPTS_RESERVE_BYTES", "16")],
                "lorawan.fopts_reserve_bytes",
            ),
            (
                lw,
                vec![("FLOTTA_AGENT_LORAWAN_JOIN_ATTEMPTS", "0")],
                "lorawan.join_attempts",
            ),
            (
                lw,
                vec![("FLOTTA_AGENT_LORAWAN_TX_TIMEOUT_MS", "0")],
                "lorawan.tx_timeout_ms",
            ),
            (
                lw,
                vec![("FLOTTA_AGENT_LORAWAN_MAX_RECORD_BYTES", "0")],
                "lorawan.max_record_bytes",
            ),
        ] {
            let err = load(toml, &env).unwrap_err();
            assert!(err.contains(needle), "{toml:?} {env:?}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected_with_the_key() {
        let udp = "links = [\"udp\"]\n[udp]\nserver_addr = \"h:1\"\n";
        for (toml, env, needle) in [
            ("[udp]\nframe_size = 3\n", vec![], "frame_size"),
            ("links = [\"pigeon\"]\n", vec![], "pigeon"),
            ("links = []\n", vec![], "at least one"),
            ("links = [\"tls\", \"ethernet\"]\n", vec![], "twice"),
            ("links = [\"udp\"]\n", vec![], "udp.server_addr is required"),
            (
                "links = [\"udp\"]\n[udp]\nserver_addr = \"host\"\n",
                vec![],
                "host:port",
            ),
            (
                udp,
                vec![("FLOTTA_AGENT_UDP_FRAME_BYTES", "64")],
                "udp.frame_bytes",
            ),
            (
                udp,
                vec![("FLOTTA_AGENT_UDP_ATTEMPTS", "0")],
                "udp.attempts",
            ),
            (
                udp,
                vec![("FLOTTA_AGENT_UDP_ANSWER_TIMEOUT_MS", "soon")],
                "udp.answer_timeout_ms",
            ),
            (
                udp,
                vec![("FLOTTA_AGENT_UDP_MAX_RECORD_BYTES", "0")],
                "udp.max_record_bytes",
            ),
        ] {
            let err = load(toml, &env).unwrap_err();
            assert!(err.contains(needle), "{toml:?} {env:?}: {err}");
        }
        // A [udp] table without udp in links is accepted (and unused).
        assert!(load("[udp]\nframe_bytes = 64\n", &[]).is_ok());
    }
}
