//! Link statistics (`store/link_days.rs`) counted where traffic arrives,
//! through the real listeners: two TLS upload windows (the second resumed
//! from the first one's session ticket) and a Flotta JSON request (resumed
//! too) make three windows with their handshake kinds and exact bytes; sealed frames
//! over UDP (a duplicate answered from the cache too) count frames and
//! bytes. An answer's bytes count with the device's next write on the link.
#![allow(clippy::unwrap_used)]

mod common;

use common::frames::{eventually, frame_device, id, item, udp_server};
use common::{API, batch, log, onboard, raw};
use flotta_proto::batch::{BATCH_CONTENT_TYPE, batch_path};
use flotta_proto::frame::UpItem;
use flotta_server::store::{LinkUsage, Store};
use flotta_server::testing::{TestOptions, spawn};

/// Every day's counters of `link` added together (a test may cross midnight).
fn total(store: &dyn Store, device: &str, link: &str) -> LinkUsage {
    let mut sum = LinkUsage::default();
    for row in store.link_days(&id(device), "2000-01-01").unwrap() {
        if row.link == link {
            sum.add(&row.usage);
        }
    }
    sum
}

/// POST a batch on an open connection; the answer's body.
async fn post_batch<S>(conn: &mut S, body: &[u8], close: bool) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let length = format!("content-length: {}", body.len());
    let content_type = format!("content-type: {BATCH_CONTENT_TYPE}");
    let mut headers = vec![length.as_str(), content_type.as_str()];
    if close {
        headers.push("connection: close");
    }
    let mut request = raw::head("POST", &batch_path("dev-1"), &headers);
    request.extend_from_slice(body);
    raw::send(conn, &request).await.unwrap();
    let r = raw::read_response(conn).await.expect("a response");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.body
}

#[test]
fn tls_windows_count_handshakes_and_bytes() {
    let s = spawn(TestOptions::default()).unwrap();
    let cert = onboard(&s, "dev-1");
    let bodies: Vec<Vec<u8>> = (1..=3)
        .map(|n| batch("", vec![log(n, "a line of the window")]).encode())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (answers, json_answer) = rt.block_on(async {
        let config = raw::client_config(&s.ca_pem, &cert);
        // Window 1: a full handshake, two batches, the last one closes.
        let mut first = raw::connect_with(s.api_addr, config.clone()).await.unwrap();
        assert_eq!(
            first.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
        let a1 = post_batch(&mut first, &bodies[0], false).await;
        let a2 = post_batch(&mut first, &bodies[1], true).await;
        raw::until_closed(&mut first).await;
        // Window 2: resumed from window 1's ticket, one batch.
        let mut second = raw::connect_with(s.api_addr, config.clone()).await.unwrap();
        assert_eq!(
            second.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        );
        let a3 = post_batch(&mut second, &bodies[2], true).await;
        raw::until_closed(&mut second).await;
        // Window 3 (resumed too): a Flotta JSON request, counted after its answer.
        let mut third = raw::connect_with(s.api_addr, config.clone()).await.unwrap();
        assert_eq!(
            third.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        );
        let path = format!("{API}/data/dev-1/in");
        raw::send(&mut third, &raw::head("GET", &path, &["connection: close"]))
            .await
            .unwrap();
        let r = raw::read_response(&mut third).await.expect("a response");
        assert_eq!(r.status, 200);
        (vec![a1, a2, a3], r.body)
    });
    // A poll writes nothing: its counts wait for the device's next write.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        total(s.store(), "dev-1", "tls").windows,
        2,
        "a GET is no transaction"
    );
    // Window 4 (a full handshake, a fresh client): a JSON heartbeat POST
    // writes, and takes the poll's counts with it.
    let beat = serde_json::json!({"type": "data", "directive": "heartbeat", "message_id": "m-1",
        "content": {"status": "up"}});
    let dev = common::Client::new(&s, &cert);
    let r = dev.post_json(&format!("{API}/data/dev-1/out"), &beat);
    assert_eq!(r.status, 200, "{}", r.text());
    let beat_up = beat.to_string().len() as u64;
    let up: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    let down_before_json = (answers[0].len() + answers[1].len()) as u64;
    // The JSON request's upsert runs after its answer: wait for it.
    eventually("the poll and the heartbeat are counted", || {
        total(s.store(), "dev-1", "tls").windows == 4
    });
    let tls = total(s.store(), "dev-1", "tls");
    assert_eq!((tls.tls_full, tls.tls_resumed), (2, 2), "{tls:?}");
    assert_eq!(
        tls.bytes_up,
        up + beat_up,
        "request bodies as received: {tls:?}"
    );
    // Batch 3's transaction took the answers of batches 1 and 2; the
    // heartbeat's upsert took batch 3's, the poll's and its own.
    let down =
        down_before_json + answers[2].len() as u64 + json_answer.len() as u64 + r.body.len() as u64;
    assert!(json_answer.len() > 50, "a configuration message");
    assert_eq!(tls.bytes_down, down, "{tls:?}");
    assert_eq!(tls.frames, 0);
    // The registration certificate's requests are nobody's.
    assert!(
        s.store()
            .link_days(&id("dev-1"), "2000-01-01")
            .unwrap()
            .iter()
            .all(|r| r.link == "tls")
    );
}

#[test]
fn frames_count_frames_and_bytes_on_their_link() {
    let s = udp_server("");
    let (_client, dev) = frame_device(&s, "dev-1");
    let records = [log(10, "a"), log(11, "b"), log(12, "c")];
    let frames: Vec<Vec<u8>> = (0..3u32)
        .map(|n| {
            let items: Vec<UpItem<'_>> = vec![item(&records[n as usize])];
            dev.frame(n, &items)
        })
        .collect();
    dev.send(&frames[0]);
    let a0 = dev.recv();
    dev.send(&frames[1]);
    let a1 = dev.recv();
    // A duplicate, answered from the answer cache without the store.
    dev.send(&frames[1]);
    let again = dev.recv();
    assert_eq!(again, a1, "the kept answer");
    dev.send(&frames[2]);
    let _a2 = dev.recv();
    let udp = total(s.store(), "dev-1", "udp");
    assert_eq!(udp.frames, 4, "{udp:?}");
    let up: usize = frames.iter().map(Vec::len).sum::<usize>() + frames[1].len();
    assert_eq!(udp.bytes_up, up as u64, "{udp:?}");
    // Frame 2's transaction took the answers sent before it.
    assert_eq!(
        udp.bytes_down,
        (a0.len() + a1.len() + again.len()) as u64,
        "{udp:?}"
    );
    assert_eq!((udp.windows, udp.tls_full, udp.tls_resumed), (0, 0, 0));
    // The two batches that fetched the frame keys are TLS traffic.
    assert!(total(s.store(), "dev-1", "tls").bytes_up > 0);
}
