//! The emulated UDP link: its settings ([`UdpLinkConfig`]) and the handle
//! tests hold ([`UdpLink`]), which owns the thread serving it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::super::error::LinkError;
use super::super::schedule::Schedule;
use super::super::seed::{self, SEED_ENV};
use super::super::time_scale::TimeScale;
use super::profile::UdpProfile;
use super::serve::Serving;
use super::shared::UdpShared;
use super::stats::UdpLinkStats;
use super::trace::{DEFAULT_TRACE_LIMIT, DatagramRecord};

/// How long a NAT binding lives without uplink traffic unless configured:
/// NB-IoT carrier NATs forget flows after tens of seconds to minutes.
pub const DEFAULT_NAT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a UDP link needs to start.
#[derive(Clone, Debug)]
pub struct UdpLinkConfig {
    /// Where every client datagram is forwarded.
    pub upstream: SocketAddr,
    /// What the link does to datagrams each way (changeable at run time with
    /// [`UdpLink::set_profile`]).
    pub profile: UdpProfile,
    /// How long a NAT binding lives without uplink traffic (link timing:
    /// scaled only if the time scale scales link timing; `Duration::MAX`
    /// never expires).
    pub nat_idle_timeout: Duration,
    /// Scripted outages, in simulated time since the link started.
    pub schedule: Schedule,
    /// How simulated time maps to real time.
    pub time_scale: TimeScale,
    /// Seed for every random choice; `None` reads `FLOTTA_LINK_SEED`, else
    /// picks one at random (printed either way).
    pub seed: Option<u64>,
    /// How many datagrams' fates [`UdpLink::trace`] keeps (the first ones);
    /// 0 keeps none.
    pub trace_limit: usize,
}

impl UdpLinkConfig {
    /// A link to `upstream` with `profile`, a 60 s NAT idle timeout, no
    /// outages, real time, any seed, the first 10 000 fates traced.
    #[must_use]
    pub fn new(upstream: SocketAddr, profile: UdpProfile) -> Self {
        Self {
            upstream,
            profile,
            nat_idle_timeout: DEFAULT_NAT_IDLE_TIMEOUT,
            schedule: Schedule::new(),
            time_scale: TimeScale::REAL,
            seed: None,
            trace_limit: DEFAULT_TRACE_LIMIT,
        }
    }

    /// Sets how long a NAT binding lives without uplink traffic.
    #[must_use]
    pub fn with_nat_idle_timeout(mut self, timeout: Duration) -> Self {
        self.nat_idle_timeout = timeout;
        self
    }

    /// Sets the outage schedule.
    #[must_use]
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the time scale.
    #[must_use]
    pub fn with_time_scale(mut self, time_scale: TimeScale) -> Self {
        self.time_scale = time_scale;
        self
    }

    /// Fixes the seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets how many datagrams' fates are traced (0: none).
    #[must_use]
    pub fn with_trace_limit(mut self, limit: usize) -> Self {
        self.trace_limit = limit;
        self
    }

    /// Starts the link; see [`UdpLink::start`].
    ///
    /// # Errors
    /// As [`UdpLink::start`].
    pub fn start(self) -> Result<UdpLink, LinkError> {
        UdpLink::start(self)
    }
}

/// A running emulated UDP link. Dropping it stops its thread, joins it, and
/// closes every socket (the client-facing one and every binding's).
#[derive(Debug)]
pub struct UdpLink {
    addr: SocketAddr,
    started: Instant,
    nat_idle_timeout: Duration,
    shared: Arc<UdpShared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl UdpLink {
    /// Binds `127.0.0.1:0` and starts serving on a thread of its own (named
    /// `fudp-<port>`), with a current-thread tokio runtime. Works from sync
    /// code and from inside another runtime alike.
    ///
    /// # Errors
    /// [`LinkError::Invalid`] for a bad profile, NAT timeout or
    /// `FLOTTA_LINK_SEED`; [`LinkError::Bind`] or [`LinkError::Runtime`] if
    /// resources run out.
    pub fn start(config: UdpLinkConfig) -> Result<Self, LinkError> {
        config.profile.validate()?;
        if config.nat_idle_timeout.is_zero() {
            return Err(LinkError::invalid("nat_idle_timeout", "must be above zero"));
        }
        let seed = seed::resolve(config.seed)?;
        let socket =
            std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(LinkError::Bind)?;
        socket.set_nonblocking(true).map_err(LinkError::Bind)?;
        let addr = socket.local_addr().map_err(LinkError::Bind)?;
        let time_scale = config.time_scale;
        let nat_idle_timeout = time_scale.link_delay(config.nat_idle_timeout);
        let shared = Arc::new(UdpShared::new(
            config.upstream,
            seed,
            time_scale,
            config.profile,
            config.trace_limit,
        ));
        let started = Instant::now();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let serving_shared = Arc::clone(&shared);
        let schedule = config.schedule;
        let thread = std::thread::Builder::new()
            .name(format!("fudp-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                let socket = {
                    let _context = runtime.enter();
                    UdpSocket::from_std(socket)
                };
                match socket {
                    Ok(socket) => {
                        let _ = ready_tx.send(Ok(()));
                        let serving = Serving::new(serving_shared, socket, nat_idle_timeout);
                        runtime.block_on(serving.run(schedule, started, shutdown_rx));
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            })
            .map_err(LinkError::Runtime)?;
        let ready = ready_rx.recv().unwrap_or_else(|_| {
            Err(io::Error::other(
                "the udp link thread ended before it was ready",
            ))
        });
        if let Err(error) = ready {
            let _ = thread.join();
            return Err(LinkError::Runtime(error));
        }
        eprintln!(
            "flotta-e2e udp link {addr} -> {}: seed {seed} (replay: {SEED_ENV}={seed})",
            config.upstream
        );
        Ok(Self {
            addr,
            started,
            nat_idle_timeout: config.nat_idle_timeout,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// The address clients send to instead of the upstream.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where datagrams are forwarded.
    #[must_use]
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// The seed in use (to replay a run, pass it to
    /// [`UdpLinkConfig::with_seed`]).
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Takes the link down (every datagram either way is dropped, those in
    /// flight too) or brings it back up. The link is up only while it is set
    /// up here *and* the schedule says up.
    pub fn set_up(&self, up: bool) {
        self.shared.availability.set_manual_up(up);
    }

    /// Whether the link is up now (by hand and by schedule).
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.shared.availability.is_up()
    }

    /// The impairments in force.
    #[must_use]
    pub fn profile(&self) -> UdpProfile {
        self.shared.profile()
    }

    /// Changes the impairments from the next datagram to arrive on (those in
    /// flight keep their fate), e.g. from a clean phase to a lossy one.
    ///
    /// # Errors
    /// [`LinkError::Invalid`] for a bad profile; the old one stays.
    pub fn set_profile(&self, profile: UdpProfile) -> Result<(), LinkError> {
        profile.validate()?;
        self.shared.set_profile(profile);
        Ok(())
    }

    /// The NAT idle timeout configured (simulated if link timing is scaled).
    #[must_use]
    pub fn nat_idle_timeout(&self) -> Duration {
        self.nat_idle_timeout
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> UdpLinkStats {
        self.shared.counters.snapshot()
    }

    /// The fates decided so far, in arrival order (up and down interleaved),
    /// up to the configured trace limit.
    #[must_use]
    pub fn trace(&self) -> Vec<DatagramRecord> {
        self.shared.trace()
    }

    /// Simulated time since the link started (real time / scale factor).
    #[must_use]
    pub fn sim_elapsed(&self) -> Duration {
        self.shared.time_scale.to_sim(self.started.elapsed())
    }

    /// The time scale in use.
    #[must_use]
    pub fn time_scale(&self) -> TimeScale {
        self.shared.time_scale
    }

    /// Stops the link (the same as dropping it).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for UdpLink {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let seed = self.shared.seed;
            eprintln!(
                "flotta-e2e udp link {} failed with seed {seed} (replay: {SEED_ENV}={seed})",
                self.addr
            );
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            eprintln!(
                "flotta-e2e udp link {}: its runtime thread panicked",
                self.addr
            );
        }
    }
}
