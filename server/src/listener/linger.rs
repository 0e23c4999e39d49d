//! Lingering close: when the server ends a connection while the client may
//! still be sending (a 413 answered from `Content-Length`, a 408, a
//! refusal), closing at once with unread bytes makes the kernel send a
//! reset, and the client may lose the response it has not read yet.
//!
//! [`Lingering`] wraps a stream so that its shutdown first closes the
//! writing side (the client sees the response, then end of stream), then
//! reads and discards what the client still sends until it closes, for at
//! most [`LINGER`] and [`LINGER_MAX_BYTES`] (as nginx's `lingering_close`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Longest time spent discarding after the server closed its side.
pub const LINGER: Duration = Duration::from_secs(2);

/// Most bytes discarded after the server closed its side.
pub const LINGER_MAX_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug)]
enum State {
    Open,
    Draining { timer: Pin<Box<Sleep>>, left: u64 },
    Closed,
}

/// A stream whose shutdown lingers; see the module documentation.
#[derive(Debug)]
pub struct Lingering<Io> {
    io: Io,
    state: State,
}

impl<Io> Lingering<Io> {
    /// Wrap `io`.
    pub fn new(io: Io) -> Self {
        Self {
            io,
            state: State::Open,
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Lingering<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Open => {
                    let closed = ready!(Pin::new(&mut this.io).poll_shutdown(cx));
                    this.state = State::Draining {
                        timer: Box::pin(tokio::time::sleep(LINGER)),
                        left: LINGER_MAX_BYTES,
                    };
                    if closed.is_err() {
                        this.state = State::Closed;
                        return Poll::Ready(closed);
                    }
                }
                State::Draining { timer, left } => {
                    if timer.as_mut().poll(cx).is_ready() || *left == 0 {
                        this.state = State::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 4096];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match ready!(Pin::new(&mut this.io).poll_read(cx, &mut buf)) {
                        Ok(()) if !buf.filled().is_empty() => {
                            *left = left.saturating_sub(buf.filled().len() as u64);
                        }
                        // End of stream, or an error: nothing more to wait for.
                        _ => this.state = State::Closed,
                    }
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn shutdown_closes_the_writing_side_then_discards_until_the_peer_closes() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut server = Lingering::new(server);
        server.write_all(b"413").await.unwrap();
        let shutdown = tokio::spawn(async move { server.shutdown().await });
        // The client is still sending: far more than the pipe holds.
        client.write_all(&[0u8; 10_000]).await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"413");
        drop(client);
        shutdown.await.unwrap().unwrap();
    }
}
