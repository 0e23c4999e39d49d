//! Start a real server in-process for tests: ephemeral ports on 127.0.0.1,
//! a temporary data directory, a fresh CA and a registration certificate.
//!
//! ```no_run
//! let server = flotta_server::testing::spawn(Default::default()).unwrap();
//! // Point a device agent at server.base_url(), trusting server.ca_pem and
//! // presenting server.registration.{cert_pem,key_pem}.
//! println!("{}", server.base_url());
//! server.shutdown(); // or just drop it
//! ```
//!
//! [`spawn`] runs the server on its own tokio runtime and must be called (and
//! the server dropped) from synchronous code; async tests use
//! [`TestServer::start`] instead, which runs on the caller's runtime.
//!
//! Sealed frames: set [`TestOptions::udp`] and the server also listens for
//! UDP frames on 127.0.0.1 ([`TestServer::udp_addr`]) and hands out frame
//! keys; [`TestServer::frames`] reads `flotta_frames_total{result}` and
//! [`TestServer::restart`] restarts the server on the same data directory.

pub use crate::store::TestPostgresCluster as TestPostgres;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::device_id::{DeviceId, Namespace};
use crate::pki::{IssuedCert, Pki, Validity};
use crate::server::{self, RunningServer, StartError};
use crate::store::Store;

/// How to set up a test server.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// Approve enrolled devices at once.
    pub auto_approve: bool,
    /// Lifetime of device certificates the server issues.
    pub device_cert_validity_seconds: u64,
    /// Largest batch body.
    pub max_batch_bytes: usize,
    /// The clock the server judges requests by.
    pub clock: Arc<dyn Clock>,
    /// Old CAs whose client certificates stay trusted.
    pub old_ca_files: Vec<std::path::PathBuf>,
    /// TLS sessions kept for resumption (0: none).
    pub tls_session_cache_entries: usize,
    /// More configuration keys (TOML) applied last, e.g. small connection
    /// budgets and short deadlines; validated.
    pub config_toml: String,
    /// Listen for sealed frames on UDP (127.0.0.1, ephemeral port), which
    /// also turns on frame key delivery.
    pub udp: bool,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            auto_approve: true,
            device_cert_validity_seconds: Config::default().device_cert_validity_seconds,
            max_batch_bytes: Config::default().max_batch_bytes,
            clock: Arc::new(SystemClock),
            old_ca_files: Vec::new(),
            tls_session_cache_entries: Config::default().tls_session_cache_entries,
            config_toml: String::new(),
            udp: false,
        }
    }
}

/// A server running in-process; stops when dropped.
pub struct TestServer {
    /// The mTLS API address (127.0.0.1, ephemeral port).
    pub api_addr: SocketAddr,
    /// The plain admin address (`/healthz`, `/readyz`).
    pub admin_addr: SocketAddr,
    /// The UDP address for sealed frames (127.0.0.1, ephemeral port), when
    /// [`TestOptions::udp`] asked for it.
    pub udp_addr: Option<SocketAddr>,
    /// The Rock7 webhook listener's address, when `config_toml` sets
    /// `webhook_listen_addr` (use `"127.0.0.1:0"`).
    pub webhook_addr: Option<SocketAddr>,
    /// The CA certificate clients must trust, PEM.
    pub ca_pem: String,
    /// A registration certificate and key (CN=`register`), PEM.
    pub registration: IssuedCert,
    /// The configuration the server runs with.
    pub config: Config,
    server: Option<RunningServer>,
    runtime: Option<tokio::runtime::Runtime>,
    clock: Arc<dyn Clock>,
    _data_dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("api_addr", &self.api_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

/// Start a server on its own runtime (call from synchronous code).
pub fn spawn(options: TestOptions) -> Result<TestServer, StartError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| StartError::Internal(e.to_string()))?;
    let mut server = runtime.block_on(TestServer::start(options))?;
    server.runtime = Some(runtime);
    Ok(server)
}

impl TestServer {
    /// Start a server on the current tokio runtime.
    pub async fn start(options: TestOptions) -> Result<TestServer, StartError> {
        let data_dir = tempfile::tempdir().map_err(|e| StartError::Internal(e.to_string()))?;
        let config = Config {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.path().to_owned(),
            auto_approve: options.auto_approve,
            device_cert_validity_seconds: options.device_cert_validity_seconds,
            max_batch_bytes: options.max_batch_bytes,
            old_ca_files: options.old_ca_files.clone(),
            tls_session_cache_entries: options.tls_session_cache_entries,
            udp_listen_addr: options.udp.then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Config::default()
        }
        .with_toml(&options.config_toml)?;
        let server = server::start(config.clone(), options.clock.clone()).await?;
        let registration = server
            .pki()
            .ca()
            .issue_registration_cert(Validity::starting_at(
                options.clock.now(),
                Duration::from_secs(config.registration_cert_validity_seconds),
            )?)?;
        Ok(TestServer {
            api_addr: server.api_addr(),
            admin_addr: server.admin_addr(),
            udp_addr: server.udp_addr(),
            webhook_addr: server.webhook_addr(),
            ca_pem: server.pki().ca().cert_pem().to_owned(),
            registration,
            config,
            server: Some(server),
            runtime: None,
            clock: options.clock.clone(),
            _data_dir: data_dir,
        })
    }

    fn running(&self) -> &RunningServer {
        // Only `shutdown` takes it out, and that consumes `self`.
        self.server.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// `https://localhost:<port>` (the server certificate names `localhost`
    /// and `127.0.0.1`).
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.api_addr.port())
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.running().service().metrics()
    }

    /// The server's PKI (to mint extra certificates).
    pub fn pki(&self) -> &Pki {
        self.running().pki()
    }

    /// The server's store (to inspect what was stored).
    pub fn store(&self) -> &dyn Store {
        &**self.running().store()
    }

    /// The server's store, shared (for library calls that keep it, such as
    /// [`crate::provision::provision`]).
    pub fn shared_store(&self) -> Arc<dyn Store> {
        self.running().store().clone()
    }

    /// Where the server keeps Flotta's objects (its store, or a cluster).
    pub fn objects(&self) -> &dyn crate::objects::ObjectSource {
        &**self.running().service().objects()
    }

    /// The device-facing operations (decommissioning, frame keys).
    pub fn service(&self) -> &crate::service::EdgeService {
        self.running().service()
    }

    /// Approve a pending device.
    pub fn approve(&self, id: &str) -> Result<(), crate::store::StoreError> {
        let id =
            DeviceId::parse(id).map_err(|e| crate::store::StoreError::OutOfRange(e.to_string()))?;
        self.store().approve(&id)
    }

    /// Issue a device certificate directly (bypassing registration), valid
    /// between the given instants; lets tests hold expired certificates.
    /// When the device is enrolled, the certificate becomes its current one
    /// (as a registration would make it; see [`TestServer::adopt_certificate`]).
    pub fn device_cert(
        &self,
        id: &str,
        namespace: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<IssuedCert, crate::pki::PkiError> {
        let bad = |e: crate::device_id::InvalidName| crate::pki::PkiError::Validity(e.to_string());
        let issued = self.pki().ca().issue_device_cert(
            &DeviceId::parse(id).map_err(bad)?,
            &Namespace::parse(namespace).map_err(bad)?,
            Validity::between(not_before, not_after),
        )?;
        match self.adopt_certificate(id, &issued.cert_pem) {
            Ok(()) | Err(crate::store::StoreError::DeviceNotFound(_)) => Ok(issued),
            Err(e) => Err(crate::pki::PkiError::Validity(format!(
                "recording the certificate: {e}"
            ))),
        }
    }

    /// Record `cert_pem` (made by the test, e.g. by an old CA) as the current
    /// certificate of enrolled device `id`, as a registration does.
    pub fn adopt_certificate(
        &self,
        id: &str,
        cert_pem: &str,
    ) -> Result<(), crate::store::StoreError> {
        let bad = |e: String| crate::store::StoreError::OutOfRange(e);
        let id = DeviceId::parse(id).map_err(|e| bad(e.to_string()))?;
        let cert =
            crate::pki::ClientIdentity::from_pem(cert_pem).map_err(|e| bad(e.to_string()))?;
        let issued = crate::store::IssuedCertificate {
            serial: cert.serial,
            not_after_ms: crate::clock::unix_ms(cert.not_after),
            renewal: false,
        };
        self.store().record_certificate(
            &id,
            &issued,
            None,
            self.running().service().clock().now_ms(),
        )
    }

    /// Sealed frames counted with `result` (`stored`, `duplicate`,
    /// `unknown_key`, `bad_tag`, `epoch_mismatch`, `too_old`, `malformed`,
    /// `rate_limited`, `overloaded`): `flotta_frames_total{result}`.
    pub fn frames(&self, result: &str) -> u64 {
        self.metrics().frames(result)
    }

    /// Datagrams counted `in` or `out`: `flotta_udp_datagrams_total{direction}`.
    pub fn datagrams(&self, direction: &str) -> u64 {
        self.metrics().datagrams(direction)
    }

    /// Stop the server and start it again on the same data directory (CA,
    /// store) and configuration; it listens on new ephemeral ports (read
    /// [`TestServer::api_addr`], [`TestServer::udp_addr`] again) and its
    /// metrics start from zero. Only for servers made by [`spawn`].
    pub fn restart(&mut self) -> Result<(), StartError> {
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(StartError::Internal(
                "restart needs a server started by testing::spawn".into(),
            ));
        };
        if let Some(server) = self.server.take() {
            runtime.block_on(server.shutdown());
        }
        let server = runtime.block_on(server::start(self.config.clone(), self.clock.clone()))?;
        self.api_addr = server.api_addr();
        self.admin_addr = server.admin_addr();
        self.udp_addr = server.udp_addr();
        self.webhook_addr = server.webhook_addr();
        self.server = Some(server);
        Ok(())
    }

    /// Stop the server and wait for it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        match self.runtime.take() {
            Some(rt) => {
                rt.block_on(server.shutdown());
                rt.shutdown_timeout(Duration::from_secs(1));
            }
            // On the caller's runtime: signal; the tasks finish on their own.
            None => server.request_shutdown(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}
