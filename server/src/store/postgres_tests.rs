//! What only the PostgreSQL backend can show: several replicas (separate
//! stores, so separate pooled connections) racing on one database, the
//! migrations under their advisory lock, and a PostgreSQL restart in the
//! middle of ingests costing retries, never a lost or doubled record.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use flotta_proto::frame_keys::FrameKeys;
use flotta_proto::record::RecordClass;

use super::postgres::test_db::Cluster;
use super::*;
use crate::frames::reassembly::FragmentLimits;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn ns() -> Namespace {
    Namespace::parse("default").unwrap()
}

fn rec(seq: u64) -> NewRecord {
    NewRecord {
        seq,
        at_ms: seq,
        class: RecordClass::Log,
        payload: vec![seq as u8; 8],
    }
}

fn connect(url: &str) -> PostgresStore {
    PostgresStore::connect(url, PostgresSettings::default()).unwrap()
}

/// Two replicas on one new database.
fn replicas() -> (String, Arc<PostgresStore>, Arc<PostgresStore>) {
    let url = Cluster::shared().create_database();
    let a = Arc::new(connect(&url));
    let b = Arc::new(connect(&url));
    (url, a, b)
}

/// Run `f(0)` and `f(1)` at the same moment on two threads.
fn race<T: Send + 'static>(f: impl Fn(usize) -> T + Send + Sync + 'static) -> [T; 2] {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    let mut out = handles.into_iter().map(|h| h.join().unwrap());
    [out.next().unwrap(), out.next().unwrap()]
}

#[test]
fn the_same_batch_ingested_at_once_by_two_replicas_is_stored_once() {
    let (_url, a, b) = replicas();
    let d = id("dev-1");
    a.enrol(&d, &ns(), None, true, 1).unwrap();
    for round in 0..10u64 {
        let batch: Vec<_> = (round * 20 + 1..=round * 20 + 20).map(rec).collect();
        let stores = [a.clone(), b.clone()];
        let batch = Arc::new(batch);
        let (d2, batch2) = (d.clone(), batch.clone());
        let acked = race(move |i| {
            stores[i]
                .ingest_batch(&d2, &batch2, None, Contact::at(5))
                .unwrap()
        });
        assert_eq!(acked, [Some(round * 20 + 20); 2], "round {round}");
    }
    let stored: Vec<u64> = a
        .records(&d, None, 1000)
        .unwrap()
        .iter()
        .map(|r| r.record.seq)
        .collect();
    assert_eq!(stored, (1..=200).collect::<Vec<_>>());
}

#[test]
fn of_two_racing_counter_reservations_exactly_one_wins() {
    let (_url, a, b) = replicas();
    let d = id("dev-1");
    a.enrol(&d, &ns(), None, true, 1).unwrap();
    let keys = FrameKeys {
        key_id: [9, 8, 7, 6],
        epoch: 0,
        master_secret: [1; 32],
        master_salt: vec![2; 8],
    };
    a.create_frame_context(&d, &keys, 1).unwrap();
    let mut expected = None;
    for round in 1..=20u32 {
        let next = round * 16;
        let stores = [a.clone(), b.clone()];
        let results =
            race(move |i| stores[i].reserve_frame_counters([9, 8, 7, 6], 0, expected, next));
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert!(matches!(e, StoreError::Conflict(_)), "{e}");
            }
        }
        expected = Some(next);
    }
    assert_eq!(a.frame_contexts(&d).unwrap()[0].down_next, Some(20 * 16));
}

#[test]
fn of_two_devices_racing_for_one_key_id_exactly_one_gets_it() {
    let (_url, a, b) = replicas();
    for n in 0..10u8 {
        let devices = [id(&format!("a-{n}")), id(&format!("b-{n}"))];
        for d in &devices {
            a.enrol(d, &ns(), None, true, 1).unwrap();
        }
        let stores = [a.clone(), b.clone()];
        let results = race(move |i| {
            let keys = FrameKeys {
                key_id: [n, 0, 0, 1],
                epoch: 0,
                master_secret: [1; 32],
                master_salt: vec![2; 8],
            };
            stores[i].create_frame_context(&devices[i], &keys, 1)
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert_eq!(a.frame_contexts_by_key([n, 0, 0, 1]).unwrap().len(), 1);
    }
}

#[test]
fn a_renewed_certificate_promoted_by_two_replicas_at_once_is_promoted_once() {
    let (_url, a, b) = replicas();
    for n in 0..10 {
        let d = id(&format!("dev-{n}"));
        a.enrol(&d, &ns(), None, true, 1).unwrap();
        let cert = |serial: &str, renewal| IssuedCertificate {
            serial: serial.into(),
            not_after_ms: 1_000,
            renewal,
        };
        a.record_certificate(&d, &cert("01", false), None, 2)
            .unwrap();
        a.record_certificate(&d, &cert("02", true), None, 3)
            .unwrap();
        let stores = [a.clone(), b.clone()];
        let d2 = d.clone();
        let mut results = race(move |i| stores[i].certificate_standing(&d2, "02").unwrap());
        results.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(results, [CertStanding::Current, CertStanding::Promoted]);
        assert_eq!(
            a.certificate_standing(&d, "01").unwrap(),
            CertStanding::Superseded
        );
    }
}

const KEY: [u8; 4] = [9, 8, 7, 6];

/// A device with a frame context under [`KEY`].
fn with_context(store: &dyn Store, d: &DeviceId) {
    store.enrol(d, &ns(), None, true, 1).unwrap();
    let keys = FrameKeys {
        key_id: KEY,
        epoch: 0,
        master_secret: [1; 32],
        master_salt: vec![2; 8],
    };
    store.create_frame_context(d, &keys, 1).unwrap();
}

fn frame(counter: u32, records: Vec<NewRecord>) -> FrameWrite {
    FrameWrite {
        key_id: KEY,
        epoch: 0,
        counter,
        records,
        status: None,
        fragments: Vec::new(),
        limits: FragmentLimits {
            max_record_bytes: 4096,
            max_pending_bytes: 8192,
        },
        earlier_duplicates: 0,
        link: "udp",
        sbd: None,
        lorawan: None,
        usage: Default::default(),
    }
}

#[test]
fn the_same_frame_received_by_two_replicas_at_once_is_stored_once() {
    let (_url, a, b) = replicas();
    let d = id("dev-1");
    with_context(&*a, &d);
    for counter in 0..20u32 {
        let stores = [a.clone(), b.clone()];
        let f = frame(counter, vec![rec(u64::from(counter) + 1)]);
        let mut verdicts = race(move |i| stores[i].ingest_frame(&f, 5).unwrap().verdict);
        verdicts.sort_by_key(|v| format!("{v:?}"));
        assert_eq!(
            verdicts,
            [
                FrameVerdict::Duplicate,
                FrameVerdict::Stored {
                    completed: Vec::new()
                }
            ],
            "counter {counter}"
        );
    }
    let link = a.frame_link_status(&d).unwrap();
    assert_eq!((link.frames_stored, link.frames_duplicate), (20, 20));
    assert_eq!(a.acked_through(&d).unwrap(), Some(20));
}

#[test]
fn a_failure_half_way_through_a_frame_stores_nothing_and_marks_nothing() {
    let url = Cluster::shared().create_database();
    let s = connect(&url);
    let d = id("dev-1");
    with_context(&s, &d);
    // The last write of the transaction (the window) fails, as a crash
    // before the commit would leave it.
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    client
        .batch_execute(
            "CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'simulated crash'; END $$;
             CREATE TRIGGER crash BEFORE UPDATE OF up_highest ON frame_contexts
                 FOR EACH ROW EXECUTE FUNCTION crash();",
        )
        .unwrap();
    let f = frame(3, vec![rec(1), rec(2)]);
    let err = s.ingest_frame(&f, 1000).unwrap_err();
    assert!(!err.is_retriable(), "{err}");
    assert_eq!(s.acked_through(&d).unwrap(), None);
    assert_eq!(s.frame_contexts(&d).unwrap()[0].window, None);
    let link = s.frame_link_status(&d).unwrap();
    assert_eq!((link.frames_stored, link.last_link), (0, None));
    assert_eq!(s.device(&d).unwrap().unwrap().last_seen_ms, None);
    // The device sends the same frame again: stored then.
    client
        .batch_execute("DROP TRIGGER crash ON frame_contexts")
        .unwrap();
    assert!(matches!(
        s.ingest_frame(&f, 1001).unwrap().verdict,
        FrameVerdict::Stored { .. }
    ));
    assert_eq!(s.acked_through(&d).unwrap(), Some(2));
    assert_eq!(s.frame_contexts(&d).unwrap()[0].window, Some((3, 1)));
}

#[test]
fn replicas_starting_together_migrate_once() {
    let url = Cluster::shared().create_database();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || connect(&url).schema_version().unwrap())
        })
        .collect();
    // Every migration this server knows, applied once by one of them.
    let known = 7;
    for h in handles {
        assert_eq!(h.join().unwrap(), known);
    }
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let rows: i64 = client
        .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, known);
}

/// A change whose transaction began before a cursor was taken and commits
/// after it is in the next answer (a sequence number would have let it
/// slip below the cursor).
#[test]
fn a_change_committed_late_is_not_lost() {
    let (url, leader, other) = replicas();
    for name in ["early", "late"] {
        other.enrol(&id(name), &ns(), None, false, 1).unwrap();
    }
    let start = leader.changes_since(None).unwrap().cursor;
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let mut slow = client.transaction().unwrap();
    slow.execute("UPDATE devices SET approved = true WHERE id = 'early'", &[])
        .unwrap();
    other.approve(&id("late")).unwrap();
    let first = leader.changes_since(Some(&start)).unwrap();
    assert_eq!(first.devices, [id("late")]);
    slow.commit().unwrap();
    let next = leader.changes_since(Some(&first.cursor)).unwrap();
    assert_eq!(next.devices, [id("early")]);
}

#[test]
fn a_database_newer_than_the_server_is_refused() {
    let url = Cluster::shared().create_database();
    connect(&url);
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    client
        .execute(
            "INSERT INTO schema_migrations (version, applied_ms, description)
             VALUES (99, 0, 'from the future')",
            &[],
        )
        .unwrap();
    let err = PostgresStore::connect(&url, PostgresSettings::default()).unwrap_err();
    assert!(err.to_string().contains("newer than this server"), "{err}");
    assert!(!err.is_retriable());
}

#[test]
fn a_postgresql_restart_costs_retries_never_a_lost_or_doubled_record() {
    // A cluster of its own: the restart must not disturb other tests.
    let cluster = Arc::new(Cluster::start());
    let url = cluster.create_database();
    let settings = PostgresSettings {
        max_connections: 4,
        connect_timeout: Duration::from_secs(1),
    };
    let store = PostgresStore::connect(&url, settings).unwrap();
    let d = id("dev-1");
    store.enrol(&d, &ns(), None, true, 1).unwrap();
    // Down longer than the pool waits for a connection: the outage must
    // surface as (retriable) errors, however the threads are scheduled.
    let down = Duration::from_millis(2500);
    let progress = Arc::new(AtomicU64::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let restarter = {
        let (cluster, progress, restarted) = (cluster.clone(), progress.clone(), restarted.clone());
        std::thread::spawn(move || {
            while progress.load(Ordering::SeqCst) < 30 {
                std::thread::sleep(Duration::from_millis(5));
            }
            cluster.pg_ctl("stop -m immediate");
            std::thread::sleep(down);
            cluster.pg_ctl("start");
            restarted.store(true, Ordering::SeqCst);
        })
    };
    let (mut seq, mut errors, mut after_restart) = (0u64, 0u32, 0u32);
    while after_restart < 30 {
        seq += 1;
        loop {
            match store.ingest_batch(&d, &[rec(seq)], None, Contact::at(seq)) {
                Ok(acked) => {
                    assert_eq!(acked, Some(seq));
                    break;
                }
                Err(e) => {
                    assert!(e.is_retriable(), "not retriable: {e}");
                    errors += 1;
                    assert!(errors < 1000, "PostgreSQL did not come back: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        progress.store(seq, Ordering::SeqCst);
        if restarted.load(Ordering::SeqCst) {
            after_restart += 1;
        }
    }
    restarter.join().unwrap();
    assert!(
        errors > 0,
        "the restart cost no retry: did it happen mid-loop?"
    );
    let stored: Vec<u64> = store
        .records(&d, None, 10_000)
        .unwrap()
        .iter()
        .map(|r| r.record.seq)
        .collect();
    assert_eq!(stored, (1..=seq).collect::<Vec<_>>());
    cluster.pg_ctl("stop -m immediate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_store_handle_may_be_dropped_on_the_runtime() {
    // The server drops its last handle on a worker thread when it shuts
    // down; rust-postgres closing a connection there used to panic.
    let store = tokio::task::spawn_blocking(|| {
        let store = connect(&Cluster::shared().create_database());
        store.ping().unwrap();
        store
    })
    .await
    .unwrap();
    // The ping's connection is idle in the pool now: dropping closes it.
    drop(store);
}

#[test]
fn a_database_error_names_its_sqlstate_and_message() {
    let url = Cluster::shared().create_database();
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let e = StoreError::from(client.simple_query("SELEC 1").unwrap_err());
    let shown = e.to_string();
    assert!(
        shown.contains("42601") && shown.contains("syntax error"),
        "{shown}"
    );
    assert!(!e.is_retriable());
}
