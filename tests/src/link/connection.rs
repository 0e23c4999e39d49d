//! The life of one accepted connection: connect upstream, forward both ways,
//! and end by the peers, a random drop or a blackout.

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};

use super::counters::{Direction, Event};
use super::pipe;
use super::profile::CutMode;
use super::seed::{self, Stream};
use super::shared::Shared;

/// How long to wait for the upstream's TCP handshake (real time).
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How forwarding ended.
enum Outcome {
    /// Both directions finished with a FIN.
    Finished,
    /// A peer reset or an I/O error.
    Failed,
    /// The link dropped the connection or went down.
    Cut,
}

/// Aborts a connection: SO_LINGER = 0 makes the close send a RST.
pub(crate) fn reset(stream: TcpStream) {
    // If the option cannot be set, a plain close still ends the connection.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Serves the `id`-th connection attempt, admitted while the link was up in
/// down-epoch `epoch` (see [`LinkState`](super::availability::LinkState)): any
/// blackout after that cuts it, even one that ended before this task ran.
pub(crate) async fn run(mut client: TcpStream, shared: Arc<Shared>, id: u64, epoch: u64) {
    let accepted_at = Instant::now();
    let lifetime = shared
        .timing
        .lifetime(&mut seed::rng(shared.seed, id, Stream::Lifetime));
    let deadline = lifetime.and_then(|lifetime| accepted_at.checked_add(lifetime));
    let mut upstream = match timeout(
        UPSTREAM_CONNECT_TIMEOUT,
        TcpStream::connect(shared.upstream()),
    )
    .await
    {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(_)) | Err(_) => {
            shared.counters.count(Event::UpstreamFailure);
            reset(client);
            return;
        }
    };
    shared.counters.count(Event::Accepted);
    // Chunks are the link's segments: do not let Nagle merge them.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    match forward_both(&mut client, &mut upstream, &shared, id, epoch, deadline).await {
        Outcome::Finished => shared.counters.count(Event::Closed),
        Outcome::Failed => {
            shared.counters.count(Event::Closed);
            reset(client);
            reset(upstream);
        }
        Outcome::Cut => {
            shared.counters.count(Event::Cut);
            match shared.cut_mode() {
                CutMode::Reset => {
                    reset(client);
                    reset(upstream);
                }
                CutMode::Stall => {
                    tokio::join!(
                        discard_until_closed(&mut client),
                        discard_until_closed(&mut upstream)
                    );
                }
            }
        }
    }
}

async fn forward_both(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    shared: &Shared,
    id: u64,
    epoch: u64,
    deadline: Option<Instant>,
) -> Outcome {
    let mut link_state = shared.subscribe();
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let up = pipe::forward(
        client_read,
        upstream_write,
        Direction::Up,
        shared,
        seed::rng(shared.seed, id, Stream::Up),
    );
    let down = pipe::forward(
        upstream_read,
        client_write,
        Direction::Down,
        shared,
        seed::rng(shared.seed, id, Stream::Down),
    );
    let dropped = async {
        match deadline {
            Some(deadline) => sleep_until(deadline).await,
            None => pending().await,
        }
    };
    let blackout = async {
        // The sender lives in `shared`, which outlives this task. The epoch,
        // not `up`, decides: a blackout that is already over still cuts.
        if link_state
            .wait_for(|state| !state.admits(epoch))
            .await
            .is_err()
        {
            pending::<()>().await;
        }
    };
    tokio::select! {
        result = async { tokio::try_join!(up, down) } => {
            if result.is_ok() { Outcome::Finished } else { Outcome::Failed }
        }
        () = dropped => Outcome::Cut,
        () = blackout => Outcome::Cut,
    }
}

/// A stalled connection delivers nothing; reading on only tells when the
/// peer gives up, so its end can be closed then.
async fn discard_until_closed(stream: &mut TcpStream) {
    let mut sink = vec![0; 4096];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            return;
        }
    }
}
