//! The UDP listener for sealed frames (NB-IoT): one tokio task receives
//! datagrams and hands each to [`FrameIngest`] on the blocking pool, with
//! at most `udp_max_in_flight` in flight (more are dropped and counted
//! `overloaded`, never queued), and answers from the same socket to the
//! datagram's source.
//!
//! Cheap refusals happen before any work: a datagram longer than
//! `udp_max_datagram_bytes` (malformed), a source out of failure budget
//! (`rate_limited`, see [`FailureLimiter`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

use super::ingest::FrameIngest;
use super::rate::{DEFAULT_SOURCES, FailureLimiter};
use crate::clock::Clock;
use crate::metrics::Metrics;

/// A bound UDP socket and what serving it needs.
#[derive(Debug)]
pub struct UdpListener {
    /// The socket, shared with the tasks that answer.
    pub socket: Arc<UdpSocket>,
    /// The ingest path.
    pub ingest: Arc<FrameIngest>,
    /// The clock frames are judged by.
    pub clock: Arc<dyn Clock>,
    /// Where datagrams and frames are counted.
    pub metrics: Arc<Metrics>,
    /// Longest datagram accepted.
    pub max_datagram_bytes: usize,
    /// Datagrams in flight at most.
    pub max_in_flight: usize,
    /// Failed datagrams per source and minute.
    pub failures_per_source_per_minute: u32,
}

impl UdpListener {
    /// Serve until `shutdown` turns true. Datagrams in flight then finish
    /// on their own.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) {
        let in_flight = Arc::new(Semaphore::new(self.max_in_flight));
        let limiter = Arc::new(Mutex::new(FailureLimiter::new(
            self.failures_per_source_per_minute,
            DEFAULT_SOURCES,
        )));
        let mut buf = vec![0u8; self.max_datagram_bytes + 1];
        loop {
            if *shutdown.borrow() {
                break;
            }
            let (len, source) = tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok(got) => got,
                    Err(e) => {
                        // e.g. an ICMP port-unreachable of an earlier answer.
                        tracing::debug!("udp receive: {e}");
                        continue;
                    }
                },
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
            };
            self.metrics.count_datagram("in", len);
            let now = Instant::now();
            let allowed = lock(&limiter).allows(source.ip(), now);
            if !allowed {
                self.metrics.count_frame("rate_limited");
                continue;
            }
            if len > self.max_datagram_bytes {
                lock(&limiter).failed(source.ip(), now);
                self.metrics.count_frame("malformed");
                continue;
            }
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                self.metrics.count_frame("overloaded");
                continue;
            };
            let job = Job {
                datagram: buf[..len].to_vec(),
                source,
                socket: self.socket.clone(),
                ingest: self.ingest.clone(),
                metrics: self.metrics.clone(),
                limiter: limiter.clone(),
                now_ms: self.clock.now_ms(),
            };
            tokio::spawn(async move {
                job.run().await;
                drop(permit);
            });
        }
    }
}

fn lock(l: &Mutex<FailureLimiter>) -> std::sync::MutexGuard<'_, FailureLimiter> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

/// One datagram's trip through the blocking pool and back.
struct Job {
    datagram: Vec<u8>,
    source: SocketAddr,
    socket: Arc<UdpSocket>,
    ingest: Arc<FrameIngest>,
    metrics: Arc<Metrics>,
    limiter: Arc<Mutex<FailureLimiter>>,
    now_ms: u64,
}

impl Job {
    async fn run(self) {
        let Job {
            datagram,
            source,
            socket,
            ingest,
            metrics,
            limiter,
            now_ms,
        } = self;
        let handled = tokio::task::spawn_blocking(move || ingest.handle(&datagram, now_ms)).await;
        match handled {
            Ok(Ok(answered)) => {
                // Counted before sending, so that whoever has the answer
                // also sees it counted.
                metrics.count_frame(answered.result.label());
                if let Some(answer) = answered.answer {
                    metrics.count_datagram("out", answer.len());
                    if let Err(e) = socket.send_to(&answer, source).await {
                        tracing::debug!(%source, "udp send: {e}");
                    }
                }
            }
            Ok(Err(dropped)) => {
                if dropped.is_source_failure() {
                    lock(&limiter).failed(source.ip(), Instant::now());
                }
                match &dropped {
                    super::FrameDrop::Failed(e) => {
                        tracing::warn!(%source, "frame not handled: {e}")
                    }
                    refused @ super::FrameDrop::Refused(_) => {
                        tracing::warn!(%source, "device frame {refused}");
                    }
                    other => tracing::debug!(%source, "frame dropped: {other}"),
                }
                metrics.count_frame(dropped.label());
            }
            Err(e) => {
                tracing::warn!(%source, "frame task failed: {e}");
                metrics.count_frame("overloaded");
            }
        }
    }
}
