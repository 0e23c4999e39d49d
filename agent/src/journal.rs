//! The agent's own log lines on standard error, with their priority for
//! journald when standard error is the journal (`$JOURNAL_STREAM` names
//! it): `<3>` errors, `<4>` warnings, `<6>` the rest, which journald
//! strips and keeps as the entry's priority (`sd-daemon(3)`). Elsewhere
//! (a terminal, a file) lines are printed bare.

use std::sync::OnceLock;

/// A line's priority (syslog's numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Something failed that the agent cannot go on without.
    Err = 3,
    /// Something failed; the agent goes on.
    Warning = 4,
    /// Everything else.
    Info = 6,
}

/// Whether standard error is the journal's stream (`$JOURNAL_STREAM` is its
/// `device:inode`).
fn to_journal() -> bool {
    static TO_JOURNAL: OnceLock<bool> = OnceLock::new();
    *TO_JOURNAL.get_or_init(|| {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
            return false;
        };
        std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| is_stream(&stream, m.dev(), m.ino()))
    })
}

/// Whether `JOURNAL_STREAM` (`device:inode`) names `dev` and `ino`.
fn is_stream(value: &str, dev: u64, ino: u64) -> bool {
    value.trim() == format!("{dev}:{ino}")
}

/// `line` as printed for `priority`: `<N>` first when `journal`.
fn formatted(priority: Priority, line: &str, journal: bool) -> String {
    if journal {
        format!("<{}>flotta-agent: {line}", priority as u8)
    } else {
        format!("flotta-agent: {line}")
    }
}

/// Print `line` at `priority`.
pub fn print(priority: Priority, line: &str) {
    eprintln!("{}", formatted(priority, line, to_journal()));
}

/// Print `line` at [`Priority::Info`].
pub fn info(line: &str) {
    print(Priority::Info, line);
}

/// Print `line` at [`Priority::Warning`].
pub fn warn(line: &str) {
    print(Priority::Warning, line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_only_for_the_journal() {
        assert_eq!(
            formatted(Priority::Warning, "window failed", true),
            "<4>flotta-agent: window failed"
        );
        assert_eq!(formatted(Priority::Err, "x", true), "<3>flotta-agent: x");
        assert_eq!(formatted(Priority::Info, "x", false), "flotta-agent: x");
        assert!(is_stream("8:1234\n", 8, 1234));
        assert!(!is_stream("8:1235", 8, 1234));
        assert!(!is_stream("", 8, 1234));
    }
}
