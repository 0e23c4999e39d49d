//! The flaky-link emulator against loopback peers: latency, bandwidth caps,
//! seeded drops, blackouts by hand and by compressed schedule, counters, and
//! clean shutdown. Every test fixes its seed so a failure replays exactly.

mod link_support;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use flotta_e2e::link::{CutMode, Link, LinkConfig, LinkProfile, LinkStats, Schedule, TimeScale};
use link_support::{
    Server, connect, eventually, exchange, is_reset, is_timeout, pattern, reset, round_trip,
    thread_names, timed_echo,
};

const SETTLE: Duration = Duration::from_secs(3);

fn start(upstream: &Server, profile: LinkProfile, seed: u64) -> Link {
    LinkConfig::new(upstream.addr(), profile)
        .with_seed(seed)
        .start()
        .expect("start link")
}

/// A clean profile for tests that only exercise one impairment.
fn clean() -> LinkProfile {
    LinkProfile::ethernet().with_latency(Duration::ZERO, Duration::ZERO)
}

#[test]
fn latency_is_added_each_way_and_jitter_keeps_order() {
    let echo = Server::echo();
    let latency = Duration::from_millis(120);
    let link = start(
        &echo,
        clean().with_latency(latency, Duration::from_millis(30)),
        1,
    );
    let mut stream = connect(link.addr());
    for i in 0..4u8 {
        let started = Instant::now();
        assert_eq!(exchange(&mut stream, &[i; 16]).expect("echo"), [i; 16]);
        let rtt = started.elapsed();
        assert!(
            rtt >= 2 * latency,
            "round trip {rtt:?} shorter than 2 x {latency:?}"
        );
    }
    // Many small writes, each its own chunk with its own jitter: order holds.
    let data = pattern(64 * 100);
    for piece in data.chunks(100) {
        stream.write_all(piece).expect("write");
    }
    let mut echoed = vec![0; data.len()];
    stream.read_exact(&mut echoed).expect("read");
    assert!(echoed == data, "echo reordered or corrupted");
}

#[test]
fn satellite_round_trip_is_about_two_seconds() {
    let echo = Server::echo();
    let link = start(&echo, LinkProfile::satellite().with_drops(0.0, 0.0), 2);
    let started = Instant::now();
    assert_eq!(round_trip(link.addr(), b"ping").expect("echo"), b"ping");
    let rtt = started.elapsed();
    assert!(
        rtt >= Duration::from_millis(1900),
        "satellite round trip {rtt:?}"
    );
}

#[test]
fn upload_cap_holds_over_a_second() {
    let echo = Server::echo();
    let rate: u32 = 64_000;
    let mtu = 1400;
    let profile = clean()
        .with_bandwidth(Some(rate.into()), None)
        .with_mtu(mtu);
    let link = start(&echo, profile, 3);
    let data = pattern(64_000);
    let (echoed, elapsed) = timed_echo(link.addr(), &data);
    assert!(echoed == data, "echo corrupted");
    // One MTU may pass as a burst; allow 10 % slack below the exact time.
    let floor = Duration::from_secs_f64(0.9 * (64_000 - mtu) as f64 / f64::from(rate));
    assert!(
        elapsed >= floor,
        "64 kB at {rate} B/s took {elapsed:?} < {floor:?}"
    );
    assert_eq!(link.stats().bytes_up, 64_000);
}

#[test]
fn download_cap_is_shared_by_connections() {
    let echo = Server::echo();
    let rate: u32 = 48_000;
    let mtu = 1000;
    let link = start(
        &echo,
        clean()
            .with_bandwidth(None, Some(rate.into()))
            .with_mtu(mtu),
        4,
    );
    let started = Instant::now();
    let transfers: Vec<_> = (0..2)
        .map(|_| {
            let addr = link.addr();
            thread::spawn(move || {
                let data = pattern(24_000);
                timed_echo(addr, &data).0 == data
            })
        })
        .collect();
    for transfer in transfers {
        assert!(transfer.join().expect("transfer thread"), "echo corrupted");
    }
    let elapsed = started.elapsed();
    let floor = Duration::from_secs_f64(0.9 * (48_000 - mtu) as f64 / f64::from(rate));
    assert!(
        elapsed >= floor,
        "2 x 24 kB at {rate} B/s took {elapsed:?} < {floor:?}"
    );
    // Counted just after each write, so it may trail the client by a moment.
    assert!(
        eventually(SETTLE, || link.stats().bytes_down == 48_000),
        "{:?}",
        link.stats()
    );
}

/// Which of `attempts` sequential connections were refused.
fn refusal_pattern(link: &Link, attempts: usize) -> Vec<bool> {
    (0..attempts)
        .map(|_| match round_trip(link.addr(), b"?") {
            Ok(reply) => {
                assert_eq!(reply, b"?");
                false
            }
            Err(error) => {
                assert!(is_reset(&error), "refusal looked like {error:?}");
                true
            }
        })
        .collect()
}

#[test]
fn refusals_follow_the_per_attempt_probability_and_the_seed() {
    let echo = Server::echo();
    let profile = clean().with_drops(0.0, 0.3);
    let link = start(&echo, profile.clone(), 7);
    let first = refusal_pattern(&link, 300);
    let refused = first.iter().filter(|&&r| r).count() as u64;
    // Binomial(300, 0.3): mean 90, sd 7.9.
    assert!(
        (60..=120).contains(&refused),
        "{refused} of 300 refused at p = 0.3"
    );
    let stats = link.stats();
    assert_eq!(stats.refused, refused);
    assert_eq!(stats.attempts, 300);
    assert_eq!(stats.accepted, 300 - refused);

    let replay = start(&echo, profile.clone(), 7);
    assert_eq!(
        refusal_pattern(&replay, 300),
        first,
        "same seed, different refusals"
    );
    let other = start(&echo, profile, 8);
    assert_ne!(
        refusal_pattern(&other, 300),
        first,
        "different seeds, same refusals"
    );
}

#[test]
fn connections_drop_at_the_per_second_probability() {
    let echo = Server::echo();
    // P(drop within a second) = 0.9: exponential lifetimes, mean 1 / ln 10 = 0.434 s.
    let link = start(&echo, clean().with_drops(0.9, 0.0), 9);
    let connections: u32 = 30;
    let lifetimes: Vec<Duration> = (0..connections)
        .map(|_| {
            let addr = link.addr();
            thread::spawn(move || {
                let mut stream = connect(addr);
                let opened = Instant::now();
                let mut byte = [0; 1];
                let error = stream
                    .read(&mut byte)
                    .expect_err("the link must cut the connection");
                assert!(is_reset(&error), "cut looked like {error:?}");
                opened.elapsed()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("connection thread"))
        .collect();
    let mean = lifetimes.iter().sum::<Duration>().as_secs_f64() / f64::from(connections);
    let expected = 1.0 / 10f64.ln();
    assert!(
        (0.25..=0.7).contains(&mean),
        "mean lifetime {mean:.3} s, expected {expected:.3} s"
    );
    assert!(eventually(SETTLE, || link.stats().cut == u64::from(connections)));
}

#[test]
fn blackout_resets_open_connections_refuses_new_ones_and_recovers() {
    let echo = Server::echo();
    let link = start(&echo, clean(), 10);
    let mut open = connect(link.addr());
    assert_eq!(exchange(&mut open, b"before").expect("echo"), b"before");

    link.set_up(false);
    assert!(!link.is_up());
    let mut byte = [0; 1];
    let error = open
        .read(&mut byte)
        .expect_err("open connection must be cut");
    assert!(is_reset(&error), "cut looked like {error:?}");
    let error = round_trip(link.addr(), b"during").expect_err("new connection must be refused");
    assert!(is_reset(&error), "refusal looked like {error:?}");

    link.set_up(true);
    assert_eq!(round_trip(link.addr(), b"after").expect("echo"), b"after");
    let stats = link.stats();
    assert_eq!(
        (stats.attempts, stats.accepted, stats.refused, stats.cut),
        (3, 2, 1, 1)
    );
}

#[test]
fn stall_blackout_is_silent_and_stays_dead() {
    let echo = Server::echo();
    let link = start(&echo, clean().with_cut_mode(CutMode::Stall), 11);
    assert_eq!(link.cut_mode(), CutMode::Stall);
    let mut open = connect(link.addr());
    assert_eq!(exchange(&mut open, b"before").expect("echo"), b"before");

    link.set_up(false);
    assert!(eventually(SETTLE, || link.stats().cut == 1));
    open.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    open.write_all(b"lost")
        .expect("writes into a stalled link still succeed");
    let mut buf = [0; 8];
    let error = open
        .read(&mut buf)
        .expect_err("nothing may arrive, not even EOF");
    assert!(is_timeout(&error), "stall looked like {error:?}");
    assert!(
        round_trip(link.addr(), b"during").is_err(),
        "new connection must be refused"
    );

    link.set_up(true);
    assert_eq!(round_trip(link.addr(), b"after").expect("echo"), b"after");
    let error = open
        .read(&mut buf)
        .expect_err("a stalled connection stays dead");
    assert!(is_timeout(&error), "stall looked like {error:?}");
}

#[test]
fn scheduled_outage_plays_hours_in_seconds() {
    let echo = Server::echo();
    let hour = Duration::from_secs(3600);
    // One simulated hour per half real second: down over real 0.5 s .. 1.5 s.
    let scale = TimeScale::compress(hour, Duration::from_millis(500)).expect("scale");
    let link = LinkConfig::new(echo.addr(), clean())
        .with_schedule(Schedule::new().down(hour, 2 * hour))
        .with_time_scale(scale)
        .with_seed(12)
        .start()
        .expect("start link");
    assert!(link.is_up());
    let mut open = connect(link.addr());
    assert_eq!(exchange(&mut open, b"early").expect("echo"), b"early");

    assert!(
        eventually(SETTLE, || !link.is_up()),
        "the outage never began"
    );
    assert!(
        link.sim_elapsed() >= hour,
        "down early, at {:?}",
        link.sim_elapsed()
    );
    let mut byte = [0; 1];
    assert!(
        open.read(&mut byte).is_err(),
        "open connection survived the outage"
    );
    assert!(
        round_trip(link.addr(), b"during").is_err(),
        "connected during the outage"
    );

    assert!(
        eventually(SETTLE, || link.is_up()),
        "the outage never ended"
    );
    assert!(
        link.sim_elapsed() >= 3 * hour,
        "up early, at {:?}",
        link.sim_elapsed()
    );
    assert_eq!(round_trip(link.addr(), b"late").expect("echo"), b"late");
}

#[test]
fn counters_add_up() {
    let echo = Server::echo();
    let link = start(&echo, clean(), 13);
    let mut previous = link.stats();
    for size in [1_000, 5_000, 20_000] {
        let data = pattern(size);
        assert!(round_trip(link.addr(), &data).expect("echo") == data);
        let expected = size as u64;
        assert!(eventually(SETTLE, || link.stats().closed == previous.closed + 1));
        let delta = link.stats().since(&previous);
        assert_eq!((delta.bytes_up, delta.bytes_down), (expected, expected));
        previous = link.stats();
    }
    let mut cut = connect(link.addr());
    assert_eq!(exchange(&mut cut, b"x").expect("echo"), b"x");
    link.set_up(false);
    assert!(round_trip(link.addr(), b"y").is_err());
    link.set_up(true);
    assert!(eventually(SETTLE, || link.stats().cut == 1));

    let stats = link.stats();
    let expected = LinkStats {
        bytes_up: 26_001,
        bytes_down: 26_001,
        attempts: 5,
        accepted: 4,
        refused: 1,
        upstream_failures: 0,
        cut: 1,
        closed: 3,
        task_panics: 0,
    };
    assert_eq!(stats, expected);
    assert_eq!(stats.active(), 0);
    assert_eq!(
        stats.attempts,
        stats.accepted + stats.refused + stats.upstream_failures
    );
}

/// A blackout that is over before the connection's task runs again still
/// cuts it: the task must not see only the latest "up" and carry on (this
/// raced in `counters_add_up` about one run in eight).
#[test]
fn a_blackout_too_short_to_observe_still_cuts_open_connections() {
    let echo = Server::echo();
    let link = start(&echo, clean(), 16);
    let mut open: Vec<_> = (0..8u8)
        .map(|i| {
            let mut stream = connect(link.addr());
            assert_eq!(exchange(&mut stream, &[i]).expect("echo"), [i]);
            stream
        })
        .collect();
    // Down and up again with nothing in between: the link thread cannot have
    // polled the connection tasks in the meantime.
    link.set_up(false);
    link.set_up(true);
    assert!(
        eventually(SETTLE, || link.stats().cut == 8),
        "cut {} of 8 connections",
        link.stats().cut
    );
    for stream in &mut open {
        assert!(
            exchange(stream, b"after").is_err(),
            "a connection outlived the blackout"
        );
    }
    // New connections are served again.
    assert_eq!(round_trip(link.addr(), b"new").expect("echo"), b"new");
}

#[test]
fn peer_resets_and_missing_upstreams_do_not_break_the_link() {
    // An upstream that is not listening: the client is reset, counted apart.
    let gone = Server::echo();
    let gone_link = start(&gone, clean(), 14);
    drop(gone);
    assert!(round_trip(gone_link.addr(), b"x").is_err());
    assert!(eventually(SETTLE, || gone_link.stats().upstream_failures == 1));

    // An upstream that resets every connection (on loopback the reset can
    // beat the link's connect, so it may count as either).
    let resetting = Server::resetting();
    let reset_link = start(&resetting, clean(), 15);
    for _ in 0..3 {
        assert!(round_trip(reset_link.addr(), b"x").is_err());
    }
    let ended = |s: LinkStats| s.closed + s.upstream_failures;
    assert!(
        eventually(SETTLE, || ended(reset_link.stats()) == 3),
        "{:?}",
        reset_link.stats()
    );

    // Clients that reset mid-transfer, with data in flight both ways.
    let echo = Server::echo();
    let link = start(
        &echo,
        clean().with_latency(Duration::from_millis(20), Duration::ZERO),
        16,
    );
    for _ in 0..5 {
        let mut stream = connect(link.addr());
        stream.write_all(&pattern(50_000)).expect("write");
        reset(stream);
    }
    assert!(eventually(SETTLE, || link.stats().closed == 5));
    assert_eq!(
        round_trip(link.addr(), b"still here").expect("echo"),
        b"still here"
    );
    for stats in [gone_link.stats(), reset_link.stats(), link.stats()] {
        assert_eq!(stats.task_panics, 0);
    }
}

#[test]
fn drop_joins_the_thread_and_closes_everything() {
    let echo = Server::echo();
    let link = start(&echo, clean().with_cut_mode(CutMode::Stall), 17);
    let addr = link.addr();
    let name = format!("flink-{}", addr.port());
    assert!(thread_names().contains(&name), "no thread {name}");
    let mut open = connect(addr);
    assert_eq!(exchange(&mut open, b"hello").expect("echo"), b"hello");
    let mut stalled = connect(addr);
    assert_eq!(exchange(&mut stalled, b"hi").expect("echo"), b"hi");
    link.set_up(false);
    assert!(eventually(SETTLE, || link.stats().cut == 2));

    drop(link);
    // `drop` returns once the thread is joined, but the kernel lists a joined
    // thread in /proc until it is reaped, a moment after it woke its joiner
    // (this raced about one run in fifteen): wait for that, briefly. A thread
    // that still runs stays listed, and fails this.
    assert!(
        eventually(SETTLE, || !thread_names().contains(&name)),
        "thread {name} outlived the link"
    );
    let error = std::net::TcpStream::connect(addr).expect_err("listener outlived the link");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
    let mut byte = [0; 1];
    for stream in [&mut open, &mut stalled] {
        match stream.read(&mut byte) {
            Ok(n) => assert_eq!(n, 0, "data after the link was dropped"),
            Err(error) => assert!(!is_timeout(&error), "connection left hanging"),
        }
    }
}
