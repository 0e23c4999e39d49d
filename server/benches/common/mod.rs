//! What the benchmarks share: a device's HTTPS client and reading a
//! process's resident memory.

use std::time::Duration;

use flotta_server::pki::IssuedCert;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

/// A device's client: its certificate, trusting `ca_pem`, a new connection
/// per request (a device waking up to send), HTTP errors as responses.
pub(crate) fn mtls_agent(ca_pem: &str, cert: &IssuedCert) -> ureq::Agent {
    let chain = vec![Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKey::from_pem(cert.key_pem.as_bytes()).unwrap();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&[Certificate::from_pem(
            ca_pem.as_bytes(),
        )
        .unwrap()]))
        .client_cert(Some(ClientCert::new_with_certs(&chain, key)))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .max_idle_connections(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// VmRSS of process `pid` (`self` for this one) in KiB; 0 when unreadable.
pub(crate) fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
