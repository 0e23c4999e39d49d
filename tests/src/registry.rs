//! A container registry that only checks credentials: it speaks enough of
//! the registry API v2 over plain HTTP on loopback for podman to send the
//! credentials of its auth file (`GET /v2/` answered `401` with a Basic
//! challenge, then again with `Authorization`), records every
//! `Authorization` header it is sent, and has no images (manifests are
//! `404 MANIFEST_UNKNOWN`), so a pull fails after the credentials were
//! shown. What a test proves with it: registry credentials reached podman.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The registry (module docs); it serves until the test process ends.
pub struct CredentialsRegistry {
    /// Where it listens (`127.0.0.1:port`).
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl CredentialsRegistry {
    /// Listen on a free loopback port.
    #[must_use]
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("loopback listener");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        Self { addr, seen }
    }

    /// Every `Authorization` header value received, in order.
    #[must_use]
    pub fn authorizations(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One connection, one request (`Connection: close`). A TLS hello (podman
/// tries HTTPS first) is not HTTP: the connection is dropped and podman
/// falls back to HTTP, as it does for an insecure registry.
fn serve(stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err()
        || !request.starts_with("GET ") && !request.starts_with("HEAD ")
    {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => {
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(v.trim().to_owned());
                }
            }
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or_default();
    let (status, body) = match (&authorization, path) {
        (None, _) => (
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
        ),
        (Some(_), "/v2/" | "/v2") => ("200 OK", "{}"),
        (Some(_), _) => (
            "404 Not Found",
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
        ),
    };
    if let Some(a) = authorization {
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(a);
    }
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\n\
         WWW-Authenticate: Basic realm=\"flotta-test\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = (&stream).write_all(response.as_bytes());
}
