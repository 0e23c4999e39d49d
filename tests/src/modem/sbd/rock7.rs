//! Rock7 (RockBLOCK's ground service) simulated between the modem
//! simulator and a real `flotta-server`: a [`Gateway`] that posts each MO
//! to the server's webhook exactly as Rock7 does (form fields, an RS256 JWT
//! whose claims mirror them, signed with a test-only key), and serves
//! Rock7's MT API (`POST …/rockblock/MT` with `imei, username, password,
//! data, flush`; `OK,<id>` or `FAILED,<code>,<text>`).
//!
//! Faithful where it matters to the device and the server:
//! - MO delivery is at least once: a post that fails or is not answered
//!   200 is tried again after a delay; [`Rock7Config::redeliver_every`]
//!   posts every n-th MO twice (Rock7's "guaranteed" delivery does);
//! - posting happens on its own thread, after the session that carried the
//!   MO, so the server's answer reaches the modem by a ring alert, as it
//!   would through the real network;
//! - the MT queue follows `flush=yes` (the queue replaced) and refuses more
//!   than 270 bytes (`FAILED,15`); wrong credentials get `FAILED,10`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use flotta_server::rock7::mo::{decode_hex, encode_hex};

use super::gateway::{Gateway, MAX_MT};

/// Longest HTTP head or body the MT endpoint reads (Rock7 requests are small).
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// How the simulated Rock7 reaches the server and who may send MT.
#[derive(Debug, Clone)]
pub struct Rock7Config {
    /// The server's webhook listener (`webhook_listen_addr`).
    pub webhook: SocketAddr,
    /// The PKCS#8 PEM key JWTs are signed with (test-only).
    pub key_pem: Vec<u8>,
    /// The MT API account.
    pub username: String,
    /// Its password.
    pub password: String,
    /// Post every n-th MO twice (0: never).
    pub redeliver_every: u32,
    /// Wait before a failed post is tried again.
    pub retry_delay: Duration,
}

/// What crossed the simulated Rock7.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rock7Stats {
    /// MO posts answered 200 (re-deliveries included).
    pub mo_posted: u64,
    /// MO posts that failed or were not answered 200 (then tried again).
    pub mo_failed_posts: u64,
    /// MT messages accepted (`OK`).
    pub mt_accepted: u64,
    /// MT messages refused (`FAILED`).
    pub mt_refused: u64,
}

#[derive(Default)]
struct Counters {
    mo_posted: AtomicU64,
    mo_failed_posts: AtomicU64,
    mt_accepted: AtomicU64,
    mt_refused: AtomicU64,
}

struct Mo {
    imei: String,
    momsn: u16,
    data: Vec<u8>,
}

/// The simulated Rock7; hand an `Arc` of it to `SbdModem::start`.
pub struct Rock7Network {
    cfg: Rock7Config,
    mt_addr: SocketAddr,
    queues: Arc<Mutex<HashMap<String, VecDeque<Vec<u8>>>>>,
    counters: Arc<Counters>,
    posts: Mutex<Option<Sender<Mo>>>,
    mo_seen: AtomicU64,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Rock7Network {
    /// Start the MT endpoint and the MO poster.
    ///
    /// # Errors
    /// The MT endpoint cannot listen on loopback.
    pub fn start(cfg: Rock7Config) -> io::Result<Arc<Self>> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let mt_addr = listener.local_addr()?;
        let (tx, rx) = channel();
        let net = Arc::new(Self {
            cfg,
            mt_addr,
            queues: Arc::default(),
            counters: Arc::default(),
            posts: Mutex::new(Some(tx)),
            mo_seen: AtomicU64::new(0),
            stop: Arc::default(),
            threads: Mutex::default(),
        });
        let mt = MtEndpoint {
            listener,
            username: net.cfg.username.clone(),
            password: net.cfg.password.clone(),
            queues: net.queues.clone(),
            counters: net.counters.clone(),
            stop: net.stop.clone(),
        };
        let poster = Poster {
            cfg: net.cfg.clone(),
            counters: net.counters.clone(),
            stop: net.stop.clone(),
        };
        let mut threads = lock(&net.threads);
        threads.push(std::thread::spawn(move || mt.serve()));
        threads.push(std::thread::spawn(move || poster.run(&rx)));
        drop(threads);
        Ok(net)
    }

    /// The MT API's URL (the server's `rock7_mt_url`).
    #[must_use]
    pub fn mt_url(&self) -> String {
        format!("http://{}/rockblock/MT", self.mt_addr)
    }

    /// What crossed it so far.
    #[must_use]
    pub fn stats(&self) -> Rock7Stats {
        let c = &self.counters;
        Rock7Stats {
            mo_posted: c.mo_posted.load(Ordering::SeqCst),
            mo_failed_posts: c.mo_failed_posts.load(Ordering::SeqCst),
            mt_accepted: c.mt_accepted.load(Ordering::SeqCst),
            mt_refused: c.mt_refused.load(Ordering::SeqCst),
        }
    }

    /// Stop both threads and wait for them (MOs not yet posted are lost,
    /// as they would be if Rock7 went away).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        lock(&self.posts).take();
        // Wake the accept loop.
        let _ = TcpStream::connect(self.mt_addr);
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Rock7Network {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Gateway for Rock7Network {
    fn deliver_mo(&self, imei: &str, momsn: u16, data: &[u8]) {
        let n = self.mo_seen.fetch_add(1, Ordering::SeqCst) + 1;
        let copies = match self.cfg.redeliver_every {
            0 => 1,
            every if n.is_multiple_of(u64::from(every)) => 2,
            _ => 1,
        };
        if let Some(tx) = lock(&self.posts).as_ref() {
            for _ in 0..copies {
                let _ = tx.send(Mo {
                    imei: imei.into(),
                    momsn,
                    data: data.to_vec(),
                });
            }
        }
    }

    fn take_mt(&self, imei: &str) -> Option<Vec<u8>> {
        lock(&self.queues).get_mut(imei)?.pop_front()
    }

    fn mt_queued(&self, imei: &str) -> usize {
        lock(&self.queues).get(imei).map_or(0, VecDeque::len)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Posts MOs to the webhook, each until it is answered 200.
struct Poster {
    cfg: Rock7Config,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Poster {
    fn run(&self, rx: &Receiver<Mo>) {
        while let Ok(mo) = rx.recv() {
            while !self.stop.load(Ordering::SeqCst) {
                match self.post(&mo) {
                    Ok(200) => {
                        self.counters.mo_posted.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    _ => {
                        self.counters.mo_failed_posts.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(self.cfg.retry_delay);
                    }
                }
            }
        }
    }

    /// One form post as Rock7's `HTTP_POST` delivery makes it; the status.
    fn post(&self, mo: &Mo) -> io::Result<u16> {
        let fields = [
            ("imei", mo.imei.clone()),
            ("serial", "206899".to_owned()),
            ("momsn", mo.momsn.to_string()),
            ("transmit_time", "26-12-01 21:40:07".to_owned()),
            ("iridium_latitude", "52.3867".to_owned()),
            ("iridium_longitude", "0.2938".to_owned()),
            ("iridium_cep", "8.0".to_owned()),
            ("data", encode_hex(&mo.data)),
        ];
        let mut claims = serde_json::Map::new();
        for (k, v) in &fields {
            claims.insert((*k).into(), v.clone().into());
        }
        claims.insert("iss".into(), "Rock 7".into());
        claims.insert("iat".into(), 1_764_625_207.into());
        let jwt = flotta_server::rock7::testing::sign_jwt(
            &self.cfg.key_pem,
            &serde_json::json!({"alg": "RS256"}),
            &claims.into(),
        )
        .map_err(io::Error::other)?;
        let mut form: Vec<(&str, String)> = fields.to_vec();
        form.push(("JWT", jwt));
        let body = serde_urlencoded::to_string(&form).map_err(io::Error::other)?;
        let mut s = TcpStream::connect_timeout(&self.cfg.webhook, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "POST /rock7/mo HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.cfg.webhook,
            body.len()
        )?;
        let mut status = String::new();
        BufReader::new(s).read_line(&mut status)?;
        status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status:?}")))
    }
}

/// Rock7's MT API.
struct MtEndpoint {
    listener: TcpListener,
    username: String,
    password: String,
    queues: Arc<Mutex<HashMap<String, VecDeque<Vec<u8>>>>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl MtEndpoint {
    fn serve(&self) {
        for stream in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(stream) = stream else { continue };
            let _ = self.handle(stream);
        }
    }

    fn handle(&self, mut stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut len = 0usize;
        let mut head = 0usize;
        loop {
            let mut line = String::new();
            head += reader.read_line(&mut line)?;
            if head > MAX_REQUEST_BYTES {
                return Err(io::Error::other("request head too long"));
            }
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        if len > MAX_REQUEST_BYTES {
            return Err(io::Error::other("request body too long"));
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let form: HashMap<String, String> =
            serde_urlencoded::from_bytes(&body).map_err(io::Error::other)?;
        let reply = self.mt(&form);
        if reply.starts_with("OK") {
            self.counters.mt_accepted.fetch_add(1, Ordering::SeqCst);
        } else {
            self.counters.mt_refused.fetch_add(1, Ordering::SeqCst);
        }
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{reply}",
            reply.len()
        )
    }

    /// Rock7's answer to one MT request.
    fn mt(&self, form: &HashMap<String, String>) -> String {
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if field("username") != self.username || field("password") != self.password {
            return "FAILED,10,Invalid login credentials".into();
        }
        let Some(data) = decode_hex(field("data")) else {
            return "FAILED,14,Could not decode hex data".into();
        };
        if data.len() > MAX_MT {
            return "FAILED,15,Data too long".into();
        }
        let mut queues = lock(&self.queues);
        let queue = queues.entry(field("imei").to_owned()).or_default();
        if field("flush") == "yes" {
            queue.clear();
        }
        queue.push_back(data);
        format!(
            "OK,{}",
            self.counters.mt_accepted.load(Ordering::SeqCst) + 1
        )
    }
}
