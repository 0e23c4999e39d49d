//! A user-space flaky-link emulator for end-to-end tests.
//!
//! The kernel's netem is not available everywhere tests run, so [`Link`] emulates
//! a constrained link in user space: a TCP proxy on `127.0.0.1:0` that forwards
//! every connection to one upstream address and, on the way, applies a
//! [`LinkProfile`] (one-way latency and jitter, a bandwidth cap per direction,
//! MTU-sized chunks, random refusals and mid-connection drops), plus blackouts
//! set by hand ([`Link::set_up`]) or scripted in a [`Schedule`] whose clock can
//! be compressed with a [`TimeScale`]. [`LinkStats`] counts bytes and
//! connections for benchmarks.
//!
//! Randomness comes from one seed per link (printed when the link starts and
//! again if it is dropped during a panic). Set `FLOTTA_LINK_SEED` to replay a
//! run whose config did not fix a seed.
//!
//! ```no_run
//! use std::time::Duration;
//! use flotta_e2e::link::{Link, LinkConfig, LinkProfile, Schedule, TimeScale};
//!
//! # fn main() -> Result<(), flotta_e2e::link::LinkError> {
//! let server: std::net::SocketAddr = "127.0.0.1:8043".parse().expect("address");
//! let hour = Duration::from_secs(3600);
//! let link = LinkConfig::new(server, LinkProfile::satellite())
//!     // Down from t = 10 s for 2 h of simulated time ...
//!     .with_schedule(Schedule::new().down(Duration::from_secs(10), 2 * hour))
//!     // ... which lasts 7.2 s of real time; latency and bandwidth stay real.
//!     .with_time_scale(TimeScale::new(0.001)?)
//!     .start()?;
//! let agent_target = link.addr();
//! # let _ = agent_target;
//! println!("{:?}", link.stats());
//! # Ok(())
//! # }
//! ```
//!
//! # UDP: [`UdpLink`]
//!
//! The datagram path of the sealed-frame channel (NB-IoT) has its own
//! emulator: [`UdpLink`] forwards client datagrams to one upstream through a
//! NAT (a binding, i.e. an upstream source port, per client, expiring after
//! `nat_idle_timeout` without uplink) and applies per direction a
//! [`DatagramProfile`]: loss, duplication, reordering, latency and jitter, an
//! MTU. Blackouts, schedules, time scales and seeds work as above;
//! [`UdpLinkStats`] counts datagrams and bytes by fate, and
//! [`UdpLinkStats::wire_bytes`] adds the 28 bytes of IPv4 and UDP headers
//! each delivered datagram costs.
//!
//! ```no_run
//! use std::time::Duration;
//! use flotta_e2e::link::{DatagramProfile, UdpLinkConfig, UdpProfile};
//!
//! # fn main() -> Result<(), flotta_e2e::link::LinkError> {
//! let server: std::net::SocketAddr = "127.0.0.1:5683".parse().expect("address");
//! let link = UdpLinkConfig::new(server, UdpProfile::clean())
//!     .with_nat_idle_timeout(Duration::from_secs(30))
//!     .with_seed(7)
//!     .start()?;
//! // A clean phase, then a lossy one; the agent sends to `link.addr()`.
//! let before = link.stats();
//! link.set_profile(UdpProfile::symmetric(DatagramProfile::clean().with_loss(0.3)))?;
//! let lossy_phase = link.stats().since(&before);
//! println!("{} bytes on the wire", lossy_phase.wire_bytes());
//! # Ok(())
//! # }
//! ```

mod availability;
mod bucket;
mod connection;
mod counters;
mod error;
mod pipe;
mod profile;
mod proxy;
mod schedule;
mod seed;
mod shared;
mod time_scale;
mod timing;
mod udp;

pub use counters::{Direction, LinkStats};
pub use error::LinkError;
pub use profile::{CutMode, LinkProfile};
pub use proxy::{Link, LinkConfig};
pub use schedule::{Outage, Schedule};
pub use seed::SEED_ENV;
pub use time_scale::TimeScale;
pub use udp::{
    DEFAULT_NAT_IDLE_TIMEOUT, DEFAULT_TRACE_LIMIT, DatagramProfile, DatagramRecord, DatagramStats,
    DropCause, Fate, HEAD_BYTES, IPV4_UDP_HEADER_BYTES, UdpLink, UdpLinkConfig, UdpLinkStats,
    UdpProfile,
};
