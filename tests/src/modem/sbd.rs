//! A RockBLOCK 9603 on a pseudo-terminal, faithful at byte level to what
//! the agent's SBD driver relies on (Iridium ISU AT command reference,
//! RockBLOCK docs):
//!
//! - commands end with `\r` (a bare `\n` is ignored); echo until `ATE0`
//!   (and again after `ATZ`); unknown commands answer `ERROR`;
//! - `AT+SBDWB=<1..340>` → `READY`, then the bytes and a 2-byte checksum
//!   within the write timeout (60 s on a real unit, configurable) → `0`
//!   `OK`, `2` `OK` (checksum mismatch), `3` `OK` (size), or `1` without
//!   `OK` when the bytes do not all arrive;
//! - `AT+SBDIX`/`AT+SBDIXA`: a session whose outcome is scripted
//!   ([`SessionOutcome`], success when nothing is scripted); a successful
//!   one takes one MT from the [`Gateway`] *then* delivers the MO buffer
//!   (kept: only `AT+SBDD0` clears it, so a later session sends it again),
//!   MOMSN/MTMSN wrap at 16 bits, credits are counted (one per started 50
//!   bytes of each message, at least one per session);
//! - `SBDRING` when the gateway has an MT queued and `AT+SBDMTA=1` (once
//!   until the next successful session);
//! - `AT+SBDRB` (2-byte length, message, checksum), `AT+SBDD0/1/2`,
//!   `AT+SBDSX`, `AT+CGSN`, `ATZ`, `AT&K0`;
//! - a hung mode (answers nothing) and line noise on MO writes.

pub mod gateway;
pub mod rock7;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use gateway::{Gateway, MemoryGateway, MoMessage, MtRejected};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios;
pub use rock7::{Rock7Config, Rock7Network, Rock7Stats};

/// Largest MO message.
pub const MAX_MO: usize = 340;
/// Longest command line the simulator keeps.
const MAX_COMMAND: usize = 128;

/// How a scripted session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOutcome {
    /// MO status 0: delivered, MT fetched.
    Success,
    /// MO status > 2: 10 call timeout, 13 incomplete, 17 gateway not
    /// responding, 18 RF drop, 32 no network, 35 busy.
    Fail(u8),
}

/// Settings of a simulated modem.
#[derive(Debug, Clone)]
pub struct SbdModemConfig {
    /// Its IMEI (given to the gateway, answered to `AT+CGSN`).
    pub imei: String,
    /// How long `AT+SBDWB` waits for the bytes (60 s on a real 9603).
    pub write_timeout: Duration,
    /// How long a session takes.
    pub session_time: Duration,
    /// The first MOMSN (to test wrapping).
    pub momsn: u16,
    /// The last MTMSN.
    pub mtmsn: u16,
}

impl Default for SbdModemConfig {
    fn default() -> Self {
        Self {
            imei: "300434060000001".into(),
            write_timeout: Duration::from_secs(60),
            session_time: Duration::from_millis(20),
            momsn: 0,
            mtmsn: 0,
        }
    }
}

/// What the simulated modem did (for assertions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModemStats {
    /// Sessions started (`AT+SBDIX` and `AT+SBDIXA`).
    pub sessions: u64,
    /// Sessions that succeeded.
    pub successful_sessions: u64,
    /// Credits the sessions cost.
    pub credits: u64,
    /// Each successful session: when it ended and the credits it cost.
    pub charged: Vec<(std::time::Instant, u64)>,
    /// Every MO message accepted into the MO buffer (`AT+SBDWB` → 0).
    pub mo_written: Vec<Vec<u8>>,
    /// `AT+SBDWB` answers 2 (checksum mismatch).
    pub checksum_errors: u64,
    /// Ring alerts sent.
    pub rings: u64,
    /// `ATZ` resets.
    pub resets: u64,
    /// The MO buffer now.
    pub mo_buffer: Option<Vec<u8>>,
    /// The next MOMSN.
    pub momsn: u16,
    /// The last MTMSN.
    pub mtmsn: u16,
    /// Every command line received, in order.
    pub commands: Vec<String>,
}

/// The scriptable part of the modem, shared with its thread.
#[derive(Debug, Default)]
struct Control {
    outcomes: std::collections::VecDeque<SessionOutcome>,
    no_network: bool,
    hung: bool,
    ignore_commands: u32,
    corrupt_writes: u32,
    stats: ModemStats,
}

/// A simulated RockBLOCK 9603 (module docs). Stopped and joined on drop.
pub struct SbdModem {
    path: PathBuf,
    control: Arc<Mutex<Control>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SbdModem {
    /// Open a pty and start the modem on it, behind `gateway`.
    ///
    /// # Errors
    /// `openpty` or thread errors.
    pub fn start(gateway: Arc<dyn Gateway>, cfg: SbdModemConfig) -> io::Result<Self> {
        let pty = nix::pty::openpty(None, None)?;
        // Raw on both sides until the agent sets its own mode: no line
        // discipline echo or CR/LF translation between modem and agent.
        let mut t = termios::tcgetattr(pty.slave.as_fd())?;
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(pty.slave.as_fd(), termios::SetArg::TCSANOW, &t)?;
        let path = nix::unistd::ttyname(pty.slave.as_fd())?;
        let control = Arc::new(Mutex::new(Control {
            stats: ModemStats {
                momsn: cfg.momsn,
                mtmsn: cfg.mtmsn,
                ..ModemStats::default()
            },
            ..Control::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mut sim = Sim {
            master: File::from(pty.master),
            _slave: pty.slave,
            control: Arc::clone(&control),
            gateway,
            cfg,
            echo: true,
            ring_alerts: false,
            rung: false,
            line: Vec::new(),
            binary: None,
            mt_buffer: None,
        };
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("sbd-modem".into())
                .spawn(move || sim.run(&stop))?
        };
        Ok(Self {
            path,
            control,
            stop,
            thread: Some(thread),
        })
    }

    /// The tty path to give the agent (`sbd.device`).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Script the outcomes of the next sessions, in order (then success).
    pub fn script_sessions(&self, outcomes: impl IntoIterator<Item = SessionOutcome>) {
        self.control().outcomes.extend(outcomes);
    }

    /// No network service (every session fails with MO status 32, as a
    /// 9603 without sky view) until called again with `false`.
    pub fn no_network(&self, none: bool) {
        self.control().no_network = none;
    }

    /// Hang (answer nothing, ring never) or recover.
    pub fn set_hung(&self, hung: bool) {
        self.control().hung = hung;
    }

    /// Ignore the next `n` command lines (a modem that hangs, then
    /// recovers on the agent's reset).
    pub fn ignore_commands(&self, n: u32) {
        self.control().ignore_commands = n;
    }

    /// Line noise: the next `n` MO writes arrive with one byte flipped.
    pub fn corrupt_writes(&self, n: u32) {
        self.control().corrupt_writes = n;
    }

    /// What the modem did so far.
    #[must_use]
    pub fn stats(&self) -> ModemStats {
        self.control().stats.clone()
    }
}

impl Drop for SbdModem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An `AT+SBDWB` in progress: the expected length and the deadline.
struct Binary {
    len: usize,
    deadline: Instant,
    bytes: Vec<u8>,
}

/// The modem's state, on its thread.
struct Sim {
    master: File,
    /// Held so the pty never hangs up between the agent's windows.
    _slave: OwnedFd,
    control: Arc<Mutex<Control>>,
    gateway: Arc<dyn Gateway>,
    cfg: SbdModemConfig,
    echo: bool,
    ring_alerts: bool,
    rung: bool,
    line: Vec<u8>,
    binary: Option<Binary>,
    mt_buffer: Option<Vec<u8>>,
}

fn checksum(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |s, b| s.wrapping_add(u16::from(*b)))
}

fn credits(mo: usize, mt: usize) -> u64 {
    ((mo.div_ceil(50) + mt.div_ceil(50)) as u64).max(1)
}

impl Sim {
    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&mut self, stop: &AtomicBool) {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::SeqCst) {
            let readable = {
                let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
                matches!(poll(&mut fds, PollTimeout::from(10u16)), Ok(n) if n > 0)
                    && fds[0]
                        .revents()
                        .is_some_and(|r| r.contains(PollFlags::POLLIN))
            };
            if readable {
                match self.master.read(&mut buf) {
                    Ok(n) => self.input(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // No agent connected (EIO): wait for one.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            self.tick();
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let _ = self.master.write_all(bytes);
    }

    fn respond(&mut self, lines: &[&str]) {
        let mut out = String::new();
        for l in lines {
            out += "\r\n";
            out += l;
            out += "\r\n";
        }
        self.write(out.as_bytes());
    }

    /// Timers: the SBDWB write timeout, ring alerts.
    fn tick(&mut self) {
        if self.control().hung {
            return;
        }
        if self
            .binary
            .as_ref()
            .is_some_and(|b| Instant::now() >= b.deadline)
        {
            self.binary = None;
            self.respond(&["1"]);
        }
        if self.ring_alerts && !self.rung && self.gateway.mt_queued(&self.cfg.imei) > 0 {
            self.rung = true;
            self.control().stats.rings += 1;
            self.write(b"SBDRING\r\n");
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        if self.control().hung {
            return;
        }
        for &b in bytes {
            if let Some(bin) = &mut self.binary {
                bin.bytes.push(b);
                if bin.bytes.len() == bin.len + 2 {
                    let bin = self.binary.take().map(|b| b.bytes).unwrap_or_default();
                    self.mo_written(bin);
                }
                continue;
            }
            if self.echo {
                self.write(&[b]);
            }
            match b {
                b'\r' => {
                    let line = String::from_utf8_lossy(&self.line).trim().to_owned();
                    self.line.clear();
                    if !line.is_empty() {
                        self.command(&line);
                    }
                }
                b'\n' => {}
                _ if self.line.len() < MAX_COMMAND => self.line.push(b),
                _ => {}
            }
        }
    }

    fn mo_written(&mut self, mut bytes: Vec<u8>) {
        let corrupt = {
            let mut c = self.control();
            let corrupt = c.corrupt_writes > 0;
            c.corrupt_writes = c.corrupt_writes.saturating_sub(1);
            corrupt
        };
        if corrupt {
            bytes[0] ^= 0x20;
        }
        let (msg, sum) = bytes.split_at(bytes.len() - 2);
        if u16::from_be_bytes([sum[0], sum[1]]) != checksum(msg) {
            self.control().stats.checksum_errors += 1;
            self.respond(&["2", "OK"]);
            return;
        }
        let msg = msg.to_vec();
        {
            let mut c = self.control();
            c.stats.mo_written.push(msg.clone());
            c.stats.mo_buffer = Some(msg);
        }
        self.respond(&["0", "OK"]);
    }

    fn command(&mut self, line: &str) {
        {
            let mut c = self.control();
            c.stats.commands.push(line.to_owned());
            if c.ignore_commands > 0 {
                c.ignore_commands -= 1;
                return;
            }
        }
        let upper = line.to_ascii_uppercase();
        match upper.as_str() {
            "AT" | "AT&K0" | "AT&K3" => self.respond(&["OK"]),
            "ATE0" | "ATE1" => {
                self.echo = upper == "ATE1";
                self.respond(&["OK"]);
            }
            "ATZ" | "ATZ0" => {
                self.echo = true;
                self.ring_alerts = false;
                self.binary = None;
                self.control().stats.resets += 1;
                self.respond(&["OK"]);
            }
            "AT+SBDMTA=0" | "AT+SBDMTA=1" => {
                self.ring_alerts = upper.ends_with('1');
                self.rung = false;
                self.respond(&["OK"]);
            }
            "AT+CGSN" => {
                let imei = self.cfg.imei.clone();
                self.respond(&[&imei, "OK"]);
            }
            "AT+SBDIX" | "AT+SBDIXA" => self.session(),
            "AT+SBDRB" => {
                let msg = self.mt_buffer.clone().unwrap_or_default();
                let len = u16::try_from(msg.len()).unwrap_or(u16::MAX);
                let mut out = len.to_be_bytes().to_vec();
                out.extend_from_slice(&msg);
                out.extend_from_slice(&checksum(&msg).to_be_bytes());
                self.write(&out);
                self.respond(&["OK"]);
            }
            "AT+SBDD0" | "AT+SBDD1" | "AT+SBDD2" => {
                if upper != "AT+SBDD1" {
                    self.control().stats.mo_buffer = None;
                }
                if upper != "AT+SBDD0" {
                    self.mt_buffer = None;
                }
                self.respond(&["0", "OK"]);
            }
            "AT+SBDSX" => {
                let s = self.status_line();
                self.respond(&[&s, "OK"]);
            }
            _ => match upper.strip_prefix("AT+SBDWB=").map(str::parse::<usize>) {
                Some(Ok(len)) if (1..=MAX_MO).contains(&len) => {
                    self.respond(&["READY"]);
                    self.binary = Some(Binary {
                        len,
                        deadline: Instant::now() + self.cfg.write_timeout,
                        bytes: Vec::with_capacity(len + 2),
                    });
                }
                Some(Ok(_)) => self.respond(&["3", "OK"]),
                _ => self.respond(&["ERROR"]),
            },
        }
    }

    fn status_line(&self) -> String {
        let queued = self.gateway.mt_queued(&self.cfg.imei);
        let c = self.control();
        format!(
            "+SBDSX: {}, {}, {}, {}, {}, {}",
            u8::from(c.stats.mo_buffer.is_some()),
            c.stats.momsn,
            u8::from(self.mt_buffer.is_some()),
            c.stats.mtmsn,
            u8::from(self.rung),
            queued
        )
    }

    fn session(&mut self) {
        std::thread::sleep(self.cfg.session_time);
        let outcome = {
            let mut c = self.control();
            c.stats.sessions += 1;
            if c.no_network {
                SessionOutcome::Fail(32)
            } else {
                c.outcomes.pop_front().unwrap_or(SessionOutcome::Success)
            }
        };
        let (momsn, mtmsn) = {
            let c = self.control();
            (c.stats.momsn, c.stats.mtmsn)
        };
        if let SessionOutcome::Fail(code) = outcome {
            let line = format!("+SBDIX: {code}, {momsn}, 2, {mtmsn}, 0, 0");
            self.respond(&[&line, "OK"]);
            return;
        }
        // The MT is taken before the MO is delivered: an answer to this MO
        // is queued after the session and announced by a ring.
        let mt = self.gateway.take_mt(&self.cfg.imei);
        let mo = self.control().stats.mo_buffer.clone();
        let mut c = self.control();
        c.stats.successful_sessions += 1;
        let (mt_status, mt_len) = match &mt {
            Some(m) => {
                c.stats.mtmsn = c.stats.mtmsn.wrapping_add(1);
                (1, m.len())
            }
            None => (0, 0),
        };
        let mtmsn = c.stats.mtmsn;
        if mo.is_some() {
            c.stats.momsn = c.stats.momsn.wrapping_add(1);
        }
        let cost = credits(mo.as_ref().map_or(0, Vec::len), mt_len);
        c.stats.credits += cost;
        c.stats.charged.push((std::time::Instant::now(), cost));
        drop(c);
        if let Some(m) = mt {
            self.mt_buffer = Some(m);
        }
        // What the gateway held during the session; an answer to the MO
        // arrives after it.
        let queued = self.gateway.mt_queued(&self.cfg.imei);
        if let Some(mo) = &mo {
            self.gateway.deliver_mo(&self.cfg.imei, momsn, mo);
        }
        self.rung = false;
        let line = format!("+SBDIX: 0, {momsn}, {mt_status}, {mtmsn}, {mt_len}, {queued}");
        self.respond(&[&line, "OK"]);
    }
}
