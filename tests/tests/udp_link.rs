//! The UDP link emulator against loopback peers: forwarding through per-client
//! NAT bindings, binding expiry, loss, duplication, reordering, jitter, MTU,
//! blackouts by hand and by schedule, seeded replay, counters, and clean
//! shutdown. Every test fixes its seed so a failure replays exactly, and
//! waits for states (never sleeps for a verdict).

mod udp_support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use flotta_e2e::link::{
    DatagramProfile, DatagramRecord, Direction, DropCause, Fate, IPV4_UDP_HEADER_BYTES, LinkError,
    Schedule, TimeScale, UdpLink, UdpLinkConfig, UdpProfile,
};
use udp_support::{
    Peer, SETTLE, WINDOW, arrivals, binomial_ok, eventually, numbered, numbered_run, records,
    send_all, seq_of, settle, thread_names,
};

fn start(upstream: &Peer, profile: UdpProfile, seed: u64) -> UdpLink {
    UdpLinkConfig::new(upstream.addr(), profile)
        .with_seed(seed)
        .start()
        .expect("start udp link")
}

fn up_only(profile: DatagramProfile) -> UdpProfile {
    UdpProfile::new(profile, DatagramProfile::clean())
}

#[test]
fn forwards_both_ways_with_a_binding_per_client() {
    let upstream = Peer::echo();
    let link = start(&upstream, UdpProfile::clean(), 1);
    let (a, b) = (Peer::silent(), Peer::silent());
    let sent = |tag: u8| -> Vec<Vec<u8>> { (0..5u8).map(|i| vec![tag, i]).collect() };
    for (a_msg, b_msg) in sent(b'a').iter().zip(sent(b'b').iter()) {
        a.send(link.addr(), a_msg);
        b.send(link.addr(), b_msg);
    }
    assert!(eventually(SETTLE, || a.count() == 5 && b.count() == 5));
    // Each client gets its own replies, in order, from the link's address.
    assert_eq!(a.payloads(), sent(b'a'));
    assert_eq!(b.payloads(), sent(b'b'));
    assert!(a.received().iter().all(|d| d.from == link.addr()));

    // The upstream saw one source port per client, neither the client's own.
    let seen = upstream.received();
    let source_of = |tag: u8| -> BTreeSet<_> {
        seen.iter()
            .filter(|d| d.data[0] == tag)
            .map(|d| d.from)
            .collect()
    };
    let (from_a, from_b) = (source_of(b'a'), source_of(b'b'));
    assert_eq!((from_a.len(), from_b.len()), (1, 1), "{seen:?}");
    assert_ne!(from_a, from_b);
    for from in from_a.iter().chain(&from_b) {
        assert!(from.ip().is_loopback());
        assert!(![a.addr(), b.addr(), link.addr()].contains(from));
    }
    let stats = link.stats();
    assert_eq!((stats.bindings_created, stats.bindings_active()), (2, 2));
    assert_eq!((stats.up.offered, stats.up.delivered), (10, 10));
    assert_eq!((stats.down.offered, stats.down.delivered), (10, 10));
    assert_eq!(
        (stats.up.delivered_bytes, stats.down.delivered_bytes),
        (20, 20)
    );
    assert_eq!(stats.task_panics, 0);
}

#[test]
fn loss_follows_the_probability_each_way() {
    let upstream = Peer::echo();
    let client = Peer::silent();
    let profile = UdpProfile::new(
        DatagramProfile::clean().with_loss(0.3),
        DatagramProfile::clean().with_loss(0.2),
    );
    let link = start(&upstream, profile, 2);
    let n = 2000;
    send_all(&link, &client, &upstream, true, &numbered_run(n, 32));

    let stats = link.stats();
    assert_eq!(stats.up.offered, u64::from(n));
    // Binomial(2000, 0.3): mean 600, sd 20.5; five sd either side.
    assert!(
        binomial_ok(stats.up.dropped_loss, u64::from(n), 0.3, 5.0),
        "{} of {n} lost up at p = 0.3",
        stats.up.dropped_loss
    );
    assert_eq!(stats.up.delivered + stats.up.dropped_loss, u64::from(n));
    // Exactly the datagrams decided delivered arrived, once each.
    let delivered: BTreeSet<u32> = records(&link, Direction::Up)
        .iter()
        .filter(|r| matches!(r.fate, Fate::Delivered { .. }))
        .map(|r| u32::try_from(r.index).expect("small index"))
        .collect();
    let at_upstream = arrivals(&upstream);
    assert!(at_upstream.values().all(|&times| times == 1));
    assert_eq!(
        at_upstream.keys().copied().collect::<BTreeSet<_>>(),
        delivered
    );

    let replies = stats.down.offered;
    assert_eq!(replies, stats.up.delivered);
    assert!(
        binomial_ok(stats.down.dropped_loss, replies, 0.2, 5.0),
        "{} of {replies} lost down at p = 0.2",
        stats.down.dropped_loss
    );
    assert_eq!(client.count() as u64, replies - stats.down.dropped_loss);
}

#[test]
fn duplicates_arrive_twice_the_copy_after_its_gap() {
    let upstream = Peer::echo();
    let client = Peer::silent();
    let gap = Duration::from_millis(40);
    let profile = UdpProfile::new(
        DatagramProfile::clean().with_duplicates(0.5, gap),
        DatagramProfile::clean().with_duplicates(1.0, Duration::from_millis(1)),
    );
    let link = start(&upstream, profile, 3);
    let n: u32 = 200;
    let mut sent_at = BTreeMap::new();
    for window in numbered_run(n, 16).chunks(WINDOW) {
        for payload in window {
            sent_at.insert(seq_of(payload), Instant::now());
            client.send(link.addr(), payload);
        }
        settle(&link, &upstream, &client, true, sent_at.len() as u64);
    }
    let stats = link.stats();
    assert!(
        binomial_ok(stats.up.duplicated, u64::from(n), 0.5, 5.0),
        "{} of {n} duplicated at p = 0.5",
        stats.up.duplicated
    );
    let at_upstream = arrivals(&upstream);
    let twice: BTreeSet<u32> = at_upstream
        .iter()
        .filter(|&(_, &times)| times == 2)
        .map(|(&seq, _)| seq)
        .collect();
    assert_eq!(at_upstream.len(), n as usize, "every datagram arrived");
    assert!(at_upstream.values().all(|&times| times == 1 || times == 2));
    assert_eq!(twice.len() as u64, stats.up.duplicated);
    let decided_twice: BTreeSet<u32> = records(&link, Direction::Up)
        .iter()
        .filter(|r| {
            matches!(
                r.fate,
                Fate::Delivered {
                    duplicated: true,
                    ..
                }
            )
        })
        .map(|r| u32::try_from(r.index).expect("small index"))
        .collect();
    assert_eq!(twice, decided_twice);
    // The second copy cannot arrive before its gap has passed since sending.
    for &seq in &twice {
        let last = upstream
            .received()
            .into_iter()
            .filter(|d| seq_of(&d.data) == seq)
            .map(|d| d.at)
            .max()
            .expect("arrived");
        let since_sent = last.duration_since(sent_at[&seq]);
        assert!(since_sent >= gap, "copy of {seq} after {since_sent:?}");
    }
    // Down, every echo is doubled.
    let at_client = arrivals(&client);
    for (seq, times) in &at_upstream {
        assert_eq!(at_client.get(seq), Some(&(2 * times)), "seq {seq}");
    }
    assert_eq!(stats.down.duplicated, stats.down.offered);
}

#[test]
fn reordering_lets_later_datagrams_overtake_held_ones() {
    let upstream = Peer::silent();
    let client = Peer::silent();
    let profile = up_only(DatagramProfile::clean().with_reordering(0.2, Duration::from_millis(40)));
    let link = start(&upstream, profile, 4);
    let n: u32 = 200;
    send_all(&link, &client, &upstream, false, &numbered_run(n, 16));

    let order: Vec<u32> = upstream.payloads().iter().map(|d| seq_of(d)).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "each arrives once");
    // A datagram is late if one offered after it arrived first.
    let mut late = BTreeSet::new();
    for (i, &seq) in order.iter().enumerate() {
        if order[..i].iter().any(|&earlier| earlier > seq) {
            late.insert(seq);
        }
    }
    let held: BTreeSet<u32> = records(&link, Direction::Up)
        .iter()
        .filter(|r| {
            matches!(
                r.fate,
                Fate::Delivered {
                    reordered: true,
                    ..
                }
            )
        })
        .map(|r| u32::try_from(r.index).expect("small index"))
        .collect();
    assert!(!late.is_empty(), "nothing was reordered: {order:?}");
    assert!(late.is_subset(&held), "late {late:?}, held {held:?}");
    assert_eq!(held.len() as u64, link.stats().up.reordered);
    assert!(binomial_ok(
        link.stats().up.reordered,
        u64::from(n),
        0.2,
        5.0
    ));
}

#[test]
fn latency_is_added_each_way_and_jitter_alone_keeps_order() {
    let upstream = Peer::echo();
    let client = Peer::silent();
    let latency = Duration::from_millis(60);
    let link = start(
        &upstream,
        UdpProfile::symmetric(DatagramProfile::clean().with_latency(latency, Duration::ZERO)),
        5,
    );
    let sent = Instant::now();
    client.send(link.addr(), b"ping");
    assert!(eventually(SETTLE, || client.count() == 1));
    let rtt = client.received()[0].at.duration_since(sent);
    assert!(rtt >= 2 * latency, "round trip {rtt:?} < 2 x {latency:?}");

    let jitter = Duration::from_millis(10);
    let jittery = DatagramProfile::clean().with_latency(Duration::from_millis(1), jitter);
    link.set_profile(UdpProfile::symmetric(jittery))
        .expect("valid profile");
    let n: u32 = 200;
    send_all(&link, &client, &upstream, true, &numbered_run(n, 16));
    let up_order: Vec<u32> = upstream.payloads()[1..].iter().map(|d| seq_of(d)).collect();
    let down_order: Vec<u32> = client.payloads()[1..].iter().map(|d| seq_of(d)).collect();
    assert_eq!(up_order, (0..n).collect::<Vec<_>>());
    assert_eq!(down_order, (0..n).collect::<Vec<_>>());
    let delays: HashSet<Duration> = records(&link, Direction::Up)
        .iter()
        .filter_map(|r| match r.fate {
            Fate::Delivered { delay, .. } if r.index > 0 => Some(delay),
            _ => None,
        })
        .collect();
    assert!(delays.len() > 100, "jitter barely varied: {delays:?}");
}

#[test]
fn oversized_datagrams_are_dropped_and_counted_each_way() {
    let upstream = Peer::echo();
    let client = Peer::silent();
    // Up carries payloads up to 972 bytes, down only up to 100.
    let profile = UdpProfile::new(
        DatagramProfile::clean().with_mtu(1000),
        DatagramProfile::clean().with_mtu(128),
    );
    let link = start(&upstream, profile, 6);
    assert_eq!(link.profile().up.max_payload(), 972);
    let sizes = [100, 150, 972, 973, 4000];
    let payloads: Vec<Vec<u8>> = sizes
        .iter()
        .zip(0u32..)
        .map(|(&len, seq)| numbered(seq, len))
        .collect();
    send_all(&link, &client, &upstream, true, &payloads);
    let lens = |peer: &Peer| -> Vec<usize> { peer.payloads().iter().map(Vec::len).collect() };
    assert_eq!(lens(&upstream), [100, 150, 972]);
    assert_eq!(lens(&client), [100]);
    let stats = link.stats();
    assert_eq!((stats.up.dropped_mtu, stats.down.dropped_mtu), (2, 2));
    assert_eq!(stats.up.offered_bytes, sizes.iter().sum::<usize>() as u64);
    assert_eq!(stats.up.delivered_bytes, 100 + 150 + 972);
}

#[test]
fn blackout_drops_everything_both_ways_then_recovers() {
    let upstream = Peer::echo();
    let client = Peer::silent();
    let link = start(&upstream, UdpProfile::clean(), 7);
    client.send(link.addr(), b"before");
    assert!(eventually(SETTLE, || client.count() == 1));
    let binding = upstream.received()[0].from;

    link.set_up(false);
    assert!(!link.is_up());
    for i in 0..10u8 {
        client.send(link.addr(), &[i]);
    }
    // Down as well: the upstream sends to the client's binding on its own.
    upstream.send(binding, b"unsolicited");
    assert!(eventually(SETTLE, || {
        let stats = link.stats();
        stats.up.dropped_blackout == 10 && stats.down.dropped_blackout == 1
    }));
    let stats = link.stats();
    assert_eq!((stats.up.delivered, stats.down.delivered), (1, 1));
    assert_eq!((upstream.count(), client.count()), (1, 1));

    link.set_up(true);
    client.send(link.addr(), b"after");
    assert!(eventually(SETTLE, || client.count() == 2));
    assert_eq!(client.payloads()[1], b"after");
    assert_eq!(upstream.received()[1].from, binding, "the binding survived");
    assert_eq!(link.stats().bindings_created, 1);
}

#[test]
fn a_blackout_shorter_than_the_latency_still_drops_datagrams_in_flight() {
    let upstream = Peer::silent();
    let client = Peer::silent();
    let slow = DatagramProfile::clean().with_latency(Duration::from_secs(1), Duration::ZERO);
    let link = start(&upstream, up_only(slow), 8);
    client.send(link.addr(), b"doomed");
    assert!(eventually(SETTLE, || link.stats().up.offered == 1));
    link.set_up(false);
    link.set_up(true);
    assert!(eventually(SETTLE, || link.stats().up.dropped_blackout == 1));
    assert_eq!(link.stats().up.delivered, 0);
    // Decided delivered on arrival; the blackout caught it on the way.
    assert!(matches!(
        records(&link, Direction::Up)[0].fate,
        Fate::Delivered { .. }
    ));
    link.set_profile(UdpProfile::clean())
        .expect("valid profile");
    client.send(link.addr(), b"fine");
    assert!(eventually(SETTLE, || upstream.count() == 1));
    assert_eq!(upstream.payloads(), [b"fine".to_vec()]);
}

#[test]
fn scheduled_outage_plays_hours_in_seconds() {
    let upstream = Peer::echo();
    let client = Peer::silent();
    let hour = Duration::from_secs(3600);
    // One simulated hour per real second: down over real 1 s .. 3 s.
    let scale = TimeScale::compress(hour, Duration::from_secs(1)).expect("scale");
    let link = UdpLinkConfig::new(upstream.addr(), UdpProfile::clean())
        .with_schedule(Schedule::new().down(hour, 2 * hour))
        .with_time_scale(scale)
        .with_seed(9)
        .start()
        .expect("start udp link");
    assert!(link.is_up());
    client.send(link.addr(), b"early");
    assert!(eventually(SETTLE, || client.count() == 1));

    assert!(
        eventually(SETTLE, || !link.is_up()),
        "the outage never began"
    );
    assert!(
        link.sim_elapsed() >= hour,
        "down early: {:?}",
        link.sim_elapsed()
    );
    client.send(link.addr(), b"during");
    assert!(eventually(SETTLE, || link.stats().up.dropped_blackout == 1));

    assert!(
        eventually(SETTLE, || link.is_up()),
        "the outage never ended"
    );
    assert!(
        link.sim_elapsed() >= 3 * hour,
        "up early: {:?}",
        link.sim_elapsed()
    );
    client.send(link.addr(), b"late");
    assert!(eventually(SETTLE, || client.count() == 2));
    assert_eq!(client.payloads(), [b"early".to_vec(), b"late".to_vec()]);
}

#[test]
fn an_expired_binding_drops_late_replies_and_the_next_uplink_rebinds() {
    let upstream = Peer::silent();
    let client = Peer::silent();
    let link = UdpLinkConfig::new(upstream.addr(), UdpProfile::clean())
        // Long enough for the first reply to cross on a busy machine.
        .with_nat_idle_timeout(Duration::from_secs(1))
        .with_seed(10)
        .start()
        .expect("start udp link");
    client.send(link.addr(), b"one");
    assert!(eventually(SETTLE, || upstream.count() == 1));
    let first = upstream.received()[0].from;
    upstream.send(first, b"reply one");
    assert!(eventually(SETTLE, || client.count() == 1));

    // No uplink: the binding expires, and a late reply to it is dropped.
    assert!(eventually(SETTLE, || link.stats().bindings_expired == 1));
    upstream.send(first, b"too late");
    assert!(eventually(SETTLE, || link.stats().down.dropped_expired == 1));
    assert_eq!(client.count(), 1, "a reply crossed an expired binding");
    assert_eq!(
        records(&link, Direction::Down).last().map(|r| r.fate),
        Some(Fate::Dropped(DropCause::ExpiredBinding))
    );

    // The next uplink gets a new binding on a new port, and replies flow again.
    client.send(link.addr(), b"two");
    assert!(eventually(SETTLE, || upstream.count() == 2));
    let second = upstream.received()[1].from;
    assert_ne!(second.port(), first.port());
    upstream.send(second, b"reply two");
    assert!(eventually(SETTLE, || client.count() == 2));
    assert_eq!(client.payloads()[1], b"reply two");
    let stats = link.stats();
    assert_eq!((stats.bindings_created, stats.bindings_active()), (2, 1));
}

#[test]
fn uplink_traffic_keeps_a_binding_alive() {
    let upstream = Peer::silent();
    let client = Peer::silent();
    let timeout = Duration::from_secs(1);
    let link = UdpLinkConfig::new(upstream.addr(), UdpProfile::clean())
        .with_nat_idle_timeout(timeout)
        .with_seed(11)
        .start()
        .expect("start udp link");
    let started = Instant::now();
    let mut sent = 0;
    // Two timeouts' worth of uplink, one datagram every 50 ms.
    while started.elapsed() < 2 * timeout {
        client.send(link.addr(), b"keepalive");
        sent += 1;
        assert!(eventually(SETTLE, || upstream.count() == sent));
        std::thread::sleep(Duration::from_millis(50));
    }
    let ports: BTreeSet<u16> = upstream.received().iter().map(|d| d.from.port()).collect();
    assert_eq!(ports.len(), 1, "rebound while in use: {ports:?}");
    let stats = link.stats();
    assert_eq!((stats.bindings_created, stats.bindings_expired), (1, 0));
}

/// Runs the same datagrams through a fresh link with `seed`; returns the
/// link's trace per direction and how often each datagram reached the upstream.
fn replay(
    seed: u64,
) -> (
    Vec<DatagramRecord>,
    Vec<DatagramRecord>,
    BTreeMap<u32, usize>,
) {
    let upstream = Peer::echo();
    let client = Peer::silent();
    let one_way = DatagramProfile::clean()
        .with_latency(Duration::ZERO, Duration::from_millis(3))
        .with_loss(0.2)
        .with_duplicates(0.1, Duration::from_millis(2))
        .with_reordering(0.1, Duration::from_millis(5));
    let link = start(&upstream, UdpProfile::symmetric(one_way), seed);
    send_all(&link, &client, &upstream, true, &numbered_run(300, 24));
    (
        records(&link, Direction::Up),
        records(&link, Direction::Down),
        arrivals(&upstream),
    )
}

#[test]
fn the_same_seed_replays_the_same_decisions() {
    let (up, down, at_upstream) = replay(42);
    assert_eq!(up.len(), 300);
    let (up_again, down_again, at_upstream_again) = replay(42);
    assert_eq!(up, up_again, "same seed, different uplink decisions");
    assert_eq!(down, down_again, "same seed, different downlink decisions");
    assert_eq!(at_upstream, at_upstream_again);
    let (up_other, _, _) = replay(43);
    assert_ne!(up, up_other, "different seeds, same decisions");
}

#[test]
fn counters_add_up_across_every_cause() {
    let upstream = Peer::echo();
    let client = Peer::silent();
    let profile = UdpProfile::new(
        DatagramProfile::clean()
            .with_loss(0.1)
            .with_duplicates(0.1, Duration::from_millis(1))
            .with_reordering(0.1, Duration::from_millis(3))
            .with_mtu(600),
        DatagramProfile::clean()
            .with_loss(0.1)
            .with_duplicates(0.1, Duration::from_millis(1)),
    );
    let link = start(&upstream, profile, 12);
    // Sizes 4..=700: the ones above 572 do not fit the uplink's MTU.
    let payloads: Vec<Vec<u8>> = (0..400u32)
        .map(|seq| numbered(seq, 4 + (seq as usize * 37) % 697))
        .collect();
    send_all(&link, &client, &upstream, true, &payloads[..200]);
    let before_blackout = link.stats();
    link.set_up(false);
    send_all(&link, &client, &upstream, true, &payloads[200..250]);
    link.set_up(true);
    let blackout = link.stats().since(&before_blackout);
    // The MTU is checked first: an oversized datagram counts as such.
    let oversized = payloads[200..250].iter().filter(|p| p.len() > 572).count() as u64;
    assert!(oversized > 0);
    assert_eq!(blackout.up.offered, 50);
    assert_eq!(
        (blackout.up.dropped_blackout, blackout.up.dropped_mtu),
        (50 - oversized, oversized)
    );
    assert_eq!(blackout.up.delivered, 0);
    send_all(&link, &client, &upstream, true, &payloads[250..]);

    let stats = link.stats();
    let bytes = |peer: &Peer| peer.payloads().iter().map(Vec::len).sum::<usize>() as u64;
    assert_eq!(stats.up.offered, 400);
    assert_eq!(
        stats.up.offered_bytes,
        payloads.iter().map(Vec::len).sum::<usize>() as u64
    );
    assert_eq!(stats.up.delivered, upstream.count() as u64);
    assert_eq!(stats.up.delivered_bytes, bytes(&upstream));
    assert_eq!(stats.down.offered, upstream.count() as u64);
    assert_eq!(stats.down.offered_bytes, bytes(&upstream));
    assert_eq!(stats.down.delivered, client.count() as u64);
    assert_eq!(stats.down.delivered_bytes, bytes(&client));
    for (direction, one_way) in [(Direction::Up, &stats.up), (Direction::Down, &stats.down)] {
        assert_eq!(
            one_way.offered + one_way.duplicated,
            one_way.delivered + one_way.dropped(),
            "{direction:?}: {one_way:?}"
        );
        // Every drop here was decided on arrival, so the trace agrees.
        let trace = records(&link, direction);
        assert_eq!(trace.len() as u64, one_way.offered);
        for cause in [DropCause::Loss, DropCause::Blackout, DropCause::Mtu] {
            let traced = trace
                .iter()
                .filter(|r| r.fate == Fate::Dropped(cause))
                .count() as u64;
            assert_eq!(traced, one_way.dropped_by(cause), "{direction:?} {cause:?}");
        }
    }
    for cause in [DropCause::Loss, DropCause::Blackout, DropCause::Mtu] {
        assert!(stats.up.dropped_by(cause) > 0, "no {cause:?} drop up");
    }
    assert!(stats.up.duplicated > 0 && stats.up.reordered > 0 && stats.down.duplicated > 0);
    assert_eq!(
        (stats.up.dropped_expired, stats.down.dropped_send_failure),
        (0, 0)
    );
    let headers = (stats.up.delivered + stats.down.delivered) * IPV4_UDP_HEADER_BYTES;
    assert_eq!(
        stats.wire_bytes(),
        stats.up.delivered_bytes + stats.down.delivered_bytes + headers
    );
    assert_eq!(
        stats.up.offered_wire_bytes(),
        stats.up.offered_bytes + 400 * IPV4_UDP_HEADER_BYTES
    );
}

#[test]
fn profiles_change_at_run_time_and_bad_ones_are_refused() {
    let upstream = Peer::silent();
    let client = Peer::silent();
    let link = start(&upstream, UdpProfile::clean(), 13);
    send_all(&link, &client, &upstream, false, &numbered_run(100, 8));
    assert_eq!(upstream.count(), 100);

    let lossy = up_only(DatagramProfile::clean().with_loss(1.0));
    link.set_profile(lossy.clone()).expect("valid profile");
    assert_eq!(link.profile(), lossy);
    let before = link.stats();
    send_all(&link, &client, &upstream, false, &numbered_run(100, 8));
    let phase = link.stats().since(&before);
    assert_eq!((phase.up.dropped_loss, phase.up.delivered), (100, 0));
    assert_eq!(upstream.count(), 100);

    let bad = up_only(DatagramProfile::clean().with_loss(1.5));
    assert!(matches!(
        link.set_profile(bad),
        Err(LinkError::Invalid { field: "loss", .. })
    ));
    assert_eq!(link.profile(), lossy, "a refused profile changed the link");
    link.set_profile(UdpProfile::clean())
        .expect("valid profile");
    send_all(&link, &client, &upstream, false, &numbered_run(100, 8));
    assert_eq!(upstream.count(), 200);
}

#[test]
fn bad_settings_are_refused_at_start() {
    let upstream = Peer::silent();
    let zero_timeout = UdpLinkConfig::new(upstream.addr(), UdpProfile::clean())
        .with_nat_idle_timeout(Duration::ZERO)
        .start();
    assert!(matches!(
        zero_timeout,
        Err(LinkError::Invalid {
            field: "nat_idle_timeout",
            ..
        })
    ));
    let tiny_mtu = UdpLinkConfig::new(
        upstream.addr(),
        UdpProfile::symmetric(DatagramProfile::clean().with_mtu(10)),
    )
    .start();
    assert!(matches!(
        tiny_mtu,
        Err(LinkError::Invalid {
            field: "mtu_bytes",
            ..
        })
    ));
}

#[test]
fn drop_joins_the_thread_and_closes_every_socket() {
    let upstream = Peer::echo();
    let client = Peer::silent();
    let link = start(&upstream, UdpProfile::clean(), 14);
    let addr = link.addr();
    let name = format!("fudp-{}", addr.port());
    assert!(thread_names().contains(&name), "no thread {name}");
    client.send(addr, b"hello");
    assert!(eventually(SETTLE, || client.count() == 1));
    let binding = upstream.received()[0].from;

    drop(link);
    // A joined thread stays listed in /proc until it is reaped, a moment
    // after it woke its joiner; one that still runs stays listed for good.
    assert!(
        eventually(SETTLE, || !thread_names().contains(&name)),
        "thread {name} outlived the link"
    );
    // Nothing listens on the link's port nor on the binding's any more: a
    // connected socket hears the ICMP port-unreachable as a refusal.
    for closed in [addr, binding] {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind probe");
        probe.connect(closed).expect("connect probe");
        probe
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        probe.send(b"anyone?").expect("send probe");
        let error = probe
            .recv(&mut [0; 16])
            .expect_err("a socket outlived the link");
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{closed}"
        );
    }
}
