//! Helpers shared by the integration tests: TLS clients with client
//! certificates (ureq and Debian's curl), CSRs, batches.
// Test helpers: a panic is the right way to fail a test.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use flotta_proto::batch::{
    BATCH_CONTENT_TYPE, BATCH_FORMAT_VERSION, BatchRequest, BatchResponse, WireRecord, batch_path,
};
use flotta_proto::payload::{DeviceStatus, Heartbeat, Level, LogLine, Payload};
use flotta_server::pki::IssuedCert;
use flotta_server::testing::TestServer;
use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{Value, json};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

pub mod ctl;
pub mod frames;
pub mod raw;
pub mod rock7;

pub const API: &str = flotta_proto::batch::API_BASE;

/// A client presenting `cert` and trusting `ca_pem`.
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

/// A response: status, content type and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn new(server: &TestServer, cert: &IssuedCert) -> Self {
        Self::with_ca(server, &server.ca_pem, cert)
    }

    pub fn with_ca(server: &TestServer, ca_pem: &str, cert: &IssuedCert) -> Self {
        Self::for_base(&server.base_url(), ca_pem, cert)
    }

    pub fn for_base(base: &str, ca_pem: &str, cert: &IssuedCert) -> Self {
        let chain = vec![Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKey::from_pem(cert.key_pem.as_bytes()).unwrap();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&[Certificate::from_pem(
                ca_pem.as_bytes(),
            )
            .unwrap()]))
            .client_cert(Some(ClientCert::new_with_certs(&chain, key)))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent();
        Self {
            agent,
            base: base.to_owned(),
        }
    }

    fn finish(
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, ureq::Error> {
        let mut r = r?;
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = r.body_mut().with_config().limit(16 << 20).read_to_vec()?;
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    pub fn try_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        Self::finish(self.agent.get(format!("{}{path}", self.base)).call())
    }

    pub fn get(&self, path: &str) -> Reply {
        self.try_get(path).unwrap()
    }

    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        Self::finish(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("content-type", content_type)
                .send(body),
        )
        .unwrap()
    }

    /// POST with extra headers.
    pub fn post_with(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (Reply, Option<String>) {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send(body).unwrap();
        let encoding = resp
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        (Self::finish(Ok(resp)).unwrap(), encoding)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post(path, "application/json", body.to_string().as_bytes())
    }

    pub fn data_out(&self, id: &str, directive: &str, content: Value) -> Reply {
        self.post_json(
            &format!("{API}/data/{id}/out"),
            &json!({"type": "data", "directive": directive, "message_id": "m-1", "content": content}),
        )
    }

    pub fn enrol(&self, id: &str) -> Reply {
        self.data_out(
            id,
            "enrolment",
            json!({"target_namespace": "default", "features": {"hardware": {"hostname": id}}}),
        )
    }

    /// Register with a fresh key; returns the reply and the key (PEM).
    pub fn register_as(&self, id: &str, csr_cn: &str) -> (Reply, String) {
        let (csr, key) = csr(csr_cn);
        let reply = self.data_out(
            id,
            "registration",
            json!({"certificate_request": csr, "hardware": {"hostname": id}}),
        );
        (reply, key)
    }

    pub fn batch(&self, id: &str, req: &BatchRequest) -> Reply {
        self.post(&batch_path(id), BATCH_CONTENT_TYPE, &req.encode())
    }
}

/// A CSR (PEM) asking for CN=`cn` and a SAN, and its key (PEM).
pub fn csr(cn: &str) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "kube-system");
    (
        params.serialize_request(&key).unwrap().pem().unwrap(),
        key.serialize_pem(),
    )
}

/// Enrol and register `id` with the registration certificate; the device certificate.
pub fn onboard(server: &TestServer, id: &str) -> IssuedCert {
    let reg = Client::new(server, &server.registration);
    let r = reg.enrol(id);
    assert_eq!(r.status, 200, "{}", r.text());
    let (r, key_pem) = reg.register_as(id, id);
    issued(&r, key_pem)
}

/// The certificate of a successful registration answer, with its key.
pub fn issued(r: &Reply, key_pem: String) -> IssuedCert {
    assert_eq!(r.status, 200, "{}", r.text());
    let cert_pem = r.json()["content"]["certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    IssuedCert { cert_pem, key_pem }
}

pub fn log(seq: u64, msg: &str) -> WireRecord {
    let p = Payload::Log(LogLine {
        source: "agent".into(),
        level: Level::Info,
        message: msg.into(),
    });
    WireRecord {
        seq,
        at_ms: 1_700_000_000_000u64.saturating_add(seq),
        class: p.class(),
        payload: p.encode(),
    }
}

pub fn event(seq: u64, reason: &str, msg: &str) -> WireRecord {
    let p = Payload::Event(flotta_proto::payload::Event {
        reason: reason.into(),
        message: msg.into(),
        level: Level::Warn,
    });
    WireRecord {
        seq,
        at_ms: 1_700_000_000_000u64.saturating_add(seq),
        class: p.class(),
        payload: p.encode(),
    }
}

pub fn heartbeat(seq: u64, status: DeviceStatus) -> WireRecord {
    let p = Payload::Heartbeat(Heartbeat {
        status,
        agent_version: "0.1.0".into(),
        uptime_seconds: seq,
        queue_records: 0,
        queue_bytes: 0,
        dropped_records: [0; 3],
        damaged_bytes: 0,
        battery_percent: Some(80),
        workloads: vec![],
    });
    WireRecord {
        seq,
        at_ms: 1_700_000_000_000u64.saturating_add(seq),
        class: p.class(),
        payload: p.encode(),
    }
}

pub fn batch(config_version: &str, records: Vec<WireRecord>) -> BatchRequest {
    BatchRequest {
        format: BATCH_FORMAT_VERSION,
        config_version: config_version.into(),
        records,
        frame_epoch: None,
        upload_interval_seconds: None,
    }
}

pub fn batch_response(r: &Reply) -> BatchResponse {
    assert_eq!(r.status, 200, "{}", r.text());
    BatchResponse::decode(&r.body).unwrap()
}

/// PEM files on disk for curl.
pub struct CurlFiles {
    pub dir: tempfile::TempDir,
}

impl CurlFiles {
    pub fn new(ca_pem: &str, cert: &IssuedCert) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("ca.pem", ca_pem),
            ("cert.pem", &cert.cert_pem),
            ("key.pem", &cert.key_pem),
        ] {
            std::fs::File::create(dir.path().join(name))
                .and_then(|mut f| f.write_all(body.as_bytes()))
                .unwrap();
        }
        Self { dir }
    }

    /// Run curl; returns (HTTP status or 0 when no response, body, curl exit code).
    pub fn curl(&self, url: &str, extra: &[&str]) -> (u16, String, i32) {
        let p = |n: &str| self.dir.path().join(n).display().to_string();
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
            .args([
                "--cacert",
                &p("ca.pem"),
                "--cert",
                &p("cert.pem"),
                "--key",
                &p("key.pem"),
            ])
            .args(extra)
            .arg(url)
            .output()
            .expect("curl is installed");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", "0"));
        (
            code.trim().parse().unwrap_or(0),
            body.to_owned(),
            out.status.code().unwrap_or(-1),
        )
    }
}
