//! The replay window against a naive model (every counter ever accepted in a
//! set, plus the highest): same verdict for every counter of arbitrary
//! sequences (in order, reordered, duplicated, jumping), duplicates are told
//! apart from fresh counters, and persisting/restoring the parts changes
//! nothing.

use std::collections::HashSet;

use flotta_proto::frame::{COUNTER_MAX, REPLAY_WINDOW, ReplayWindow, Verdict};
use proptest::prelude::*;

#[derive(Default)]
struct Model {
    seen: HashSet<u32>,
    highest: Option<u32>,
}

impl Model {
    fn check_and_mark(&mut self, counter: u32) -> Verdict {
        let verdict = match self.highest {
            Some(h) if counter <= h && h - counter >= REPLAY_WINDOW => Verdict::TooOld,
            _ if self.seen.contains(&counter) => Verdict::Duplicate,
            _ => Verdict::Fresh,
        };
        if verdict == Verdict::Fresh {
            self.seen.insert(counter);
            self.highest = self.highest.max(Some(counter));
        }
        verdict
    }
}

/// Counters that move forward mostly, with reordering, repeats and jumps.
fn counters() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(
        prop_oneof![
            6 => 0u32..200,
            2 => 0u32..3,
            1 => 150u32..400,
            1 => (COUNTER_MAX - 100)..=COUNTER_MAX,
        ],
        0..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn agrees_with_the_model(counters in counters(), restore_every in 1usize..50) {
        let mut window = ReplayWindow::new();
        let mut model = Model::default();
        for (i, &c) in counters.iter().enumerate() {
            prop_assert_eq!(window.check(c), model_check(&model, c), "check {}", c);
            prop_assert_eq!(window.check_and_mark(c), model.check_and_mark(c), "counter {}", c);
            prop_assert_eq!(window.highest(), model.highest);
            if i % restore_every == 0 {
                window = ReplayWindow::from_parts(window.parts());
            }
        }
    }

    #[test]
    fn a_fresh_counter_is_a_duplicate_right_after(counters in counters()) {
        let mut window = ReplayWindow::new();
        for c in counters {
            if window.check_and_mark(c) == Verdict::Fresh {
                prop_assert_eq!(window.check(c), Verdict::Duplicate);
                prop_assert_eq!(window.check_and_mark(c), Verdict::Duplicate);
            }
        }
    }
}

/// The model's verdict without marking.
fn model_check(model: &Model, counter: u32) -> Verdict {
    let mut copy = Model {
        seen: model.seen.clone(),
        highest: model.highest,
    };
    copy.check_and_mark(counter)
}

#[test]
fn window_edges() {
    let mut w = ReplayWindow::new();
    assert_eq!(w.check_and_mark(100), Verdict::Fresh);
    assert_eq!(w.check_and_mark(100 - 63), Verdict::Fresh); // last slot
    assert_eq!(w.check_and_mark(100 - 64), Verdict::TooOld); // first one out
    assert_eq!(w.check_and_mark(100 - 63), Verdict::Duplicate);
    assert_eq!(w.check_and_mark(163), Verdict::Fresh); // slides 37 out, keeps 100
    assert_eq!(w.check(100), Verdict::Duplicate);
    assert_eq!(w.check(99), Verdict::TooOld);
    assert_eq!(w.check(100 - 63), Verdict::TooOld);
    assert_eq!(w.check_and_mark(1000), Verdict::Fresh); // jump past the whole window
    assert_eq!(w.check(999), Verdict::Fresh);
    assert_eq!(w.check(163), Verdict::TooOld);
}
