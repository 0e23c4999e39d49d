//! One direction of a proxied connection: read in MTU-sized chunks, shape to
//! the bandwidth cap, hold each chunk for its one-way delay, then deliver.

use std::io;

use rand::rngs::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

use super::counters::Direction;
use super::shared::Shared;

/// Chunks in flight per direction before reading pauses (backpressure).
const IN_FLIGHT_CHUNKS: usize = 4096;

/// A chunk on its way; empty data stands for the sender's FIN.
struct Chunk {
    data: Vec<u8>,
    due: Instant,
}

/// Forwards `from` to `to` until `from` ends (then shuts `to` down, after the
/// last chunk's delay) or either side fails. Chunks keep their order: jitter
/// never lets one overtake another.
pub(crate) async fn forward<R, W>(
    mut from: R,
    mut to: W,
    direction: Direction,
    shared: &Shared,
    mut rng: ChaCha8Rng,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<Chunk>(IN_FLIGHT_CHUNKS);
    let timing = &shared.timing;
    let ingress = async move {
        let mut last_due = Instant::now();
        loop {
            let mut data = vec![0; timing.mtu_bytes];
            let n = from.read(&mut data).await?;
            data.truncate(n);
            if n > 0 {
                let wait = shared.shape(direction, n);
                if !wait.is_zero() {
                    sleep(wait).await;
                }
            }
            let due = (Instant::now() + timing.one_way_delay(&mut rng)).max(last_due);
            last_due = due;
            // A closed channel means egress failed; try_join reports that.
            if tx.send(Chunk { data, due }).await.is_err() || n == 0 {
                return Ok::<(), io::Error>(());
            }
        }
    };
    let egress = async move {
        while let Some(chunk) = rx.recv().await {
            if chunk.due > Instant::now() {
                sleep_until(chunk.due).await;
            }
            if chunk.data.is_empty() {
                return to.shutdown().await;
            }
            to.write_all(&chunk.data).await?;
            shared.counters.add_bytes(direction, chunk.data.len());
        }
        Ok(())
    };
    tokio::try_join!(ingress, egress).map(|((), ())| ())
}
