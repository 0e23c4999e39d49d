//! The carrier part of the agent's configuration: `links` (which carriers a
//! window may use, in order) and the `[udp]` table, with their
//! `FLOTTA_AGENT_LINKS` (comma-separated) and `FLOTTA_AGENT_UDP_<KEY>`
//! environment overrides. Units are in the key names.

use serde::Deserialize;

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
}

impl LinkKind {
    /// Its name in logs and in the configuration.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::Udp => "udp",
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

impl UdpConfig {
    /// The packing policy of this carrier.
    #[must_use]
    pub fn pack_policy(&self) -> PackPolicy {
        PackPolicy {
            min_log_level: self.min_log_level,
            max_text_bytes: self.max_text_bytes,
        }
    }
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

/// The `[udp]` keys `FLOTTA_AGENT_UDP_<KEY>` may set.
const UDP_ENV_KEYS: &[&str] = &[
    "server_addr",
    "frame_bytes",
    "answer_timeout_ms",
    "attempts",
    "max_record_bytes",
    "min_log_level",
    "max_text_bytes",
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
    for key in UDP_ENV_KEYS {
        let Some(value) = env(&format!("FLOTTA_AGENT_UDP_{}", key.to_ascii_uppercase())) else {
            continue;
        };
        let value = if matches!(*key, "server_addr" | "min_log_level") {
            toml::Value::String(value)
        } else {
            value
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|e| parse_err(&format!("udp.{key}"), e.to_string()))?
        };
        let udp = table
            .entry("udp")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(udp) = udp else {
            return Err(parse_err("udp", "must be a table".into()));
        };
        udp.insert((*key).into(), value);
    }
    Ok(())
}

/// Check `links` and, when it lists `udp`, the `[udp]` table.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the key.
pub(crate) fn validate(links: &[LinkKind], udp: &UdpConfig) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    if links.is_empty() {
        return invalid("links must list at least one of tls, udp".into());
    }
    for (i, l) in links.iter().enumerate() {
        if links[..i].contains(l) {
            return invalid(format!("links lists {} twice", l.name()));
        }
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
    if udp.max_record_bytes == 0 {
        return invalid("udp.max_record_bytes must be positive".into());
    }
    if (1..MIN_TEXT_BYTES).contains(&udp.max_text_bytes) {
        return invalid(format!(
            "udp.max_text_bytes must be 0 (no limit) or at least {MIN_TEXT_BYTES}"
        ));
    }
    Ok(())
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
