//! The governor's budgets, persistence and clocks, end to end, in
//! scenarios; `props.rs` checks the limits against real time over random
//! device lives.

mod answers;
mod props;

use std::fs;

use super::*;

const HOUR: u64 = DUTY_CYCLE_WINDOW_MS;
const G1: Link = Link::Eu868(SubBand::G1);
const T0: u64 = 1_800_000_000_000;

/// Wall and boot clocks agreeing (boot 1 started at `T0`).
fn at(ms: u64) -> Now {
    Now::at(ms, 1, ms - T0)
}

fn eu(band: SubBand, airtime_ms: u32) -> Transmission {
    Transmission::lorawan(Link::Eu868(band), airtime_ms, false)
}

fn duty_only() -> GovernorConfig {
    GovernorConfig {
        fair_use: FairUse::None,
        ..GovernorConfig::default()
    }
}

/// Send `tx` at `t` if admitted (recorded as done `airtime` later);
/// returns the decision and the time after.
fn send(g: &mut Governor, t: u64, tx: &Transmission) -> (Decision, u64) {
    let d = g.admit(at(t), tx);
    if d == Decision::Now {
        let done = t + u64::from(tx.airtime_ms);
        g.record_sent(at(done), tx).unwrap();
        return (d, done);
    }
    (d, t)
}

#[test]
fn duty_cycle_is_one_percent_of_a_rolling_hour() {
    let mut g = Governor::in_memory(duty_only());
    let tx = eu(SubBand::G1, 1_000);
    let mut t = T0;
    for _ in 0..36 {
        let (d, done) = send(&mut g, t, &tx);
        assert_eq!(d, Decision::Now);
        t = done;
    }
    let first_done = T0 + 1_000;
    assert_eq!(g.remaining(at(t), G1), Some(0));
    assert_eq!(
        g.admit(at(t), &tx),
        Decision::NotBefore {
            at_ms: first_done + HOUR,
            budget: Budget::DutyCycle
        }
    );
    assert_eq!(
        g.admit(at(first_done + HOUR - 1), &tx).blocking(),
        Some(Budget::DutyCycle)
    );
    assert_eq!(g.admit(at(first_done + HOUR), &tx), Decision::Now);
}

#[test]
fn sub_bands_have_their_own_shares() {
    let mut g = Governor::in_memory(duty_only());
    assert_eq!(send(&mut g, T0, &eu(SubBand::G2, 3_600)).0, Decision::Now);
    assert!(matches!(
        g.admit(at(T0 + 10_000), &eu(SubBand::G2, 1)),
        Decision::NotBefore {
            budget: Budget::DutyCycle,
            ..
        }
    ));
    assert_eq!(
        g.admit(at(T0 + 10_000), &eu(SubBand::G1, 1_000)),
        Decision::Now
    );
    assert_eq!(
        g.admit(at(T0 + 10_000), &eu(SubBand::G3, 300_000)),
        Decision::Now
    );
    assert_eq!(
        g.admit(at(T0), &eu(SubBand::G2, 3_601)),
        Decision::Never {
            budget: Budget::DutyCycle
        }
    );
    let mut off = Governor::in_memory(GovernorConfig {
        duty_cycle: false,
        ..duty_only()
    });
    assert_eq!(off.admit(at(T0), &eu(SubBand::G2, 10_000)), Decision::Now);
}

#[test]
fn us915_refuses_uplinks_longer_than_the_dwell_time() {
    let mut g = Governor::in_memory(duty_only());
    let ok = Transmission::lorawan(Link::Us915, 400, false);
    let long = Transmission::lorawan(Link::Us915, 401, false);
    assert_eq!(
        g.admit(at(T0), &long),
        Decision::Never {
            budget: Budget::DwellTime
        }
    );
    for i in 0..1_000 {
        assert_eq!(
            send(&mut g, T0 + i * 500, &ok).0,
            Decision::Now,
            "no duty cycle"
        );
    }
    assert_eq!(g.remaining(at(T0), Link::Us915), None);
}

#[test]
fn ttn_fair_use_is_30_s_of_airtime_per_rolling_day() {
    let mut g = Governor::in_memory(GovernorConfig::default());
    let tx = Transmission::lorawan(Link::Us915, 300, false);
    for i in 0..100 {
        assert_eq!(send(&mut g, T0 + i * 60_000, &tx).0, Decision::Now, "{i}");
    }
    let t = T0 + 100 * 60_000;
    assert_eq!(
        g.admit(at(t), &tx),
        Decision::NotBefore {
            at_ms: T0 + 300 + DAY_MS,
            budget: Budget::FairUseAirtime
        }
    );
    assert_eq!(g.report(at(t)).airtime_ms_24h, 30_000);
    assert_eq!(g.admit(at(T0 + 300 + DAY_MS), &tx), Decision::Now);
    assert_eq!(
        g.admit(at(t), &Transmission::lorawan(Link::Us915, 0, false)),
        Decision::Now,
        "nothing on the air costs nothing"
    );
    // EU868 counts too, and the longest wait names the budget.
    let mut g = Governor::in_memory(GovernorConfig::default());
    for i in 0..30 {
        assert_eq!(
            send(&mut g, T0 + i * 600_000, &eu(SubBand::G1, 1_000)).0,
            Decision::Now
        );
    }
    let d = g.admit(at(T0 + 30 * 600_000), &eu(SubBand::G1, 1_000));
    assert_eq!(d.blocking(), Some(Budget::FairUseAirtime));
    // Fair use does not meter SBD.
    assert_eq!(g.admit(at(T0), &Transmission::sbd(5)), Decision::Now);
}

#[test]
fn ttn_fair_use_is_10_downlinks_per_rolling_day() {
    let mut g = Governor::in_memory(GovernorConfig::default());
    let asks = Transmission::lorawan(G1, 100, true);
    let quiet = Transmission::lorawan(G1, 100, false);
    for i in 0..10 {
        assert_eq!(g.admit(at(T0 + i * 1_000), &asks), Decision::Now);
        g.record_downlinks(at(T0 + i * 1_000), 1).unwrap();
    }
    assert_eq!(
        g.admit(at(T0 + 20_000), &asks),
        Decision::NotBefore {
            at_ms: T0 + DAY_MS,
            budget: Budget::FairUseDownlinks
        }
    );
    assert_eq!(g.admit(at(T0 + 20_000), &quiet), Decision::Now);
    assert_eq!(g.report(at(T0 + 20_000)).downlinks_24h, 10);
    assert_eq!(g.admit(at(T0 + DAY_MS), &asks), Decision::Now);
    let mut none = Governor::in_memory(duty_only());
    for i in 0..20 {
        none.record_downlinks(at(T0 + i), 1).unwrap();
    }
    assert_eq!(none.admit(at(T0 + 20), &asks), Decision::Now);
}

#[test]
fn sbd_credits_per_rolling_day() {
    let config = GovernorConfig {
        sbd_credits_per_day: 10,
        ..GovernorConfig::default()
    };
    let mut g = Governor::in_memory(config);
    for i in 0..5 {
        assert_eq!(
            send(&mut g, T0 + i * 1_000, &Transmission::sbd(2)).0,
            Decision::Now
        );
    }
    assert_eq!(g.remaining(at(T0 + 5_000), Link::Sbd), Some(0));
    assert_eq!(
        g.admit(at(T0 + 5_000), &Transmission::sbd(1)),
        Decision::NotBefore {
            at_ms: T0 + DAY_MS,
            budget: Budget::SbdCredits
        }
    );
    assert_eq!(
        g.admit(at(T0), &Transmission::sbd(11)),
        Decision::Never {
            budget: Budget::SbdCredits
        }
    );
    let r = g.report(at(T0 + 5_000));
    assert_eq!(r.credits_24h, 10);
    assert_eq!(r.blocking, Some(Budget::SbdCredits));
    let mut free = Governor::in_memory(GovernorConfig::default());
    for i in 0..100 {
        assert_eq!(
            send(&mut free, T0 + i, &Transmission::sbd(6)).0,
            Decision::Now
        );
    }
    assert_eq!(free.remaining(at(T0), Link::Sbd), None);
}

#[test]
fn a_short_budget_sends_the_head_of_the_plan() {
    let mut g = Governor::in_memory(duty_only());
    send(&mut g, T0, &eu(SubBand::G1, 34_000));
    let left = g.remaining(at(T0 + 60_000), G1);
    assert_eq!(left, Some(2_000));
    let a = frames_allowed(left, 900, 5);
    assert_eq!(
        a,
        Allowance {
            send: 2,
            held_back: 3
        }
    );
    g.held_back(a.held_back, Budget::DutyCycle);
    let d = g.admit(at(T0 + 60_000), &eu(SubBand::G1, 2_001));
    assert_eq!(d.blocking(), Some(Budget::DutyCycle));
    let r = g.report(at(T0 + 60_000));
    assert_eq!(r.held_back, 3);
    assert_eq!(r.held_back_by, Some(Budget::DutyCycle));
    assert_eq!(r.next_allowed_ms, Some(T0 + 34_000 + HOUR));
    assert!(r.to_string().contains("blocked by duty_cycle"), "{r}");
    assert_eq!(
        g.report(at(T0 + 34_000 + HOUR)).blocking,
        None,
        "no longer holds"
    );
}

#[test]
fn allowance_sends_the_head_and_names_the_budget() {
    let mut g = Governor::in_memory(GovernorConfig::default());
    let frame = eu(SubBand::G2, 1_000);
    let (a, b) = g.allowance(at(T0), &frame, 5);
    assert_eq!(
        (a, b),
        (
            Allowance {
                send: 3,
                held_back: 2
            },
            Some(Budget::DutyCycle)
        )
    );
    let (a, b) = g.allowance(at(T0), &eu(SubBand::G1, 1_000), 5);
    assert_eq!(
        (a, b),
        (
            Allowance {
                send: 5,
                held_back: 0
            },
            None
        )
    );
    let long = Transmission::lorawan(Link::Us915, 401, false);
    let (a, b) = g.allowance(at(T0), &long, 2);
    assert_eq!(
        (a, b),
        (
            Allowance {
                send: 0,
                held_back: 2
            },
            Some(Budget::DwellTime)
        )
    );
    let r = g.report(at(T0));
    assert_eq!(r.held_back, 4);
    assert_eq!(r.held_back_by, Some(Budget::DwellTime));
    // Ten downlinks today: frames that ask for one wait, whatever the airtime.
    for i in 0..10 {
        g.record_downlinks(at(T0 + i), 1).unwrap();
    }
    let asks = Transmission::lorawan(G1, 100, true);
    let (a, b) = g.allowance(at(T0 + 10), &asks, 3);
    assert_eq!((a.send, b), (0, Some(Budget::FairUseDownlinks)));
}

#[test]
fn usage_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Governor::open(dir.path(), duty_only(), at(T0)).unwrap();
    send(&mut g, T0, &eu(SubBand::G1, 36_000));
    g.held_back(4, Budget::DutyCycle);
    g.record_downlinks(at(T0 + 40_000), 1).unwrap();
    let before = g.report(at(T0 + 40_000));
    drop(g);
    // The same boot (a restarted agent): exactly where it was.
    let mut g = Governor::open(dir.path(), duty_only(), at(T0)).unwrap();
    assert_eq!(g.damage(), None);
    assert_eq!(g.report(at(T0 + 40_000)).held_back, before.held_back);
    assert_eq!(g.report(at(T0 + 40_000)).downlinks_24h, 1);
    let tx = eu(SubBand::G1, 1);
    assert_eq!(
        g.admit(at(T0 + HOUR), &tx).blocking(),
        Some(Budget::DutyCycle)
    );
    assert_eq!(g.admit(at(T0 + 36_000 + HOUR), &tx), Decision::Now);
    drop(g);
    // A reboot 10 min after the last record (at T0 + 40 s): the duty cycle
    // gets no credit for the time off, only for the 4 s before it.
    let mut g = Governor::open(dir.path(), duty_only(), at(T0)).unwrap();
    let boot = |since: u64| Now::at(T0 + 40_000 + 600_000 + since, 2, since);
    assert_eq!(
        g.admit(boot(0), &tx),
        Decision::NotBefore {
            at_ms: boot(0).wall_ms - 4_000 + HOUR,
            budget: Budget::DutyCycle
        }
    );
    assert_eq!(g.admit(boot(HOUR), &tx), Decision::Now);
    assert!(dir.path().join("governor/usage").is_file());
}

#[test]
fn a_damaged_file_counts_every_budget_as_spent() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Governor::open(dir.path(), GovernorConfig::default(), at(T0)).unwrap();
    send(&mut g, T0, &eu(SubBand::G1, 100));
    drop(g);
    let path = dir.path().join("governor/usage");
    let good = fs::read(&path).unwrap();
    for bad in [
        Vec::new(),
        good[..good.len() - 1].to_vec(),
        b"garbage".to_vec(),
        {
            let mut b = good.clone();
            b[20] ^= 1;
            b
        },
    ] {
        fs::write(&path, &bad).unwrap();
        let config = GovernorConfig {
            sbd_credits_per_day: 5,
            ..GovernorConfig::default()
        };
        let t = T0 + 5 * HOUR;
        let mut g = Governor::open(dir.path(), config, at(t)).unwrap();
        assert!(g.damage().is_some());
        assert_eq!(
            g.admit(at(t), &eu(SubBand::G3, 1)),
            Decision::NotBefore {
                at_ms: t + DAY_MS,
                budget: Budget::FairUseAirtime
            }
        );
        let mut no_fair = Governor::open(dir.path(), duty_only(), at(t)).unwrap();
        assert_eq!(no_fair.damage(), None, "replaced by a valid, spent history");
        assert_eq!(
            no_fair.admit(at(t), &eu(SubBand::G3, 1)),
            Decision::NotBefore {
                at_ms: t + HOUR,
                budget: Budget::DutyCycle
            }
        );
        assert_eq!(
            no_fair.admit(at(t + HOUR), &eu(SubBand::G3, 1)),
            Decision::Now
        );
        assert_eq!(
            g.admit(at(t), &Transmission::sbd(1)).blocking(),
            Some(Budget::SbdCredits)
        );
        assert_eq!(
            g.admit(at(t), &Transmission::lorawan(Link::Us915, 1, true))
                .blocking(),
            Some(Budget::FairUseAirtime)
        );
    }
}

#[test]
fn a_clock_going_backwards_unlocks_nothing() {
    let mut g = Governor::in_memory(duty_only());
    let tx = eu(SubBand::G1, 36_000);
    send(&mut g, T0, &tx);
    // The clock steps back two hours, then runs on for 90 min (boot clock
    // agreeing): governor time stands still, the budget stays spent.
    let back = |since: u64| Now::at(T0 + 36_000 - 2 * HOUR + since, 1, 36_000 + since);
    let small = eu(SubBand::G1, 1);
    assert_eq!(g.admit(back(0), &small).blocking(), Some(Budget::DutyCycle));
    assert_eq!(
        g.admit(back(90 * 60_000), &small).blocking(),
        Some(Budget::DutyCycle)
    );
    assert!(g.report(back(90 * 60_000)).clock_behind);
    // Then NTP steps it to the truth: 90 min passed, the hour is over.
    let real = T0 + 36_000 + 90 * 60_000;
    assert_eq!(g.admit(Now::at(real, 1, real - T0), &small), Decision::Now);
    assert!(!g.report(Now::at(real, 1, real - T0)).clock_behind);
}

#[test]
fn a_clock_stepping_forward_unlocks_nothing() {
    let mut g = Governor::in_memory(duty_only());
    send(&mut g, T0, &eu(SubBand::G1, 36_000));
    // One minute later by the boot clock, the wall clock jumps a day on.
    let jumped = Now::at(T0 + DAY_MS, 1, 36_000 + 60_000);
    assert_eq!(
        g.admit(jumped, &eu(SubBand::G1, 1)),
        Decision::NotBefore {
            at_ms: T0 + DAY_MS - 60_000 + HOUR,
            budget: Budget::DutyCycle
        }
    );
}

#[test]
fn an_unusable_data_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let err = Governor::open(&file, duty_only(), at(T0)).unwrap_err();
    assert!(err.to_string().contains("governor usage file"), "{err}");
    // A fresh directory is made durably on the first record.
    let mut g = Governor::open(&dir.path().join("data"), duty_only(), at(T0)).unwrap();
    g.record_sent(at(T0), &eu(SubBand::G1, 10)).unwrap();
    assert!(dir.path().join("data/governor/usage").is_file());
}

#[test]
fn errors_say_whether_to_retry() {
    let e = GovernorError::Io {
        path: "x".into(),
        source: std::io::Error::from(std::io::ErrorKind::StorageFull),
    };
    assert!(e.is_retriable());
    let e = GovernorError::Io {
        path: "x".into(),
        source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    };
    assert!(!e.is_retriable());
}
