//! The UDP link's event loop: it receives client datagrams and upstream
//! replies, decides each one's fate, holds the survivors until they are due,
//! and delivers them through the NAT.
//!
//! One task owns every piece of mutable state (both directions' random
//! streams and queues, the NAT table), so decisions are taken in arrival
//! order without locks. Each NAT binding has a small task that only reads its
//! socket and hands replies to the loop.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};

use super::super::availability::follow_schedule;
use super::super::counters::Direction;
use super::super::schedule::Schedule;
use super::super::seed::datagram_rng;
use super::due_queue::DueQueue;
use super::fate::{Draws, DropCause, Fate, decide};
use super::nat::{BindingId, Nat};
use super::shared::UdpShared;
use super::stats::{Count, LinkEvent};
use super::trace::{DatagramRecord, fingerprint};

/// Larger than any UDP payload (65 507 bytes over IPv4), so none is truncated.
const MAX_DATAGRAM: usize = 65_536;
/// Pause after a failed receive, so an error that repeats cannot spin.
const RECV_BACKOFF: Duration = Duration::from_millis(5);
/// Replies read but not yet decided before the binding readers wait.
const REPLY_QUEUE: usize = 1024;

/// A reply read on a binding's socket.
#[derive(Debug)]
struct Reply {
    binding: BindingId,
    data: Vec<u8>,
}

/// A datagram copy waiting to be delivered.
#[derive(Debug)]
struct Pending {
    /// Up: the client it came from (its NAT binding); down: its destination.
    client: SocketAddr,
    data: Vec<u8>,
    /// The down-epoch it was admitted in: any blackout since drops it.
    epoch: u64,
}

/// One direction: its random stream, its order and its queue.
#[derive(Debug)]
struct Path {
    direction: Direction,
    rng: ChaCha8Rng,
    next_index: u64,
    /// When the last datagram that was not held back is due: later ones are
    /// never due before it, so jitter alone keeps order.
    last_due: Instant,
    queue: DueQueue<Pending>,
}

impl Path {
    fn new(direction: Direction, seed: u64) -> Self {
        Self {
            direction,
            rng: datagram_rng(seed, direction),
            next_index: 0,
            last_due: Instant::now(),
            queue: DueQueue::new(),
        }
    }

    /// Decides the fate of `data` arriving at `now` for `client` (`None`: a
    /// reply on a binding that is not live), counts and records it, and
    /// queues the copies to deliver.
    fn admit(
        &mut self,
        shared: &UdpShared,
        client: Option<SocketAddr>,
        data: Vec<u8>,
        now: Instant,
    ) {
        let direction = self.direction;
        let index = self.next_index;
        self.next_index += 1;
        // Drawn whatever the fate, so later datagrams' draws never shift.
        let draws = Draws::take(&mut self.rng);
        let bytes = data.len();
        shared.counters.count(direction, Count::Offered(bytes));
        let state = shared.availability.state();
        let profile = shared.profile_of(direction);
        let fate = match client {
            None => Fate::Dropped(DropCause::ExpiredBinding),
            Some(_) => decide(&profile, &shared.time_scale, bytes, state.up, draws),
        };
        let (head, digest) = fingerprint(&data);
        shared.record(DatagramRecord {
            direction,
            index,
            bytes,
            head,
            digest,
            fate,
        });
        let (client, delay, duplicated, reordered) = match (fate, client) {
            (
                Fate::Delivered {
                    delay,
                    duplicated,
                    reordered,
                },
                Some(client),
            ) => (client, delay, duplicated, reordered),
            (Fate::Dropped(cause), _) => {
                shared.counters.count(direction, Count::Dropped(cause));
                return;
            }
            // Without a binding the fate is always a drop.
            (Fate::Delivered { .. }, None) => return,
        };
        let scale = &shared.time_scale;
        let on_time = now.checked_add(delay).unwrap_or(now).max(self.last_due);
        let due = if reordered {
            shared.counters.count(direction, Count::Reordered);
            let hold = scale.link_delay(profile.reorder_delay);
            on_time.checked_add(hold).unwrap_or(on_time)
        } else {
            self.last_due = on_time;
            on_time
        };
        let epoch = state.downs;
        if duplicated {
            shared.counters.count(direction, Count::Duplicated);
            let gap = scale.link_delay(profile.duplicate_gap);
            let copy = Pending {
                client,
                data: data.clone(),
                epoch,
            };
            // Queued after the original, so a zero gap still delivers it second.
            self.queue.push(
                due,
                Pending {
                    client,
                    data,
                    epoch,
                },
            );
            self.queue.push(due.checked_add(gap).unwrap_or(due), copy);
        } else {
            self.queue.push(
                due,
                Pending {
                    client,
                    data,
                    epoch,
                },
            );
        }
    }
}

/// What woke the loop.
enum Event {
    Joined(Option<JoinError>),
    Uplink(io::Result<(usize, SocketAddr)>),
    Reply(Reply),
    Timer,
}

/// The loop's state.
pub(crate) struct Serving {
    shared: Arc<UdpShared>,
    /// Faces the clients.
    socket: UdpSocket,
    nat: Nat,
    up: Path,
    down: Path,
    /// Binding readers and the schedule follower.
    tasks: JoinSet<()>,
    replies_tx: mpsc::Sender<Reply>,
    replies_rx: mpsc::Receiver<Reply>,
}

impl Serving {
    /// `nat_idle_timeout` is in real time.
    pub(crate) fn new(
        shared: Arc<UdpShared>,
        socket: UdpSocket,
        nat_idle_timeout: Duration,
    ) -> Self {
        let (replies_tx, replies_rx) = mpsc::channel(REPLY_QUEUE);
        Self {
            up: Path::new(Direction::Up, shared.seed),
            down: Path::new(Direction::Down, shared.seed),
            shared,
            socket,
            nat: Nat::new(nat_idle_timeout),
            tasks: JoinSet::new(),
            replies_tx,
            replies_rx,
        }
    }

    /// Serves until told to stop (or the handle is gone), then aborts every
    /// task; dropping the loop closes every socket.
    pub(crate) async fn run(
        mut self,
        schedule: Schedule,
        started: Instant,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        let shared = Arc::clone(&self.shared);
        self.tasks.spawn(follow_schedule(
            schedule,
            shared.time_scale,
            tokio::time::Instant::from_std(started),
            move |down| shared.availability.set_scheduled_down(down),
        ));
        let mut buf = vec![0; MAX_DATAGRAM];
        loop {
            let wake = [
                self.up.queue.next_due(),
                self.down.queue.next_due(),
                self.nat.next_expiry(),
            ]
            .into_iter()
            .flatten()
            .min();
            let event = tokio::select! {
                // A send or a dropped handle both mean stop.
                _ = &mut shutdown => break,
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    Event::Joined(joined.err())
                }
                received = self.socket.recv_from(&mut buf) => Event::Uplink(received),
                Some(reply) = self.replies_rx.recv() => Event::Reply(reply),
                () = sleep_until(wake) => Event::Timer,
            };
            let now = Instant::now();
            // What was due before this event happens first (an uplink due
            // earlier may refresh the binding a reply now arrives on).
            self.flush(now).await;
            match event {
                Event::Joined(Some(error)) if error.is_panic() => {
                    self.shared.counters.count_link(LinkEvent::TaskPanic);
                    eprintln!("flotta-e2e udp link: a task panicked: {error}");
                }
                Event::Joined(_) | Event::Timer => {}
                Event::Uplink(Ok((n, from))) => {
                    let data = buf.get(..n).unwrap_or_default().to_vec();
                    self.up.admit(&self.shared, Some(from), data, now);
                }
                Event::Uplink(Err(_)) => tokio::time::sleep(RECV_BACKOFF).await,
                Event::Reply(reply) => {
                    let client = self.nat.client_of(reply.binding);
                    self.down.admit(&self.shared, client, reply.data, now);
                }
            }
            // Datagrams without delay are due at once.
            self.flush(now).await;
        }
        self.tasks.shutdown().await;
    }

    /// Delivers everything due by `now` in due order, then expires bindings
    /// idle since before `now`.
    ///
    /// Sends wait for the socket to be writable (a fresh binding's socket is
    /// not known to be until the reactor has seen it; a full buffer waits
    /// rather than drops); on loopback that is at most a turn of the loop.
    async fn flush(&mut self, now: Instant) {
        while let Some((due, pending)) = self.up.queue.pop_due(now) {
            if self.survives_blackouts(Direction::Up, &pending) {
                self.deliver_up(pending, due).await;
            }
        }
        while let Some((_, pending)) = self.down.queue.pop_due(now) {
            if self.survives_blackouts(Direction::Down, &pending) {
                let sent = self.socket.send_to(&pending.data, pending.client).await;
                self.count_sent(Direction::Down, sent.map(|_| ()), pending.data.len());
            }
        }
        self.expire(now);
    }

    /// Whether the link has stayed up since `pending` was admitted; counts
    /// the drop if not.
    fn survives_blackouts(&self, direction: Direction, pending: &Pending) -> bool {
        let survives = self.shared.availability.state().admits(pending.epoch);
        if !survives {
            let drop = Count::Dropped(DropCause::Blackout);
            self.shared.counters.count(direction, drop);
        }
        survives
    }

    /// Sends an uplink datagram through its client's binding, created if the
    /// client has none (or had one that expired by `due`).
    async fn deliver_up(&mut self, pending: Pending, due: Instant) {
        self.expire(due);
        let socket = match self.nat.refresh(pending.client, due) {
            Some(socket) => Ok(socket),
            None => self.bind(pending.client, due),
        };
        let sent = match socket {
            Ok(socket) => socket
                .send_to(&pending.data, self.shared.upstream)
                .await
                .map(|_| ()),
            Err(error) => Err(error),
        };
        self.count_sent(Direction::Up, sent, pending.data.len());
    }

    /// A new binding for `client`: a fresh upstream-facing socket (a new
    /// source port, as a carrier NAT picks) and the task reading its replies.
    fn bind(&mut self, client: SocketAddr, at: Instant) -> io::Result<Arc<UdpSocket>> {
        let upstream = self.shared.upstream;
        let local: IpAddr = match (upstream.ip().is_loopback(), upstream.is_ipv4()) {
            (true, true) => Ipv4Addr::LOCALHOST.into(),
            (true, false) => Ipv6Addr::LOCALHOST.into(),
            (false, true) => Ipv4Addr::UNSPECIFIED.into(),
            (false, false) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = std::net::UdpSocket::bind((local, 0))?;
        socket.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        let reader = self.tasks.spawn(read_replies(
            self.nat.next_id(),
            Arc::clone(&socket),
            upstream,
            self.replies_tx.clone(),
        ));
        self.nat.insert(client, Arc::clone(&socket), reader, at);
        self.shared.counters.count_link(LinkEvent::BindingCreated);
        Ok(socket)
    }

    fn expire(&mut self, now: Instant) {
        let expired = self.nat.expire_due(now);
        if expired > 0 {
            let event = LinkEvent::BindingsExpired(expired);
            self.shared.counters.count_link(event);
        }
    }

    fn count_sent(&self, direction: Direction, sent: io::Result<()>, bytes: usize) {
        let count = match sent {
            Ok(()) => Count::Delivered(bytes),
            Err(_) => Count::Dropped(DropCause::SendFailure),
        };
        self.shared.counters.count(direction, count);
    }
}

/// Sleeps until `wake`, or forever if there is nothing to wake for.
async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(wake) => tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await,
        None => std::future::pending().await,
    }
}

/// Hands every datagram from the upstream on `socket` to the loop. Others
/// are ignored, as a NAT filtering by endpoint does.
async fn read_replies(
    binding: BindingId,
    socket: Arc<UdpSocket>,
    upstream: SocketAddr,
    replies: mpsc::Sender<Reply>,
) {
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let from_upstream = from.port() == upstream.port()
                    && (from.ip() == upstream.ip() || upstream.ip().is_unspecified());
                if !from_upstream {
                    continue;
                }
                let data = buf.get(..n).unwrap_or_default().to_vec();
                if replies.send(Reply { binding, data }).await.is_err() {
                    return;
                }
            }
            Err(_) => tokio::time::sleep(RECV_BACKOFF).await,
        }
    }
}
