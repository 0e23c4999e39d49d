//! The emulated Raspberry Pi Zero of `cargo xtask pi-boot`: the cached boot assets
//! (`scripts/pi-zero-assets.sh`), the firmware's part (cmdline.txt from the SD card's boot
//! partition becomes the kernel command line), `qemu-system-arm -M raspi0` killed by PID on
//! every path, and its serial console driven through a unix socket (an expect loop with
//! deadlines; everything it says is logged).

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::process;

/// Where `scripts/pi-zero-assets.sh` leaves the assets it built last (`current` links to
/// `<key>/`).
pub(crate) fn assets_dir() -> PathBuf {
    let base = match std::env::var_os("FLOTTA_CACHE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/flotta"),
    };
    base.join("pi-zero").join("current")
}

/// The kernel, device tree, initramfs and SD card image the board boots.
#[derive(Debug, Clone)]
pub(crate) struct Assets {
    pub(crate) dir: PathBuf,
    pub(crate) kernel: PathBuf,
    pub(crate) dtb: PathBuf,
    pub(crate) initrd: PathBuf,
    pub(crate) base_img: PathBuf,
}

impl Assets {
    /// The cached assets; an error saying how to build them if any is missing.
    pub(crate) fn find() -> Result<Self> {
        let link = assets_dir();
        let dir = std::fs::canonicalize(&link).unwrap_or(link);
        let a = Self {
            kernel: dir.join("vmlinuz"),
            dtb: dir.join("zero.dtb"),
            initrd: dir.join("initrd.gz"),
            base_img: dir.join("base.img"),
            dir,
        };
        for f in [&a.kernel, &a.dtb, &a.initrd, &a.base_img] {
            if !f.is_file() {
                bail!(
                    "{} is missing: build the emulated Pi Zero's assets with `scripts/setup.sh` \
                     (as root; it runs scripts/pi-zero-assets.sh, ~10 min cold)",
                    f.display()
                );
            }
        }
        Ok(a)
    }
}

/// What the Raspberry Pi firmware passes the kernel: cmdline.txt's first line, with
/// `serial0` replaced by the UART it names on a Pi Zero without Bluetooth (`ttyAMA0`), after
/// what this emulation needs instead of the firmware (the serial console first, and the
/// initramfs that loads the modules the real board has built in).
pub(crate) fn kernel_append(cmdline_txt: &str) -> String {
    let line = cmdline_txt.lines().next().unwrap_or("").trim();
    let line = line.replace("console=serial0", "console=ttyAMA0");
    format!("console=ttyAMA0,115200 rdinit=/init {line}")
}

/// The qemu command line for one boot.
pub(crate) fn qemu_command(assets: &Assets, sd: &Path, append: &str, serial: &Path) -> Command {
    let mut cmd = Command::new("qemu-system-arm");
    cmd.args(["-M", "raspi0", "-kernel"])
        .arg(&assets.kernel)
        .arg("-dtb")
        .arg(&assets.dtb)
        .arg("-initrd")
        .arg(&assets.initrd)
        .arg("-append")
        .arg(append)
        .arg("-drive")
        .arg(format!("file={},if=sd,format=raw", sd.display()))
        .args([
            "-netdev",
            "user,id=n0",
            "-device",
            "usb-net,netdev=n0",
            "-no-reboot",
            "-display",
            "none",
            "-monitor",
            "none",
            "-audiodev",
            "none,id=a0",
            "-serial",
        ])
        .arg(format!("unix:{},server=on,wait=on", serial.display()));
    cmd
}

/// A running `qemu-system-arm`, SIGKILLed by PID when dropped (unless it exited).
pub(crate) struct Qemu {
    child: Child,
    pub(crate) console: Console,
    started: Instant,
    /// `boot-<n>` (for messages).
    pub(crate) name: String,
}

impl Qemu {
    /// Boot `sd` with `append` as the kernel command line; the serial console is logged to
    /// `<dir>/<name>-serial.log` and qemu's own output to `<dir>/<name>-qemu.log`.
    pub(crate) fn boot(
        assets: &Assets,
        sd: &Path,
        append: &str,
        dir: &Path,
        name: &str,
    ) -> Result<Self> {
        let socket = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let qemu_log = dir.join(format!("{name}-qemu.log"));
        let out = std::fs::File::create(&qemu_log)?;
        let mut cmd = qemu_command(assets, sd, append, &socket);
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        std::fs::write(
            dir.join(format!("{name}-command.txt")),
            process::describe(&cmd) + "\n",
        )?;
        let line = process::describe(&cmd);
        let child = cmd.spawn().with_context(|| {
            format!("starting `{line}` (scripts/setup.sh installs qemu-system-arm)")
        })?;
        let started = Instant::now();
        let mut qemu = Self {
            child,
            console: Console::dummy(),
            started,
            name: name.to_owned(),
        };
        // qemu creates the socket and waits for us before it starts the machine.
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            if let Some(status) = qemu.child.try_wait()? {
                bail!(
                    "qemu exited at once ({status}): `{line}`\n{}",
                    std::fs::read_to_string(&qemu_log).unwrap_or_default()
                );
            }
            if let Ok(s) = UnixStream::connect(&socket) {
                break s;
            }
            if Instant::now() > deadline {
                bail!("qemu made no serial socket {} in 20 s", socket.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        qemu.console = Console::attach(stream, &dir.join(format!("{name}-serial.log")))?;
        Ok(qemu)
    }

    /// The process id (for messages).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time since qemu started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Wait up to `within` for qemu to exit (the guest rebooted or powered off: `-no-reboot`).
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                // Let the reader thread take the last bytes.
                std::thread::sleep(Duration::from_millis(200));
                return Ok(Some(status));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // A hard kill by PID: the guest's state on the SD card is whatever it wrote.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The guest's serial console: a reader thread copies everything to the log file and a
/// buffer; [`Console::expect`] searches the buffer from where the last match ended.
pub(crate) struct Console {
    writer: Option<UnixStream>,
    shared: Arc<Mutex<Vec<u8>>>,
    eof: Arc<AtomicBool>,
    pos: usize,
    marker: u32,
    pub(crate) log: PathBuf,
}

impl Console {
    fn dummy() -> Self {
        Self {
            writer: None,
            shared: Arc::default(),
            eof: Arc::new(AtomicBool::new(true)),
            pos: 0,
            marker: 0,
            log: PathBuf::new(),
        }
    }

    fn attach(stream: UnixStream, log: &Path) -> Result<Self> {
        let mut reader = stream.try_clone()?;
        let mut file = std::fs::File::create(log)?;
        let shared: Arc<Mutex<Vec<u8>>> = Arc::default();
        let eof = Arc::new(AtomicBool::new(false));
        let (s, e) = (Arc::clone(&shared), Arc::clone(&eof));
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let _ = file.write_all(&chunk[..n]);
                        let _ = file.flush();
                        if let Ok(mut b) = s.lock() {
                            b.extend_from_slice(&chunk[..n]);
                        }
                    }
                }
            }
            e.store(true, Ordering::SeqCst);
        });
        Ok(Self {
            writer: Some(stream),
            shared,
            eof,
            pos: 0,
            marker: 0,
            log: log.to_owned(),
        })
    }

    /// Wait up to `within` until `needle` appears after the last match; returns the text up to
    /// and including it (and moves past it).
    pub(crate) fn expect(&mut self, needle: &str, within: Duration) -> Result<String> {
        self.expect_with(within, needle, |text| {
            text.find(needle).map(|i| i + needle.len())
        })
    }

    /// [`Self::expect`] with a matcher returning the end of the match in the unread text.
    fn expect_with(
        &mut self,
        within: Duration,
        what: &str,
        matcher: impl Fn(&str) -> Option<usize>,
    ) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let (text, total) = {
                let b = self.shared.lock().map(|b| b.clone()).unwrap_or_default();
                let start = self.pos.min(b.len());
                (String::from_utf8_lossy(&b[start..]).into_owned(), b.len())
            };
            // Lossy decoding may change lengths: only advance on a clean (ASCII/UTF-8) prefix.
            if let Some(end) = matcher(&text) {
                let matched = text[..end].to_owned();
                self.pos = (self.pos + matched.len()).min(total);
                return Ok(matched);
            }
            if self.eof.load(Ordering::SeqCst) {
                bail!(
                    "the serial console closed (qemu exited) while waiting for {what:?}\n\
                     serial log ({}), last lines:\n{}",
                    self.log.display(),
                    self.tail(40)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "no {what:?} on the serial console within {within:?}\n\
                     serial log ({}), last lines:\n{}",
                    self.log.display(),
                    self.tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Type `text` on the console.
    pub(crate) fn send(&mut self, text: &str) -> Result<()> {
        let w = self.writer.as_mut().context("no serial console")?;
        // A 115200-baud UART with a small FIFO: do not flood it.
        for chunk in text.as_bytes().chunks(16) {
            w.write_all(chunk)?;
            w.flush()?;
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Run `command` in the logged-in shell; its exit status and output (without the echoed
    /// command line, escape sequences and carriage returns).
    pub(crate) fn run(&mut self, command: &str, within: Duration) -> Result<(i32, String)> {
        self.marker += 1;
        let n = self.marker;
        // The echoed command line has `"@@` between the number and the `@@` the
        // output has, so only the output matches.
        self.send(&format!("{command}; echo \"@@$?:{n}\"\"@@\"\n"))?;
        let end = format!(":{n}@@");
        let out = self
            .expect_with(within, &format!("the end of `{command}`"), |text| {
                let i = text.find(&end)?;
                let nl = text[i..].find('\n').map_or(text.len(), |j| i + j + 1);
                Some(nl)
            })
            .with_context(|| format!("running `{command}` on the guest's console"))?;
        let clean = strip_escapes(&out).replace('\r', "");
        let i = clean.rfind(&end).context("marker vanished")?;
        let start = clean[..i]
            .rfind("@@")
            .context("no status before the marker")?;
        let status: i32 = clean[start + 2..i].trim().parse().unwrap_or(-1);
        // Drop the echoed command (up to the first newline) and the status line.
        let body = &clean[..start];
        let body = body.split_once('\n').map_or("", |(_, rest)| rest);
        Ok((status, body.trim_end().to_owned()))
    }

    /// Run `command`; fail unless it exits 0. Its output.
    pub(crate) fn run_ok(&mut self, command: &str, within: Duration) -> Result<String> {
        let (status, out) = self.run(command, within)?;
        if status != 0 {
            bail!("`{command}` exited {status} on the guest:\n{out}");
        }
        Ok(out)
    }

    /// The last `lines` lines of the serial log, without escape sequences.
    pub(crate) fn tail(&self, lines: usize) -> String {
        let b = self.shared.lock().map(|b| b.clone()).unwrap_or_default();
        let text = strip_escapes(&String::from_utf8_lossy(&b)).replace('\r', "");
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// `text` without ANSI escape sequences (CSI `ESC [ ... letter`, and lone `ESC x`).
pub(crate) fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        // ESC x: drop both; ESC [ ...: drop up to the final letter.
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() || c == '~' {
                    break;
                }
            }
        }
    }
    out
}

/// `Key=Value` lines of `systemctl show` output.
pub(crate) fn show_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firmware_part_of_the_command_line() {
        let cmdline = "console=serial0,115200 console=tty1 root=PARTUUID=0f1a77a0-02 rootfstype=ext4 \
                       fsck.repair=yes rootwait systemd.run=/boot/firmware/firstrun.sh\n";
        assert_eq!(
            kernel_append(cmdline),
            "console=ttyAMA0,115200 rdinit=/init console=ttyAMA0,115200 console=tty1 \
             root=PARTUUID=0f1a77a0-02 rootfstype=ext4 fsck.repair=yes rootwait \
             systemd.run=/boot/firmware/firstrun.sh"
        );
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(
            strip_escapes("a\u{1b}[0;32mOK\u{1b}[0m b\u{1b}[?2004h"),
            "aOK b"
        );
    }

    #[test]
    fn systemctl_show_values() {
        let text = "ActiveState=active\nWatchdogUSec=1min\nNRestarts=0\r\n";
        assert_eq!(show_value(text, "ActiveState"), Some("active"));
        assert_eq!(show_value(text, "WatchdogUSec"), Some("1min"));
        assert_eq!(show_value(text, "NRestarts"), Some("0"));
        assert_eq!(show_value(text, "MainPID"), None);
    }

    #[test]
    fn the_qemu_line_boots_the_sd_card_without_rebooting() {
        let a = Assets {
            dir: "/c".into(),
            kernel: "/c/vmlinuz".into(),
            dtb: "/c/zero.dtb".into(),
            initrd: "/c/initrd.gz".into(),
            base_img: "/c/base.img".into(),
        };
        let line = process::describe(&qemu_command(
            &a,
            Path::new("/t/sd.img"),
            "x y",
            Path::new("/t/s.sock"),
        ));
        for part in [
            "-M raspi0",
            "-kernel /c/vmlinuz",
            "-dtb /c/zero.dtb",
            "-initrd /c/initrd.gz",
            "file=/t/sd.img,if=sd,format=raw",
            "-no-reboot",
            "usb-net,netdev=n0",
            "unix:/t/s.sock,server=on,wait=on",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
    }
}
