//! Sealed frames over UDP (NB-IoT, or any IP link without a TLS handshake):
//! one datagram up, one datagram down.
//!
//! The socket is bound to an ephemeral port and connected to the server's
//! address, resolved once when the carrier is opened (once per window), so
//! the kernel drops datagrams from any other source. What still arrives may
//! be spoofed: the caller's `is_answer` opens it under the frame context and
//! checks that it acknowledges the frame in flight; anything else is skipped
//! and the wait goes on until the attempt's deadline.
//!
//! Retransmission: the identical datagram (same counter, same bytes: the
//! server sees a duplicate and answers again; no nonce is used twice), after
//! `answer_timeout_ms`, then twice that, four times... (exponential back-off,
//! as CoAP does), `attempts` transmissions in all. An ICMP "port
//! unreachable" (`ECONNREFUSED` on a connected socket) does not end the
//! attempt early: the wait runs to its deadline, so a server restart costs
//! no extra transmissions.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use super::{CarrierError, FrameCarrier, Traffic, UdpConfig};

/// The largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;
/// The longest single wait, whatever the back-off says.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// A connected UDP socket carrying sealed frames.
#[derive(Debug)]
pub struct UdpCarrier {
    socket: UdpSocket,
    budget: usize,
    answer_timeout: Duration,
    attempts: u32,
    traffic: Traffic,
    buf: Vec<u8>,
}

impl UdpCarrier {
    /// Resolve `cfg.server_addr`, bind an ephemeral port of the same family
    /// and connect to it.
    ///
    /// # Errors
    /// [`CarrierError::Resolve`] if the name does not resolve,
    /// [`CarrierError::Io`] if the socket cannot be opened.
    pub fn open(cfg: &UdpConfig) -> Result<Self, CarrierError> {
        let resolve = |source| CarrierError::Resolve {
            addr: cfg.server_addr.clone(),
            source,
        };
        let addr = cfg
            .server_addr
            .to_socket_addrs()
            .map_err(resolve)?
            .next()
            .ok_or_else(|| resolve(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
        Self::connect(addr, cfg)
    }

    /// A carrier to the resolved `addr`.
    ///
    /// # Errors
    /// [`CarrierError::Io`] if the socket cannot be bound or connected.
    pub fn connect(addr: SocketAddr, cfg: &UdpConfig) -> Result<Self, CarrierError> {
        let io = |op| move |source| CarrierError::Io { op, source };
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local).map_err(io("bind"))?;
        socket.connect(addr).map_err(io("connect"))?;
        Ok(Self {
            socket,
            budget: cfg.frame_bytes,
            answer_timeout: Duration::from_millis(cfg.answer_timeout_ms),
            attempts: cfg.attempts.max(1),
            traffic: Traffic::default(),
            buf: vec![0; MAX_DATAGRAM],
        })
    }

    /// The local address (for tests and logs).
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Wait until `deadline` for a datagram `is_answer` accepts.
    fn await_answer(
        &mut self,
        deadline: Instant,
        is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Option<Vec<u8>>, CarrierError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.socket
                .set_read_timeout(Some(left))
                .map_err(|source| CarrierError::Io {
                    op: "set read timeout",
                    source,
                })?;
            match self.socket.recv(&mut self.buf) {
                Ok(n) => {
                    self.traffic.received += 1;
                    self.traffic.bytes_down += n as u64;
                    if is_answer(&self.buf[..n]) {
                        return Ok(Some(self.buf[..n].to_vec()));
                    }
                    self.traffic.ignored += 1;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                // ICMP unreachable from an earlier datagram, or a signal:
                // keep waiting until the deadline.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted
                    ) =>
                {
                    if e.kind() == io::ErrorKind::ConnectionRefused {
                        // Without a short pause a refused socket would spin.
                        std::thread::sleep(left.min(Duration::from_millis(50)));
                    }
                }
                Err(source) => return Err(CarrierError::Io { op: "recv", source }),
            }
        }
    }
}

impl FrameCarrier for UdpCarrier {
    fn name(&self) -> &'static str {
        "udp"
    }

    fn budget(&self) -> usize {
        self.budget
    }

    fn identifies_device(&self) -> bool {
        false
    }

    fn exchange(
        &mut self,
        frame: &[u8],
        is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, CarrierError> {
        if frame.len() > self.budget {
            return Err(CarrierError::TooLarge {
                len: frame.len(),
                budget: self.budget,
            });
        }
        let mut wait = self.answer_timeout;
        for _ in 0..self.attempts {
            match self.socket.send(frame) {
                Ok(_) => {
                    self.traffic.sent += 1;
                    self.traffic.bytes_up += frame.len() as u64;
                }
                // No route yet (a modem attaching) or an ICMP error of an
                // earlier datagram: this attempt is lost, the next may pass.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::NetworkUnreachable
                            | io::ErrorKind::HostUnreachable
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(source) => return Err(CarrierError::Io { op: "send", source }),
            }
            if let Some(answer) = self.await_answer(Instant::now() + wait, is_answer)? {
                return Ok(answer);
            }
            wait = (wait * 2).min(MAX_WAIT);
        }
        Err(CarrierError::NoAnswer {
            attempts: self.attempts,
        })
    }

    fn traffic(&self) -> Traffic {
        self.traffic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(addr: &str, timeout_ms: u64, attempts: u32) -> UdpConfig {
        UdpConfig {
            server_addr: addr.into(),
            answer_timeout_ms: timeout_ms,
            attempts,
            ..UdpConfig::default()
        }
    }

    /// A peer that answers each datagram with `noise` first and then
    /// `"ok:" + datagram`, except the first `drop` datagrams.
    fn peer(
        drop: usize,
        noise: &'static [u8],
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 2048];
            sock.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                seen.push(buf[..n].to_vec());
                if &buf[..n] == b"stop" {
                    break;
                }
                if seen.len() > drop {
                    sock.send_to(noise, from).unwrap();
                    let mut answer = b"ok:".to_vec();
                    answer.extend_from_slice(&buf[..n]);
                    sock.send_to(&answer, from).unwrap();
                }
            }
            seen
        });
        (addr, handle)
    }

    #[test]
    fn retransmits_the_same_bytes_and_skips_what_is_not_the_answer() {
        let (addr, server) = peer(2, b"forged");
        let mut c = UdpCarrier::open(&cfg(&addr.to_string(), 100, 4)).unwrap();
        let answer = c
            .exchange(b"frame-1", &mut |d: &[u8]| d.starts_with(b"ok:"))
            .unwrap();
        assert_eq!(answer, b"ok:frame-1");
        let t = c.traffic();
        // Two lost, the third answered (a slow peer may see a fourth).
        assert!(t.sent >= 3 && t.bytes_up == 7 * t.sent, "{t:?}");
        assert!(
            t.ignored >= 1 && t.received == t.ignored + 1,
            "forged ones skipped: {t:?}"
        );
        let _ = c.socket.send(b"stop");
        let seen = server.join().unwrap();
        assert_eq!(
            &seen[..3],
            &[
                b"frame-1".to_vec(),
                b"frame-1".to_vec(),
                b"frame-1".to_vec()
            ]
        );
    }

    #[test]
    fn gives_up_after_its_attempts_and_refuses_oversized_frames() {
        let (addr, server) = peer(usize::MAX, b"");
        let mut c = UdpCarrier::open(&cfg(&addr.to_string(), 20, 2)).unwrap();
        let err = c.exchange(b"x", &mut |_: &[u8]| true).unwrap_err();
        assert!(matches!(err, CarrierError::NoAnswer { attempts: 2 }) && err.is_retriable());
        assert_eq!(c.traffic().sent, 2);
        let big = vec![0u8; c.budget() + 1];
        let err = c.exchange(&big, &mut |_: &[u8]| true).unwrap_err();
        assert!(!err.is_retriable(), "{err}");
        let _ = c.socket.send(b"stop");
        server.join().unwrap();
    }

    #[test]
    fn an_unresolvable_address_is_a_retriable_error() {
        // No port: refused before any DNS query (a test must not depend on one).
        let err = UdpCarrier::open(&cfg("no-port-here", 10, 1)).unwrap_err();
        assert!(
            matches!(err, CarrierError::Resolve { .. }) && err.is_retriable(),
            "{err}"
        );
    }
}
