//! Iridium SBD via Rock7 against a real server in process: MO webhooks
//! (form and JSON) verified by their JWT, frames without key id stored
//! exactly once for the IMEI's device, answers delivered as MT messages to
//! a fake Rock7 (retried, counted), re-deliveries answered from the answer
//! cache, and everything unauthenticated or unusable refused or counted
//! without being stored. The webhook listener's limits and deadlines too.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::frames::{Down, eventually, id, item, seqs};
use common::rock7::{
    FORM, IMEI, JSON, SbdDevice, Script, claims_of, deliver, form_body, json_body, jwt, jwt_with,
    mo_fields, post_mo, rock7_server,
};
use common::{heartbeat, log};
use flotta_proto::frame::{FrameType, UpItem, down_items, open};
use flotta_proto::payload::DeviceStatus;
use flotta_server::links::LinkAddress;
use serde_json::json;

fn imei() -> LinkAddress {
    LinkAddress::imei(IMEI).unwrap()
}

/// The items of a sealed MT answer opened with the device's context.
fn open_answer(dev: &SbdDevice, hex: &str) -> Vec<Down> {
    let raw = flotta_server::rock7::mo::decode_hex(hex).unwrap();
    let mut out = vec![0u8; raw.len()];
    let opened = open(&dev.ctx, &raw, &mut out).expect("a sealed answer");
    assert_eq!(opened.header.frame_type, FrameType::DownlinkAnswer);
    down_items(opened.plaintext)
        .map(|i| match i.unwrap() {
            flotta_proto::frame::DownItem::Ack(a) => Down::Ack(a),
            flotta_proto::frame::DownItem::ConfigPending { version } => {
                Down::Pending(version.to_owned())
            }
            other => Down::Pending(format!("{other:?}")),
        })
        .collect()
}

fn ack_of(items: &[Down]) -> flotta_proto::frame::Ack {
    match items.first() {
        Some(Down::Ack(a)) => *a,
        other => panic!("no ack first: {other:?}"),
    }
}

#[test]
fn an_mo_is_stored_once_and_its_mt_answer_acks_it_and_a_redelivery_changes_nothing() {
    let (s, mt, _dir) = rock7_server("");
    let dev = SbdDevice::provision(&s, "rb-1", IMEI);
    let records = [log(10, "a"), heartbeat(11, DeviceStatus::Degraded)];
    let items: Vec<UpItem<'_>> = records.iter().map(item).collect();
    let frame = dev.frame(0, &items);
    assert!(frame.len() <= 340);
    let fields = mo_fields(IMEI, 7, &frame);
    let body = form_body(&fields, Some(&jwt(&claims_of(&fields))));
    assert_eq!(post_mo(&s, FORM, &body), 200);
    // Stored synchronously, before the 200.
    assert_eq!(seqs(&s, "rb-1"), vec![10, 11]);
    assert_eq!(s.frames("stored"), 1);
    let link = s.store().frame_link_status(&id("rb-1")).unwrap();
    assert_eq!(link.last_link.as_deref(), Some("sbd"));
    let sbd = s.store().sbd_status(&id("rb-1")).unwrap().unwrap();
    assert_eq!(sbd.imei, IMEI);
    assert_eq!(sbd.last_momsn, Some(7));
    assert_eq!(sbd.latitude, Some(52.3867));
    assert_eq!(sbd.cep_km, Some(8.0));

    eventually("the MT answer", || mt.posts().len() == 1);
    let post = &mt.posts()[0];
    assert_eq!(post["imei"], IMEI);
    assert_eq!(post["username"], "flotta");
    assert_eq!(post["password"], "s3cret");
    assert_eq!(post["flush"], "yes");
    assert!(post["data"].len() / 2 <= 270, "MT budget");
    let answer = open_answer(&dev, &post["data"]);
    assert!(ack_of(&answer).acks(0));
    eventually("MT counted ok", || s.metrics().mts("ok") == 1);
    // Credits: the MO (one per started 50 bytes) and the MT.
    let expected = frame.len().div_ceil(50) + (post["data"].len() / 2).div_ceil(50);
    eventually("credits counted", || {
        s.store()
            .sbd_status(&id("rb-1"))
            .unwrap()
            .unwrap()
            .credits_used
            == expected as u64
    });

    // Rock7 delivers the same MO again: nothing stored, the same answer
    // bytes (from the answer cache), which were delivered already.
    assert_eq!(post_mo(&s, FORM, &body), 200);
    assert_eq!(seqs(&s, "rb-1"), vec![10, 11]);
    eventually("duplicate counted", || s.frames("duplicate") == 1);
    eventually("unchanged MT counted", || s.metrics().mts("unchanged") == 1);
    assert_eq!(mt.posts().len(), 1, "no second MT");

    // The next frame, as HTTP_JSON: stored, a new answer acking both.
    let next = dev.frame(1, &[item(&log(12, "b"))]);
    let fields = mo_fields(IMEI, 8, &next);
    assert_eq!(
        post_mo(&s, JSON, &json_body(&fields, &jwt(&claims_of(&fields)))),
        200
    );
    assert_eq!(seqs(&s, "rb-1"), vec![10, 11, 12]);
    eventually("the second MT", || mt.posts().len() == 2);
    let ack = ack_of(&open_answer(&dev, &mt.posts()[1]["data"]));
    assert!(ack.acks(0) && ack.acks(1));

    // The operator sees the link.
    let described = common::ctl::ok(common::ctl::ctl(&s, &["describe", "ed", "rb-1"], None));
    assert!(described.contains("sbd"), "{described}");
    assert!(described.contains(IMEI), "{described}");
}

#[test]
fn missing_or_bad_jwts_are_refused_and_store_nothing() {
    let (s, mt, _dir) = rock7_server("");
    let dev = SbdDevice::provision(&s, "rb-2", IMEI);
    let frame = dev.frame(0, &[item(&log(1, "x"))]);
    let fields = mo_fields(IMEI, 1, &frame);
    let claims = claims_of(&fields);
    assert_eq!(post_mo(&s, FORM, &form_body(&fields, None)), 401);
    assert_eq!(
        post_mo(&s, FORM, &form_body(&fields, Some("not.a.jwt"))),
        403
    );
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("Rock 8");
    for token in [
        jwt(&wrong_iss),
        jwt_with("other-test-only.key.pem", &json!({"alg": "RS256"}), &claims),
        jwt_with("rock7-test-only.key.pem", &json!({"alg": "HS256"}), &claims),
    ] {
        assert_eq!(post_mo(&s, FORM, &form_body(&fields, Some(&token))), 403);
    }
    // A signature over other claims does not cover these.
    let good = jwt(&claims);
    let mut parts: Vec<&str> = good.split('.').collect();
    let other = jwt(&claims_of(&mo_fields(IMEI, 2, &frame)));
    let other_claims = other.split('.').nth(1).unwrap().to_owned();
    parts[1] = &other_claims;
    assert_eq!(
        post_mo(&s, FORM, &form_body(&fields, Some(&parts.join(".")))),
        403
    );
    assert_eq!(post_mo(&s, JSON, b"{not json"), 400);
    assert_eq!(post_mo(&s, JSON, b"[1]"), 400);
    assert!(seqs(&s, "rb-2").is_empty());
    assert_eq!(s.frames("stored"), 0);
    let m = s.metrics();
    assert_eq!(m.webhooks("/rock7/mo", "unauthorized"), 1);
    assert_eq!(m.webhooks("/rock7/mo", "forbidden"), 5);
    assert_eq!(m.webhooks("/rock7/mo", "bad_request"), 2);
    assert!(mt.posts().is_empty());
}

#[test]
fn the_claims_win_over_body_fields_that_contradict_them() {
    let (s, mt, _dir) = rock7_server("");
    let dev = SbdDevice::provision(&s, "rb-3", IMEI);
    let frame = dev.frame(0, &[item(&log(5, "real"))]);
    let signed = mo_fields(IMEI, 3, &frame);
    let token = jwt(&claims_of(&signed));
    // Somebody rewrote the plain fields: another IMEI, other data.
    let forged = mo_fields("999999999999999", 4, b"garbage");
    assert_eq!(post_mo(&s, FORM, &form_body(&forged, Some(&token))), 200);
    assert_eq!(seqs(&s, "rb-3"), vec![5]);
    let sbd = s.store().sbd_status(&id("rb-3")).unwrap().unwrap();
    assert_eq!((sbd.imei.as_str(), sbd.last_momsn), (IMEI, Some(3)));
    eventually("the MT", || mt.posts().len() == 1);
    assert_eq!(mt.posts()[0]["imei"], IMEI);
}

#[test]
fn unbound_imeis_forged_frames_and_other_devices_keys_are_counted_not_stored() {
    let (s, mt, _dir) = rock7_server("");
    let dev = SbdDevice::provision(&s, "rb-4", IMEI);
    let other = SbdDevice::provision(&s, "rb-5", "300234010753371");
    let frame = dev.frame(0, &[item(&log(1, "x"))]);
    // An IMEI nobody has: 200 (Rock7 must not retry), counted, not stored.
    assert_eq!(deliver(&s, "300234010759999", 1, &frame), 200);
    assert_eq!(s.frames("unbound"), 1);
    // A bad tag.
    let mut forged = frame.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(deliver(&s, IMEI, 2, &forged), 200);
    assert_eq!(s.frames("bad_tag"), 1);
    // Another device's frame (with its key id) through this IMEI.
    let theirs = other.seal(
        0,
        true,
        &common::frames::FrameDevice::plaintext("1", 0, &[item(&log(9, "y"))]),
    );
    assert_eq!(deliver(&s, IMEI, 3, &theirs), 200);
    assert_eq!(s.frames("wrong_device"), 1);
    // Its own key id is fine.
    let own = dev.seal(
        0,
        true,
        &common::frames::FrameDevice::plaintext("1", 0, &[item(&log(1, "x"))]),
    );
    assert_eq!(deliver(&s, IMEI, 4, &own), 200);
    assert_eq!(seqs(&s, "rb-4"), vec![1]);
    assert!(seqs(&s, "rb-5").is_empty());
    assert_eq!(s.metrics().webhooks("/rock7/mo", "accepted"), 4);
    eventually("one MT", || mt.posts().len() == 1);
}

#[test]
fn mt_failures_are_counted_and_network_errors_retried_until_delivered() {
    let (s, mt, _dir) = rock7_server("");
    let dev = SbdDevice::provision(&s, "rb-6", IMEI);
    mt.script([Script::Reply(200, "FAILED,15,Data too long".into())]);
    assert_eq!(deliver(&s, IMEI, 1, &dev.frame(0, &[])), 200);
    eventually("too_long counted", || s.metrics().mts("too_long") == 1);
    // Down (connection closed, then 503), then up.
    mt.script([Script::Close, Script::Reply(503, "busy".into())]);
    assert_eq!(deliver(&s, IMEI, 2, &dev.frame(1, &[])), 200);
    eventually("delivered after retries", || s.metrics().mts("ok") == 1);
    assert_eq!(s.metrics().mts("retry"), 2);
    let posts = mt.posts();
    assert_eq!(posts.len(), 4);
    assert_eq!(
        posts[1]["data"], posts[3]["data"],
        "the same answer retried"
    );
    assert!(ack_of(&open_answer(&dev, &posts[3]["data"])).acks(1));
}

/// Send raw bytes to the webhook and read the status line (None: closed).
fn raw_status(
    s: &flotta_server::testing::TestServer,
    head: &str,
    body: &[u8],
    trickle: bool,
) -> Option<u16> {
    let mut c = TcpStream::connect(s.webhook_addr.unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(head.as_bytes()).unwrap();
    if trickle {
        for b in body {
            if c.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(700));
            // Stop trickling once the server answered.
            c.set_nonblocking(true).unwrap();
            let mut peek = [0u8; 1];
            let answered = c.peek(&mut peek).is_ok_and(|n| n > 0);
            c.set_nonblocking(false).unwrap();
            if answered {
                break;
            }
        }
    } else {
        c.write_all(body).unwrap();
    }
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn an_oversize_body_is_refused_before_reading_and_a_trickled_body_hits_the_deadline() {
    let (s, _mt, _dir) = rock7_server(
        "webhook_max_body_bytes = 4096\nwebhook_request_timeout_seconds = 2\n\
         http_body_min_rate_grace_seconds = 1",
    );
    // Declared too long: 413 without a byte of body sent.
    let head = "POST /rock7/mo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 1000000\r\nconnection: close\r\n\r\n";
    assert_eq!(raw_status(&s, head, b"", false), Some(413));
    assert_eq!(s.metrics().webhooks("/rock7/mo", "too_large"), 1);
    // A body trickled at about a byte per 0.7 s: cut by the deadline.
    let start = Instant::now();
    let head = "POST /rock7/mo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 100\r\nconnection: close\r\n\r\n";
    let status = raw_status(&s, head, &[b' '; 100], true);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "cut after {took:?}");
    assert!(matches!(status, Some(408) | None), "{status:?}");
    eventually("timeout counted", || {
        s.metrics().webhooks("/rock7/mo", "timeout") == 1
    });
}

#[test]
fn imeis_are_bound_and_unbound_through_the_cli_and_go_with_decommissioning() {
    let (s, _mt, _dir) = rock7_server("");
    let _a = SbdDevice::provision(&s, "rb-7", IMEI);
    let b = SbdDevice::provision(&s, "rb-8", "300234010753372");
    let ctl = |args: &[&str]| common::ctl::ctl(&s, args, None);
    // Bound to rb-7 already: a clear error.
    let err = common::ctl::fails(ctl(&["bind", "rb-8", "--imei", IMEI]));
    assert!(err.contains("bound to device \"rb-7\""), "{err}");
    let err = common::ctl::fails(ctl(&["bind", "rb-8", "--imei", "12345"]));
    assert!(err.contains("15 decimal digits"), "{err}");
    let err = common::ctl::fails(ctl(&["unbind", "rb-8", "--imei", IMEI]));
    assert!(err.contains("rb-7"), "{err}");
    common::ctl::ok(ctl(&["unbind", "rb-7", "--imei", IMEI]));
    assert_eq!(s.store().linked_device(&imei()).unwrap(), None);
    let out = common::ctl::ok(ctl(&["bind", "rb-8", "--imei", IMEI]));
    assert!(out.contains("bound"), "{out}");
    assert_eq!(s.store().linked_device(&imei()).unwrap(), Some(id("rb-8")));
    // rb-8's frames now come through IMEI.
    assert_eq!(
        deliver(&s, IMEI, 1, &b.frame(0, &[item(&log(3, "z"))])),
        200
    );
    assert_eq!(seqs(&s, "rb-8"), vec![3]);
    // Decommissioning removes its bindings.
    common::ctl::ok(ctl(&["decommission", "rb-8"]));
    assert_eq!(s.store().linked_device(&imei()).unwrap(), None);
    let err = common::ctl::fails(ctl(&["bind", "rb-8", "--imei", IMEI]));
    assert!(err.contains("not found"), "{err}");
}
