//! A user-space UDP link emulator: the datagram path of a device behind
//! NB-IoT and a carrier NAT, for the sealed-frame channel's end-to-end tests
//! and byte-count benchmarks.
//!
//! [`UdpLink`] listens on `127.0.0.1:0` and forwards every client datagram to
//! one upstream address through a NAT: each client source address gets its
//! own upstream-facing socket (a binding), so replies find their way back,
//! and a binding idle (no uplink) for the NAT timeout expires: late replies to
//! it are dropped and counted, and the client's next uplink gets a new
//! binding on a new source port. Each direction applies its own
//! [`DatagramProfile`] (loss, duplication, reordering, latency and jitter, an
//! MTU); blackouts come from [`UdpLink::set_up`] and a [`Schedule`] played
//! through a [`TimeScale`], as on the TCP [`Link`]; [`UdpLinkStats`] counts
//! datagrams and bytes by fate, with the headers' 28 bytes for benchmarks.
//!
//! # Determinism
//!
//! Each direction draws from its own stream of the link's seed (configured,
//! else `FLOTTA_LINK_SEED`, else random; printed at start), a fixed number
//! of draws per datagram, so the `n`-th datagram each way gets the same
//! decision ([`Fate`]) in every run with that seed, whatever happened to the
//! ones before it. What is real-time (blackouts by hand, NAT expiry, the
//! order datagrams from several clients reach the link) is not replayed.
//! [`UdpLink::trace`] lists the decisions.
//!
//! # Why one thread with a current-thread tokio runtime
//!
//! As for the TCP link: the handle owns one thread, joined on drop. On it,
//! one event loop owns every piece of mutable state (both directions'
//! random streams and delay queues, the NAT table), so decisions happen in
//! arrival order without locks, and every delayed datagram waits in a heap
//! behind a single timer rather than on a thread or task of its own. Each
//! binding's socket gets a small reader task, which costs nothing when idle;
//! with plain std threads each binding would need a thread, or the loop a
//! hand-written poll over all sockets with timeouts.
//!
//! ```no_run
//! use std::time::Duration;
//! use flotta_e2e::link::{DatagramProfile, UdpLinkConfig, UdpProfile};
//!
//! # fn main() -> Result<(), flotta_e2e::link::LinkError> {
//! let server: std::net::SocketAddr = "127.0.0.1:5683".parse().expect("address");
//! let lossy = DatagramProfile::nb_iot().with_loss(0.1);
//! let link = UdpLinkConfig::new(server, UdpProfile::new(lossy, DatagramProfile::nb_iot()))
//!     .with_nat_idle_timeout(Duration::from_secs(30))
//!     .with_seed(7)
//!     .start()?;
//! let device_target = link.addr();
//! # let _ = device_target;
//! // ... exchanges ...
//! let stats = link.stats();
//! println!("{} bytes on the wire, {} lost up", stats.wire_bytes(), stats.up.dropped_loss);
//! # Ok(())
//! # }
//! ```
//!
//! [`Link`]: super::Link
//! [`Schedule`]: super::Schedule
//! [`TimeScale`]: super::TimeScale

mod due_queue;
mod fate;
mod handle;
mod nat;
mod profile;
mod serve;
mod shared;
mod stats;
mod trace;

pub use fate::{DropCause, Fate};
pub use handle::{DEFAULT_NAT_IDLE_TIMEOUT, UdpLink, UdpLinkConfig};
pub use profile::{DatagramProfile, IPV4_UDP_HEADER_BYTES, UdpProfile};
pub use stats::{DatagramStats, UdpLinkStats};
pub use trace::{DEFAULT_TRACE_LIMIT, DatagramRecord, HEAD_BYTES};
