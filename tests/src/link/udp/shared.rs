//! State shared by a UDP link's handle and its thread: settings that change
//! at run time, counters, the trace, and whether the link is up.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::super::availability::Availability;
use super::super::counters::Direction;
use super::super::time_scale::TimeScale;
use super::profile::{DatagramProfile, UdpProfile};
use super::stats::UdpCounters;
use super::trace::{DatagramRecord, Trace};

/// Everything the [`UdpLink`](super::UdpLink) handle and its thread share.
#[derive(Debug)]
pub(crate) struct UdpShared {
    pub(crate) upstream: SocketAddr,
    pub(crate) seed: u64,
    pub(crate) time_scale: TimeScale,
    pub(crate) counters: UdpCounters,
    pub(crate) availability: Availability,
    /// Read for every datagram, so a change applies from the next one.
    profile: Mutex<UdpProfile>,
    trace: Mutex<Trace>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing holding these locks can leave them half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UdpShared {
    pub(crate) fn new(
        upstream: SocketAddr,
        seed: u64,
        time_scale: TimeScale,
        profile: UdpProfile,
        trace_limit: usize,
    ) -> Self {
        Self {
            upstream,
            seed,
            time_scale,
            counters: UdpCounters::default(),
            availability: Availability::new(),
            profile: Mutex::new(profile),
            trace: Mutex::new(Trace::new(trace_limit)),
        }
    }

    pub(crate) fn profile(&self) -> UdpProfile {
        lock(&self.profile).clone()
    }

    /// One direction's profile now.
    pub(crate) fn profile_of(&self, direction: Direction) -> DatagramProfile {
        let profile = lock(&self.profile);
        match direction {
            Direction::Up => profile.up.clone(),
            Direction::Down => profile.down.clone(),
        }
    }

    /// Replaces the profile; the caller has validated it.
    pub(crate) fn set_profile(&self, profile: UdpProfile) {
        *lock(&self.profile) = profile;
    }

    pub(crate) fn record(&self, record: DatagramRecord) {
        lock(&self.trace).record(record);
    }

    pub(crate) fn trace(&self) -> Vec<DatagramRecord> {
        lock(&self.trace).records().to_vec()
    }
}
