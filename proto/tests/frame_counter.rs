//! Counter reservation under crashes: a store that persists atomically (old
//! or new value), a reserver dropped at any step ("crash") and reopened from
//! the store, and store failures. Whatever the schedule: no counter is ever
//! handed out twice, counters only grow, each crash skips fewer than `step`
//! counters, and the store is written once per `step` counters.

use std::cell::RefCell;
use std::num::NonZeroU32;
use std::rc::Rc;

use flotta_proto::frame::{COUNTER_MAX, CounterReserver, CounterStore, ReserveError};
use proptest::prelude::*;

/// What the disk holds, shared across "reboots".
#[derive(Default)]
struct Disk {
    value: Option<u32>,
    writes: usize,
    /// Fail the next store (the value is not written).
    fail_next: bool,
}

#[derive(Clone, Default)]
struct SharedStore(Rc<RefCell<Disk>>);

impl CounterStore for SharedStore {
    type Error = &'static str;

    fn load(&mut self) -> Result<Option<u32>, Self::Error> {
        Ok(self.0.borrow().value)
    }

    fn store(&mut self, next_free: u32) -> Result<(), Self::Error> {
        let mut disk = self.0.borrow_mut();
        if std::mem::take(&mut disk.fail_next) {
            return Err("disk full");
        }
        disk.value = Some(next_free);
        disk.writes += 1;
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Step {
    Take,
    Crash,
    FailNextStore,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        prop_oneof![
            8 => Just(Step::Take),
            1 => Just(Step::Crash),
            1 => Just(Step::FailNextStore),
        ],
        0..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_reuse_and_bounded_skipping_under_crashes(steps in steps(), step in 1u32..40) {
        let step = NonZeroU32::new(step).unwrap();
        let store = SharedStore::default();
        let mut reserver = CounterReserver::open(store.clone(), step).unwrap();
        let mut handed: Vec<u32> = Vec::new();
        let mut crashes = 0u32;
        for s in &steps {
            match s {
                Step::Take => match reserver.take() {
                    Ok(c) => {
                        if let Some(&last) = handed.last() {
                            prop_assert!(c > last, "counter {} after {}", c, last);
                        }
                        handed.push(c);
                    }
                    Err(ReserveError::Store(_)) => {} // nothing handed out
                    Err(ReserveError::Exhausted) => prop_assert!(false, "exhausted early"),
                },
                Step::Crash => {
                    drop(reserver);
                    reserver = CounterReserver::open(store.clone(), step).unwrap();
                    crashes += 1;
                }
                Step::FailNextStore => store.0.borrow_mut().fail_next = true,
            }
        }
        // Strictly increasing (checked above), so never reused; skipped
        // counters come only from reservations lost in crashes.
        let used = handed.len() as u32;
        let span = handed.last().map_or(0, |&l| l + 1);
        prop_assert!(span - used <= crashes * (step.get() - 1), "skipped {} with {} crashes", span - used, crashes);
        // One write per reservation: at most one per `step` counters, plus
        // one re-reservation per crash.
        let writes = store.0.borrow().writes as u32;
        prop_assert!(writes <= used.div_ceil(step.get()) + crashes, "writes {}", writes);
    }
}

#[test]
fn exhaustion_is_an_error_not_a_wrap() {
    let store = SharedStore::default();
    store.0.borrow_mut().value = Some(COUNTER_MAX - 1);
    let mut r = CounterReserver::open(store.clone(), NonZeroU32::new(16).unwrap()).unwrap();
    assert_eq!(r.take(), Ok(COUNTER_MAX - 1));
    assert_eq!(r.take(), Ok(COUNTER_MAX));
    assert_eq!(r.take(), Err(ReserveError::Exhausted));
    assert_eq!(r.remaining(), 0);
    // The reservation never goes past the counter space.
    assert_eq!(store.0.borrow().value, Some(COUNTER_MAX + 1));
    let mut again = CounterReserver::open(store, NonZeroU32::new(16).unwrap()).unwrap();
    assert_eq!(again.take(), Err(ReserveError::Exhausted));
}

#[test]
fn reservation_is_persisted_before_the_first_use() {
    let store = SharedStore::default();
    let mut r = CounterReserver::open(store.clone(), NonZeroU32::new(16).unwrap()).unwrap();
    assert_eq!(store.0.borrow().value, None, "opening writes nothing");
    assert_eq!(r.take(), Ok(0));
    assert_eq!(store.0.borrow().value, Some(16));
    store.0.borrow_mut().fail_next = true;
    for expected in 1..16 {
        assert_eq!(r.take(), Ok(expected));
    }
    // The 17th counter needs a new reservation; the store fails: nothing handed out.
    assert_eq!(r.take(), Err(ReserveError::Store("disk full")));
    assert_eq!(r.take(), Ok(16));
    assert_eq!(store.0.borrow().value, Some(32));
}
