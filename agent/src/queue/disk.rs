//! Free-space probe, injectable so that tests can simulate a filling disk.

use std::io;
use std::path::Path;

/// Reports the free space of the file system holding a directory.
pub trait DiskSpace {
    /// Bytes available to this (unprivileged) process.
    fn free_bytes(&self, dir: &Path) -> io::Result<u64>;
}

/// The real probe, from `statvfs(2)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StatVfs;

impl DiskSpace for StatVfs {
    fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
        #[allow(clippy::useless_conversion)] // the field types differ between targets
        Ok(u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size())))
    }
}
