//! What the simulated LoRaWAN modems share: the pseudo-terminal and its
//! thread (stopped and joined on drop, like the 9603's), the scriptable
//! knobs, and the class A MAC every dialect drives.
//!
//! - Lines end with `\n` (a preceding `\r` is dropped): both dialects take
//!   `\r\n`; an over-long line is cut, as a real UART buffer would.
//! - The MAC (`mac.rs`): a joined flag and session (FCntUp from 0 at each
//!   join, reported to [`LoraNetwork::joined`]), the data rate (a
//!   network-side ADR change is [`SimModem::set_data_rate`]), and one
//!   uplink at a time: the network sees it through [`LoraNetwork::uplink`]
//!   and the downlink it returns is the only one the device gets (class A),
//!   unless the uplink is lost ([`SimModem::lose_uplinks`]: the network
//!   never hears it, the modem still reports the transmission done).
//! - Knobs: joins that fail ([`SimModem::fail_joins`]), a busy MAC
//!   ([`SimModem::busy`]), a duty-cycle refusal
//!   ([`SimModem::no_free_channel`]), a hung modem ([`SimModem::set_hung`]:
//!   silent until unset; [`SimModem::hang_until_reset`]: silent to all but
//!   the reset command, which brings it back without its session).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios;

use super::network::LoraNetwork;

/// Longest command line kept (`AT+SEND=223:` and 484 hex digits fit).
const MAX_COMMAND: usize = 600;

/// Which AT dialect the simulated modem speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RAK3172, RUI3 (`rak3172.rs`).
    Rak3172,
    /// Microchip RN2483 (`rn2483.rs`).
    Rn2483,
}

/// Settings of a simulated modem.
#[derive(Debug, Clone)]
pub struct LoraModemConfig {
    /// Its DevEUI.
    pub dev_eui: [u8; 8],
    /// The data rate at start.
    pub data_rate: u8,
    /// Largest application payload per data rate (EU868 by default).
    pub max_payload: Vec<usize>,
    /// How long an uplink with its receive windows takes.
    pub tx_time: Duration,
    /// How long a join attempt takes.
    pub join_time: Duration,
    /// Whether it holds a session at start (joined before).
    pub joined: bool,
    /// RAK3172: print the downlink after `+EVT:TX_DONE` instead of before.
    pub rx_after_tx_done: bool,
    /// RSSI (dBm) and SNR (dB) reported for downlinks.
    pub rssi_snr: (i16, i8),
}

impl Default for LoraModemConfig {
    fn default() -> Self {
        Self {
            dev_eui: [0xac, 0x1f, 0x09, 0xff, 0xfe, 0x00, 0x00, 0x01],
            data_rate: 5,
            max_payload: vec![51, 51, 51, 115, 242, 242, 242],
            tx_time: Duration::from_millis(30),
            join_time: Duration::from_millis(30),
            joined: false,
            rx_after_tx_done: false,
            rssi_snr: (-70, 8),
        }
    }
}

/// What the simulated modem did (for assertions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoraModemStats {
    /// Join attempts started.
    pub join_attempts: u64,
    /// Joins accepted.
    pub joins: u64,
    /// Uplinks transmitted (lost ones included).
    pub uplinks: u64,
    /// Uplinks the network never heard.
    pub lost: u64,
    /// Commands refused as busy or for the duty cycle.
    pub refused: u64,
    /// Resets (`ATZ`, `sys reset`).
    pub resets: u64,
    /// Every command line received, in order.
    pub commands: Vec<String>,
    /// Every data uplink put on air (lost ones included), in order: the
    /// radio's own record, for duty-cycle and fair-use accounting.
    pub on_air: Vec<OnAir>,
    /// When each downlink arrived in a receive window: the radio's own
    /// record, for fair-use accounting.
    pub downlinks: Vec<std::time::Instant>,
}

/// One data uplink on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnAir {
    /// When its transmission started.
    pub at: std::time::Instant,
    /// Its data rate.
    pub dr: u8,
    /// Its application payload (FRMPayload), bytes.
    pub len: usize,
}

/// The MAC state and the knobs, shared with the modem's thread.
#[derive(Debug)]
pub(super) struct Control {
    pub(super) joined: bool,
    pub(super) f_cnt: u32,
    pub(super) data_rate: u8,
    pub(super) adr: bool,
    pub(super) confirmed: bool,
    pub(super) fail_joins: u32,
    pub(super) busy: u32,
    pub(super) no_free_ch: u32,
    pub(super) lose: u32,
    pub(super) hung: bool,
    pub(super) hung_until_reset: bool,
    pub(super) stats: LoraModemStats,
}

/// A simulated LoRaWAN modem (module docs). Stopped and joined on drop.
pub struct SimModem {
    path: PathBuf,
    control: Arc<Mutex<Control>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    dialect: Dialect,
}

impl SimModem {
    /// Open a pty and start a modem speaking `dialect` on it, behind
    /// `network`.
    ///
    /// # Errors
    /// `openpty` or thread errors.
    pub fn start(
        dialect: Dialect,
        network: Arc<dyn LoraNetwork>,
        cfg: LoraModemConfig,
    ) -> io::Result<Self> {
        let pty = nix::pty::openpty(None, None)?;
        let mut t = termios::tcgetattr(pty.slave.as_fd())?;
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(pty.slave.as_fd(), termios::SetArg::TCSANOW, &t)?;
        let path = nix::unistd::ttyname(pty.slave.as_fd())?;
        let control = Arc::new(Mutex::new(Control {
            joined: cfg.joined,
            f_cnt: 0,
            data_rate: cfg.data_rate,
            adr: true,
            confirmed: false,
            fail_joins: 0,
            busy: 0,
            no_free_ch: 0,
            lose: 0,
            hung: false,
            hung_until_reset: false,
            stats: LoraModemStats::default(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mut sim = Sim {
            master: File::from(pty.master),
            _slave: pty.slave,
            control: Arc::clone(&control),
            network,
            cfg,
            dialect,
            line: Vec::new(),
        };
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("lora-modem".into())
                .spawn(move || sim.run(&stop))?
        };
        Ok(Self {
            path,
            control,
            stop,
            thread: Some(thread),
            dialect,
        })
    }

    /// The tty path to give the agent (`lorawan.device`).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The AT dialect it speaks.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next `n` join attempts fail (then they succeed).
    pub fn fail_joins(&self, n: u32) {
        self.control().fail_joins = n;
    }

    /// The next `n` joins or uplinks are refused as busy.
    pub fn busy(&self, n: u32) {
        self.control().busy = n;
    }

    /// The next `n` joins or uplinks are refused for the duty cycle
    /// (RN2483 `no_free_ch`; RUI3 has no such code and says busy).
    pub fn no_free_channel(&self, n: u32) {
        self.control().no_free_ch = n;
    }

    /// The next `n` uplinks are lost on air (TX still reported done).
    pub fn lose_uplinks(&self, n: u32) {
        self.control().lose = n;
    }

    /// Hang (answer nothing at all) or recover.
    pub fn set_hung(&self, hung: bool) {
        self.control().hung = hung;
    }

    /// Answer nothing but the reset command, which brings the modem back
    /// (without its session).
    pub fn hang_until_reset(&self) {
        self.control().hung_until_reset = true;
    }

    /// The network moved the data rate (ADR).
    pub fn set_data_rate(&self, dr: u8) {
        self.control().data_rate = dr;
    }

    /// The session is lost (the network forgot the device).
    pub fn drop_session(&self) {
        self.control().joined = false;
    }

    /// Whether it holds a session.
    #[must_use]
    pub fn joined(&self) -> bool {
        self.control().joined
    }

    /// What the modem did so far.
    #[must_use]
    pub fn stats(&self) -> LoraModemStats {
        self.control().stats.clone()
    }
}

impl Drop for SimModem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The modem on its thread.
pub(super) struct Sim {
    master: File,
    /// Held so the pty never hangs up between the agent's windows.
    _slave: OwnedFd,
    control: Arc<Mutex<Control>>,
    pub(super) network: Arc<dyn LoraNetwork>,
    pub(super) cfg: LoraModemConfig,
    dialect: Dialect,
    line: Vec<u8>,
}

impl Sim {
    pub(super) fn control(&self) -> MutexGuard<'_, Control> {
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
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' => {
                    let line = String::from_utf8_lossy(&self.line)
                        .trim_end_matches('\r')
                        .to_owned();
                    self.line.clear();
                    if !line.is_empty() {
                        self.command(&line);
                    }
                }
                _ if self.line.len() < MAX_COMMAND => self.line.push(b),
                _ => {}
            }
        }
    }

    fn command(&mut self, line: &str) {
        let is_reset = match self.dialect {
            Dialect::Rak3172 => line.eq_ignore_ascii_case("ATZ"),
            Dialect::Rn2483 => line == "sys reset",
        };
        {
            let mut c = self.control();
            if c.hung {
                return;
            }
            c.stats.commands.push(line.to_owned());
            if c.hung_until_reset {
                if !is_reset {
                    return;
                }
                c.hung_until_reset = false;
            }
            if is_reset {
                c.stats.resets += 1;
                c.joined = false;
            }
        }
        match self.dialect {
            Dialect::Rak3172 => self.rak_command(line),
            Dialect::Rn2483 => self.rn_command(line),
        }
    }

    /// Write `lines`, each ended by `\r\n`.
    pub(super) fn say(&mut self, lines: &[&str]) {
        let mut out = String::new();
        for l in lines {
            out += l;
            out += "\r\n";
        }
        let _ = self.master.write_all(out.as_bytes());
    }
}
