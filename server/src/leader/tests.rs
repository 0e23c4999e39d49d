//! Leadership against a real PostgreSQL: one leader at a time, fail-over
//! when the leader goes, and a leader whose session is killed stops leading.

use std::time::{Duration, Instant};

use super::{AdvisoryLock, Leadership};

const CHECK: Duration = Duration::from_millis(100);

#[track_caller]
fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The contest on the database of `url`.
fn one_leader_and_fail_over(url: &str) {
    let a = AdvisoryLock::start(url, CHECK).unwrap();
    within(Duration::from_secs(10), "a first leader", || a.is_leader());
    let b = AdvisoryLock::start(url, CHECK).unwrap();
    std::thread::sleep(CHECK * 5);
    assert!(!b.is_leader(), "two leaders");
    let took_over = Instant::now();
    drop(a);
    within(Duration::from_secs(5), "b to take over", || b.is_leader());
    eprintln!("fail-over after the leader left: {:?}", took_over.elapsed());

    // The leader's session is killed (a PostgreSQL restart, an
    // administrator): it stops leading, and leads again once it is back.
    let terms = b.terms();
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let killed = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'flotta-server leader election'",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(killed, 1);
    // It noticed (a new term began: it let go and took the lock again).
    within(Duration::from_secs(10), "b to lead again", || {
        b.terms() > terms && b.is_leader()
    });
}

#[test]
fn one_replica_leads_and_another_takes_over() {
    one_leader_and_fail_over(&crate::store::TestPostgresCluster::shared().create_database());
}
