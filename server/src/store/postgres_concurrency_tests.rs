//! PostgreSQL under concurrent writers of *different* devices: they must
//! not fail each other. SERIALIZABLE predicate locks on B-tree pages made
//! 8 concurrent enrolments of neighbouring ids (`dev-000001`,
//! `dev-000002`, …) exhaust the store's retries, and ingest fail beside a
//! controller pass; enrolment, certificates, standings and batches now run
//! READ COMMITTED under row locks, so none of them is retried at all
//! ([`PostgresStore::conflicts_retried`] stays 0).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use flotta_proto::record::RecordClass;

use super::postgres::test_db::Cluster;
use super::*;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn ns() -> Namespace {
    Namespace::parse("default").unwrap()
}

fn window(from: u64) -> Vec<NewRecord> {
    (from..from + 60)
        .map(|seq| NewRecord {
            seq,
            at_ms: seq,
            class: RecordClass::Heartbeat,
            payload: vec![7; 24],
        })
        .collect()
}

fn store() -> Arc<PostgresStore> {
    let url = Cluster::shared().create_database();
    Arc::new(PostgresStore::connect(&url, PostgresSettings::default()).unwrap())
}

/// `threads` threads, started together, each running `f(thread)`.
fn together(threads: usize, f: impl Fn(usize) + Send + Sync + 'static) {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(t)
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn eight_concurrent_enrolments_of_different_devices_never_conflict() {
    const THREADS: usize = 8;
    const EACH: usize = 40;
    let s = store();
    let writer = s.clone();
    // Interleaved as the fleet benchmark seeds: neighbouring ids at once.
    together(THREADS, move |t| {
        for i in (t..THREADS * EACH).step_by(THREADS) {
            let d = id(&format!("dev-{i:06}"));
            let created = writer.enrol(&d, &ns(), None, true, 1).unwrap();
            assert_eq!(created, EnrolOutcome::Created(Approval::Approved));
            let cert = IssuedCertificate {
                serial: format!("s-{i}"),
                not_after_ms: 1_000_000,
                renewal: false,
            };
            writer.record_certificate(&d, &cert, None, 2).unwrap();
            let standing = writer.certificate_standing(&d, &cert.serial).unwrap();
            assert_eq!(standing, CertStanding::Current);
            assert_eq!(
                writer
                    .ingest_batch(&d, &window(1), None, Contact::at(3))
                    .unwrap(),
                Some(60)
            );
        }
    });
    assert_eq!(s.devices().unwrap().len(), THREADS * EACH);
    assert_eq!(
        s.conflicts_retried(),
        0,
        "transactions retried after a conflict"
    );
}

#[test]
fn racing_enrolments_of_one_new_device_create_it_once() {
    let s = store();
    for n in 0..10 {
        let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (writer, out) = (s.clone(), outcomes.clone());
        together(6, move |_| {
            let d = id(&format!("dev-{n}"));
            let o = writer.enrol(&d, &ns(), None, false, 1).unwrap();
            out.lock().unwrap().push(o);
        });
        let outcomes = outcomes.lock().unwrap();
        let created = outcomes
            .iter()
            .filter(|o| **o == EnrolOutcome::Created(Approval::Pending))
            .count();
        assert_eq!(created, 1, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, EnrolOutcome::Created(_) | EnrolOutcome::StillPending)),
            "{outcomes:?}"
        );
    }
}

#[test]
fn ingest_beside_full_controller_passes_never_fails() {
    const DEVICES: usize = 40;
    let s = store();
    for i in 0..DEVICES {
        s.enrol(&id(&format!("dev-{i:06}")), &ns(), None, true, 1)
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let controller = {
        let (store, stop): (Arc<dyn Store>, _) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let objects = crate::objects::StoreObjects(store.clone());
            let settings = crate::controller::Settings::default();
            let mut passes = 0;
            while !stop.load(Ordering::SeqCst) || passes == 0 {
                crate::controller::reconcile(&*store, &objects, settings, 10_000).unwrap();
                passes += 1;
            }
            passes
        })
    };
    let writer = s.clone();
    together(4, move |t| {
        for round in 0..5u64 {
            for i in (t..DEVICES).step_by(4) {
                let d = id(&format!("dev-{i:06}"));
                let acked = writer.ingest_batch(
                    &d,
                    &window(round * 60 + 1),
                    None,
                    Contact::at(5_000 + round),
                );
                assert_eq!(acked.unwrap(), Some(round * 60 + 60));
            }
        }
    });
    stop.store(true, Ordering::SeqCst);
    assert!(controller.join().unwrap() > 0);
}
