//! The client's TLS against a real rustls server (mutual TLS, TLS 1.3)
//! with an agent clock whose system time is injected: a certificate not
//! yet valid at agent time is accepted while the clock is unconfirmed, and
//! the server's `Date` corrects the clock; an expired one, a foreign CA and
//! (once the clock is confirmed) a not-yet-valid one are refused; later
//! connections resume the session.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, date_time_ymd};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{HandshakeKind, RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use crate::agent_time::{AgentClock, ManualSources, parse_http_date};
use crate::client::{ClientError, EdgeClient, Enrolment};
use crate::clock::Clock;
use crate::link::LinkProfile;

/// 2030-01-01T00:00:00Z: the device's system clock in these tests.
const WALL_2030_MS: u64 = 1_893_456_000_000;
/// What the server's `Date` says: a year later.
const DATE_2031: &str = "Wed, 01 Jan 2031 01:00:00 GMT";
/// A `Date` that agrees with the device.
const DATE_2030: &str = "Tue, 01 Jan 2030 00:00:10 GMT";

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A leaf for `localhost` valid from `from` to `to` (years, 1 Jan).
    fn leaf(&self, from: i32, to: i32) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.not_before = date_time_ymd(from, 1, 1);
        p.not_after = date_time_ymd(to, 1, 1);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }
}

fn roots(ca_pem: &str) -> RootCertStore {
    let mut r = RootCertStore::empty();
    r.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    r
}

/// A TLS 1.3 server demanding a client certificate from `ca`, presenting
/// `leaf`; answers `connections` requests (one per connection) with 208
/// and `Date: date`, and returns how each handshake went.
fn serve(
    ca: &Ca,
    leaf: (String, String),
    connections: usize,
    date: &'static str,
) -> (String, JoinHandle<Vec<Result<HandshakeKind, String>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let clients = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(&ca.pem())),
        Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(clients)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(leaf.0.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(leaf.1.as_bytes()).unwrap(),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let handle = std::thread::spawn(move || {
        let mut out = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let conn = ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = StreamOwned::new(conn, tcp);
            out.push(answer(&mut tls, date).map(|()| tls.conn.handshake_kind().unwrap()));
        }
        out
    });
    (url, handle)
}

/// Read one request (headers + content-length body), answer 208.
fn answer(
    tls: &mut StreamOwned<ServerConnection, std::net::TcpStream>,
    date: &str,
) -> Result<(), String> {
    let mut reader = BufReader::new(&mut *tls);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.is_empty() {
            return Err("closed".into());
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().map_err(|_| "bad length")?;
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    let response = format!(
        "HTTP/1.1 208 Already Reported\r\ndate: {date}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    tls.write_all(response.as_bytes())
        .map_err(|e| e.to_string())?;
    tls.conn.send_close_notify();
    tls.flush().map_err(|e| e.to_string())
}

/// The device: a client certificate from `ca`, the system clock in 2030.
fn client(ca: &Ca, url: &str, clock: &AgentClock) -> EdgeClient {
    let (cert, key) = ca.leaf(2020, 2040);
    let link = LinkProfile::preset("ethernet").unwrap();
    EdgeClient::with_clock(url, "dev-1", &ca.pem(), &cert, &key, &link, clock).unwrap()
}

fn clock_2030() -> AgentClock {
    AgentClock::new(ManualSources::at(WALL_2030_MS), 0)
}

#[test]
fn a_not_yet_valid_certificate_is_accepted_until_the_date_corrects_the_clock() {
    let ca = Ca::new("flotta test CA");
    // Issued in 2031: "not yet valid" for a device that believes it is 2030.
    let (url, server) = serve(&ca, ca.leaf(2031, 2032), 2, DATE_2031);
    let clock = clock_2030();
    let c = client(&ca, &url, &clock);
    assert_eq!(
        c.enrol("default", &serde_json::json!({})).unwrap(),
        Enrolment::Approved
    );
    // The server's Date moved agent time to 2031 and confirmed it.
    assert!(clock.is_confirmed());
    assert!(clock.now_ms() >= parse_http_date(DATE_2031).unwrap());
    let corrections = clock.take_corrections();
    assert_eq!(corrections.len(), 1, "{corrections:?}");
    // The certificate is valid at corrected time. (The jump made the first
    // connection's ticket look a year old: this handshake is a full one.)
    assert_eq!(
        c.enrol("default", &serde_json::json!({})).unwrap(),
        Enrolment::Approved
    );
    let kinds = server.join().unwrap();
    assert_eq!(
        kinds,
        vec![Ok(HandshakeKind::Full), Ok(HandshakeKind::Full)]
    );
}

#[test]
fn once_the_clock_is_confirmed_a_not_yet_valid_certificate_is_refused() {
    let ca = Ca::new("flotta test CA");
    let (url, server) = serve(&ca, ca.leaf(2031, 2032), 1, DATE_2031);
    let clock = clock_2030();
    // The server's Date agreed with 2030.
    clock.observe_server_time(WALL_2030_MS);
    assert!(clock.is_confirmed());
    let err = client(&ca, &url, &clock)
        .enrol("default", &serde_json::json!({}))
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err}");
    assert!(err.to_string().contains("not valid"), "{err}");
    assert!(server.join().unwrap()[0].is_err());
}

#[test]
fn an_expired_certificate_is_refused_even_while_unconfirmed() {
    let ca = Ca::new("flotta test CA");
    let (url, server) = serve(&ca, ca.leaf(2027, 2029), 1, DATE_2031);
    let clock = clock_2030();
    let err = client(&ca, &url, &clock)
        .enrol("default", &serde_json::json!({}))
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert!(!clock.is_confirmed());
    assert!(server.join().unwrap()[0].is_err());
}

#[test]
fn a_foreign_ca_is_refused_even_while_unconfirmed() {
    let ours = Ca::new("flotta test CA");
    let theirs = Ca::new("someone else");
    // Their server certificate, also "not yet valid": no excuse for it.
    let (url, server) = serve(&ours, theirs.leaf(2031, 2032), 1, DATE_2031);
    let clock = clock_2030();
    let err = client(&ours, &url, &clock)
        .enrol("default", &serde_json::json!({}))
        .unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert!(server.join().unwrap()[0].is_err());
}

#[test]
fn a_valid_certificate_is_checked_at_agent_time_not_system_time() {
    let ca = Ca::new("flotta test CA");
    // Valid 2029..2031: fine at agent time 2030 even with a system clock
    // in 1970, because the floor (here 2030) holds agent time up.
    let (url, server) = serve(&ca, ca.leaf(2029, 2031), 2, DATE_2030);
    let clock = AgentClock::new(ManualSources::at(1_000), WALL_2030_MS);
    let c = client(&ca, &url, &clock);
    for _ in 0..2 {
        assert_eq!(
            c.enrol("default", &serde_json::json!({})).unwrap(),
            Enrolment::Approved
        );
    }
    assert!(clock.is_confirmed(), "the Date agreed");
    assert!(clock.take_corrections().is_empty());
    // Mutual TLS 1.3, and the second connection resumes the session.
    assert_eq!(
        server.join().unwrap(),
        vec![Ok(HandshakeKind::Full), Ok(HandshakeKind::Resumed)]
    );
}
