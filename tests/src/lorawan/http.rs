//! The little HTTP/1.1 both network-server simulators need: a server on
//! its own thread answering one request per connection (the downlink APIs
//! the flotta server calls), stopped on drop, and a client posting
//! webhooks the way ChirpStack and TTS do (one POST, a deadline, no retry).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request body the simulators read.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, `DELETE`…
    pub method: String,
    /// The path (query included).
    pub path: String,
    /// Headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A status and a JSON body.
pub type HttpResponse = (u16, String);

/// A server answering with a handler, one request per connection.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serve `handler` on 127.0.0.1 (an ephemeral port).
    ///
    /// # Errors
    /// Binding failed.
    pub fn start(
        handler: impl Fn(&HttpRequest) -> HttpResponse + Send + 'static,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &handler);
            }
        });
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    handler: &impl Fn(&HttpRequest) -> HttpResponse,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(());
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let Some((k, v)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let (status, body) = if len > MAX_BODY_BYTES {
        (413, "{}".to_owned())
    } else {
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        handler(&HttpRequest {
            method,
            path,
            headers,
            body,
        })
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} S\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// POST `body` (JSON) to `url` with `headers`, once, within 5 s (as
/// ChirpStack's integration does); the status, or the error text.
///
/// # Errors
/// The request did not get an answer.
pub fn post_json(url: &str, headers: &[(String, String)], body: &str) -> Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut req = agent.post(url).header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req.send(body)
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// A seeded generator for loss decisions (SplitMix64: reproducible runs).
#[derive(Debug, Clone)]
pub struct Loss {
    state: u64,
    rate: f64,
}

impl Loss {
    /// Lose a fraction `rate` (0.0..=1.0) of the posts, decided by `seed`.
    #[must_use]
    pub fn new(rate: f64, seed: u64) -> Self {
        Self {
            state: seed,
            rate: rate.clamp(0.0, 1.0),
        }
    }

    /// Whether the next post is lost.
    pub fn lose(&mut self) -> bool {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits as a fraction in [0, 1).
        #[allow(clippy::cast_precision_loss)]
        let x = (z >> 11) as f64 / (1u64 << 53) as f64;
        x < self.rate
    }
}

/// Lower-case hex of a DevEUI.
#[must_use]
pub fn eui_hex(eui: [u8; 8]) -> String {
    eui.iter().map(|b| format!("{b:02x}")).collect()
}

/// The UTC day number (days since the Unix epoch) of now: downlinks count per day.
#[must_use]
pub fn day_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

/// The EU868 LoRa modulation of an uplink data rate: (spreading factor,
/// bandwidth in Hz); DR7 (FSK) reported as SF7/250 kHz's neighbour is not
/// simulated.
#[must_use]
pub fn eu868_modulation(dr: u8) -> (u8, u32) {
    match dr {
        0..=5 => (12 - dr, 125_000),
        _ => (7, 250_000),
    }
}
