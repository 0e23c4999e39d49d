//! The link's NAT: one binding (an upstream-facing socket) per client source
//! address, refreshed by uplink traffic and expired after an idle timeout, as
//! a carrier-grade NAT does.
//!
//! The NAT sits at the upstream end of the emulated path: an uplink datagram
//! creates or refreshes its client's binding when it is delivered (one lost on
//! the way refreshes nothing), and a reply is checked against the binding when
//! it arrives from the upstream. Replies never refresh a binding.
//!
//! An expired binding's socket stays open (the most recent
//! [`EXPIRED_KEPT`] of them) so that late replies to it are received and
//! counted as dropped rather than bounced by the kernel unseen; the client's
//! next uplink gets a new binding, on a new port.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

/// Expired bindings whose sockets are kept to count late replies.
pub(crate) const EXPIRED_KEPT: usize = 64;

/// A binding's number, unique for the link's life.
pub(crate) type BindingId = u64;

/// A live binding.
#[derive(Debug)]
struct Binding {
    client: SocketAddr,
    socket: Arc<UdpSocket>,
    /// When uplink traffic last went through it.
    last_up: Instant,
    /// The task reading its replies.
    reader: AbortHandle,
}

/// Bindings by client and by id.
#[derive(Debug)]
pub(crate) struct Nat {
    idle_timeout: Duration,
    by_client: HashMap<SocketAddr, BindingId>,
    live: HashMap<BindingId, Binding>,
    /// Readers of expired bindings, oldest first; they still run.
    expired: VecDeque<AbortHandle>,
    next_id: BindingId,
}

impl Nat {
    /// Bindings expire after `idle_timeout` (real time) without uplink.
    pub(crate) fn new(idle_timeout: Duration) -> Self {
        Self {
            idle_timeout,
            by_client: HashMap::new(),
            live: HashMap::new(),
            expired: VecDeque::new(),
            next_id: 0,
        }
    }

    /// The id the next binding will get (its reader needs it first).
    pub(crate) fn next_id(&self) -> BindingId {
        self.next_id
    }

    /// Adds a binding for `client` with id [`Self::next_id`], used at `at`.
    /// The caller has checked the client has no live binding.
    pub(crate) fn insert(
        &mut self,
        client: SocketAddr,
        socket: Arc<UdpSocket>,
        reader: AbortHandle,
        at: Instant,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        self.by_client.insert(client, id);
        self.live.insert(
            id,
            Binding {
                client,
                socket,
                last_up: at,
                reader,
            },
        );
    }

    /// The live binding of `client` as uplink traffic passes it at `at`:
    /// refreshed, its socket returned. `None` if it has none (call
    /// [`Self::expire_due`] with `at` first, so one idle too long is gone).
    pub(crate) fn refresh(&mut self, client: SocketAddr, at: Instant) -> Option<Arc<UdpSocket>> {
        let id = self.by_client.get(&client)?;
        let binding = self.live.get_mut(id)?;
        binding.last_up = binding.last_up.max(at);
        Some(Arc::clone(&binding.socket))
    }

    /// The client a reply arriving on binding `id` goes to, if it is live.
    pub(crate) fn client_of(&self, id: BindingId) -> Option<SocketAddr> {
        self.live.get(&id).map(|binding| binding.client)
    }

    /// Expires every binding idle for the timeout by `now`; returns how many.
    pub(crate) fn expire_due(&mut self, now: Instant) -> usize {
        let due: Vec<BindingId> = self
            .live
            .iter()
            .filter(|(_, binding)| self.deadline(binding).is_some_and(|end| end <= now))
            .map(|(&id, _)| id)
            .collect();
        for &id in &due {
            if let Some(binding) = self.live.remove(&id) {
                if self.by_client.get(&binding.client) == Some(&id) {
                    self.by_client.remove(&binding.client);
                }
                self.expired.push_back(binding.reader);
            }
        }
        while self.expired.len() > EXPIRED_KEPT {
            if let Some(reader) = self.expired.pop_front() {
                reader.abort();
            }
        }
        due.len()
    }

    /// When the next live binding expires, if any ever does.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.live
            .values()
            .filter_map(|binding| self.deadline(binding))
            .min()
    }

    fn deadline(&self, binding: &Binding) -> Option<Instant> {
        binding.last_up.checked_add(self.idle_timeout)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// A binding's parts: a loopback socket and a reader that never ends.
    fn parts(runtime: &tokio::runtime::Runtime) -> (Arc<UdpSocket>, AbortHandle) {
        let _context = runtime.enter();
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let socket = Arc::new(UdpSocket::from_std(socket).expect("tokio socket"));
        let reader = runtime.spawn(std::future::pending::<()>()).abort_handle();
        (socket, reader)
    }

    fn client(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    #[test]
    fn uplink_refreshes_idle_bindings_expire_and_clients_rebind() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let timeout = Duration::from_secs(10);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut nat = Nat::new(timeout);
        assert_eq!(nat.next_expiry(), None);
        for port in [1, 2] {
            let (socket, reader) = parts(&runtime);
            assert!(nat.refresh(client(port), t0).is_none());
            nat.insert(client(port), socket, reader, t0);
        }
        assert_eq!(
            (nat.client_of(0), nat.client_of(1)),
            (Some(client(1)), Some(client(2)))
        );
        assert_eq!(nat.next_expiry(), Some(t0 + timeout));
        // Client 1 keeps sending; client 2 falls silent.
        assert_eq!(nat.expire_due(t0 + s(5)), 0);
        assert!(nat.refresh(client(1), t0 + s(5)).is_some());
        assert_eq!(nat.expire_due(t0 + s(10)), 1);
        assert_eq!(nat.client_of(1), None, "client 2's binding expired");
        assert_eq!(nat.client_of(0), Some(client(1)));
        assert_eq!(nat.next_expiry(), Some(t0 + s(15)));
        // Client 2 comes back: a new binding with a new id.
        assert!(nat.refresh(client(2), t0 + s(11)).is_none());
        assert_eq!(nat.next_id(), 2);
        let (socket, reader) = parts(&runtime);
        nat.insert(client(2), socket, reader, t0 + s(11));
        assert_eq!(nat.client_of(2), Some(client(2)));
        assert_eq!(nat.expire_due(t0 + s(100)), 2);
        assert_eq!(nat.next_expiry(), None);
    }

    #[test]
    fn only_the_latest_expired_readers_are_kept() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let t0 = Instant::now();
        let mut nat = Nat::new(Duration::from_secs(1));
        let mut readers = Vec::new();
        for port in 0..u16::try_from(EXPIRED_KEPT + 3).expect("small") {
            let (socket, reader) = parts(&runtime);
            readers.push(reader.clone());
            nat.insert(client(port + 1), socket, reader, t0);
        }
        assert_eq!(
            nat.expire_due(t0 + Duration::from_secs(1)),
            EXPIRED_KEPT + 3
        );
        // Aborted tasks finish once the runtime polls them.
        runtime.block_on(async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        });
        let finished = readers.iter().filter(|reader| reader.is_finished()).count();
        assert_eq!(finished, 3);
    }
}
