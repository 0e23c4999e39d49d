//! What the link decides for each datagram on arrival ([`Fate`]), drawn from
//! the direction's seeded stream so a run can be replayed.

use std::time::Duration;

use rand::{Rng, RngExt};

use super::super::time_scale::TimeScale;
use super::profile::DatagramProfile;

/// Why the link dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropCause {
    /// Random loss ([`DatagramProfile::loss`]).
    Loss,
    /// The link was down when the datagram arrived, or went down while it was
    /// in flight.
    Blackout,
    /// The payload did not fit the MTU ([`DatagramProfile::max_payload`]).
    Mtu,
    /// A reply reached a NAT binding that had expired (or never existed).
    ExpiredBinding,
    /// The link could not send it on (no socket for a new binding, or the
    /// send failed).
    SendFailure,
}

/// What the link decided for a datagram when it arrived.
///
/// A datagram decided `Delivered` may still be dropped later, as
/// [`DropCause::Blackout`] (the link went down while it was in flight) or
/// [`DropCause::SendFailure`]; the link's counters include those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Dropped on arrival.
    Dropped(DropCause),
    /// On its way.
    Delivered {
        /// The drawn one-way delay (latency plus jitter), before ordering:
        /// a datagram also waits for the one offered before it.
        delay: Duration,
        /// Delivered a second time, [`DatagramProfile::duplicate_gap`] later.
        duplicated: bool,
        /// Held back by [`DatagramProfile::reorder_delay`], so that later
        /// datagrams overtake it.
        reordered: bool,
    },
}

/// The random numbers drawn for one datagram, always all of them and in this
/// order: the `n`-th datagram of a direction gets the same draws whatever
/// happened to the ones before it (dropped by a blackout, over the MTU, or
/// decided under another profile).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Draws {
    loss: f64,
    duplicate: f64,
    reorder: f64,
    jitter: f64,
}

impl Draws {
    pub(crate) fn take(rng: &mut impl Rng) -> Self {
        Self {
            loss: rng.random(),
            duplicate: rng.random(),
            reorder: rng.random(),
            jitter: rng.random(),
        }
    }
}

/// The fate of a `bytes`-long datagram arriving while the link is `up`.
///
/// Causes are checked in the order a real path applies them: the MTU (the
/// modem refuses to send), then a blackout, then random loss. Draws are in
/// `0..1`, so probability `0` never fires and `1` always does.
pub(crate) fn decide(
    profile: &DatagramProfile,
    scale: &TimeScale,
    bytes: usize,
    up: bool,
    draws: Draws,
) -> Fate {
    if bytes > profile.max_payload() {
        return Fate::Dropped(DropCause::Mtu);
    }
    if !up {
        return Fate::Dropped(DropCause::Blackout);
    }
    if draws.loss < profile.loss {
        return Fate::Dropped(DropCause::Loss);
    }
    let jitter = profile.jitter.mul_f64(draws.jitter);
    Fate::Delivered {
        delay: scale.link_delay(profile.latency.saturating_add(jitter)),
        duplicated: draws.duplicate < profile.duplicate,
        reordered: draws.reorder < profile.reorder,
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::counters::Direction;
    use super::super::super::seed::datagram_rng;
    use super::*;

    const SAMPLES: u32 = 20_000;

    fn fates(profile: &DatagramProfile, seed: u64, count: u32) -> Vec<Fate> {
        let mut rng = datagram_rng(seed, Direction::Up);
        (0..count)
            .map(|_| decide(profile, &TimeScale::REAL, 100, true, Draws::take(&mut rng)))
            .collect()
    }

    fn fraction(fates: &[Fate], what: impl Fn(&Fate) -> bool) -> f64 {
        fates.iter().filter(|fate| what(fate)).count() as f64 / fates.len() as f64
    }

    #[test]
    fn probabilities_hold_independently() {
        let profile = DatagramProfile::clean()
            .with_loss(0.3)
            .with_duplicates(0.1, Duration::ZERO)
            .with_reordering(0.2, Duration::ZERO);
        let fates = fates(&profile, 1, SAMPLES);
        let lost = fraction(&fates, |f| *f == Fate::Dropped(DropCause::Loss));
        assert!((lost - 0.3).abs() < 0.02, "{lost}");
        let delivered = fates.len() as f64 * (1.0 - lost);
        let share =
            |what: fn(&Fate) -> bool| fraction(&fates, what) * fates.len() as f64 / delivered;
        let duplicated = share(|f| {
            matches!(
                f,
                Fate::Delivered {
                    duplicated: true,
                    ..
                }
            )
        });
        let reordered = share(|f| {
            matches!(
                f,
                Fate::Delivered {
                    reordered: true,
                    ..
                }
            )
        });
        assert!((duplicated - 0.1).abs() < 0.02, "{duplicated}");
        assert!((reordered - 0.2).abs() < 0.02, "{reordered}");
    }

    #[test]
    fn certain_and_impossible() {
        let never = DatagramProfile::clean();
        let always = DatagramProfile::clean()
            .with_duplicates(1.0, Duration::ZERO)
            .with_reordering(1.0, Duration::ZERO);
        for fate in fates(&never, 2, 1000) {
            assert_eq!(
                fate,
                Fate::Delivered {
                    delay: Duration::ZERO,
                    duplicated: false,
                    reordered: false
                }
            );
        }
        for fate in fates(&always, 2, 1000) {
            assert!(matches!(
                fate,
                Fate::Delivered {
                    duplicated: true,
                    reordered: true,
                    ..
                }
            ));
        }
        let lossy = DatagramProfile::clean().with_loss(1.0);
        assert!(
            fates(&lossy, 2, 1000)
                .iter()
                .all(|f| *f == Fate::Dropped(DropCause::Loss))
        );
    }

    #[test]
    fn mtu_then_blackout_then_loss() {
        let profile = DatagramProfile::clean().with_loss(1.0).with_mtu(128);
        let mut rng = datagram_rng(3, Direction::Down);
        let mut fate =
            |bytes, up| decide(&profile, &TimeScale::REAL, bytes, up, Draws::take(&mut rng));
        assert_eq!(fate(101, false), Fate::Dropped(DropCause::Mtu));
        assert_eq!(fate(100, false), Fate::Dropped(DropCause::Blackout));
        assert_eq!(fate(100, true), Fate::Dropped(DropCause::Loss));
    }

    #[test]
    fn delays_stay_within_latency_plus_jitter_and_scale()
    -> Result<(), super::super::super::LinkError> {
        let latency = Duration::from_millis(100);
        let jitter = Duration::from_millis(50);
        let profile = DatagramProfile::clean().with_latency(latency, jitter);
        let delays: Vec<Duration> = fates(&profile, 4, 1000)
            .into_iter()
            .filter_map(|fate| match fate {
                Fate::Delivered { delay, .. } => Some(delay),
                Fate::Dropped(_) => None,
            })
            .collect();
        assert_eq!(delays.len(), 1000);
        assert!(
            delays
                .iter()
                .all(|&d| d >= latency && d <= latency + jitter)
        );
        assert!(delays.iter().any(|&d| d > latency + jitter / 2));
        let scaled = TimeScale::new(0.01)?.with_scaled_link(true);
        let no_jitter = DatagramProfile::clean().with_latency(latency, Duration::ZERO);
        let mut rng = datagram_rng(4, Direction::Up);
        let fate = decide(&no_jitter, &scaled, 10, true, Draws::take(&mut rng));
        assert!(matches!(fate, Fate::Delivered { delay, .. } if delay == Duration::from_millis(1)));
        Ok(())
    }

    #[test]
    fn same_seed_same_fates_and_drops_do_not_shift_later_draws() {
        let profile = DatagramProfile::clean()
            .with_loss(0.2)
            .with_duplicates(0.2, Duration::ZERO)
            .with_reordering(0.2, Duration::ZERO)
            .with_latency(Duration::ZERO, Duration::from_millis(10));
        assert_eq!(fates(&profile, 5, 500), fates(&profile, 5, 500));
        assert_ne!(fates(&profile, 5, 500), fates(&profile, 6, 500));
        // A blackout over the first ten datagrams leaves the rest as they were.
        let mut rng = datagram_rng(5, Direction::Up);
        let with_blackout: Vec<Fate> = (0..500)
            .map(|i| {
                decide(
                    &profile,
                    &TimeScale::REAL,
                    100,
                    i >= 10,
                    Draws::take(&mut rng),
                )
            })
            .collect();
        assert_eq!(with_blackout[10..], fates(&profile, 5, 500)[10..]);
    }
}
