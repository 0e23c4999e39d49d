//! Request deadlines: a request body that stops (or trickles) is cut.
//!
//! [`TimedBody`] wraps a request body and fails with [`BodyTimeout`] when
//! either rule is broken:
//!
//! - **whole-request deadline**: the body must be complete by the deadline
//!   the connection layer computes (from the moment the connection started
//!   waiting for this request's headers, so headers and body share it);
//! - **minimum rate**: after a grace period from the end of the headers,
//!   the body must keep an average of at least the minimum rate. Byte
//!   number `n + 1` is due `grace + (n + 1) / rate` after the headers; a
//!   stall is fine as long as earlier bytes paid for it.
//!
//! A timer is armed for the earlier of the two instants, so a body that
//! sends nothing at all is cut as surely as one that trickles.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The rules a request body is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRules {
    /// Slowest average rate accepted after the grace period, bytes per second (at least 1).
    pub min_rate_bytes_per_second: u64,
    /// Time after the headers before the minimum rate applies.
    pub grace: Duration,
}

impl BodyRules {
    /// When, after the headers, the body must have delivered more than
    /// `received` bytes.
    pub fn next_byte_due(&self, received: u64) -> Duration {
        let rate = u128::from(self.min_rate_bytes_per_second.max(1));
        let nanos = (u128::from(received) + 1) * 1_000_000_000 / rate;
        self.grace.saturating_add(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }
}

/// Which rule a body broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyTimeout {
    /// The whole-request deadline passed before the body was complete.
    #[error("the request was not complete by its deadline")]
    Deadline,
    /// The body arrived slower than the minimum rate.
    #[error("the request body arrived slower than the minimum rate")]
    TooSlow,
}

impl BodyTimeout {
    /// Whether retrying may succeed (yes: on a better link, or a healthy client).
    pub fn is_retriable(&self) -> bool {
        true
    }

    /// Whether `error`, or any error it wraps, is a [`BodyTimeout`].
    pub fn find(error: &(dyn std::error::Error + 'static)) -> Option<BodyTimeout> {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(t) = e.downcast_ref::<BodyTimeout>() {
                return Some(*t);
            }
            next = e.source();
        }
        None
    }
}

/// A request body held to a deadline and a minimum rate; see the module docs.
#[derive(Debug)]
pub struct TimedBody<B> {
    inner: B,
    headers_at: Instant,
    deadline: Instant,
    rules: BodyRules,
    received: u64,
    timer: Pin<Box<Sleep>>,
    done: bool,
}

impl<B> TimedBody<B> {
    /// Hold `inner` (whose headers arrived at `headers_at`) to `deadline` and `rules`.
    pub fn new(inner: B, headers_at: Instant, deadline: Instant, rules: BodyRules) -> Self {
        let mut body = Self {
            inner,
            headers_at,
            deadline,
            rules,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            done: false,
        };
        let due = body.due();
        body.timer.as_mut().reset(due);
        body
    }

    /// The instant at which the body breaks a rule if nothing more arrives.
    fn due(&self) -> Instant {
        let rate_due = self.headers_at + self.rules.next_byte_due(self.received);
        rate_due.min(self.deadline)
    }

    fn broken(&self, now: Instant) -> Option<BodyTimeout> {
        if now >= self.deadline {
            Some(BodyTimeout::Deadline)
        } else if now >= self.due() {
            Some(BodyTimeout::TooSlow)
        } else {
            None
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(match frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        this.received = this.received.saturating_add(data.len() as u64);
                        let due = this.due();
                        this.timer.as_mut().reset(due);
                    }
                    Some(Ok(frame))
                }
                Some(Err(e)) => Some(Err(e.into())),
                None => {
                    this.done = true;
                    None
                }
            });
        }
        loop {
            if let Some(broken) = this.broken(Instant::now()) {
                this.done = true;
                return Poll::Ready(Some(Err(Box::new(broken))));
            }
            ready!(this.timer.as_mut().poll(cx));
            // The timer fired: check again (it may have been armed earlier).
            let due = this.due();
            this.timer.as_mut().reset(due);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // The declared Content-Length, when there is one: handlers refuse
        // an oversized body from it before reading anything.
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[test]
    fn each_byte_is_due_after_the_grace_at_the_minimum_rate() {
        let rules = BodyRules {
            min_rate_bytes_per_second: 10,
            grace: Duration::from_secs(2),
        };
        assert_eq!(rules.next_byte_due(0), Duration::from_millis(2_100));
        assert_eq!(rules.next_byte_due(9), Duration::from_secs(3));
        assert_eq!(rules.next_byte_due(99), Duration::from_secs(12));
        let huge = BodyRules {
            min_rate_bytes_per_second: 1,
            grace: Duration::MAX,
        };
        assert_eq!(huge.next_byte_due(u64::MAX), Duration::MAX);
    }

    /// A body that never sends anything.
    struct Silent;

    impl Body for Silent {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_silent_body_is_cut_by_the_earlier_rule_and_a_complete_one_is_not() {
        let rules = BodyRules {
            min_rate_bytes_per_second: 1000,
            grace: Duration::from_millis(50),
        };
        let now = Instant::now();
        let far = now + Duration::from_secs(60);
        let err = TimedBody::new(Silent, now, far, rules)
            .collect()
            .await
            .unwrap_err();
        assert_eq!(BodyTimeout::find(&*err), Some(BodyTimeout::TooSlow));
        let near = now + Duration::from_millis(10);
        let err = TimedBody::new(Silent, now, near, rules)
            .collect()
            .await
            .unwrap_err();
        assert_eq!(BodyTimeout::find(&*err), Some(BodyTimeout::Deadline));
        let finished = TimedBody::new(http_body_util::Empty::<Bytes>::new(), now, now, rules);
        assert!(
            finished.collect().await.is_ok(),
            "a finished body is never cut"
        );
        let full = http_body_util::Full::new(Bytes::from_static(b"hello"));
        let got = TimedBody::new(full, now, far, rules)
            .collect()
            .await
            .unwrap();
        assert_eq!(got.to_bytes(), Bytes::from_static(b"hello"));
    }
}
