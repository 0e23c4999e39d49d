//! A partition window: a bounded `Read + Write + Seek` view of one partition inside the image
//! file, so the FAT driver sees a whole disk and can never touch bytes outside its partition.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// The bytes `start..start + len` of `inner`.
#[derive(Debug)]
pub struct Window<F> {
    inner: F,
    start: u64,
    len: u64,
    pos: u64,
}

impl<F: Seek> Window<F> {
    /// A window over `len` bytes of `inner` from `start`.
    pub fn new(inner: F, start: u64, len: u64) -> Window<F> {
        Window {
            inner,
            start,
            len,
            pos: 0,
        }
    }

    /// The window's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bytes from the current position may be transferred, at most `want`.
    fn room(&self, want: usize) -> usize {
        let left = self.len.saturating_sub(self.pos);
        usize::try_from(left).map_or(want, |l| l.min(want))
    }

    fn seek_inner(&mut self) -> io::Result<()> {
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        Ok(())
    }
}

impl<F: Read + Seek> Read for Window<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.room(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.seek_inner()?;
        let got = self.inner.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl<F: Write + Seek> Write for Window<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.room(buf.len());
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        self.seek_inner()?;
        let put = self.inner.write(&buf[..n])?;
        self.pos += put as u64;
        Ok(put)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<F: Seek> Seek for Window<F> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match base {
            Some(p) if p <= self.len => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside the partition",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_and_writes_stay_inside_the_window() {
        let mut disk = Cursor::new(vec![0u8; 32]);
        {
            let mut w = Window::new(&mut disk, 8, 8);
            assert_eq!(w.write(&[1u8; 12]).unwrap(), 8);
            assert!(w.write(&[1]).is_err());
            assert!(w.seek(SeekFrom::Start(9)).is_err());
            w.seek(SeekFrom::End(-2)).unwrap();
            let mut b = [0u8; 4];
            assert_eq!(w.read(&mut b).unwrap(), 2);
            assert_eq!(w.read(&mut b).unwrap(), 0);
        }
        let d = disk.into_inner();
        assert_eq!(&d[..8], &[0; 8]);
        assert_eq!(&d[8..16], &[1; 8]);
        assert_eq!(&d[16..], &[0; 16]);
    }
}
