//! A serial port for modems: a tty opened with `O_NOCTTY` (a modem must
//! never become the agent's controlling terminal), raw 8N1 at a configured
//! baud rate, no flow control (hardware or software), reads with deadlines
//! (`poll`) and complete writes. Generic: the 9603 driver uses it through
//! the [`Port`] trait, so the AT engine is tested over any byte pipe.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{
    self, BaudRate, ControlFlags, InputFlags, SetArg, SpecialCharacterIndices,
};

/// A byte pipe to a modem: what the AT engine needs of a serial port.
pub trait Port {
    /// Read what is available into `buf`, waiting until `deadline` for the
    /// first byte; `Ok(0)` when the deadline passed with nothing to read.
    ///
    /// # Errors
    /// The port's I/O error (a vanished USB adapter, a hung-up pty).
    fn read_until(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize>;

    /// Write all of `bytes`.
    ///
    /// # Errors
    /// The port's I/O error.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Drop unread input (stale lines after a reset). The default does
    /// nothing.
    fn discard_input(&mut self) {}
}

/// Baud rates a serial modem may use.
pub const BAUD_RATES: &[u32] = &[
    1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200, 230_400,
];

fn baud_rate(baud: u32) -> io::Result<BaudRate> {
    Ok(match baud {
        1200 => BaudRate::B1200,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19_200 => BaudRate::B19200,
        38_400 => BaudRate::B38400,
        57_600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        230_400 => BaudRate::B230400,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported baud rate {baud}"),
            ));
        }
    })
}

/// An open tty in raw 8N1 mode.
#[derive(Debug)]
pub struct SerialPort {
    file: File,
}

impl SerialPort {
    /// Open `path` (`O_NOCTTY`, non-blocking) and set it raw, 8N1, `baud`,
    /// no flow control, modem control lines ignored (`CLOCAL`).
    ///
    /// # Errors
    /// The open or `tcsetattr` error, or an unsupported baud rate.
    pub fn open(path: &Path, baud: u32) -> io::Result<Self> {
        let speed = baud_rate(baud)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
            .open(path)?;
        let mut t = termios::tcgetattr(file.as_fd())?;
        termios::cfmakeraw(&mut t);
        termios::cfsetspeed(&mut t, speed)?;
        t.control_flags &= !(ControlFlags::PARENB
            | ControlFlags::CSTOPB
            | ControlFlags::CSIZE
            | ControlFlags::CRTSCTS);
        t.control_flags |= ControlFlags::CS8 | ControlFlags::CLOCAL | ControlFlags::CREAD;
        t.input_flags &= !(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
        t.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
        t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        termios::tcsetattr(file.as_fd(), SetArg::TCSANOW, &t)?;
        let port = Self { file };
        port.flush_input();
        Ok(port)
    }

    fn flush_input(&self) {
        let _ = termios::tcflush(self.file.as_fd(), termios::FlushArg::TCIFLUSH);
    }

    /// Wait until the port is readable (or writable) or `deadline` passes.
    fn wait(&self, flags: PollFlags, deadline: Instant) -> io::Result<bool> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Whole milliseconds, rounded up so a short wait is not a spin.
            let ms = u64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
            let timeout = PollTimeout::try_from(ms.min(60_000)).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.file.as_fd(), flags)];
            match poll(&mut fds, timeout) {
                Ok(0) if Instant::now() >= deadline => return Ok(false),
                Ok(0) => {}
                Ok(_) => return Ok(true),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Port for SerialPort {
    fn read_until(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            if !self.wait(PollFlags::POLLIN, deadline)? {
                return Ok(0);
            }
            match self.file.read(buf) {
                // A readable tty with nothing to read: hung up.
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "serial port hung up",
                    ));
                }
                Ok(n) => return Ok(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        // A modem that takes nothing for this long is gone.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while !bytes.is_empty() {
            match self.file.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait(PollFlags::POLLOUT, deadline)? {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "serial port write timed out",
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn discard_input(&mut self) {
        self.flush_input();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_baud_rates_and_missing_devices_are_errors() {
        assert!(baud_rate(19_200).is_ok());
        assert_eq!(
            baud_rate(12_345).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let err = SerialPort::open(Path::new("/nonexistent/ttyS9"), 19_200).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
