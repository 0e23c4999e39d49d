//! Editing `cmdline.txt`, the kernel command line on the boot partition: one line of
//! space-separated tokens. Edits remove every token of a key before adding one, so applying
//! the same edit twice gives the same line, and tokens that are not ours are kept in order.

/// The tokens Raspberry Pi Imager appends to run `firstrun.sh` once from systemd
/// (`systemd.run=… systemd.run_success_action=reboot systemd.unit=kernel-command-line.target`,
/// see raspberrypi/rpi-imager's customisation code and the many firstrun.sh examples based
/// on it); the path is the boot partition's mount point plus `/firstrun.sh`.
pub const FIRSTRUN_KEYS: [&str; 3] = ["systemd.run", "systemd.run_success_action", "systemd.unit"];

/// The kernel parameter Raspberry Pi Imager sets for the Wi-Fi country (regulatory domain).
pub const REGDOM_KEY: &str = "cfg80211.ieee80211_regdom";

/// A parsed `cmdline.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline {
    tokens: Vec<String>,
    trailing_newline: bool,
}

/// The key of a token: the part before the first `=`, or the whole token.
fn key_of(token: &str) -> &str {
    token.split_once('=').map_or(token, |(k, _)| k)
}

impl Cmdline {
    /// Parse the file's text (any whitespace separates tokens).
    pub fn parse(text: &str) -> Cmdline {
        Cmdline {
            tokens: text.split_whitespace().map(str::to_owned).collect(),
            trailing_newline: text.ends_with('\n') || text.is_empty(),
        }
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The value of the first `key=value` token.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|t| key_of(t) == key)
            .map(|t| t.split_once('=').map_or("", |(_, v)| v))
    }

    /// Remove every token whose key is `key`.
    pub fn remove_key(&mut self, key: &str) {
        self.tokens.retain(|t| key_of(t) != key);
    }

    /// Set `key=value` once, at the end (after removing every earlier `key` token).
    pub fn set(&mut self, key: &str, value: &str) {
        self.remove_key(key);
        self.tokens.push(format!("{key}={value}"));
    }

    /// Whether the firstrun hook (any of [`FIRSTRUN_KEYS`]) is present.
    pub fn has_firstrun(&self) -> bool {
        FIRSTRUN_KEYS.iter().any(|k| self.get(k).is_some())
    }

    /// Add the firstrun hook for `script` (an absolute path on the board), replacing any earlier one.
    pub fn add_firstrun(&mut self, script: &str) {
        self.remove_firstrun();
        self.set("systemd.run", script);
        self.set("systemd.run_success_action", "reboot");
        self.set("systemd.unit", "kernel-command-line.target");
    }

    /// Remove the firstrun hook.
    pub fn remove_firstrun(&mut self) {
        for k in FIRSTRUN_KEYS {
            self.remove_key(k);
        }
    }

    /// Set the Wi-Fi regulatory domain (country code), before the firstrun hook if there is one.
    pub fn set_regdom(&mut self, country: &str) {
        let hook: Vec<String> = self
            .tokens
            .iter()
            .filter(|t| FIRSTRUN_KEYS.contains(&key_of(t)))
            .cloned()
            .collect();
        self.remove_firstrun();
        self.set(REGDOM_KEY, country);
        self.tokens.extend(hook);
    }

    /// The file's text: one line, single spaces, the original trailing newline kept.
    pub fn render(&self) -> String {
        let mut s = self.tokens.join(" ");
        if self.trailing_newline {
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PI: &str = "console=serial0,115200 console=tty1 root=PARTUUID=abcd1234-02 rootfstype=ext4 fsck.repair=yes rootwait\n";

    #[test]
    fn firstrun_hook_is_appended_once_and_removed_exactly() {
        let mut c = Cmdline::parse(PI);
        c.add_firstrun("/boot/firmware/firstrun.sh");
        c.add_firstrun("/boot/firmware/firstrun.sh");
        assert_eq!(
            c.render(),
            PI.replace(
                '\n',
                " systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n"
            )
        );
        c.set_regdom("DE");
        c.set_regdom("FR");
        assert!(
            c.render()
                .contains("rootwait cfg80211.ieee80211_regdom=FR systemd.run=")
        );
        c.remove_firstrun();
        c.remove_key(REGDOM_KEY);
        assert_eq!(c.render(), PI);
    }

    #[test]
    fn no_trailing_newline_is_kept_and_keys_match_whole() {
        let mut c = Cmdline::parse("a=1 systemd.runx=2 quiet");
        c.remove_firstrun();
        assert_eq!(c.render(), "a=1 systemd.runx=2 quiet");
        assert_eq!(c.get("quiet"), Some(""));
        assert!(!c.has_firstrun());
    }
}
