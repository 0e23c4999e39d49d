//! Running the server: open the PKI and store, bind the mTLS API listener,
//! the plain admin listener and (when configured) the UDP listener for
//! sealed frames and the webhook listener (Rock7 MO with its MT worker, ChirpStack
//! and TTS uplinks with their downlink worker) and the record retention task, serve them (with budgets and deadlines, see
//! [`crate::listener`] and [`crate::frames::udp`]) until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::admin_auth::AdminAuth;
use crate::admin_auth::guard::Guard;
use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::ObjectsBackend;
use crate::config::StoreBackend;
use crate::config::{Config, ConfigError};
use crate::controller::runner::Runner;
use crate::frames::udp::UdpListener;
use crate::frames::{FrameIngest, FrameKeyring};
use crate::leader::{AdvisoryLock, Alone, Leadership};
use crate::listener::{self, AdminTlsAdmit, Budgets, Listener, MtlsAdmit, PlainAdmit};
use crate::lorawan::{
    self, ChirpstackWebhook, DownlinkQueue, DownlinkWorker, LoraIngest, TtsWebhook,
};
use crate::metrics::Metrics;
use crate::objects::{ObjectSource, StoreObjects};
use crate::pki::{Pki, PkiError};
use crate::retention::Retention;
use crate::rock7::{self, MtQueue, MtWorker, Rock7Key, Rock7Webhook};
use crate::service::EdgeService;
use crate::store::{PostgresStore, SqliteStore, Store, StoreError, TimedStore};
use crate::tls::{self, TlsError};

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The CA or server certificate could not be loaded or created.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS configuration is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The Kubernetes cluster (`objects = "kubernetes"`) could not be used.
    #[error("kubernetes: {0}")]
    Cluster(String),
    /// A start-up task panicked.
    #[error("start-up failed: {0}")]
    Internal(String),
}

impl StartError {
    /// Whether starting again may succeed (address in use, transient I/O).
    pub fn is_retriable(&self) -> bool {
        match self {
            StartError::Pki(e) => e.is_retriable(),
            StartError::Store(e) => e.is_retriable(),
            StartError::Bind { source, .. } => source.kind() == std::io::ErrorKind::AddrInUse,
            StartError::Cluster(_) => true,
            StartError::Tls(_) | StartError::Config(_) | StartError::Internal(_) => false,
        }
    }
}

/// Load (creating on first start) the PKI and open the store. Blocking.
pub fn open(config: &Config, clock: &dyn Clock) -> Result<(Pki, OpenedStore), StartError> {
    let pki = Pki::load_or_init(&config.data_dir, &config.pki_settings(), clock.now())?;
    let store = open_store(config)?;
    Ok((pki, store))
}

/// The store the configuration names (`store`), opened or connected and
/// migrated. Blocking.
pub fn open_store(config: &Config) -> Result<OpenedStore, StoreError> {
    Ok(match config.store {
        StoreBackend::Sqlite => OpenedStore::Sqlite(SqliteStore::open(&config.store_path())?),
        StoreBackend::Postgres => OpenedStore::Postgres(PostgresStore::connect(
            config.postgres_url.as_deref().unwrap_or_default(),
            config.postgres_settings(),
        )?),
    })
}

/// A store of either backend, as [`open_store`] made it.
#[derive(Debug)]
pub enum OpenedStore {
    /// `store = "sqlite"`.
    Sqlite(SqliteStore),
    /// `store = "postgres"`.
    Postgres(PostgresStore),
}

impl OpenedStore {
    /// The store with its calls timed into `metrics`.
    pub fn timed(self, metrics: Arc<Metrics>) -> Arc<dyn Store> {
        match self {
            OpenedStore::Sqlite(s) => Arc::new(TimedStore::new(s, metrics)),
            OpenedStore::Postgres(s) => Arc::new(TimedStore::new(s, metrics)),
        }
    }

    /// The store as it is (tools).
    pub fn shared(self) -> Arc<dyn Store> {
        match self {
            OpenedStore::Sqlite(s) => Arc::new(s),
            OpenedStore::Postgres(s) => Arc::new(s),
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    api_addr: SocketAddr,
    admin_addr: SocketAddr,
    udp_addr: Option<SocketAddr>,
    webhook_addr: Option<SocketAddr>,
    pki: Arc<Pki>,
    store: Arc<dyn Store>,
    service: EdgeService,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Address the mTLS API listens on.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Address the admin listener listens on.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Address the UDP listener for sealed frames listens on, when configured.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// Address the webhook listener (Rock7 MO) listens on, when configured.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook_addr
    }

    /// The PKI in use.
    pub fn pki(&self) -> &Arc<Pki> {
        &self.pki
    }

    /// The store in use.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The device-facing operations (e.g. to approve devices in-process).
    pub fn service(&self) -> &EdgeService {
        &self.service
    }

    /// Ask the server to stop without waiting.
    pub fn request_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stop accepting, let open requests finish (up to a grace period), return.
    pub async fn shutdown(self) {
        self.request_shutdown();
        self.wait().await;
    }

    /// Wait until the server has stopped (after [`Self::request_shutdown`]).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The Rock7 webhook and its MT worker (Rock7's key and the MT password
/// read from their files).
fn rock7_webhook(
    config: &Config,
    store: &Arc<dyn Store>,
    ingest: &Arc<FrameIngest>,
    clock: &Arc<dyn Clock>,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<Rock7Webhook>, MtWorker), StartError> {
    let key_file = config.rock7_public_key_file.clone().unwrap_or_default();
    let pem = std::fs::read(&key_file).map_err(|e| ConfigError::Invalid {
        key: "rock7_public_key_file",
        reason: format!("{}: {e}", key_file.display()),
    })?;
    let key = Rock7Key::from_pem(&pem).map_err(|e| ConfigError::Invalid {
        key: "rock7_public_key_file",
        reason: e.to_string(),
    })?;
    let mt = config.mt_settings()?;
    let queue = Arc::new(MtQueue::new(mt.queue_imeis));
    let worker = MtWorker {
        queue: queue.clone(),
        settings: mt,
        store: store.clone(),
        clock: clock.clone(),
        metrics: metrics.clone(),
    };
    let webhook = Arc::new(Rock7Webhook {
        key,
        ingest: ingest.clone(),
        store: store.clone(),
        mt: queue,
        clock: clock.clone(),
        metrics: metrics.clone(),
        max_body_bytes: config.webhook_max_body_bytes,
        answer_bytes: config.sbd_answer_bytes,
    });
    Ok((webhook, worker))
}

/// What the webhook listener serves: its routes and the blocking workers
/// (Rock7 MT, LoRaWAN downlinks) with the queues to close on shutdown.
struct Webhooks {
    router: axum::Router,
    workers: Vec<Box<dyn FnOnce() + Send>>,
    closers: Vec<Box<dyn FnOnce() + Send>>,
}

/// The webhook listener's routes: Rock7 (when its key is configured),
/// ChirpStack and TTS (when enabled), and their workers.
fn webhooks(
    config: &Config,
    store: &Arc<dyn Store>,
    ingest: &Arc<FrameIngest>,
    clock: &Arc<dyn Clock>,
    metrics: &Arc<Metrics>,
) -> Result<Webhooks, StartError> {
    let mut w = Webhooks {
        router: axum::Router::new(),
        workers: Vec::new(),
        closers: Vec::new(),
    };
    if config.rock7_enabled() {
        let (webhook, worker) = rock7_webhook(config, store, ingest, clock, metrics)?;
        let queue = webhook.mt.clone();
        w.router = w.router.merge(rock7::webhook::router(webhook));
        w.workers.push(Box::new(move || worker.run()));
        w.closers.push(Box::new(move || queue.close()));
    }
    if config.lorawan_enabled() {
        let settings = config.downlink_settings()?;
        let queue = Arc::new(DownlinkQueue::new(settings.queue_devices));
        let lora = Arc::new(LoraIngest {
            ingest: ingest.clone(),
            store: store.clone(),
            downlinks: queue.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            max_body_bytes: config.webhook_max_body_bytes,
            answer_bytes: config.lorawan_answer_bytes,
            f_port: config.lorawan_fport,
            region: config.region()?,
        });
        if config.chirpstack_enabled {
            let hook = Arc::new(ChirpstackWebhook {
                auth: config.chirpstack_auth()?,
                lora: lora.clone(),
            });
            w.router = w.router.merge(lorawan::chirpstack::router(hook));
        }
        if config.tts_enabled {
            let hook = Arc::new(TtsWebhook {
                auth: config.tts_auth()?,
                application_id: config.tts_application_id.clone(),
                lora,
            });
            w.router = w.router.merge(lorawan::tts::router(hook));
        }
        let worker = DownlinkWorker {
            queue: queue.clone(),
            settings,
            store: store.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
        };
        w.workers.push(Box::new(move || worker.run()));
        w.closers.push(Box::new(move || queue.close()));
    }
    Ok(w)
}

/// Start serving `config` on the current tokio runtime.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer, StartError> {
    let config = Arc::new(config);
    let (pki, store) = {
        let (config, clock) = (config.clone(), clock.clone());
        tokio::task::spawn_blocking(move || open(&config, &*clock))
            .await
            .map_err(|e| StartError::Internal(e.to_string()))??
    };
    let pki = Arc::new(pki);
    let metrics = Metrics::shared();
    let store: Arc<dyn Store> = store.timed(metrics.clone());
    let acceptor = TlsAcceptor::from(tls::server_config(&pki, config.tls_session_cache_entries)?);
    let cluster = match config.objects {
        ObjectsBackend::Embedded => None,
        ObjectsBackend::Kubernetes => Some(
            Cluster::connect(&config, metrics.clone())
                .await
                .map_err(|e| StartError::Cluster(e.to_string()))?,
        ),
    };
    let objects: Arc<dyn ObjectSource> = match &cluster {
        Some(c) => c.objects(),
        None => Arc::new(StoreObjects(store.clone())),
    };
    let leadership: Arc<dyn Leadership> = match config.store {
        StoreBackend::Sqlite => Arc::new(Alone),
        StoreBackend::Postgres => Arc::new(
            AdvisoryLock::start(
                config.postgres_url.as_deref().unwrap_or_default(),
                Duration::from_millis(config.leader_check_interval_ms),
            )
            .map_err(|e| StartError::Internal(e.to_string()))?,
        ),
    };
    let retention = Retention::new(
        store.clone(),
        clock.clone(),
        config.retention_settings(),
        metrics.clone(),
    )
    .led_by(leadership.clone());
    let controller = Runner::new(
        store.clone(),
        objects.clone(),
        clock.clone(),
        config.controller_settings(),
        metrics.clone(),
    )
    .resync_every(Duration::from_secs(config.controller_resync_seconds))
    .led_by(leadership);
    let settings = config.frame_settings();
    let keyring = Arc::new(FrameKeyring::new(
        store.clone(),
        settings.cache_entries,
        settings.rotation,
    ));
    let service = EdgeService::new(
        store.clone(),
        objects.clone(),
        pki.clone(),
        clock.clone(),
        config.clone(),
        metrics.clone(),
        keyring.clone(),
    );
    let (shutdown, rx) = watch::channel(false);
    let state = AppState {
        service: service.clone(),
        controller: controller.clone(),
        streams: api::admin_stream::Streams::new(config.admin_stream_limit(), rx.clone()),
        fleet_cache: Default::default(),
    };

    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    };
    let api_listener = bind(config.listen_addr).await?;
    let admin_listener = bind(config.admin_listen_addr).await?;
    let local = |l: &TcpListener, addr| {
        l.local_addr()
            .map_err(|source| StartError::Bind { addr, source })
    };
    let api_addr = local(&api_listener, config.listen_addr)?;
    let admin_addr = local(&admin_listener, config.admin_listen_addr)?;
    let ingest = Arc::new(FrameIngest::new(
        store.clone(),
        keyring,
        settings,
        metrics.clone(),
    ));
    let udp = match config.udp_listen_addr {
        Some(addr) => {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let bound = socket
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            let listener = UdpListener {
                socket: Arc::new(socket),
                ingest: ingest.clone(),
                clock: clock.clone(),
                metrics: metrics.clone(),
                max_datagram_bytes: config.udp_max_datagram_bytes,
                max_in_flight: config.udp_max_in_flight,
                failures_per_source_per_minute: config.udp_failures_per_source_per_minute,
            };
            Some((bound, listener))
        }
        None => None,
    };
    let udp_addr = udp.as_ref().map(|(a, _)| *a);
    let webhook = match config.webhook_listen_addr {
        Some(addr) => {
            let listener = bind(addr).await?;
            let bound = local(&listener, addr)?;
            let hooks = webhooks(&config, &store, &ingest, &clock, &metrics)?;
            Some((bound, listener, hooks))
        }
        None => None,
    };
    let webhook_addr = webhook.as_ref().map(|(a, ..)| *a);
    tracing::info!(%api_addr, %admin_addr, ?udp_addr, ?webhook_addr, "flotta-server listening");

    let api = Listener {
        name: "api",
        admit: MtlsAdmit {
            acceptor,
            clock: clock.clone(),
            metrics: metrics.clone(),
        },
        router: api::router(state.clone()),
        budgets: Budgets::new(config.api_limits(), "api", metrics.clone()),
        max_pending: config.max_tls_handshakes,
        timeouts: config.timeouts(),
    };
    let guard = Guard {
        auth: AdminAuth::from_config(&config, clock.clone()),
        secure_cookies: config.admin_uses_tls(),
        store: store.clone(),
        clock: clock.clone(),
    };
    let admin_router = api::admin::router(state, guard);
    let admin_budgets = Budgets::new(config.admin_limits(), "admin", metrics.clone());
    let api_task = tokio::spawn(listener::serve(api_listener, Arc::new(api), rx.clone()));
    let admin_task = if config.admin_uses_tls() {
        let tls = crate::tls::admin_server_config(&pki)
            .map_err(|e| StartError::Internal(format!("admin TLS: {e}")))?;
        let admin = Listener {
            name: "admin",
            admit: AdminTlsAdmit {
                acceptor: tokio_rustls::TlsAcceptor::from(tls),
            },
            router: admin_router,
            budgets: admin_budgets,
            max_pending: config.max_admin_connections,
            timeouts: config.timeouts(),
        };
        tokio::spawn(listener::serve(admin_listener, Arc::new(admin), rx))
    } else {
        let admin = Listener {
            name: "admin",
            admit: PlainAdmit,
            router: admin_router,
            budgets: admin_budgets,
            max_pending: config.max_admin_connections,
            timeouts: config.timeouts(),
        };
        tokio::spawn(listener::serve(admin_listener, Arc::new(admin), rx))
    };
    let controller_task = tokio::spawn(controller.clone().run_loop(
        Duration::from_secs(config.controller_interval_seconds),
        shutdown.subscribe(),
    ));
    let retention_task = tokio::spawn(retention.run_loop(shutdown.subscribe()));
    let mut tasks = vec![api_task, admin_task, controller_task, retention_task];
    if let Some(cluster) = cluster {
        tasks.extend(cluster.spawn(controller.clone(), service.clone(), shutdown.subscribe()));
    }
    if let Some((_, listener)) = udp {
        tasks.push(tokio::spawn(listener.serve(shutdown.subscribe())));
    }
    if let Some((_, tcp, hooks)) = webhook {
        let served = Listener {
            name: "webhook",
            admit: PlainAdmit,
            router: hooks.router,
            budgets: Budgets::new(config.webhook_limits(), "webhook", metrics.clone()),
            max_pending: config.webhook_max_connections,
            timeouts: config.webhook_timeouts(),
        };
        tasks.push(tokio::spawn(listener::serve(
            tcp,
            Arc::new(served),
            shutdown.subscribe(),
        )));
        for worker in hooks.workers {
            tasks.push(tokio::task::spawn_blocking(worker));
        }
        let mut stop = shutdown.subscribe();
        let closers = hooks.closers;
        tasks.push(tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
            for close in closers {
                close();
            }
        }));
    }
    Ok(RunningServer {
        api_addr,
        admin_addr,
        udp_addr,
        webhook_addr,
        pki,
        store,
        service,
        shutdown,
        tasks,
    })
}
