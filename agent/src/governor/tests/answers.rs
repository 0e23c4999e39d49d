//! TTN's ten downlinks a day, counted as the network counts them: when a
//! downlink is sent, which may be after a later uplink than the one that
//! asked (`ledger.rs`, "Downlinks"). Scenarios, and a property over random
//! uplinks, losses and network servers fast or slow to answer.

use proptest::prelude::*;

use super::super::*;
use super::{G1, HOUR, T0, at};

/// An uplink of 100 ms that asks for an answer (or not).
fn uplink(asks: bool) -> Transmission {
    Transmission::lorawan(G1, 100, asks)
}

/// The network server's side: at most one answer waiting (a newer one
/// replaces it), brought after the next uplink it hears.
#[derive(Default)]
struct Network {
    waiting: bool,
}

impl Network {
    /// An uplink it hears (or not); `fast`: an answer asked for is ready
    /// for this uplink's own receive windows. Returns the downlinks sent
    /// (class A: at most one).
    fn uplink(&mut self, heard: bool, asks: bool, fast: bool) -> u64 {
        if !heard {
            return 0;
        }
        let mut sent = 0;
        if self.waiting {
            self.waiting = false;
            sent = 1;
        }
        if asks {
            if fast && sent == 0 {
                sent = 1;
            } else {
                self.waiting = true;
            }
        }
        sent
    }
}

/// The device: an uplink at `t` if admitted, asking if `asks` and fair use
/// allows; the downlinks it brought recorded at the radio's time in
/// `radio`. Returns whether it went.
fn device_uplink(
    g: &mut Governor,
    net: &mut Network,
    t: u64,
    (wants_ask, heard, fast): (bool, bool, bool),
    radio: &mut Vec<u64>,
) -> bool {
    let asks = wants_ask && g.admit(at(t), &uplink(true)) == Decision::Now;
    if !asks && g.admit(at(t), &uplink(false)) != Decision::Now {
        return false;
    }
    g.record_sent(at(t), &uplink(asks)).unwrap();
    let came = net.uplink(heard, asks, fast);
    radio.extend(std::iter::repeat_n(t, usize::try_from(came).unwrap()));
    let owed = g.record_downlinks(at(t), came).unwrap();
    if asks {
        g.record_ask(at(t), came > 0 && !owed).unwrap();
    }
    true
}

/// The most downlinks the radio received in any rolling 24 h.
fn most_in_a_day(radio: &[u64]) -> usize {
    (0..radio.len())
        .map(|i| {
            radio[i..]
                .iter()
                .take_while(|&&t| t < radio[i] + DAY_MS)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn answers_one_uplink_late_never_make_eleven_a_day() {
    // The Things Stack answering too late for the asking uplink's receive
    // windows: every answer comes after the next uplink, here six hours
    // after the first ask, then every half hour. Charged when asked (as
    // before), the first ask left the rolling day six hours before the
    // network's count of its downlink did, and an eleventh came.
    let mut g = Governor::in_memory(GovernorConfig::default());
    let (mut net, mut radio) = (Network::default(), Vec::new());
    device_uplink(&mut g, &mut net, T0, (true, true, false), &mut radio);
    for k in 0..96 {
        let t = T0 + 6 * HOUR + k * HOUR / 2;
        device_uplink(&mut g, &mut net, t, (true, true, false), &mut radio);
    }
    assert!(
        most_in_a_day(&radio) <= 10,
        "{} downlinks in a day",
        most_in_a_day(&radio)
    );
    // Not starved either: ten a day.
    assert!(radio.len() >= 19, "{} downlinks in 54 hours", radio.len());
}

#[test]
fn an_answer_owed_counts_until_a_downlink_comes() {
    let mut g = Governor::in_memory(GovernorConfig::default());
    g.record_sent(at(T0), &uplink(true)).unwrap();
    assert!(!g.record_downlinks(at(T0), 0).unwrap());
    g.record_ask(at(T0), false).unwrap();
    // Two days later the network may still bring it.
    let later = T0 + 2 * DAY_MS;
    assert_eq!(g.report(at(later)).downlinks_24h, 1);
    for i in 0..9 {
        assert_eq!(g.admit(at(later + i), &uplink(true)), Decision::Now);
        // A downlink arrives: it settles what was owed; this ask owes.
        assert!(g.record_downlinks(at(later + i), 1).unwrap());
        g.record_ask(at(later + i), false).unwrap();
    }
    // Nine arrived and one is owed: no more asking today, but an uplink
    // that does not ask may go (it can only bring the one owed).
    assert_eq!(g.report(at(later + 9)).downlinks_24h, 10);
    assert_eq!(
        g.admit(at(later + 9), &uplink(true)).blocking(),
        Some(Budget::FairUseDownlinks)
    );
    assert_eq!(g.admit(at(later + 9), &uplink(false)), Decision::Now);
}

#[test]
fn an_answer_in_its_own_receive_windows_is_not_owed() {
    let mut g = Governor::in_memory(GovernorConfig::default());
    for i in 0..10 {
        let t = T0 + i * HOUR;
        assert_eq!(g.admit(at(t), &uplink(true)), Decision::Now, "ask {i}");
        let owed = g.record_downlinks(at(t), 1).unwrap();
        g.record_ask(at(t), !owed).unwrap();
    }
    assert_eq!(g.report(at(T0 + 10 * HOUR)).downlinks_24h, 10);
    assert_eq!(
        g.admit(at(T0 + 10 * HOUR), &uplink(true)),
        Decision::NotBefore {
            at_ms: T0 + DAY_MS,
            budget: Budget::FairUseDownlinks
        }
    );
}

#[test]
fn an_owed_answer_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Governor::open(dir.path(), GovernorConfig::default(), at(T0)).unwrap();
    g.record_sent(at(T0), &uplink(true)).unwrap();
    g.record_ask(at(T0), false).unwrap();
    drop(g);
    let mut g = Governor::open(dir.path(), GovernorConfig::default(), at(T0 + 1)).unwrap();
    assert_eq!(g.damage(), None);
    assert_eq!(g.report(at(T0 + 2 * DAY_MS)).downlinks_24h, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the uplinks, losses and the network server's speed: never
    /// more than ten downlinks at the radio in any rolling 24 h.
    #[test]
    fn never_more_than_ten_downlinks_in_any_rolling_day(
        steps in prop::collection::vec(
            (0u64..4 * HOUR, any::<bool>(), prop::bool::weighted(0.8), any::<bool>()),
            1..300,
        )
    ) {
        let mut g = Governor::in_memory(GovernorConfig::default());
        let (mut net, mut radio, mut t) = (Network::default(), Vec::new(), T0);
        for (wait, asks, heard, fast) in steps {
            t += wait;
            device_uplink(&mut g, &mut net, t, (asks, heard, fast), &mut radio);
        }
        prop_assert!(most_in_a_day(&radio) <= 10, "{} downlinks in a day", most_in_a_day(&radio));
    }
}
