//! The agent's `agent.toml`: generated from the command line, the user's `--agent-config`
//! fragment merged over it, and validated with the agent's own parser so that a typo fails
//! when the card is written, not on a board in the field.

use std::path::Path;

use flotta_agent::config::AgentConfig;
use toml::{Table, Value};

use crate::error::{ImageError, Result};

/// Where install.sh puts the configuration, certificates and keys.
pub const ETC: &str = "/etc/flotta";
/// The agent's data directory (the unit's `StateDirectory=flotta`).
pub const DATA_DIR: &str = "/var/lib/flotta";

/// What the generated configuration says.
#[derive(Debug, Clone, Default)]
pub struct ConfigInput<'a> {
    /// `server_url`.
    pub server_url: &'a str,
    /// `device_id`; `None`: filled from `/etc/machine-id` by install.sh.
    pub device_id: Option<&'a str>,
    /// `link_profile`.
    pub link_profile: Option<&'a str>,
    /// The `--agent-config` fragment's text.
    pub fragment: Option<&'a str>,
    /// `--provisioned`: the identity and frame keys are installed in [`DATA_DIR`], so no
    /// registration certificate paths, and `device_id` (required) and `data_dir` must stay.
    pub provisioned: bool,
}

/// Merge `over` into `base`, tables recursively, other values replaced.
fn merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The final `agent.toml` text, already checked with [`AgentConfig::load`].
pub fn render(input: &ConfigInput<'_>) -> Result<String> {
    let mut t = Table::new();
    let s = |v: &str| Value::String(v.to_owned());
    t.insert("server_url".into(), s(input.server_url));
    // Empty: install.sh writes the board's /etc/machine-id here (and the agent falls back to
    // it by itself should that ever not happen).
    t.insert("device_id".into(), s(input.device_id.unwrap_or("")));
    t.insert("data_dir".into(), s(DATA_DIR));
    t.insert("ca_cert_path".into(), s(&format!("{ETC}/ca.pem")));
    if !input.provisioned {
        t.insert(
            "registration_cert_path".into(),
            s(&format!("{ETC}/register.pem")),
        );
        t.insert(
            "registration_key_path".into(),
            s(&format!("{ETC}/register.key")),
        );
    }
    if let Some(p) = input.link_profile {
        t.insert("link_profile".into(), s(p));
    }
    if let Some(fragment) = input.fragment {
        let over: Table = fragment
            .parse()
            .map_err(|e| ImageError::AgentConfig(format!("--agent-config: {e}")))?;
        merge(&mut t, over);
    }
    let text = format!(
        "# flotta agent configuration, written by flotta-image.\n{}",
        toml::to_string(&t).map_err(|e| ImageError::AgentConfig(e.to_string()))?
    );
    let cfg = validate(&text)?;
    if input.provisioned {
        // The identity's certificate names the device, and install.sh puts it in DATA_DIR: a
        // fragment must not point the agent elsewhere.
        if Some(cfg.device_id.as_str()) != input.device_id {
            return Err(ImageError::AgentConfig(format!(
                "--agent-config sets device_id {:?}, but the device was provisioned as {:?}",
                cfg.device_id,
                input.device_id.unwrap_or("")
            )));
        }
        if cfg.data_dir != Path::new(DATA_DIR) {
            return Err(ImageError::AgentConfig(format!(
                "--agent-config sets data_dir {:?}; with --provisioned the identity and frame \
                 keys are installed in {DATA_DIR}",
                cfg.data_dir
            )));
        }
    }
    Ok(text)
}

/// Load `text` with the agent's parser (defaults, then this file, no environment).
pub fn validate(text: &str) -> Result<AgentConfig> {
    let dir = tempfile::tempdir().map_err(ImageError::io(
        "creating a temporary directory",
        std::env::temp_dir(),
    ))?;
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, text).map_err(ImageError::io("writing", &path))?;
    AgentConfig::load(Some(Path::new(&path)), |_| None).map_err(|e| {
        // The agent names its file; ours is a scratch copy.
        ImageError::AgentConfig(
            e.to_string()
                .replace(&path.display().to_string(), "agent.toml"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(fragment: Option<&'a str>) -> ConfigInput<'a> {
        ConfigInput {
            server_url: "https://flotta.example:8043",
            device_id: None,
            link_profile: Some("nb-iot"),
            fragment,
            provisioned: false,
        }
    }

    #[test]
    fn generated_config_points_at_installed_paths_and_loads() {
        let text = render(&input(Some("[link]\nupload_interval_seconds = 900\n"))).unwrap();
        let cfg = validate(&text).unwrap();
        assert_eq!(cfg.server_url, "https://flotta.example:8043");
        assert_eq!(cfg.data_dir, Path::new("/var/lib/flotta"));
        assert_eq!(cfg.ca_cert_path, Path::new("/etc/flotta/ca.pem"));
        assert_eq!(
            cfg.registration_key_path,
            Path::new("/etc/flotta/register.key")
        );
        assert_eq!(cfg.link_profile, "nb-iot");
        assert_eq!(cfg.link.upload_interval_seconds, Some(900));
        assert!(text.contains("\ndevice_id = \"\"\n"), "{text}");
    }

    #[test]
    fn typos_and_bad_values_fail_at_write_time() {
        let err = render(&input(Some("[link]\nupload_intervall_seconds = 900\n")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("upload_intervall_seconds"), "{err}");
        let err = render(&input(Some("link_profile = \"carrier-pigeon\"\n")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("carrier-pigeon"), "{err}");
        let err = render(&ConfigInput {
            server_url: "http://plain",
            ..input(None)
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("https"), "{err}");
        let err = render(&input(Some("[link\n"))).unwrap_err().to_string();
        assert!(err.contains("--agent-config"), "{err}");
    }

    #[test]
    fn provisioned_config_has_no_registration_paths_and_keeps_id_and_data_dir() {
        let p = |fragment| ConfigInput {
            device_id: Some("sensor-0042"),
            provisioned: true,
            ..input(fragment)
        };
        let text = render(&p(Some(
            "links = [\"udp\"]\n[udp]\nserver_addr = \"frames.example:5684\"\n",
        )))
        .unwrap();
        assert!(!text.contains("registration"), "{text}");
        let cfg = validate(&text).unwrap();
        assert_eq!(cfg.device_id, "sensor-0042");
        assert_eq!(cfg.ca_cert_path, Path::new("/etc/flotta/ca.pem"));
        let err = render(&p(Some("device_id = \"other\"\n")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("provisioned as \"sensor-0042\""), "{err}");
        let err = render(&p(Some("data_dir = \"/srv/flotta\"\n")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data_dir") && err.contains("/var/lib/flotta"),
            "{err}"
        );
    }
}
