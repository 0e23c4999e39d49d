//! Sealed frames over UDP against a real server in process (127.0.0.1):
//! stored exactly once and acknowledged, duplicates re-acknowledged without
//! amplification, nothing answered to what does not authenticate, rate
//! limits, fragments reassembled (across a restart too), configuration in
//! the answer, downlink counters never reused. Keys and their lifecycle:
//! `udp_frame_keys.rs`.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::frames::{
    Down, FrameDevice, dropped, eventually, frame_device, head, id, item, seqs, udp_server,
};
use common::{heartbeat, log};
use flotta_proto::batch::WireRecord;
use flotta_proto::frame::{ConfigEncoding, UpItem, derive_oscore, oscore_nonce};
use flotta_proto::frame_keys::FrameKeys;
use flotta_proto::payload::{DeviceStatus, Level, LogLine, Payload};

#[test]
fn a_frame_is_stored_once_and_a_duplicate_is_acked_again_without_amplification() {
    let s = udp_server("");
    let (_c, dev) = frame_device(&s, "dev-1");
    let records = [
        log(10, "a"),
        log(11, "b"),
        heartbeat(12, DeviceStatus::Degraded),
    ];
    let items: Vec<UpItem<'_>> = records.iter().map(item).collect();
    let frame = dev.frame(0, &items);
    let answer = dev.exchange(&frame);
    assert!(answer.ack().acks(0));
    assert_eq!(answer.ack().below, 1);
    assert_eq!(seqs(&s, "dev-1"), vec![10, 11, 12]);
    let device = s.store().device(&id("dev-1")).unwrap().unwrap();
    assert_eq!(device.status.as_deref(), Some("degraded"));
    assert!(device.last_seen_ms.is_some());
    eventually("stored counted", || s.frames("stored") == 1);

    // The same datagram again (a lost answer): the same answer, not stored.
    let again = dev.exchange(&frame);
    assert_eq!(again.items, vec![Down::Ack(answer.ack())]);
    assert!(again.len <= frame.len(), "no amplification");
    assert_eq!(
        again.header.counter, answer.header.counter,
        "the kept answer, not a new seal"
    );
    assert_eq!(seqs(&s, "dev-1"), vec![10, 11, 12]);
    eventually("duplicate counted", || s.frames("duplicate") == 1);
    let link = s.store().frame_link_status(&id("dev-1")).unwrap();
    assert_eq!(
        (link.frames_stored, link.frames_duplicate),
        (1, 0),
        "a duplicate answered from memory is stored with the next frame"
    );
    assert_eq!(link.last_link.as_deref(), Some("udp"));
    let next = dev.exchange(&dev.frame(1, &[]));
    assert!(next.ack().acks(1));
    let link = s.store().frame_link_status(&id("dev-1")).unwrap();
    assert_eq!((link.frames_stored, link.frames_duplicate), (2, 1));

    // The operator sees the link and the frame counters.
    let key = dev.keys.key_id_hex();
    let described = common::ctl::ok(common::ctl::ctl(&s, &["describe", "ed", "dev-1"], None));
    assert!(
        described.contains(&format!("Link:         udp (frame key {key}, epoch 0)")),
        "{described}"
    );
    assert!(
        described
            .contains("Frames:       2 stored, 1 duplicate; uplink counter 1, downlink counter 16"),
        "{described}"
    );
    let wide = common::ctl::ok(common::ctl::ctl(&s, &["get", "ed", "-o", "wide"], None));
    let header = wide.lines().next().unwrap();
    assert!(
        header.contains("LINK") && header.contains("FRAME KEY"),
        "{wide}"
    );
    assert!(wide.contains("udp") && wide.contains(&key), "{wide}");

    // The ack follows the device's low-water mark past a lost counter.
    let later = dev.exchange(&dev.seal(4, &FrameDevice::plaintext("1", 2, &[item(&log(13, "c"))])));
    assert!(later.ack().acks(1) && !later.ack().acks(2) && later.ack().acks(4));
    let settled = dev.exchange(&dev.seal(5, &FrameDevice::plaintext("1", 4, &[])));
    assert_eq!(settled.ack().below, 6, "2 and 3 given up by the device");
}

#[test]
fn unauthenticated_or_stale_datagrams_get_no_answer_and_are_counted() {
    let s = udp_server("");
    let (_c, dev) = frame_device(&s, "dev-1");
    let good = dev.frame(100, &[item(&log(1, "a"))]);
    assert!(dev.exchange(&good).ack().acks(100));

    let mut flipped = dev.frame(101, &[item(&log(2, "b"))]);
    let last = flipped.len() - 1;
    flipped[last - 9] ^= 0x01;
    dropped(&s, &dev, &flipped, "bad_tag");

    let mut stranger = FrameKeys {
        key_id: [0xee; 4],
        ..dev.keys.clone()
    };
    stranger.master_secret[0] ^= 1;
    let mut other = FrameDevice::new("dev-1", stranger, &s);
    dropped(&s, &other, &other.frame(1, &[]), "unknown_key");

    // The right key id, the other epoch parity (no such context).
    other.rekey(FrameKeys {
        epoch: dev.keys.epoch + 1,
        ..dev.keys.clone()
    });
    dropped(&s, &other, &other.frame(1, &[]), "epoch_mismatch");

    // Another device's id bound into the frame: the tag fails.
    let forged = FrameDevice::new("dev-2", dev.keys.clone(), &s);
    dropped(&s, &forged, &forged.frame(102, &[]), "bad_tag");

    dropped(
        &s,
        &dev,
        b"\x20\x00\x00\x01 not a frame at all",
        "malformed",
    );
    // A frame without key id cannot be matched to a device on UDP.
    dropped(
        &s,
        &dev,
        &[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        "malformed",
    );
    // Counter 30 is 70 below the highest (100): too old.
    dropped(&s, &dev, &dev.frame(30, &[item(&log(3, "c"))]), "too_old");
    assert_eq!(seqs(&s, "dev-1"), vec![1]);

    let url = format!("http://{}/metrics", s.admin_addr);
    let text = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for (result, n) in [
        ("stored", 1),
        ("bad_tag", 2),
        ("unknown_key", 1),
        ("epoch_mismatch", 1),
        ("malformed", 2),
        ("too_old", 1),
    ] {
        let line = format!("flotta_frames_total{{result=\"{result}\"}} {n}");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert!(
        text.contains("flotta_udp_datagrams_total{direction=\"out\"} 1"),
        "{text}"
    );
}

#[test]
fn a_source_sending_failures_is_rate_limited() {
    let s = udp_server("udp_failures_per_source_per_minute = 3");
    let (_c, dev) = frame_device(&s, "dev-1");
    for _ in 0..3 {
        dropped(&s, &dev, b"junk junk junk junk", "malformed");
    }
    dropped(&s, &dev, b"junk junk junk junk", "rate_limited");
    // Even a good frame from that address waits for the budget to refill.
    dropped(&s, &dev, &dev.frame(0, &[]), "rate_limited");
}

/// A log record of about `len` bytes (postcard) and its wire form.
fn long_log(seq: u64, len: usize) -> WireRecord {
    let p = Payload::Log(LogLine {
        source: "agent".into(),
        level: Level::Warn,
        message: (0..len)
            .map(|i| char::from(b'a' + (i * 31 % 26) as u8))
            .collect(),
    });
    WireRecord {
        seq,
        at_ms: 1_700_000_000_000,
        class: p.class(),
        payload: p.encode(),
    }
}

fn fragment(r: &WireRecord, from: usize, to: usize) -> UpItem<'_> {
    UpItem::Fragment {
        head: head(r),
        total_len: u32::try_from(r.payload.len()).unwrap(),
        offset: u32::try_from(from).unwrap(),
        data: &r.payload[from..to],
    }
}

#[test]
fn fragments_are_reassembled_across_frames_and_a_restart() {
    let mut s = udp_server("");
    let (_c, mut dev) = frame_device(&s, "dev-1");
    let big = long_log(40, 3000);
    let n = big.payload.len();
    let a = dev.exchange(&dev.frame(0, &[fragment(&big, 0, 1100)]));
    assert!(a.ack().acks(0));
    // Overlapping the first piece, agreeing with it.
    let b = dev.exchange(&dev.frame(1, &[fragment(&big, 1000, 2100)]));
    assert!(b.ack().acks(1));
    assert!(seqs(&s, "dev-1").is_empty());

    s.restart().unwrap();
    dev.server = s.udp_addr.unwrap();
    let c = dev.exchange(&dev.frame(2, &[item(&log(41, "after")), fragment(&big, 2100, n)]));
    assert!(c.ack().acks(2));
    let stored = s.store().records(&id("dev-1"), None, 10).unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        (stored[0].record.seq, &stored[0].record.payload),
        (40, &big.payload)
    );
    assert_eq!(stored[1].record.seq, 41);
}

#[test]
fn a_conflicting_overlapping_fragment_is_refused() {
    let s = udp_server("");
    let (_c, dev) = frame_device(&s, "dev-1");
    let big = long_log(7, 1500);
    let n = big.payload.len();
    dev.exchange(&dev.frame(0, &[fragment(&big, 0, 800)]));
    let mut forged = big.clone();
    forged.payload[700] ^= 0xff;
    dropped(
        &s,
        &dev,
        &dev.frame(1, &[item(&log(8, "x")), fragment(&forged, 600, n)]),
        "malformed",
    );
    assert!(seqs(&s, "dev-1").is_empty(), "nothing of the refused frame");
    // Low water 1: the device still waits for counter 1, never acked.
    let done = dev.exchange(&dev.seal(
        2,
        &FrameDevice::plaintext("1", 1, &[fragment(&big, 600, n)]),
    ));
    assert!(done.ack().acks(2) && !done.ack().acks(1));
    let stored = s.store().records(&id("dev-1"), None, 10).unwrap();
    assert_eq!(stored[0].record.payload, big.payload);
}

#[test]
fn configuration_rides_in_the_answer_when_it_fits_and_is_pending_otherwise() {
    let s = udp_server("");
    let (_c, dev) = frame_device(&s, "dev-1");
    // The controller configured the device at enrolment: version "1".
    let stale = dev.exchange(&dev.seal(0, &FrameDevice::plaintext("", 0, &[])));
    let Some(Down::Config {
        version,
        encoding,
        body,
    }) = stale.items.get(1).cloned()
    else {
        panic!("{:?}", stale.items)
    };
    assert_eq!(version, "1");
    let json = match encoding {
        ConfigEncoding::Json => body,
        ConfigEncoding::ZlibJson => flotta_proto::compress::inflate(&body, 1 << 20).unwrap(),
    };
    let msg: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        (msg["device_id"].as_str(), msg["version"].as_str()),
        (Some("dev-1"), Some("1"))
    );
    let current = dev.exchange(&dev.seal(1, &FrameDevice::plaintext("1", 0, &[])));
    assert_eq!(current.items.len(), 1, "up to date: the ack alone");

    // A workload whose pod spec does not fit a 160-byte answer.
    let small = udp_server("udp_answer_bytes = 160");
    let (_c2, dev2) = frame_device(&small, "dev-2");
    let workload = serde_json::json!({
        "apiVersion": "management.project-flotta.io/v1alpha1",
        "kind": "EdgeWorkload",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"type": "pod", "device": "dev-2",
                 "pod": {"spec": {"containers": [{"name": "c", "image": "registry.example/a/very/long/image/name/that/does/not/compress:v1.2.3-0123456789abcdef"}]}}}
    });
    flotta_server::objects::apply(
        small.objects(),
        &workload,
        "default",
        "2026-01-01T00:00:00Z",
    )
    .unwrap();
    flotta_server::controller::reconcile(small.store(), small.objects(), Default::default(), 0)
        .unwrap();
    let pending = dev2.exchange(&dev2.seal(0, &FrameDevice::plaintext("1", 0, &[])));
    assert_eq!(pending.items[1], Down::Pending("2".into()));
    assert!(pending.len <= 160);
}

#[test]
fn a_configuration_holding_a_secret_is_never_sent_in_a_frame() {
    let s = udp_server("");
    let (_c, dev) = frame_device(&s, "dev-3");
    let apply = |v: serde_json::Value| {
        flotta_server::objects::apply(s.objects(), &v, "default", "2026-01-01T00:00:00Z").unwrap();
    };
    apply(serde_json::json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "default"},
        "stringData": {"password": "s3cr3t"}}));
    apply(serde_json::json!({
        "apiVersion": "management.project-flotta.io/v1alpha1",
        "kind": "EdgeWorkload",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"type": "pod", "device": "dev-3",
                 "pod": {"spec": {"containers": [{"name": "c", "image": "a:1",
                     "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]}}}
    }));
    flotta_server::controller::reconcile(s.store(), s.objects(), Default::default(), 0).unwrap();
    // It would fit, but the device fetches it over mutual TLS.
    let answer = dev.exchange(&dev.seal(0, &FrameDevice::plaintext("1", 0, &[])));
    assert_eq!(
        answer.items[1],
        Down::Pending("2".into()),
        "{:?}",
        answer.items
    );
}

#[test]
fn downlink_counters_are_never_reused_across_a_restart() {
    let mut s = udp_server("");
    let (_c, mut dev) = frame_device(&s, "dev-1");
    // Every downlink nonce (RFC 8613 §5.2: the server's empty Sender ID, the
    // answer's counter, the epoch's common IV) seen, across two restarts.
    let k = dev.keys.clone();
    let iv = derive_oscore(
        &k.master_secret,
        &k.master_salt,
        &k.key_id,
        &[],
        Some(&k.epoch.to_be_bytes()),
    )
    .unwrap()
    .common_iv;
    let mut nonces = BTreeSet::new();
    let mut record = |counter: u32| {
        let nonce = oscore_nonce(&iv, &[], u64::from(counter)).unwrap();
        assert!(nonces.insert(nonce), "downlink counter {counter} reused");
    };
    let mut up = 0;
    for round in 0..3 {
        if round > 0 {
            // After a restart the kept answers are gone: a duplicate of the
            // last frame gets an ack-only answer sealed once, under a new
            // counter, then those bytes again.
            let last = dev.frame(up - 1, &[]);
            let resealed = dev.exchange(&last);
            record(resealed.header.counter);
            assert_eq!(dev.exchange(&last).header.counter, resealed.header.counter);
        }
        for _ in 0..5 {
            let frame = dev.frame(up, &[]);
            let fresh = dev.exchange(&frame);
            record(fresh.header.counter);
            let again = dev.exchange(&frame);
            assert_eq!(
                (again.header.counter, &again.items),
                (fresh.header.counter, &fresh.items),
                "a duplicate gets the kept answer"
            );
            up += 1;
        }
        if round < 2 {
            s.restart().unwrap();
            dev.server = s.udp_addr.unwrap();
        }
    }
    assert_eq!(nonces.len(), 17);
}

#[test]
fn a_frame_replayed_ten_thousand_times_spends_no_downlink_counters() {
    let s = udp_server("");
    let (_c, dev) = frame_device(&s, "dev-1");
    let records = [log(10, "a"), heartbeat(11, DeviceStatus::Up)];
    let items: Vec<UpItem<'_>> = records.iter().map(item).collect();
    let frame = dev.frame(0, &items);
    dev.send(&frame);
    let first = dev.recv();
    let reserved = || {
        s.store()
            .frame_link_status(&id("dev-1"))
            .unwrap()
            .downlink_counter
    };
    let before = reserved();
    for n in 0..10_000 {
        dev.send(&frame);
        assert_eq!(dev.recv(), first, "replay {n}: the same bytes");
    }
    assert_eq!(reserved(), before, "no counter reserved by replays");
    eventually("replays counted", || s.frames("duplicate") == 10_000);
    assert_eq!(seqs(&s, "dev-1"), vec![10, 11]);

    // A frame whose answer (with a configuration) is longer than the frame:
    // its duplicates get an ack-only answer, sealed once.
    let stale = dev.seal(1, &FrameDevice::plaintext("", 1, &[item(&log(12, "b"))]));
    let full = dev.exchange(&stale);
    assert!(full.len > stale.len(), "a configuration rode along");
    let ack_only = dev.exchange(&stale);
    assert_eq!(ack_only.items, vec![Down::Ack(full.ack())]);
    assert!(ack_only.len <= stale.len() && ack_only.header.counter != full.header.counter);
    for _ in 0..100 {
        assert_eq!(dev.exchange(&stale).header.counter, ack_only.header.counter);
    }
    assert_eq!(
        reserved(),
        before,
        "two answers sealed, within one reservation"
    );
    // The replays are in the device's count with its next fresh frame.
    dev.exchange(&dev.frame(2, &[]));
    let link = s.store().frame_link_status(&id("dev-1")).unwrap();
    assert_eq!((link.frames_stored, link.frames_duplicate), (3, 10_101));
}
