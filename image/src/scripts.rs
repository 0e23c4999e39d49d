//! The first-boot scripts: `flotta-install.sh` (generated settings, then the fixed body in
//! `install_body.sh`) and, for images without cloud-init, `firstrun.sh`, which the kernel
//! command line runs once (`systemd.run=`) the way Raspberry Pi Imager's firstrun.sh is run.

use crate::error::{ImageError, Result};

/// The fixed part of install.sh.
const INSTALL_BODY: &str = include_str!("install_body.sh");

/// The first line of our firstrun.sh after the shebang: tells ours from a foreign one.
pub const FIRSTRUN_MARK: &str = "# flotta firstrun, written by flotta-image";

/// Settings baked into install.sh.
#[derive(Debug, Clone, Default)]
pub struct InstallSettings<'a> {
    /// New hostname, if any.
    pub hostname: Option<&'a str>,
    /// User for the ssh key (default: the uid-1000 user, else root).
    pub ssh_user: Option<&'a str>,
    /// Start the agent at once (cloud-init: boot goes on after runcmd).
    pub start_now: bool,
    /// Install a provisioned identity and frame keys (`--provisioned`) instead of the
    /// registration certificate and key.
    pub provisioned: bool,
}

/// Quote `s` for POSIX sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Check a hostname: one DNS label (RFC 1123), at most 63 characters.
pub fn check_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 63
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !h.starts_with('-')
        && !h.ends_with('-');
    if !ok {
        return Err(ImageError::Invalid(format!(
            "--hostname {h:?} is not a host name (letters, digits and inner '-', at most 63)"
        )));
    }
    Ok(())
}

/// Check a user name: `[a-z_][a-z0-9_-]*`, at most 32.
pub fn check_user(u: &str) -> Result<()> {
    let mut b = u.bytes();
    let ok = u.len() <= 32
        && b.next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if !ok {
        return Err(ImageError::Invalid(format!(
            "--user {u:?} is not a user name"
        )));
    }
    Ok(())
}

/// The complete install.sh.
pub fn install_sh(s: &InstallSettings<'_>) -> String {
    format!(
        "#!/bin/sh\n# flotta first-boot installer, written by flotta-image. Runs once, then deletes itself.\n\
         set -eu\nFLOTTA_HOSTNAME={}\nFLOTTA_SSH_USER={}\nFLOTTA_START_NOW={}\nFLOTTA_PROVISIONED={}\n{INSTALL_BODY}",
        sh_quote(s.hostname.unwrap_or("")),
        sh_quote(s.ssh_user.unwrap_or("")),
        u8::from(s.start_now),
        u8::from(s.provisioned),
    )
}

/// The complete firstrun.sh: runs flotta-install.sh, then removes its own cmdline.txt hook and itself
/// whatever install.sh did (a hook left behind would run on every boot), and exits 0 so that
/// `systemd.run_success_action=reboot` boots the installed system. When install.sh failed
/// before its own clean-up, the payload (the registration key or provisioned identity, the
/// Wi-Fi passphrase) is removed here all the same: the hook is gone, so nothing would ever
/// use it, and nothing secret may stay readable on the boot partition.
pub fn firstrun_sh() -> String {
    let payload: String = crate::write::PAYLOAD_FILES
        .iter()
        .map(|f| format!(" \"$BOOT/{f}\""))
        .collect();
    format!(
        "#!/bin/sh\n{FIRSTRUN_MARK}: runs flotta-install.sh once from the kernel command line\n\
         # (systemd.run=), then removes its cmdline.txt hook and itself.\n\
         set +e\n\
         BOOT=$(cd \"$(dirname \"$0\")\" && pwd -P)\n\
         sh \"$BOOT/flotta-install.sh\"\n\
         status=$?\n\
         if [ \"$status\" -ne 0 ]; then rm -f{payload}; fi\n\
         sed -i -e 's| systemd\\.run=[^ ]*/firstrun\\.sh||g' \\\n    \
         -e 's| systemd\\.run_success_action=reboot||g' \\\n    \
         -e 's| systemd\\.unit=kernel-command-line\\.target||g' \"$BOOT/cmdline.txt\"\n\
         rm -f \"$BOOT/firstrun.sh\"\n\
         sync\n\
         echo \"flotta firstrun: install.sh exited $status\"\n\
         exit 0\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_name_checks() {
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
        assert!(check_hostname("node-01").is_ok());
        for bad in ["", "-a", "a-", "a.b", "a b", &"x".repeat(64)] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
        assert!(check_user("pi").is_ok() && check_user("_svc-1").is_ok());
        assert!(
            check_user("Pi").is_err() && check_user("1a").is_err() && check_user("a;b").is_err()
        );
    }

    #[test]
    fn install_sh_removes_exactly_the_payload_files() {
        let body = INSTALL_BODY.replace("\\\n", " ");
        let rm = body
            .lines()
            .find(|l| l.trim_start().starts_with("rm "))
            .unwrap_or_default();
        let mut names: Vec<&str> = rm
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("\"$HERE/")?.strip_suffix('"'))
            .collect();
        let mut want = crate::write::PAYLOAD_FILES.to_vec();
        names.sort_unstable();
        want.sort_unstable();
        assert_eq!(names, want, "{rm}");
        let args: Vec<&str> = rm.split_whitespace().collect();
        assert!(args[..2] == ["rm", "-f"] && !rm.contains('*'), "{rm}");
        assert_eq!(body.lines().filter(|l| l.contains("rm ")).count(), 1);
    }

    #[test]
    fn scripts_are_posix_sh_with_set_eu() {
        let s = install_sh(&InstallSettings {
            hostname: Some("n1"),
            ssh_user: None,
            start_now: true,
            provisioned: false,
        });
        assert!(
            s.starts_with("#!/bin/sh\n")
                && s.contains("\nset -eu\n")
                && s.contains("FLOTTA_START_NOW=1\n")
        );
        assert!(
            firstrun_sh()
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with(FIRSTRUN_MARK))
        );
        for script in [s, firstrun_sh()] {
            let out = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
