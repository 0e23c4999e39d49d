//! Loopback UDP peers for the UDP link emulator's tests: a socket whose every
//! received datagram is recorded by a thread of its own (and, for an echo
//! peer, sent back to its source); paced sending that waits for the link to
//! settle; polling, numbered datagrams and views of what arrived.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use flotta_e2e::link::{DatagramRecord, Direction, HEAD_BYTES, UdpLink};

/// Generous: the machine may be busy; only a failure waits this long.
pub(crate) const SETTLE: Duration = Duration::from_secs(10);
/// Datagrams sent back to back before waiting for the link to pass them on,
/// so no socket buffer overflows (a kernel drop would look like loss).
pub(crate) const WINDOW: usize = 50;

/// How often the recording thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(20);

/// A datagram a peer received.
#[derive(Clone, Debug)]
pub(crate) struct Datagram {
    pub(crate) from: SocketAddr,
    pub(crate) data: Vec<u8>,
    pub(crate) at: Instant,
}

/// A loopback UDP socket that records what it receives; stopped and joined
/// on drop.
pub(crate) struct Peer {
    socket: UdpSocket,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Datagram>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Peer {
    /// Records and sends every datagram back to its source.
    pub(crate) fn echo() -> Self {
        Self::start(true)
    }

    /// Only records (a client, or an upstream the test answers by hand).
    pub(crate) fn silent() -> Self {
        Self::start(false)
    }

    fn start(echo: bool) -> Self {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind test peer");
        // Room for bursts; the kernel may cap it, which the tests' pacing allows for.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(1 << 20);
        let addr = socket.local_addr().expect("test peer address");
        let reader = socket.try_clone().expect("clone test peer socket");
        reader.set_read_timeout(Some(POLL)).expect("read timeout");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (recording, stopping) = (Arc::clone(&log), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut buf = vec![0; 65_536];
            while !stopping.load(Ordering::SeqCst) {
                let Ok((n, from)) = reader.recv_from(&mut buf) else {
                    continue;
                };
                let data = buf[..n].to_vec();
                if echo {
                    let _ = reader.send_to(&data, from);
                }
                lock(&recording).push(Datagram {
                    from,
                    data,
                    at: Instant::now(),
                });
            }
        });
        Self {
            socket,
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `data` to `to` from this peer's socket.
    pub(crate) fn send(&self, to: SocketAddr, data: &[u8]) {
        self.socket.send_to(data, to).expect("send datagram");
    }

    /// Everything received so far, in arrival order.
    pub(crate) fn received(&self) -> Vec<Datagram> {
        lock(&self.log).clone()
    }

    /// How many datagrams arrived so far.
    pub(crate) fn count(&self) -> usize {
        lock(&self.log).len()
    }

    /// Payloads received so far, in arrival order.
    pub(crate) fn payloads(&self) -> Vec<Vec<u8>> {
        lock(&self.log).iter().map(|d| d.data.clone()).collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) use flotta_e2e::wait::eventually;

/// A `len`-byte datagram (at least 4) that starts with sequence number `seq`.
pub(crate) fn numbered(seq: u32, len: usize) -> Vec<u8> {
    let mut data: Vec<u8> = (0..len.max(4))
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect();
    data[..4].copy_from_slice(&seq.to_be_bytes());
    data
}

/// The sequence number a [`numbered`] datagram starts with.
pub(crate) fn seq_of(data: &[u8]) -> u32 {
    let mut head = [0; 4];
    head.copy_from_slice(&data[..4]);
    u32::from_be_bytes(head)
}

/// Names of this process's threads (Linux `comm`, at most 15 bytes).
pub(crate) fn thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

/// Nothing in flight, each peer holds what the link delivered to it, and
/// (with an echoing upstream) every echo has reached the link.
pub(crate) fn settled(link: &UdpLink, upstream: &Peer, client: &Peer, echo: bool) -> bool {
    let stats = link.stats();
    stats.in_flight() == 0
        && upstream.count() as u64 == stats.up.delivered
        && client.count() as u64 == stats.down.delivered
        && (!echo || stats.down.offered == stats.up.delivered)
}

/// Waits until the link has read `offered` uplink datagrams in all and has
/// [`settled`].
pub(crate) fn settle(link: &UdpLink, upstream: &Peer, client: &Peer, echo: bool, offered: u64) {
    assert!(
        eventually(SETTLE, || link.stats().up.offered == offered
            && settled(link, upstream, client, echo)),
        "the link did not settle: {:?}, upstream has {}, client has {}",
        link.stats(),
        upstream.count(),
        client.count()
    );
}

/// Sends `payloads` from `client` through the link in windows, letting the
/// link and both peers settle after each.
pub(crate) fn send_all(
    link: &UdpLink,
    client: &Peer,
    upstream: &Peer,
    echo: bool,
    payloads: &[Vec<u8>],
) {
    let mut offered = link.stats().up.offered;
    for window in payloads.chunks(WINDOW) {
        for payload in window {
            client.send(link.addr(), payload);
        }
        offered += window.len() as u64;
        settle(link, upstream, client, echo, offered);
    }
}

pub(crate) fn numbered_run(count: u32, len: usize) -> Vec<Vec<u8>> {
    (0..count).map(|seq| numbered(seq, len)).collect()
}

/// `observed` is within `k` standard deviations of Binomial(`n`, `p`)'s mean.
pub(crate) fn binomial_ok(observed: u64, n: u64, p: f64, k: f64) -> bool {
    let n = n as f64;
    let sd = (n * p * (1.0 - p)).sqrt();
    (observed as f64 - n * p).abs() <= k * sd
}

pub(crate) fn records(link: &UdpLink, direction: Direction) -> Vec<DatagramRecord> {
    link.trace()
        .into_iter()
        .filter(|record| record.direction == direction)
        // The decision only: which reply is the n-th one down depends on
        // timing, so contents may differ between runs with one seed.
        .map(|record| DatagramRecord {
            head: [0; HEAD_BYTES],
            digest: 0,
            ..record
        })
        .collect()
}

/// How many times each sequence number arrived.
pub(crate) fn arrivals(peer: &Peer) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for data in peer.payloads() {
        *counts.entry(seq_of(&data)).or_default() += 1;
    }
    counts
}
