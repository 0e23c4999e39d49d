//! The boot (FAT) partition, through `fatfs` on a [`Window`] of the image. Every timestamp
//! is the fixed DOS epoch (1980-01-01 00:00), so writing the same files twice gives the same
//! bytes. Files are only rewritten when their content changes, and removed files are gone.

use std::io::{Read, Seek, Write};

use fatfs::{Date, DateTime, FileSystem, FsOptions, Time, TimeProvider};

use crate::error::{ImageError, Result};
use crate::window::Window;

/// Timestamps for everything this tool writes: the DOS epoch, never the wall clock.
#[derive(Debug)]
struct FixedTime;

const EPOCH_DATE: Date = Date {
    year: 1980,
    month: 1,
    day: 1,
};

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> Date {
        EPOCH_DATE
    }
    fn get_current_date_time(&self) -> DateTime {
        DateTime {
            date: EPOCH_DATE,
            time: Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

static FIXED_TIME: FixedTime = FixedTime;

/// Storage the FAT driver can run on.
pub trait Disk: Read + Write + Seek {}
impl<T: Read + Write + Seek> Disk for T {}

/// A mounted boot partition.
pub struct BootFs<D: Disk> {
    fs: FileSystem<Window<D>>,
}

impl<D: Disk> BootFs<D> {
    /// Mount the FAT file system in `window`; `number` names the partition in errors.
    pub fn open(window: Window<D>, number: u32) -> Result<BootFs<D>> {
        let options = FsOptions::new()
            .time_provider(&FIXED_TIME)
            .update_accessed_date(false);
        let fs = FileSystem::new(window, options).map_err(|e| {
            ImageError::Unrecognised(format!(
                "partition {number} is not FAT (no FAT boot sector: {e})"
            ))
        })?;
        Ok(BootFs { fs })
    }

    /// Whether `path` exists (file or directory).
    pub fn exists(&self, path: &str) -> bool {
        let root = self.fs.root_dir();
        root.open_file(path).is_ok() || root.open_dir(path).is_ok()
    }

    /// The names of the entries in the root directory.
    pub fn root_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for e in self.fs.root_dir().iter() {
            let e = e.map_err(ImageError::BootFs)?;
            names.push(e.file_name());
        }
        Ok(names)
    }

    /// The entries of directory `dir` but `.` and `..`, each with whether it is a directory;
    /// `None` when there is no such directory.
    pub fn dir_entries(&self, dir: &str) -> Result<Option<Vec<(String, bool)>>> {
        let Ok(d) = self.fs.root_dir().open_dir(dir) else {
            return Ok(None);
        };
        let mut entries = Vec::new();
        for e in d.iter() {
            let e = e.map_err(ImageError::BootFs)?;
            let n = e.file_name();
            if n != "." && n != ".." {
                entries.push((n, e.is_dir()));
            }
        }
        Ok(Some(entries))
    }

    /// Read a file; `None` when it does not exist.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Ok(mut f) = self.fs.root_dir().open_file(path) else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| ImageError::BootFs(with_path(e, path)))?;
        Ok(Some(buf))
    }

    /// Read a UTF-8 text file; `None` when it does not exist.
    pub fn read_text(&self, path: &str) -> Result<Option<String>> {
        match self.read(path)? {
            None => Ok(None),
            Some(b) => String::from_utf8(b).map(Some).map_err(|_| {
                ImageError::Unrecognised(format!("{path} on the boot partition is not UTF-8 text"))
            }),
        }
    }

    /// Write `data` to `path` unless it already holds exactly that.
    pub fn write_if_changed(&self, path: &str, data: &[u8]) -> Result<()> {
        if self.read(path)?.as_deref() == Some(data) {
            return Ok(());
        }
        let root = self.fs.root_dir();
        let mut f = root
            .create_file(path)
            .map_err(|e| ImageError::BootFs(with_path(e, path)))?;
        f.truncate()
            .map_err(|e| ImageError::BootFs(with_path(e, path)))?;
        f.write_all(data)
            .map_err(|e| ImageError::BootFs(with_path(e, path)))?;
        f.flush()
            .map_err(|e| ImageError::BootFs(with_path(e, path)))?;
        Ok(())
    }

    /// Remove directory `path`, which must be empty, if present. (Nothing here creates
    /// directories: fatfs 0.3.6 writes them with long-name entries before `.` and `..`, and
    /// `..` of a directory in the root pointing at cluster 2, which fsck.fat "repairs" into a
    /// corrupt directory.)
    pub fn remove_empty_dir(&self, path: &str) -> Result<()> {
        if self.fs.root_dir().open_dir(path).is_ok() {
            self.fs
                .root_dir()
                .remove(path)
                .map_err(|e| ImageError::BootFs(with_path(e, path)))?;
        }
        Ok(())
    }

    /// Remove file `path` if present.
    pub fn remove_file(&self, path: &str) -> Result<()> {
        if self.fs.root_dir().open_file(path).is_ok() {
            self.fs
                .root_dir()
                .remove(path)
                .map_err(|e| ImageError::BootFs(with_path(e, path)))?;
        }
        Ok(())
    }

    /// Unmount, writing back the FAT's bookkeeping. The FAT32 free cluster count is counted
    /// first when the image left it unknown, so that fsck.fat finds it right.
    pub fn close(self) -> Result<()> {
        self.fs.stats().map_err(ImageError::BootFs)?;
        self.fs.unmount().map_err(ImageError::BootFs)
    }
}

fn with_path(e: std::io::Error, path: &str) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{path}: {e}"))
}
