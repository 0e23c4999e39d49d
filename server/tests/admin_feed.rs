//! The admin listener's event and log feeds: pages with a cursor (fleet
//! and per device, level / since / source filters, a bad cursor refused),
//! and following with server-sent events (a new event arrives within
//! seconds, `Last-Event-ID` resumes without loss or duplicates, streams
//! are bounded and end on shutdown).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{API, Client, onboard};
use flotta_proto::payload::{Event, Level, LogLine, Payload};
use flotta_proto::record::RecordClass;
use flotta_server::cli::SseParser;
use flotta_server::device_id::{DeviceId, Namespace};
use flotta_server::store::{Contact, NewRecord};
use flotta_server::testing::{TestOptions, TestServer, spawn};
use serde_json::{Value, json};

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn level(n: u64) -> Level {
    [Level::Info, Level::Warn, Level::Error][usize::try_from(n % 3).unwrap()]
}

/// `n` event records (seq from `first`) for `device`, stored now.
fn put_events(s: &TestServer, device: &str, first: u64, n: u64) {
    let d = DeviceId::parse(device).unwrap();
    let ns = Namespace::parse("default").unwrap();
    s.store().enrol(&d, &ns, None, true, 1).unwrap();
    let records: Vec<NewRecord> = (first..first + n)
        .map(|seq| NewRecord {
            seq,
            at_ms: 1_700_000_000_000 + seq * 1000,
            class: RecordClass::Event,
            payload: Payload::Event(Event {
                reason: format!("R{seq}"),
                message: format!("{device} {seq}"),
                level: level(seq),
            })
            .encode(),
        })
        .collect();
    s.store()
        .ingest_batch(&d, &records, None, Contact::at(now_ms()))
        .unwrap();
}

fn get(s: &TestServer, path_and_query: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(format!("http://{}{path_and_query}", s.admin_addr))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

/// Every item of a route, page after page (`next`), each page `limit`.
fn all_pages(s: &TestServer, path: &str, query: &str) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut cursor) = (Vec::new(), 0, String::new());
    loop {
        let (status, page) = get(s, &format!("{path}?{query}{cursor}"));
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let mut got = page["items"].as_array().unwrap().clone();
        // Pages go from the newest back; each page is oldest first.
        got.reverse();
        items.extend(got);
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return (items, pages),
        }
    }
}

#[test]
fn fleet_and_device_pages_never_skip_nor_repeat() {
    let s = spawn(TestOptions::default()).unwrap();
    put_events(&s, "dev-a", 1, 30);
    put_events(&s, "dev-b", 1, 30);
    let (items, pages) = all_pages(&s, "/apis/events", "limit=7");
    assert_eq!(items.len(), 60);
    assert!(pages >= 9, "{pages}");
    let unique: HashSet<String> = items.iter().map(Value::to_string).collect();
    assert_eq!(unique.len(), 60, "no item twice");
    // Newest first across pages (device time, then device id).
    let keys: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["time"].as_str().unwrap().to_owned(),
                i["device"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(keys, sorted);
    // Filters: at least warn; one device (either route); since.
    let (warn, _) = all_pages(&s, "/apis/events", "limit=5&level=warn");
    assert_eq!(warn.len(), 40);
    assert!(
        warn.iter()
            .all(|i| i["level"] != "info" && i["type"] == i["level"])
    );
    let (errors, _) = all_pages(&s, "/apis/events", "level=error&device=dev-b");
    assert_eq!(errors.len(), 10);
    let (mine, _) = all_pages(&s, "/apis/devices/dev-a/events", "limit=4");
    assert_eq!(mine.len(), 30);
    assert!(mine.iter().all(|i| i["device"] == "dev-a"));
    let since = 1_700_000_000_000u64 + 26 * 1000;
    let (recent, _) = all_pages(&s, "/apis/events", &format!("since_ms={since}"));
    assert_eq!(recent.len(), 10, "seqs 26..=30 of both");
    // The old answer of the device route: the newest 50, oldest first.
    let (_, old) = get(&s, "/apis/devices/dev-a/events");
    let old = old["items"].as_array().unwrap();
    assert_eq!(old.len(), 30);
    assert_eq!(old[0]["reason"], "R1");
    assert_eq!(old[29]["message"], "dev-a 30");
    // Arrival order pages forward.
    let (_, first) = get(&s, "/apis/events?order=arrival&limit=40");
    assert_eq!(first["items"].as_array().unwrap().len(), 40);
    let next = first["next"].as_str().unwrap();
    let (_, rest) = get(&s, &format!("/apis/events?order=arrival&cursor={next}"));
    assert_eq!(rest["items"].as_array().unwrap().len(), 20);
}

#[test]
fn bad_cursors_and_levels_are_refused_clearly() {
    let s = spawn(TestOptions::default()).unwrap();
    put_events(&s, "dev-a", 1, 3);
    for q in [
        "cursor=nonsense!",
        "cursor=e30",
        "level=loud",
        "order=random",
    ] {
        let (status, body) = get(&s, &format!("/apis/events?{q}"));
        assert_eq!(status, 400, "{q}: {body}");
        let m = body["message"].as_str().unwrap();
        assert!(m.contains("invalid"), "{q}: {m}");
    }
    // A cursor of the other order.
    let (_, page) = get(&s, "/apis/events?limit=1");
    let next = page["next"].as_str().unwrap();
    let (status, body) = get(&s, &format!("/apis/events?order=arrival&cursor={next}"));
    assert_eq!(status, 400, "{body}");
    let (status, _) = get(&s, &format!("/apis/events/stream?cursor={next}"));
    assert_eq!(status, 400);
}

#[test]
fn log_pages_by_source_and_level() {
    let s = spawn(TestOptions::default()).unwrap();
    let d = DeviceId::parse("dev-a").unwrap();
    s.store()
        .enrol(&d, &Namespace::parse("default").unwrap(), None, true, 1)
        .unwrap();
    let records: Vec<NewRecord> = (1..=40)
        .map(|seq| NewRecord {
            seq,
            at_ms: 1_700_000_000_000 + seq,
            class: RecordClass::Log,
            payload: Payload::Log(LogLine {
                source: if seq % 2 == 0 { "web" } else { "agent" }.into(),
                level: level(seq),
                message: format!("line {seq}"),
            })
            .encode(),
        })
        .collect();
    s.store()
        .ingest_batch(&d, &records, None, Contact::at(now_ms()))
        .unwrap();
    let (web, _) = all_pages(&s, "/apis/devices/dev-a/logs", "source=web&limit=3");
    assert_eq!(web.len(), 20);
    let (old_name, _) = all_pages(&s, "/apis/devices/dev-a/logs", "workload=web");
    assert_eq!(old_name, web);
    let (warn, _) = all_pages(&s, "/apis/devices/dev-a/logs", "source=web&level=warn");
    // Even seqs with seq % 3 != 0: 20 - 6.
    assert_eq!(warn.len(), 14);
    let (_, newest) = get(&s, "/apis/devices/dev-a/logs?limit=2");
    let items = newest["items"].as_array().unwrap();
    assert_eq!(
        (items[0]["message"].as_str(), items[1]["message"].as_str()),
        (Some("line 39"), Some("line 40"))
    );
    assert_eq!(items[1]["source"], "web");
}

/// What a stream reader saw.
enum Seen {
    Status(u16, Option<String>),
    Item(String, Value),
    End,
}

/// Open `path_and_query` as a stream (optionally resuming), read on a thread.
fn stream(s: &TestServer, path_and_query: &str, last_id: Option<&str>) -> mpsc::Receiver<Seen> {
    let (tx, rx) = mpsc::channel();
    let url = format!("http://{}{path_and_query}", s.admin_addr);
    let last_id = last_id.map(str::to_owned);
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.get(url);
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.call().unwrap();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let _ = tx.send(Seen::Status(resp.status().as_u16(), retry.or(content_type)));
        let mut parser = SseParser::default();
        for line in BufReader::new(resp.into_body().into_reader()).lines() {
            let Ok(line) = line else { break };
            if let Some(ev) = parser.line(&line) {
                let item = serde_json::from_str(&ev.data).unwrap();
                if tx.send(Seen::Item(ev.id.unwrap(), item)).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Seen::End);
    });
    rx
}

fn status(rx: &mpsc::Receiver<Seen>) -> (u16, Option<String>) {
    match rx.recv_timeout(Duration::from_secs(30)).unwrap() {
        Seen::Status(s, h) => (s, h),
        _ => panic!("no status first"),
    }
}

/// The next `n` items within `within`.
fn items(rx: &mpsc::Receiver<Seen>, n: usize, within: Duration) -> Vec<(String, Value)> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Seen::Item(id, v)) => out.push((id, v)),
            Ok(_) => panic!("stream ended after {out:?}"),
            Err(_) => panic!("only {} of {n} items in {within:?}: {out:?}", out.len()),
        }
    }
    out
}

#[test]
fn streams_deliver_new_events_and_resume_with_last_event_id() {
    let s = spawn(TestOptions::default()).unwrap();
    put_events(&s, "dev-a", 1, 5);
    let rx = stream(&s, "/apis/events/stream?level=warn", None);
    assert_eq!(status(&rx), (200, Some("text/event-stream".into())));
    // A heartbeat's events through the device API (this process ingests:
    // the stream wakes at once) and records stored by another writer
    // (seen by polling).
    let cert = onboard(&s, "dev-h");
    let dev = Client::new(&s, &cert);
    let hb = json!({"type": "data", "directive": "heartbeat", "message_id": "m-1",
        "sent": "2024-05-01T10:00:00Z", "content": {"status": "up", "events": [
            {"reason": "Hot", "message": "85 C", "type": "warn"},
            {"reason": "Fine", "message": "ok", "type": "info"}]}});
    let posted = Instant::now();
    assert_eq!(
        dev.post_json(&format!("{API}/data/dev-h/out"), &hb).status,
        200
    );
    let got = items(&rx, 1, Duration::from_secs(5));
    assert_eq!(got[0].1["reason"], "Hot", "{got:?}");
    assert_eq!(got[0].1["device"], "dev-h");
    eprintln!("heartbeat event followed in {:?}", posted.elapsed());
    put_events(&s, "dev-b", 1, 6);
    let got = items(&rx, 4, Duration::from_secs(5));
    let reasons: Vec<&str> = got
        .iter()
        .map(|(_, v)| v["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["R1", "R2", "R4", "R5"],
        "at least warn, in arrival order"
    );
    drop(rx);
    // Resume after R2: R4 and R5, then what comes next; nothing twice.
    let resumed = stream(&s, "/apis/events/stream?level=warn", Some(&got[1].0));
    assert_eq!(status(&resumed).0, 200);
    let again = items(&resumed, 2, Duration::from_secs(5));
    assert_eq!(again[0].1, got[2].1);
    assert_eq!(again[1].1, got[3].1);
    put_events(&s, "dev-b", 7, 1);
    let last = items(&resumed, 1, Duration::from_secs(5));
    assert_eq!(last[0].1["reason"], "R7");
    assert!(
        resumed.recv_timeout(Duration::from_millis(2500)).is_err(),
        "nothing more"
    );
}

#[test]
fn log_stream_of_one_device() {
    let s = spawn(TestOptions::default()).unwrap();
    put_events(&s, "dev-a", 1, 1);
    let rx = stream(&s, "/apis/devices/dev-a/logs/stream?source=web", None);
    assert_eq!(status(&rx).0, 200);
    let d = DeviceId::parse("dev-a").unwrap();
    let line = |seq: u64, source: &str| NewRecord {
        seq,
        at_ms: seq,
        class: RecordClass::Log,
        payload: Payload::Log(LogLine {
            source: source.into(),
            level: Level::Info,
            message: format!("line {seq}"),
        })
        .encode(),
    };
    s.store()
        .ingest_batch(
            &d,
            &[line(10, "agent"), line(11, "web")],
            None,
            Contact::at(now_ms()),
        )
        .unwrap();
    let got = items(&rx, 1, Duration::from_secs(5));
    assert_eq!(got[0].1["message"], "line 11");
    assert_eq!(got[0].1["source"], "web");
}

#[test]
fn streams_are_bounded_and_end_on_shutdown() {
    let s = spawn(TestOptions {
        config_toml: "max_admin_streams = 2\n".into(),
        ..TestOptions::default()
    })
    .unwrap();
    let a = stream(&s, "/apis/events/stream", None);
    let b = stream(&s, "/apis/devices/dev-a/logs/stream", None);
    assert_eq!(status(&a).0, 200);
    assert_eq!(status(&b).0, 200);
    let c = stream(&s, "/apis/events/stream", None);
    assert_eq!(status(&c), (503, Some("5".into())));
    // Other requests still answer.
    assert_eq!(get(&s, "/apis/events").0, 200);
    let stopped = Instant::now();
    s.shutdown();
    for rx in [a, b] {
        match rx.recv_timeout(Duration::from_secs(20)).unwrap() {
            Seen::End => {}
            _ => panic!("an item instead of the end"),
        }
    }
    assert!(stopped.elapsed() < Duration::from_secs(20));
}

#[test]
fn events_and_logs_commands_print_pages_and_follow() {
    use common::ctl::{ctl, fails, ok};
    let s = spawn(TestOptions::default()).unwrap();
    put_events(&s, "dev-a", 1, 6);
    put_events(&s, "dev-b", 1, 3);
    let out = ok(ctl(&s, &["events", "--level", "error"], None));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains(" dev-a error R2 dev-a 2"), "{out}");
    assert!(lines[2].contains(" dev-a error R5 dev-a 5"), "{out}");
    let out = ok(ctl(
        &s,
        &["events", "dev-b", "--limit", "2", "-o", "json"],
        None,
    ));
    let items: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0]["reason"].as_str(), items[1]["reason"].as_str()),
        (Some("R2"), Some("R3"))
    );
    let e = fails(ctl(&s, &["events", "--level", "loud"], None));
    assert!(e.contains("invalid level"), "{e}");
    let out = ok(ctl(&s, &["logs", "dev-a", "--workload", "web"], None));
    assert_eq!(out, "");
    // -f: the page, then what arrives.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flotta-server"))
        .args([
            "--admin-addr",
            &s.admin_addr.to_string(),
            "events",
            "dev-a",
            "--limit",
            "1",
            "-f",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(first.contains("R6 dev-a 6"), "{first}");
    put_events(&s, "dev-a", 7, 1);
    let next = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(next.contains("R7 dev-a 7"), "{next}");
    child.kill().unwrap();
    child.wait().unwrap();
}
