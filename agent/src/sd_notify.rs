//! systemd's service notifications, spoken directly (no libsystemd): a
//! datagram to `$NOTIFY_SOCKET` per message (`sd_notify(3)`).
//!
//! - `READY=1` once the queue is open (the unit is `Type=notify`);
//! - `WATCHDOG=1` from the event loop itself, at half of `$WATCHDOG_USEC`:
//!   a loop that stops turning stops the pings, and systemd restarts the
//!   agent (`WatchdogSec=` in the unit);
//! - `STATUS=` one line: queue depth and the last window's result;
//! - `STOPPING=1` when a stop begins.
//!
//! Without `$NOTIFY_SOCKET` (not under systemd) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where notifications go, and the watchdog's interval if one is armed.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the process environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
    /// `WATCHDOG_PID`).
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok(), std::process::id())
    }

    /// From `var`, for the process `pid`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, pid: u32) -> Self {
        let socket = var("NOTIFY_SOCKET").and_then(|path| {
            let addr = address(&path)?;
            UnixDatagram::unbound().ok().map(|s| (s, addr))
        });
        // The watchdog is ours unless it names another process.
        let for_us = var("WATCHDOG_PID").is_none_or(|p| p.trim() == pid.to_string());
        let watchdog = var("WATCHDOG_USEC")
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us && socket.is_some())
            .map(Duration::from_micros);
        Self { socket, watchdog }
    }

    /// How often the event loop pings the watchdog (half its timeout), if
    /// one is armed.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Whether systemd listens.
    pub fn is_active(&self) -> bool {
        self.socket.is_some()
    }

    /// Send `state` (`KEY=value` lines). Failures are ignored: systemd
    /// going away must not stop the agent.
    pub fn notify(&self, state: &str) {
        if let Some((socket, addr)) = &self.socket {
            let _ = socket.send_to_addr(state.as_bytes(), addr);
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `WATCHDOG=1`.
    pub fn watchdog(&self) {
        self.notify("WATCHDOG=1");
    }

    /// `STATUS=` (one line).
    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={}", one_line(status)));
    }

    /// `STOPPING=1` with a status line.
    pub fn stopping(&self, status: &str) {
        self.notify(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }
}

/// A status on one line, at most 200 bytes.
fn one_line(s: &str) -> String {
    let mut line: String = s.replace(['\n', '\r'], " ");
    if line.len() > 200 {
        let mut end = 200;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}

/// A `$NOTIFY_SOCKET` value as an address: a path, or `@name` for the
/// abstract namespace.
fn address(path: &str) -> Option<std::os::unix::net::SocketAddr> {
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt as _;
        return std::os::unix::net::SocketAddr::from_abstract_name(name).ok();
    }
    if path.starts_with('/') {
        return std::os::unix::net::SocketAddr::from_pathname(path).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn messages_reach_the_socket_as_systemd_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let p = path.to_str().unwrap();
        let n = Notifier::from_vars(
            vars(&[("NOTIFY_SOCKET", p), ("WATCHDOG_USEC", "6000000")]),
            7,
        );
        assert!(n.is_active());
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(3)));
        n.ready("queue 3 records\nsecond line");
        n.watchdog();
        n.status(&"é".repeat(150));
        n.stopping("SIGTERM");
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        for _ in 0..4 {
            let len = listener.recv(&mut buf).unwrap();
            got.push(String::from_utf8(buf[..len].to_vec()).unwrap());
        }
        assert_eq!(got[0], "READY=1\nSTATUS=queue 3 records second line");
        assert_eq!(got[1], "WATCHDOG=1");
        assert!(got[2].starts_with("STATUS=é") && got[2].len() <= "STATUS=".len() + 200);
        assert_eq!(got[3], "STOPPING=1\nSTATUS=SIGTERM");
    }

    #[test]
    fn the_watchdog_is_armed_only_for_this_process_and_with_a_socket() {
        let with =
            |pairs: &[(&str, &str)]| Notifier::from_vars(vars(pairs), 42).watchdog_interval();
        let sock = ("NOTIFY_SOCKET", "@flotta-test-notify");
        assert_eq!(
            with(&[sock, ("WATCHDOG_USEC", "60000000"), ("WATCHDOG_PID", "42")]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            with(&[sock, ("WATCHDOG_USEC", "60000000"), ("WATCHDOG_PID", "41")]),
            None
        );
        assert_eq!(with(&[sock, ("WATCHDOG_USEC", "0")]), None);
        assert_eq!(with(&[sock, ("WATCHDOG_USEC", "soon")]), None);
        assert_eq!(with(&[("WATCHDOG_USEC", "60000000")]), None);
        let off = Notifier::from_vars(vars(&[]), 42);
        assert!(!off.is_active());
        off.ready("nobody listens");
        assert!(!Notifier::from_vars(vars(&[("NOTIFY_SOCKET", "relative")]), 42).is_active());
    }
}
