//! Byte-level HTTP/1.1 over mTLS (and plain TCP) for tests that stall,
//! trickle or lie about `Content-Length`: what an attacker does, which a
//! well-behaved HTTP client cannot.

use std::io;
use std::sync::Arc;

use flotta_server::pki::IssuedCert;
use flotta_server::testing::TestServer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A TLS 1.3 connection to the API presenting `cert`.
pub async fn connect(server: &TestServer, cert: &IssuedCert) -> io::Result<TlsStream<TcpStream>> {
    connect_to(server.api_addr, &server.ca_pem, cert).await
}

/// A TLS 1.3 connection to `addr` (trusting `ca_pem`) presenting `cert`.
pub async fn connect_to(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    cert: &IssuedCert,
) -> io::Result<TlsStream<TcpStream>> {
    connect_with(addr, client_config(ca_pem, cert)).await
}

/// A TLS 1.3 client configuration trusting `ca_pem` and presenting `cert`;
/// connections made with one configuration resume each other's sessions.
pub fn client_config(ca_pem: &str, cert: &IssuedCert) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(flotta_server::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS connection to `addr` with `config`.
pub async fn connect_with(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// Request headers (and the blank line) for `method path` with `extra` header lines.
pub fn head(method: &str, path: &str, extra: &[&str]) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n");
    for h in extra {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// Write all of `bytes`.
pub async fn send<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// A response: status, header block (lower-case), body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

/// Read one response (`None`: the connection ended before a whole one came).
pub async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> Option<Response> {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let headers = String::from_utf8_lossy(&buf[..end]).to_lowercase();
    let status = headers.get(9..12)?.parse().ok()?;
    let length: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    let mut body = buf[end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

/// Read until the server closes (end of stream or reset).
pub async fn until_closed<S: AsyncRead + Unpin>(s: &mut S) {
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk).await {
        if n == 0 {
            return;
        }
    }
}
