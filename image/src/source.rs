//! Reading the input image: a raw `.img` or an `.img.xz`, decompressed as a stream (never
//! the whole image in memory) into a file. Runs of zeros are skipped with a seek instead of
//! written, so the copy of a mostly empty 4 GiB image is sparse and quick.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use lzma_rust2::XzReader;

use crate::error::{ImageError, Result};

/// The magic bytes every `.xz` stream starts with.
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// Copy granularity; a block of zeros this long is a hole in the output.
const BLOCK: usize = 64 * 1024;

/// Whether `path` starts with the xz magic (the file name is not trusted).
pub fn is_xz(path: &Path) -> Result<bool> {
    let mut f = File::open(path).map_err(ImageError::io("opening", path))?;
    let mut magic = [0u8; 6];
    let mut got = 0;
    while got < magic.len() {
        match f
            .read(&mut magic[got..])
            .map_err(ImageError::io("reading", path))?
        {
            0 => break,
            n => got += n,
        }
    }
    Ok(got == magic.len() && magic == XZ_MAGIC)
}

/// A reader of the image's raw bytes.
pub fn open(path: &Path) -> Result<Box<dyn Read>> {
    let xz = is_xz(path)?;
    let f = File::open(path).map_err(ImageError::io("opening", path))?;
    let r = BufReader::with_capacity(1 << 20, f);
    Ok(if xz {
        Box::new(XzReader::new(r, true))
    } else {
        Box::new(r)
    })
}

/// Fill `buf` from `r` as far as it goes; the count read (short only at the end).
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Copy the raw image at `src` into `dst` (from offset 0, sparse); its length.
pub fn copy_into(src: &Path, dst: &mut File) -> Result<u64> {
    let mut r = open(src)?;
    let mut buf = vec![0u8; BLOCK];
    let mut len = 0u64;
    let mut hole = false;
    dst.seek(SeekFrom::Start(0))
        .map_err(ImageError::io("seeking", src))?;
    loop {
        let n = fill(r.as_mut(), &mut buf).map_err(|e| ImageError::Io {
            what: "decompressing",
            path: src.into(),
            source: e,
        })?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            dst.seek(SeekFrom::Current(n as i64))
                .map_err(ImageError::io("writing a copy of", src))?;
            hole = true;
        } else {
            dst.write_all(&buf[..n])
                .map_err(ImageError::io("writing a copy of", src))?;
            hole = false;
        }
        len += n as u64;
    }
    if hole || dst.metadata().map_or(true, |m| m.len() != len) {
        dst.set_len(len)
            .map_err(ImageError::io("writing a copy of", src))?;
    }
    Ok(len)
}
