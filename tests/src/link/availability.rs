//! Whether a link is up: a blackout set by hand and a scripted [`Schedule`]
//! combine into one published state, shared by the TCP and the UDP link.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::schedule::Schedule;
use super::time_scale::TimeScale;

/// Why the link is up or down: a blackout by hand and the schedule combine.
#[derive(Debug)]
struct Flags {
    manual_up: bool,
    scheduled_down: bool,
}

/// What traffic checks: whether the link is up, and how many times it went
/// down so far.
///
/// The count is what cuts connections and drops datagrams in flight. A
/// `watch` channel keeps only the latest value, so a short blackout (down,
/// then up again before a task is polled) would be invisible in a plain
/// `bool`: the task would wake, see "up" and carry on. Traffic admitted at
/// epoch `n` is cut as soon as it sees any epoch other than `n`, however
/// briefly the link was down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinkState {
    /// Up by hand and by schedule.
    pub(crate) up: bool,
    /// Transitions from up to down since the link started.
    pub(crate) downs: u64,
}

impl LinkState {
    /// Whether traffic admitted in down-epoch `epoch` may still be delivered:
    /// the link is up and has not been down since.
    pub(crate) fn admits(&self, epoch: u64) -> bool {
        self.up && self.downs == epoch
    }
}

/// The link's up/down state, set by hand and by the schedule.
#[derive(Debug)]
pub(crate) struct Availability {
    flags: Mutex<Flags>,
    state: watch::Sender<LinkState>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing holding this lock can leave it half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Availability {
    /// Up, never down so far.
    pub(crate) fn new() -> Self {
        Self {
            flags: Mutex::new(Flags {
                manual_up: true,
                scheduled_down: false,
            }),
            state: watch::Sender::new(LinkState { up: true, downs: 0 }),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.state.borrow().up
    }

    /// The state now: traffic admitted while it is up keeps its `downs` as
    /// the epoch it lives in (see [`LinkState`]).
    pub(crate) fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<LinkState> {
        self.state.subscribe()
    }

    pub(crate) fn set_manual_up(&self, up: bool) {
        self.update(|flags| flags.manual_up = up);
    }

    pub(crate) fn set_scheduled_down(&self, down: bool) {
        self.update(|flags| flags.scheduled_down = down);
    }

    fn update(&self, change: impl FnOnce(&mut Flags)) {
        let mut flags = lock(&self.flags);
        change(&mut flags);
        let up = flags.manual_up && !flags.scheduled_down;
        // Under the lock, so concurrent updates publish in order.
        self.state.send_if_modified(|current| {
            if current.up == up {
                return false;
            }
            current.up = up;
            if !up {
                current.downs += 1;
            }
            true
        });
    }
}

/// Applies the schedule's transitions at their (scaled) times through
/// `set_scheduled_down`. Each one is applied even when the task wakes late,
/// so no outage is skipped.
pub(crate) async fn follow_schedule(
    schedule: Schedule,
    scale: TimeScale,
    started: tokio::time::Instant,
    set_scheduled_down: impl Fn(bool),
) {
    let mut now: Duration = scale.to_sim(started.elapsed());
    loop {
        set_scheduled_down(schedule.is_down_at(now));
        let Some(next) = schedule.next_change_after(now) else {
            return;
        };
        let Some(wake) = started.checked_add(scale.to_real(next)) else {
            return;
        };
        tokio::time::sleep_until(wake).await;
        now = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_and_scheduled_downs_combine_and_count_epochs() {
        let availability = Availability::new();
        assert_eq!(availability.state(), LinkState { up: true, downs: 0 });
        availability.set_manual_up(false);
        availability.set_scheduled_down(true);
        assert_eq!(
            availability.state(),
            LinkState {
                up: false,
                downs: 1
            }
        );
        availability.set_manual_up(true);
        assert!(!availability.is_up(), "the schedule still holds it down");
        availability.set_scheduled_down(false);
        assert_eq!(availability.state(), LinkState { up: true, downs: 1 });
        availability.set_manual_up(false);
        availability.set_manual_up(true);
        let state = availability.state();
        assert_eq!(state, LinkState { up: true, downs: 2 });
        assert!(state.admits(2));
        assert!(!state.admits(1), "a blackout since admission must show");
    }
}
