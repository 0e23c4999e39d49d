//! Property tests: the regulatory and fair-use limits hold against *real*
//! time over random transmissions, reboots and wall-clock steps; the usage
//! file decoder takes any bytes.

use proptest::prelude::*;

use super::super::*;
use super::{HOUR, T0, duty_only};

/// One step of a random device life.
#[derive(Debug, Clone)]
enum Op {
    Wait(u64),
    Send(SubBand, u32),
    /// Set the wall clock's error (ms, may be negative).
    Clock(i64),
    Reboot,
}

/// Bands drawn by the property tests: mostly the small shares, which a
/// few uplinks exhaust.
const BANDS: [SubBand; 7] = [
    SubBand::G2,
    SubBand::G2,
    SubBand::G2,
    SubBand::G1,
    SubBand::G,
    SubBand::G3,
    SubBand::G4,
];

fn op(max_step_back: i64) -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u64..2 * HOUR).prop_map(Op::Wait),
        4 => (0u64..300_000).prop_map(Op::Wait),
        10 => (prop::sample::select(BANDS.to_vec()), 1u32..5_000)
            .prop_map(|(b, a)| Op::Send(b, a)),
        2 => (-max_step_back..3 * HOUR as i64).prop_map(Op::Clock),
        2 => Just(Op::Reboot),
    ]
}

/// Run `ops` with real time and a wrong wall clock; returns every uplink
/// sent as (start, end, link) in real time.
fn run(config: GovernorConfig, ops: &[Op], reboot_clock_ok: bool) -> Vec<(u64, u64, Link)> {
    let dir = tempfile::tempdir().unwrap();
    let (mut real, mut boot, mut boot_at, mut err) = (T0, 1u128, T0, 0i64);
    let now = |real: u64, boot: u128, boot_at: u64, err: i64| {
        Now::at(real.saturating_add_signed(err), boot, real - boot_at)
    };
    let mut g = Governor::open(dir.path(), config.clone(), now(real, boot, boot_at, err)).unwrap();
    let mut sent = Vec::new();
    for op in ops {
        match *op {
            Op::Wait(ms) => real += ms,
            Op::Clock(e) => err = e,
            Op::Reboot => {
                boot += 1;
                boot_at = real;
                if reboot_clock_ok {
                    err = 0;
                }
                g = Governor::open(dir.path(), config.clone(), now(real, boot, boot_at, err))
                    .unwrap();
            }
            Op::Send(band, airtime) => {
                let link = if config.duty_cycle {
                    Link::Eu868(band)
                } else {
                    Link::Us915
                };
                let tx = Transmission::lorawan(link, airtime.min(400), false);
                if g.admit(now(real, boot, boot_at, err), &tx) == Decision::Now {
                    let end = real + u64::from(tx.airtime_ms);
                    sent.push((real, end, link));
                    real = end;
                    g.record_sent(now(real, boot, boot_at, err), &tx).unwrap();
                }
            }
        }
    }
    sent
}

/// The largest airtime of `link` inside any window of `window` ms.
fn worst_window(sent: &[(u64, u64, Link)], on: impl Fn(Link) -> bool, window: u64) -> u64 {
    let mine: Vec<_> = sent.iter().filter(|s| on(s.2)).collect();
    let edges = mine
        .iter()
        .flat_map(|&&(s, e, _)| [s, e.saturating_sub(window)]);
    edges
        .map(|w0| {
            mine.iter()
                .map(|&&(s, e, _)| e.min(w0 + window).saturating_sub(s.max(w0)))
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the wall clock does, across reboots: no sub-band ever has
    /// more than its share of airtime in any real hour.
    #[test]
    fn duty_cycle_never_exceeded_in_any_rolling_hour(
        ops in prop::collection::vec(op(3 * HOUR as i64), 1..120)
    ) {
        let sent = run(duty_only(), &ops, false);
        for band in SubBand::ALL {
            let worst = worst_window(&sent, |l| l == Link::Eu868(band), HOUR);
            prop_assert!(worst <= band.airtime_ms_per_hour(), "{band:?}: {worst} ms in an hour");
        }
    }

    /// Fair use: never more than 30 s of uplink airtime in any real 24 h,
    /// with the wall clock stepping (forward, and back to the truth) within
    /// boots, and booting right.
    #[test]
    fn fair_use_never_exceeded_in_any_rolling_day(
        ops in prop::collection::vec(op(0), 1..200)
    ) {
        let config = GovernorConfig { duty_cycle: false, ..GovernorConfig::default() };
        let ops: Vec<Op> = ops
            .into_iter()
            .map(|o| match o {
                Op::Wait(ms) => Op::Wait(ms * 4),
                o => o,
            })
            .collect();
        let sent = run(config, &ops, true);
        let worst = worst_window(&sent, |_| true, DAY_MS);
        prop_assert!(worst <= TTN_AIRTIME_MS_PER_DAY, "{worst} ms in a day");
    }

    /// Whatever bytes the usage file holds: no panic, and what decodes
    /// re-encodes identically.
    /// A valid file with one byte of its body changed (checksum fixed):
    /// the parser behind the checksum never panics.
    #[test]
    fn usage_file_body_changes_never_panic(
        ops in prop::collection::vec(op(HOUR as i64), 1..40),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut g = Governor::open(dir.path(), duty_only(), Now::at(T0, 1, 0)).unwrap();
        for (i, o) in ops.iter().enumerate() {
            let now = Now::at(T0 + i as u64 * 1_000, 1, i as u64 * 1_000);
            if let Op::Send(band, airtime) = *o {
                g.record_sent(now, &Transmission::lorawan(Link::Eu868(band), airtime, false)).unwrap();
                g.record_downlinks(now, 1).unwrap();
            }
        }
        g.record_sent(Now::at(T0 + 50_000, 1, 50_000), &Transmission::sbd(3)).unwrap();
        let bytes = std::fs::read(dir.path().join("governor/usage")).unwrap();
        let mut body = bytes[..bytes.len() - 4].to_vec();
        let i = at.index(body.len());
        body[i] ^= xor;
        fuzz_usage_file(&body);
    }

    #[test]
    fn usage_file_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..MAX_FILE_LEN + 8)) {
        fuzz_usage_file(&bytes);
    }
}
