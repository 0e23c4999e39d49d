//! Wi-Fi: the NetworkManager keyfile install.sh puts in
//! `/etc/NetworkManager/system-connections/` (Raspberry Pi OS bookworm and trixie use
//! NetworkManager), and the checks on SSID, passphrase and country. The passphrase is read
//! from a file or `FLOTTA_WIFI_PSK`, never from the command line (where `ps` shows it).

use crate::error::{ImageError, Result};

/// The environment variable the passphrase may come from.
pub const PSK_ENV: &str = "FLOTTA_WIFI_PSK";

/// A Wi-Fi network to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wifi {
    /// Network name.
    pub ssid: String,
    /// WPA passphrase (8..=63 printable ASCII) or 64 hex digits.
    pub psk: String,
}

/// Check an SSID: 1..=32 bytes, one line.
pub fn check_ssid(ssid: &str) -> Result<()> {
    if ssid.is_empty() || ssid.len() > 32 || ssid.chars().any(char::is_control) {
        return Err(ImageError::Invalid(format!(
            "--wifi-ssid must be 1 to 32 bytes without control characters, got {} bytes",
            ssid.len()
        )));
    }
    Ok(())
}

/// Check a WPA passphrase: 8..=63 printable ASCII characters, or a 64-hex-digit key.
pub fn check_psk(psk: &str) -> Result<()> {
    let printable = psk.bytes().all(|b| (0x20..0x7f).contains(&b));
    let hex = psk.len() == 64 && psk.bytes().all(|b| b.is_ascii_hexdigit());
    let passphrase = printable && (8..=63).contains(&psk.len());
    if !(hex || passphrase) {
        return Err(ImageError::Invalid(
            "the Wi-Fi passphrase must be 8 to 63 printable ASCII characters or 64 hex digits"
                .into(),
        ));
    }
    Ok(())
}

/// Check a country code: two ASCII capital letters (ISO 3166-1 alpha-2).
pub fn check_country(cc: &str) -> Result<()> {
    if cc.len() != 2 || !cc.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ImageError::Invalid(format!(
            "--wifi-country must be two capital letters (ISO 3166-1, e.g. DE), got {cc:?}"
        )));
    }
    Ok(())
}

/// The passphrase: the file's first line if a file is given, else `env`'s [`PSK_ENV`].
pub fn read_psk(file_text: Option<&str>, env: Option<String>) -> Result<String> {
    let psk = match (file_text, env) {
        (Some(t), _) => t.lines().next().unwrap_or("").to_owned(),
        (None, Some(v)) => v,
        (None, None) => {
            return Err(ImageError::Invalid(format!(
                "--wifi-ssid needs a passphrase: --wifi-psk-file FILE or the environment variable {PSK_ENV}"
            )));
        }
    };
    check_psk(&psk)?;
    Ok(psk)
}

impl Wifi {
    /// The NetworkManager keyfile (`flotta-wifi.nmconnection`).
    pub fn keyfile(&self) -> String {
        format!(
            "[connection]\nid=flotta-wifi\ntype=wifi\nautoconnect=true\n\n\
             [wifi]\nmode=infrastructure\nssid={}\n\n\
             [wifi-security]\nkey-mgmt=wpa-psk\npsk={}\n\n\
             [ipv4]\nmethod=auto\n\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n",
            escape(&self.ssid),
            escape(&self.psk)
        )
    }
}

/// Keyfile value escaping (GKeyFile): backslash, and leading space.
fn escape(v: &str) -> String {
    let mut s = v.replace('\\', "\\\\");
    if s.starts_with(' ') {
        s.replace_range(0..1, "\\s");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_comes_from_file_first_then_env_and_is_checked() {
        assert_eq!(
            read_psk(Some("secret-pass\n"), Some("other-pass".into())).unwrap(),
            "secret-pass"
        );
        assert_eq!(
            read_psk(None, Some("env-passphrase".into())).unwrap(),
            "env-passphrase"
        );
        assert!(
            read_psk(None, None)
                .unwrap_err()
                .to_string()
                .contains(PSK_ENV)
        );
        assert!(read_psk(Some("short\n"), None).is_err());
        assert!(read_psk(Some(&"a".repeat(64)), None).is_ok());
        assert!(read_psk(Some(&"g".repeat(64)), None).is_err());
    }

    #[test]
    fn ssid_country_and_keyfile() {
        assert!(
            check_ssid("").is_err()
                && check_ssid(&"x".repeat(33)).is_err()
                && check_ssid("a\nb").is_err()
        );
        assert!(
            check_country("DE").is_ok()
                && check_country("de").is_err()
                && check_country("DEU").is_err()
        );
        let k = Wifi {
            ssid: " lab\\net".into(),
            psk: "passphrase".into(),
        }
        .keyfile();
        assert!(
            k.contains("ssid=\\slab\\\\net\n") && k.contains("psk=passphrase\n"),
            "{k}"
        );
    }
}
