//! A device that loses its queue directory (wiped, or a fresh SD card with
//! the old identity) numbers records from 0 again; the server already holds
//! those numbers. The records made after the loss must still be stored, not
//! taken for duplicates.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod agent_support;

use agent_support::{run_once_ok, stored_records};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir};
use flotta_proto::payload::Payload;

fn starts(server: &ServerProc, id: &str) -> (usize, Vec<u64>) {
    let records = stored_records(server, id);
    let starts = records
        .iter()
        .filter(|r| {
            matches!(Payload::decode(&r.record.payload).unwrap(),
                Payload::Event(e) if e.reason == "AgentStarted")
        })
        .count();
    (starts, records.iter().map(|r| r.record.seq).collect())
}

#[test]
fn records_made_after_the_queue_was_lost_are_stored() {
    let bins = bin_dir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProc::start(&bins, dir.path(), "").unwrap();
    let url = format!("https://localhost:{}", server.api_addr.port());
    let id = "lost-queue-1";
    let mut agent = AgentProc::start(&bins, dir.path(), id, &url, &server.factory_dir, "").unwrap();
    agent.stop().unwrap();
    for _ in 0..3 {
        run_once_ok(&agent);
    }
    let (before, seqs) = starts(&server, id);
    assert!(before >= 3, "{before} starts stored");
    let held = *seqs.last().unwrap();

    std::fs::remove_dir_all(agent.data_dir.join("queue")).unwrap();
    run_once_ok(&agent);
    let (after, seqs) = starts(&server, id);
    assert_eq!(
        after,
        before + 1,
        "the start after the loss was stored\n{}",
        agent.log()
    );
    assert!(
        seqs.iter().filter(|s| **s > held).count() >= 2,
        "its records were numbered above {held}: {seqs:?}"
    );
    let mut sorted = seqs.clone();
    sorted.dedup();
    assert_eq!(sorted, seqs, "nothing stored twice");
}
