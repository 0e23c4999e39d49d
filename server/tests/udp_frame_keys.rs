//! Sealed-frame keys against a real server in process: rotation by the
//! batch route (the old epoch accepted until the new one is used, then
//! refused), a rekey sealed in a UDP answer, revocation by decommissioning,
//! format-1 batch clients and the registration answer, and a provisioned
//! device speaking with the files it was given.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::frames::{
    FrameDevice, dropped, frame_device, id, item, keys_by_batch, seqs, udp_server,
};
use common::{Client, log, onboard};
use flotta_proto::frame_keys::FrameKeys;
use flotta_server::clock::ManualClock;
use flotta_server::testing::{TestOptions, TestServer, spawn};

fn clock_server(clock: Arc<ManualClock>) -> TestServer {
    spawn(TestOptions {
        udp: true,
        clock,
        config_toml: "frame_rotation_days = 1".into(),
        ..TestOptions::default()
    })
    .unwrap()
}

#[test]
fn rotation_by_the_batch_route_keeps_the_old_epoch_until_the_new_one_is_used() {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let s = clock_server(clock.clone());
    let (client, mut dev) = frame_device(&s, "dev-1");
    assert!(
        dev.exchange(&dev.frame(0, &[item(&log(1, "a"))]))
            .ack()
            .acks(0)
    );
    clock.advance(Duration::from_secs(2 * 86_400));
    let new = keys_by_batch(&client, "dev-1", Some(dev.keys.epoch)).expect("rotated keys");
    assert_eq!(
        (new.key_id, new.epoch),
        (dev.keys.key_id, dev.keys.epoch + 1)
    );
    assert_ne!(new.master_secret, dev.keys.master_secret);

    // The old epoch still works; its answer carries the new keys, sealed.
    let old = dev.exchange(&dev.frame(1, &[item(&log(2, "b"))]));
    assert!(old.ack().acks(1));
    assert_eq!(old.rekey(), Some(&new));
    let old_frame = dev.frame(2, &[item(&log(3, "c"))]);

    dev.rekey(new.clone());
    let first = dev.exchange(&dev.frame(0, &[item(&log(4, "d"))]));
    assert!(first.ack().acks(0));
    assert_eq!(first.rekey(), None);
    // Now the old epoch is gone: its frames are refused.
    dropped(&s, &dev, &old_frame, "epoch_mismatch");
    assert_eq!(seqs(&s, "dev-1"), vec![1, 2, 4]);
}

#[test]
fn a_rekey_is_delivered_sealed_when_rotation_comes_over_udp() {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let s = clock_server(clock.clone());
    let (_client, mut dev) = frame_device(&s, "dev-1");
    clock.advance(Duration::from_secs(2 * 86_400));
    let answer = dev.exchange(&dev.frame(0, &[item(&log(1, "a"))]));
    let new = answer.rekey().cloned().expect("a rekey item");
    assert_eq!(new.epoch, dev.keys.epoch + 1);
    dev.rekey(new);
    assert!(
        dev.exchange(&dev.frame(0, &[item(&log(2, "b"))]))
            .ack()
            .acks(0)
    );
    assert_eq!(seqs(&s, "dev-1"), vec![1, 2]);
    let link = s.store().frame_link_status(&id("dev-1")).unwrap();
    assert_eq!(link.epoch, Some(dev.keys.epoch));
}

#[test]
fn an_epoch_is_rotated_before_its_counters_run_out_whatever_its_age() {
    use flotta_server::frames::keyring::ROTATE_AT_COUNTER;
    // Downlink: answers (a replaying attacker, a chatty device) reached the
    // threshold. Moved there in the store as a million answers would.
    let s = udp_server("");
    let (_c, mut dev) = frame_device(&s, "dev-1");
    assert_eq!(dev.exchange(&dev.frame(0, &[])).rekey(), None, "young");
    let reserved = s.store().frame_link_status(&id("dev-1")).unwrap();
    s.store()
        .reserve_frame_counters(
            dev.keys.key_id,
            dev.keys.epoch,
            reserved.downlink_counter,
            ROTATE_AT_COUNTER,
        )
        .unwrap();
    let answer = dev.exchange(&dev.frame(1, &[]));
    let new = answer
        .rekey()
        .cloned()
        .expect("rotated for its downlink counters");
    assert_eq!(new.epoch, dev.keys.epoch + 1);
    dev.rekey(new);
    let after = dev.exchange(&dev.frame(0, &[]));
    assert!(after.ack().acks(0) && after.rekey().is_none());

    // Uplink: the device's own counter reached it.
    let (_c2, dev2) = frame_device(&s, "dev-2");
    assert_eq!(dev2.exchange(&dev2.frame(7, &[])).rekey(), None);
    let high = dev2.exchange(&dev2.frame(ROTATE_AT_COUNTER, &[]));
    assert!(high.ack().acks(ROTATE_AT_COUNTER));
    let new2 = high.rekey().expect("rotated for its uplink counters");
    assert_eq!(new2.epoch, dev2.keys.epoch + 1);
}

#[test]
fn a_decommissioned_device_s_frames_are_unknown_keys() {
    let s = udp_server("");
    let (_c, dev) = frame_device(&s, "dev-1");
    assert!(dev.exchange(&dev.frame(0, &[])).ack().acks(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(s.service().decommission(id("dev-1"), "test".into(), false))
        .unwrap();
    dropped(
        &s,
        &dev,
        &dev.frame(1, &[item(&log(1, "a"))]),
        "unknown_key",
    );
    assert!(seqs(&s, "dev-1").is_empty());
}

#[test]
fn format_1_batch_clients_still_work_and_get_no_frame_keys() {
    let s = udp_server("");
    let client = Client::new(&s, &onboard(&s, "dev-1"));
    // What an old agent sends: format 1, no frame epoch.
    let body = postcard::to_allocvec(&(1u8, String::from("0"), vec![log(1, "a")])).unwrap();
    let r = client.post(
        &flotta_proto::batch::batch_path("dev-1"),
        flotta_proto::batch::BATCH_CONTENT_TYPE,
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    type V1 = (Option<u64>, Option<flotta_proto::batch::ConfigUpdate>);
    let (answer, rest) = postcard::take_from_bytes::<V1>(&r.body).unwrap();
    assert!(rest.is_empty(), "a format-1 answer, nothing after it");
    assert_eq!(answer.0, Some(1));
    // The registration answer carries the keys when frames are on (the
    // format-1 answer above could not).
    let reg = Client::new(&s, &s.registration);
    assert_eq!(reg.enrol("dev-2").status, 200);
    let (r, _key) = reg.register_as("dev-2", "dev-2");
    let keys: FrameKeys = serde_json::from_value(r.json()["content"]["frameKeys"].clone()).unwrap();
    assert_eq!(
        s.store().frame_contexts(&id("dev-2")).unwrap()[0].keys,
        keys
    );
}

#[test]
fn a_provisioned_device_speaks_frames_with_the_files_it_was_given() {
    let s = udp_server("");
    let out = tempfile::tempdir().unwrap();
    let request = flotta_server::provision::Request {
        id: &id("sensor-9"),
        namespace: &flotta_server::device_id::Namespace::parse("default").unwrap(),
        validity: Duration::from_secs(3600),
        rotation: Duration::from_secs(86_400),
        now: SystemTime::now(),
        out: out.path(),
        bind: &[],
    };
    flotta_server::provision::provision(s.shared_store(), s.pki(), &request).unwrap();
    let text = std::fs::read_to_string(out.path().join("frame/context.json")).unwrap();
    let keys: FrameKeys = serde_json::from_str(&text).unwrap();
    let dev = FrameDevice::new("sensor-9", keys, &s);
    assert!(
        dev.exchange(&dev.frame(0, &[item(&log(1, "hi"))]))
            .ack()
            .acks(0)
    );
    assert_eq!(seqs(&s, "sensor-9"), vec![1]);
    // Its certificate works on the API too (key and certificate in one file).
    let pem = std::fs::read_to_string(out.path().join("identity/device.pem")).unwrap();
    let split = pem.find("-----BEGIN CERTIFICATE-----").unwrap();
    let cert = flotta_server::pki::IssuedCert {
        key_pem: pem[..split].to_owned(),
        cert_pem: pem[split..].to_owned(),
    };
    let api = Client::new(&s, &cert);
    assert_eq!(keys_by_batch(&api, "sensor-9", Some(dev.keys.epoch)), None);
    // Never overwritten.
    let again = flotta_server::provision::provision(s.shared_store(), s.pki(), &request);
    assert!(matches!(
        again,
        Err(flotta_server::provision::ProvisionError::Exists(_))
    ));
}
