//! Loopback peers and client helpers for the link emulator's tests: an echo
//! server, an upstream that resets every connection, and timed round trips.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any single client read may block before the test calls it a hang.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What a loopback server does with each accepted connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Echo every byte until EOF, then close.
    Echo,
    /// Reset the connection at once.
    Reset,
}

/// A std-thread loopback server, stopped and joined on drop.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Echoes every connection.
    pub(crate) fn echo() -> Self {
        Self::start(Behaviour::Echo)
    }

    /// Resets every connection as soon as it is accepted.
    pub(crate) fn resetting() -> Self {
        Self::start(Behaviour::Reset)
    }

    fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind test server");
        let addr = listener.local_addr().expect("test server address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                match behaviour {
                    Behaviour::Echo => {
                        // Ends when the peer closes; never outlives the process's sockets.
                        thread::spawn(move || echo(stream));
                    }
                    Behaviour::Reset => reset(stream),
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the loop sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn echo(mut stream: TcpStream) {
    let mut buf = [0; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Closes with a RST (SO_LINGER = 0).
pub(crate) fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Connects with read and write timeouts set.
pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    try_connect(addr).expect("connect to the link")
}

/// [`connect`], failing instead of panicking: a link that refuses by
/// accepting and resetting at once can make `connect` itself see the reset
/// (the RST lands before the call returns; seen once under CI load).
pub(crate) fn try_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Writes `message` and reads back as many bytes.
pub(crate) fn exchange(stream: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(message)?;
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply)?;
    Ok(reply)
}

/// Sends `data` on a fresh connection while reading the echo on another
/// thread; returns the echo and how long the whole transfer took.
pub(crate) fn timed_echo(addr: SocketAddr, data: &[u8]) -> (Vec<u8>, Duration) {
    let mut stream = connect(addr);
    let mut writer = stream.try_clone().expect("clone stream");
    let started = Instant::now();
    let sent = data.to_vec();
    let writing = thread::spawn(move || writer.write_all(&sent));
    let mut echoed = vec![0; data.len()];
    stream.read_exact(&mut echoed).expect("read the echo");
    let elapsed = started.elapsed();
    writing.join().expect("writer thread").expect("write");
    (echoed, elapsed)
}

/// A fresh connection's echo of `message`, or the error that ended it.
pub(crate) fn round_trip(addr: SocketAddr, message: &[u8]) -> io::Result<Vec<u8>> {
    exchange(&mut try_connect(addr)?, message)
}

/// Whether an error is what a reset (not a timeout) looks like to a client.
pub(crate) fn is_reset(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Whether an error is a read timeout (nothing arrived, nothing closed).
pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

pub(crate) use flotta_e2e::wait::eventually;

/// `len` bytes of a repeating, position-dependent pattern.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect()
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
