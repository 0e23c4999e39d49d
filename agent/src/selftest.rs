//! A short self-test run on real hardware or under qemu-user (work in progress).

use std::path::Path;

/// Run the self-test in `dir`.
pub fn run(dir: &Path) -> std::io::Result<String> {
    std::fs::create_dir_all(dir)?;
    Ok(format!("selftest ok in {}", dir.display()))
}
