//! Free disk space where the build writes, printed before and after each
//! step of `cargo xtask test`: a CI machine once ran out of disk in the
//! middle of linking the test binaries (a bus error from the linker, then
//! "No space left on device"), and the log did not say how close it was.

use std::path::Path;
use std::process::Command;

/// What a cold `cargo xtask test` writes, about (measured at stop 25: the
/// debug build 3.8 GiB with line tables only, the static builds and
/// clippy's metadata about 2 GiB more).
pub(crate) const COLD_RUN_NEEDS_GIB: f64 = 6.0;

/// Bytes free for an unprivileged writer on the filesystem holding
/// `path` (`df -Pk`), or `None` if `df` cannot tell.
pub(crate) fn free_bytes(path: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    if !out.status.success() {
        return None;
    }
    parse_df(&String::from_utf8_lossy(&out.stdout))
}

/// The "Available" column (KiB) of `df -Pk`'s one data line, in bytes.
fn parse_df(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    let available: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(available * 1024)
}

/// `12.3 GiB`.
pub(crate) fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_available_column() {
        let out = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                   /dev/vda         263174212 79691428  15728640      84% /\n";
        assert_eq!(parse_df(out), Some(15 << 30));
        assert_eq!(parse_df("Filesystem\n"), None);
        assert_eq!(gib(15 << 30), "15.0 GiB");
    }

    #[test]
    fn the_current_directory_has_a_size() {
        assert!(free_bytes(Path::new(".")).is_some());
    }
}
