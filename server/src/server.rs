//! Running the server: open the PKI and store, bind the mTLS API listener and
//! the plain admin listener, serve until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::config::Config;
use crate::controller::runner::Runner;
use crate::metrics::Metrics;
use crate::pki::{ClientIdentity, Pki, PkiError};
use crate::service::EdgeService;
use crate::store::{SqliteStore, Store, StoreError, TimedStore};
use crate::tls::{self, TlsError};

/// How long open connections get to finish after shutdown was requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
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
            StartError::Tls(_) | StartError::Internal(_) => false,
        }
    }
}

/// Load (creating on first start) the PKI and open the store. Blocking.
pub fn open(config: &Config, clock: &dyn Clock) -> Result<(Pki, SqliteStore), StartError> {
    let pki = Pki::load_or_init(&config.data_dir, &config.pki_settings(), clock.now())?;
    let store = SqliteStore::open(&config.store_path())?;
    Ok((pki, store))
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    api_addr: SocketAddr,
    admin_addr: SocketAddr,
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
    let store: Arc<dyn Store> = Arc::new(TimedStore::new(store, metrics.clone()));
    let acceptor = TlsAcceptor::from(tls::server_config(&pki, config.tls_session_cache_entries)?);
    let controller = Runner::new(
        store.clone(),
        clock.clone(),
        config.controller_settings(),
        metrics.clone(),
    );
    let service = EdgeService::new(
        store.clone(),
        pki.clone(),
        clock,
        config.clone(),
        metrics.clone(),
    );
    let state = AppState {
        service: service.clone(),
        controller: controller.clone(),
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
    tracing::info!(%api_addr, %admin_addr, "flotta-server listening");

    let (shutdown, rx) = watch::channel(false);
    let api = Arc::new(ApiContext {
        acceptor,
        router: api::router(state.clone()),
        config: config.clone(),
        metrics: metrics.clone(),
    });
    let api_task = tokio::spawn(serve_api(api_listener, api, rx.clone()));
    let mut admin_rx = rx;
    let admin_router = api::admin::router(state);
    let admin_task = tokio::spawn(async move {
        let stop = async move {
            let _ = admin_rx.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(admin_listener, admin_router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!("admin listener failed: {e}");
        }
    });
    let controller_task = tokio::spawn(controller.run_loop(
        Duration::from_secs(config.controller_interval_seconds),
        shutdown.subscribe(),
    ));
    Ok(RunningServer {
        api_addr,
        admin_addr,
        pki,
        store,
        service,
        shutdown,
        tasks: vec![api_task, admin_task, controller_task],
    })
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// What every API connection needs.
struct ApiContext {
    acceptor: TlsAcceptor,
    router: Router,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
}

async fn serve_api(
    listener: TcpListener,
    api: Arc<ApiContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(api.config.max_connections));
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut shutdown) => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        while conns.try_join_next().is_some() {}
        conns.spawn(serve_connection(
            tcp,
            peer,
            api.clone(),
            shutdown.clone(),
            permit,
        ));
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("closing connections still open after the grace period");
        conns.abort_all();
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    api: Arc<ApiContext>,
    mut shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let (config, metrics) = (&api.config, &api.metrics);
    let handshake = Duration::from_secs(config.tls_handshake_timeout_seconds);
    let tls = match tokio::time::timeout(handshake, api.acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            metrics.count_handshake("failed");
            tracing::info!(%peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            metrics.count_handshake("failed");
            tracing::info!(%peer, "TLS handshake timed out");
            return;
        }
    };
    metrics.count_handshake(match tls.get_ref().1.handshake_kind() {
        Some(rustls::HandshakeKind::Resumed) => "resumed",
        _ => "full",
    });
    let identity = match tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| ClientIdentity::from_der(c))
    {
        Some(Ok(identity)) => identity,
        Some(Err(e)) => {
            tracing::warn!(%peer, "unreadable client certificate: {e}");
            return;
        }
        None => {
            tracing::warn!(%peer, "no client certificate");
            return;
        }
    };
    tracing::debug!(%peer, role = ?identity.role, "client connected");
    let router = api.router.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(identity.clone());
        router.clone().oneshot(req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.http_header_read_timeout_seconds))
        .serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        }
        () = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
