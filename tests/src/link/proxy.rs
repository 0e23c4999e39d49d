//! The emulated link: a loopback listener and the runtime thread that serves
//! it, the handle tests hold ([`Link`]), and its settings ([`LinkConfig`]).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::availability::follow_schedule;
use super::connection;
use super::counters::{Event, LinkStats};
use super::error::LinkError;
use super::profile::{CutMode, LinkProfile};
use super::schedule::Schedule;
use super::seed::{self, SEED_ENV, Stream};
use super::shared::Shared;
use super::time_scale::TimeScale;
use super::timing::RealTiming;

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Everything a link needs to start.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Where every accepted connection is forwarded.
    pub upstream: SocketAddr,
    /// What the link does to traffic.
    pub profile: LinkProfile,
    /// Scripted outages, in simulated time since the link started.
    pub schedule: Schedule,
    /// How simulated time maps to real time.
    pub time_scale: TimeScale,
    /// Seed for every random choice; `None` reads `FLOTTA_LINK_SEED`, else
    /// picks one at random (printed either way).
    pub seed: Option<u64>,
}

impl LinkConfig {
    /// A link to `upstream` with `profile`, no outages, real time, any seed.
    #[must_use]
    pub fn new(upstream: SocketAddr, profile: LinkProfile) -> Self {
        Self {
            upstream,
            profile,
            schedule: Schedule::new(),
            time_scale: TimeScale::REAL,
            seed: None,
        }
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

    /// Starts the link; see [`Link::start`].
    ///
    /// # Errors
    /// As [`Link::start`].
    pub fn start(self) -> Result<Link, LinkError> {
        Link::start(self)
    }
}

/// A running emulated link. Dropping it closes the listener and every
/// connection through it and joins its thread.
#[derive(Debug)]
pub struct Link {
    addr: SocketAddr,
    started: Instant,
    time_scale: TimeScale,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Link {
    /// Binds `127.0.0.1:0` and starts serving on a thread of its own (named
    /// `flink-<port>`), with a current-thread tokio runtime. Works from sync
    /// code and from inside another runtime alike.
    ///
    /// # Errors
    /// [`LinkError::Invalid`] for a bad profile or `FLOTTA_LINK_SEED`;
    /// [`LinkError::Bind`] or [`LinkError::Runtime`] if resources run out.
    pub fn start(config: LinkConfig) -> Result<Self, LinkError> {
        config.profile.validate()?;
        let seed = seed::resolve(config.seed)?;
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(LinkError::Bind)?;
        listener.set_nonblocking(true).map_err(LinkError::Bind)?;
        let addr = listener.local_addr().map_err(LinkError::Bind)?;
        let timing = RealTiming::new(&config.profile, &config.time_scale);
        let shared = Arc::new(Shared::new(
            config.upstream,
            seed,
            timing,
            config.profile.cut_mode,
        ));
        let started = Instant::now();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let runtime_shared = Arc::clone(&shared);
        let (schedule, time_scale) = (config.schedule, config.time_scale);
        let thread = std::thread::Builder::new()
            .name(format!("flink-{}", addr.port()))
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
                let listener = {
                    let _context = runtime.enter();
                    TcpListener::from_std(listener)
                };
                match listener {
                    Ok(listener) => {
                        let _ = ready_tx.send(Ok(()));
                        let serving = Serving {
                            shared: runtime_shared,
                            schedule,
                            time_scale,
                            started,
                        };
                        runtime.block_on(serving.run(listener, shutdown_rx));
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            })
            .map_err(LinkError::Runtime)?;
        let ready = ready_rx.recv().unwrap_or_else(|_| {
            Err(io::Error::other(
                "the link thread ended before it was ready",
            ))
        });
        if let Err(error) = ready {
            let _ = thread.join();
            return Err(LinkError::Runtime(error));
        }
        eprintln!(
            "flotta-e2e link {addr} -> {}: seed {seed} (replay: {SEED_ENV}={seed})",
            config.upstream
        );
        Ok(Self {
            addr,
            started,
            time_scale,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// The address clients connect to instead of the upstream.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Send new connections to `upstream` from now on (open ones stay where
    /// they are): a load balancer moving clients to another replica.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        self.shared.set_upstream(upstream);
    }

    /// The seed in use (to replay a run, pass it to [`LinkConfig::with_seed`]).
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Takes the link down (new connections are refused with a reset, open
    /// ones are cut by the current [`CutMode`]) or brings it back up. The
    /// link is up only while it is set up here *and* the schedule says up.
    pub fn set_up(&self, up: bool) {
        self.shared.set_manual_up(up);
    }

    /// Whether the link is up now (by hand and by schedule).
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.shared.is_up()
    }

    /// Sets how later cuts (random drops and blackouts) end connections.
    pub fn set_cut_mode(&self, mode: CutMode) {
        self.shared.set_cut_mode(mode);
    }

    /// How cuts currently end connections.
    #[must_use]
    pub fn cut_mode(&self) -> CutMode {
        self.shared.cut_mode()
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> LinkStats {
        self.shared.counters.snapshot()
    }

    /// Simulated time since the link started (real time / scale factor).
    #[must_use]
    pub fn sim_elapsed(&self) -> Duration {
        self.time_scale.to_sim(self.started.elapsed())
    }

    /// The time scale in use.
    #[must_use]
    pub fn time_scale(&self) -> TimeScale {
        self.time_scale
    }

    /// Stops the link (the same as dropping it).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let seed = self.shared.seed;
            eprintln!(
                "flotta-e2e link {} failed with seed {seed} (replay: {SEED_ENV}={seed})",
                self.addr
            );
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            eprintln!("flotta-e2e link {}: its runtime thread panicked", self.addr);
        }
    }
}

/// What the runtime thread serves with.
struct Serving {
    shared: Arc<Shared>,
    schedule: Schedule,
    time_scale: TimeScale,
    started: Instant,
}

impl Serving {
    /// Accepts until told to stop, then aborts every connection task.
    async fn run(self, listener: TcpListener, mut shutdown: oneshot::Receiver<()>) {
        let mut tasks = JoinSet::new();
        let schedule_shared = Arc::clone(&self.shared);
        tasks.spawn(follow_schedule(
            self.schedule.clone(),
            self.time_scale,
            tokio::time::Instant::from_std(self.started),
            move |down| schedule_shared.set_scheduled_down(down),
        ));
        let mut next_id: u64 = 0;
        loop {
            tokio::select! {
                // A send or a dropped handle both mean stop.
                _ = &mut shutdown => break,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(error) = joined
                        && error.is_panic()
                    {
                        self.shared.counters.count(Event::TaskPanic);
                        eprintln!("flotta-e2e link: a connection task panicked: {error}");
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let id = next_id;
                        next_id += 1;
                        self.admit(stream, id, &mut tasks);
                    }
                    Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
                },
            }
        }
        tasks.shutdown().await;
    }

    /// Refuses the attempt (down, or unlucky) or starts serving it.
    fn admit(&self, stream: tokio::net::TcpStream, id: u64, tasks: &mut JoinSet<()>) {
        let shared = &self.shared;
        shared.counters.count(Event::Attempt);
        let unlucky =
            shared
                .timing
                .refuse_attempt(&mut seed::rng(shared.seed, id, Stream::Attempt));
        let state = shared.state();
        if !state.up || unlucky {
            shared.counters.count(Event::Refused);
            connection::reset(stream);
            return;
        }
        tasks.spawn(connection::run(stream, Arc::clone(shared), id, state.downs));
    }
}
