//! `flotta-image inspect` and `cat`: read-only looks at an image (`.img` opened read-only,
//! `.img.xz` decompressed to a scratch file first).

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use crate::bootfs::BootFs;
use crate::cmdline::Cmdline;
use crate::detect::{self, Detected};
use crate::error::{ImageError, Result};
use crate::partition::{self, Table};
use crate::source;
use crate::window::Window;
use crate::write::{LEGACY_DIR, PAYLOAD_FILES};

/// What `inspect` found.
#[derive(Debug)]
pub struct Report {
    /// The partition table.
    pub table: Table,
    /// Userland and flavour, or why the boot partition is not Raspberry Pi OS's.
    pub detected: std::result::Result<Detected, String>,
    /// The files of a flotta payload on the boot partition (empty: none): the `flotta-*` files
    /// in its root, and `flotta/NAME` for a directory an older flotta-image wrote.
    pub payload: Vec<String>,
    /// Whether cmdline.txt carries a firstrun hook.
    pub firstrun_hook: bool,
}

/// An image opened read-only: the file, kept with the scratch copy it may live in.
struct Opened {
    file: File,
    _scratch: Option<tempfile::NamedTempFile>,
}

fn open(image: &Path) -> Result<Opened> {
    if source::is_xz(image)? {
        let mut scratch = tempfile::NamedTempFile::new().map_err(ImageError::io(
            "creating a scratch file in",
            std::env::temp_dir(),
        ))?;
        source::copy_into(image, scratch.as_file_mut())?;
        let file = scratch
            .reopen()
            .map_err(ImageError::io("reopening", scratch.path()))?;
        return Ok(Opened {
            file,
            _scratch: Some(scratch),
        });
    }
    let file = File::open(image).map_err(ImageError::io("opening", image))?;
    Ok(Opened {
        file,
        _scratch: None,
    })
}

fn with_boot<T>(image: &Path, f: impl FnOnce(Table, &BootFs<&mut File>) -> Result<T>) -> Result<T> {
    let mut o = open(image)?;
    let len = o
        .file
        .metadata()
        .map_err(ImageError::io("reading", image))?
        .len();
    let table = partition::read_table(&mut o.file, len)?;
    let boot = table.boot()?.clone();
    let fs = BootFs::open(Window::new(&mut o.file, boot.start, boot.len), boot.number)?;
    f(table, &fs)
}

/// Inspect `image`.
pub fn inspect(image: &Path) -> Result<Report> {
    with_boot(image, |table, fs| {
        let detected = detect::detect(fs).map_err(|e| e.to_string());
        let mut payload: Vec<String> = fs
            .root_names()?
            .into_iter()
            .filter(|n| PAYLOAD_FILES.iter().any(|p| p.eq_ignore_ascii_case(n)))
            .collect();
        if let Some(old) = fs.dir_entries(LEGACY_DIR)? {
            payload.push(format!("{LEGACY_DIR}/"));
            payload.extend(old.into_iter().map(|(n, _)| format!("{LEGACY_DIR}/{n}")));
        }
        let firstrun_hook = fs
            .read_text("cmdline.txt")?
            .is_some_and(|t| Cmdline::parse(&t).has_firstrun());
        Ok(Report {
            table,
            detected,
            payload,
            firstrun_hook,
        })
    })
}

/// The bytes of `path` on the boot partition of `image`.
pub fn cat(image: &Path, path: &str) -> Result<Vec<u8>> {
    with_boot(image, |_, fs| {
        fs.read(path)?
            .ok_or_else(|| ImageError::Invalid(format!("{path} not found on the boot partition")))
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = format!("partition table: {:?}\n", self.table.kind);
        for p in &self.table.partitions {
            let _ = writeln!(
                s,
                "  {}: start {} MiB, {} MiB, type {}{}",
                p.number,
                p.start >> 20,
                p.len >> 20,
                p.kind,
                if p.fat_typed { " (FAT)" } else { "" }
            );
        }
        match &self.detected {
            Ok(d) => {
                let _ = writeln!(
                    s,
                    "userland: {} (kernels: {})",
                    d.userland,
                    d.kernels.join(", ")
                );
                let _ = writeln!(
                    s,
                    "first boot: {} (boot partition at {})",
                    d.flavour, d.boot_mount
                );
            }
            Err(e) => {
                let _ = writeln!(s, "not a Raspberry Pi OS boot partition: {e}");
            }
        }
        if self.payload.is_empty() {
            s.push_str("flotta payload: none\n");
        } else {
            let _ = writeln!(s, "flotta payload: {}", self.payload.join(", "));
        }
        let _ = writeln!(
            s,
            "firstrun hook in cmdline.txt: {}",
            if self.firstrun_hook { "yes" } else { "no" }
        );
        f.write_str(&s)
    }
}
