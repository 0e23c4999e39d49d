//! The fleet before the server starts: a data directory with the CA (made by
//! `flotta-server init`, as an operator would), a configuration file, and
//! every device enrolled, approved and holding a certificate in the store.
//! In the Kubernetes mode the fleet also owns the API server its objects go
//! to; approval is the store's flag, as auto-approval or `flotta-server
//! approve` leave it: the server's controller then creates each device's
//! EdgeDeviceSignedRequest (approved) and EdgeDevice in the cluster.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flotta_server::config::Config;
use flotta_server::device_id::{DeviceId, Namespace};
use flotta_server::pki::{ClientIdentity, IssuedCert, Pki, Validity};
use flotta_server::store::{IssuedCertificate, Store, StoreError};
use flotta_server::testing::TestPostgres;

use crate::cluster::{Cluster, Objects};

/// Where device data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "sqlite" => Some(Self::Sqlite),
            "postgres" => Some(Self::Postgres),
            _ => None,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        })
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// A seeded fleet: configuration, CA and the devices' certificates.
pub(crate) struct Fleet {
    pub(crate) backend: Backend,
    pub(crate) config: Config,
    pub(crate) config_path: PathBuf,
    /// The CA `flotta-server init` made, to issue device certificates.
    pub(crate) pki: Pki,
    /// Device name and its certificate, in enrolment order.
    pub(crate) devices: Vec<(String, IssuedCert)>,
    /// The API server of the Kubernetes mode.
    pub(crate) cluster: Option<Cluster>,
    _dir: tempfile::TempDir,
}

/// The server binary this benchmark measures.
pub(crate) fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_flotta-server")
}

impl Fleet {
    /// A data directory and configuration for `devices` devices (no device
    /// yet), the CA created by `flotta-server init`; in the Kubernetes mode
    /// a new API server with Flotta's CRDs, status writes at most
    /// `FLOTTA_FLEET_KUBE_STATUS_RATE` per second (default 20, the server's).
    pub(crate) fn empty(backend: Backend, objects: Objects, devices: usize) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let postgres = match backend {
            Backend::Sqlite => String::new(),
            Backend::Postgres => format!(
                "store = \"postgres\"\npostgres_url = \"{}\"\n",
                TestPostgres::shared().create_database()
            ),
        };
        let cluster = (objects == Objects::Kubernetes).then(Cluster::start);
        let kube = cluster.as_ref().map_or_else(String::new, |c| {
            c.config_toml(crate::env_num("FLOTTA_FLEET_KUBE_STATUS_RATE", 20) as u32)
        });
        let toml = format!(
            "listen_addr = \"{}\"\nadmin_listen_addr = \"{}\"\ndata_dir = \"{}\"\n\
             server_names = [\"localhost\", \"127.0.0.1\"]\n\
             tls_session_cache_entries = {}\n\
             {postgres}{kube}",
            free_port(),
            free_port(),
            dir.path().join("data").display(),
            devices + 1024,
        );
        let config_path = dir.path().join("server.toml");
        std::fs::write(&config_path, &toml).expect("writing the configuration");
        let config = Config::from_toml_str(&toml).expect("a valid configuration");
        let out = Command::new(server_bin())
            .arg("--config")
            .arg(&config_path)
            .arg("init")
            .output()
            .expect("running flotta-server init");
        assert!(
            out.status.success(),
            "flotta-server init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pki = Pki::load_or_init(&config.data_dir, &config.pki_settings(), SystemTime::now())
            .expect("the CA made by init");
        Fleet {
            backend,
            config,
            config_path,
            pki,
            devices: Vec::new(),
            cluster,
            _dir: dir,
        }
    }

    /// [`Fleet::empty`] plus `devices` enrolled, approved devices with
    /// certificates (valid for a day).
    pub(crate) fn seed(backend: Backend, objects: Objects, devices: usize) -> Self {
        let mut fleet = Self::empty(backend, objects, devices);
        let pki = &fleet.pki;
        let store = fleet.open_store();
        let ns = Namespace::parse("default").expect("a namespace");
        let now = SystemTime::now();
        let validity = Validity::between(
            now - Duration::from_secs(3600),
            now + Duration::from_secs(86_400),
        );
        let now_ms = flotta_server::clock::unix_ms(now);
        // Eight writers: PostgreSQL takes them at once, SQLite one by one.
        let writers = 8;
        let started = Instant::now();
        let mut seeded: Vec<Vec<(usize, String, IssuedCert)>> = Vec::new();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let (store, ns) = (&store, &ns);
                    scope.spawn(move || {
                        (w..devices)
                            .step_by(writers)
                            .map(|i| {
                                let name = format!("dev-{i:06}");
                                let cert = seed_device(pki, &**store, ns, &name, validity, now_ms);
                                (i, name, cert)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            seeded = handles.into_iter().map(|h| h.join().unwrap()).collect();
        });
        let mut all: Vec<_> = seeded.into_iter().flatten().collect();
        all.sort_by_key(|(i, _, _)| *i);
        fleet.devices = all
            .into_iter()
            .map(|(_, name, cert)| (name, cert))
            .collect();
        println!(
            "{backend} {devices}: seeded by {writers} writers at {:.0} µs per device ({} retriable failures retried so far)",
            started.elapsed().as_secs_f64() * 1e6 / devices.max(1) as f64,
            RETRIES.load(std::sync::atomic::Ordering::Relaxed)
        );
        fleet
    }

    /// The store, opened by this process (the server is another).
    pub(crate) fn open_store(&self) -> Arc<dyn Store> {
        flotta_server::server::open_store(&self.config)
            .expect("opening the store")
            .shared()
    }

    /// Bytes the store occupies: SQLite's pages in use (WAL included), or
    /// PostgreSQL's database size.
    pub(crate) fn store_bytes(&self) -> u64 {
        match self.backend {
            Backend::Sqlite => {
                let db = rusqlite::Connection::open(self.config.store_path()).expect("the db");
                let q = |p: &str| -> u64 {
                    db.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0))
                        .map(|v| u64::try_from(v).unwrap_or(0))
                        .expect("a pragma")
                };
                (q("page_count") - q("freelist_count")) * q("page_size")
            }
            Backend::Postgres => {
                let url = self.config.postgres_url.clone().unwrap_or_default();
                let mut client =
                    postgres::Client::connect(&url, postgres::NoTls).expect("a connection");
                let row = client
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .expect("the database size");
                u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)
            }
        }
    }

    /// The controller over the whole fleet in this process, once the server
    /// has stopped: the first pass after the load (presence and statuses
    /// change) and a steady-state pass (nothing changed).
    pub(crate) fn controller_passes(&self) -> (Duration, Duration) {
        let store = self.open_store();
        let objects = flotta_server::objects::StoreObjects(store.clone());
        let settings = flotta_server::controller::Settings::default();
        let now_ms = flotta_server::clock::unix_ms(SystemTime::now());
        let mut times = [Duration::ZERO; 2];
        for t in &mut times {
            let started = Instant::now();
            flotta_server::controller::reconcile(&*store, &objects, settings, now_ms)
                .expect("a controller pass");
            *t = started.elapsed();
        }
        (times[0], times[1])
    }
}

/// Device `name` enrolled (approved) with a new certificate recorded as its
/// current one, as registration leaves it.
fn seed_device(
    pki: &Pki,
    store: &dyn Store,
    ns: &Namespace,
    name: &str,
    validity: Validity,
    now_ms: u64,
) -> IssuedCert {
    let id = DeviceId::parse(name).expect("a device id");
    let cert = pki
        .ca()
        .issue_device_cert(&id, ns, validity)
        .expect("a device certificate");
    let identity = ClientIdentity::from_pem(&cert.cert_pem).expect("our certificate");
    retried("enrolling", || store.enrol(&id, ns, None, true, now_ms));
    let issued = IssuedCertificate {
        serial: identity.serial,
        not_after_ms: flotta_server::clock::unix_ms(identity.not_after),
        renewal: false,
    };
    retried("recording the certificate", || {
        store.record_certificate(&id, &issued, None, now_ms)
    });
    cert
}

/// Writes given up on as retriable and tried again (PostgreSQL's
/// serialization failures among concurrent enrolments), printed after seeding.
pub(crate) static RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `op` until it succeeds, as a device would retry a retriable answer.
fn retried<T>(what: &str, op: impl Fn() -> Result<T, StoreError>) -> T {
    loop {
        match op() {
            Ok(v) => return v,
            Err(e) if e.is_retriable() => {
                RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}
