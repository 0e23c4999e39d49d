//! Waiting for states, not for time: the polling helpers every end-to-end
//! test and the wire benchmark share (ARCHITECTURE.md: a fixed sleep only
//! shapes a scenario, never decides a verdict).

use std::thread::sleep;
use std::time::{Duration, Instant};

/// Polls `condition` every 5 ms until it holds (`true`) or `limit` passes
/// (`false`): for conditions that are cheap to check.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(5));
    }
}

/// Polls `done` every 100 ms (it may read logs, stores or `/metrics`) and
/// panics naming `what` if it does not hold within `limit`.
///
/// # Panics
/// When `limit` passes first.
pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventually_answers_whether_the_condition_came_true() {
        let mut calls = 0;
        assert!(eventually(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
        assert!(!eventually(Duration::from_millis(20), || false));
    }

    #[test]
    #[should_panic(expected = "timed out waiting for nothing")]
    fn wait_for_names_what_it_waited_for() {
        wait_for("nothing", Duration::from_millis(10), || false);
    }
}
