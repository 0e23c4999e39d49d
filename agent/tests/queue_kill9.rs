//! kill -9 at random moments, hundreds of times: a child process appends,
//! reads and acknowledges in a loop and reports each step on stdout only after
//! it returned; the parent kills it, reopens the queue and checks that no
//! record reported durable is lost, none reported acknowledged comes back, and
//! every payload is intact.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Rng, open, payload_for, small_config};
use flotta_agent::queue::Durability;
use flotta_proto::record::RecordClass;

const CHILD_ENV: &str = "FLOTTA_KILL9_QUEUE_DIR";
const ROUNDS: usize = 300;

#[test]
#[ignore = "child process of kill9_loses_nothing_durable_and_returns_nothing_acked"]
fn kill9_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut q = open(Path::new(&dir), small_config());
    let mut out = std::io::stdout().lock();
    let mut rng = Rng::seeded();
    // Start on a fresh line: the test harness may have printed a partial one.
    writeln!(out).unwrap();
    loop {
        match rng.next() % 6 {
            0 | 1 => {
                let seq = q.next_seq();
                let got = q
                    .append(RecordClass::Log, &payload_for(seq), Durability::Durable)
                    .unwrap();
                assert_eq!(got, seq);
                writeln!(out, "@D {seq}").unwrap();
            }
            2 => {
                let first = q.next_seq();
                let payloads: Vec<Vec<u8>> = (first..first + 4).map(payload_for).collect();
                let seqs = q
                    .append_batch(payloads.iter().map(|p| (RecordClass::Event, p.as_slice())))
                    .unwrap();
                for seq in seqs {
                    writeln!(out, "@D {seq}").unwrap();
                }
            }
            3 => {
                let seq = q.next_seq();
                q.append(
                    RecordClass::Heartbeat,
                    &payload_for(seq),
                    Durability::Buffered,
                )
                .unwrap();
            }
            _ => {
                let batch = q.read_batch(1 + (rng.next() % 8) as usize, 4096).unwrap();
                for r in &batch {
                    assert_eq!(r.payload, payload_for(r.seq), "child read a damaged record");
                }
                if let Some(last) = batch.last() {
                    writeln!(out, "@a {}", last.seq).unwrap();
                    out.flush().unwrap();
                    q.ack(last.seq).unwrap();
                    writeln!(out, "@A {}", last.seq).unwrap();
                }
            }
        }
        out.flush().unwrap();
    }
}

#[test]
fn kill9_loses_nothing_durable_and_returns_nothing_acked() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::seeded();
    let mut durable = BTreeSet::new();
    let mut acked: Option<u64> = None;
    let mut last_intent: Option<u64> = None;
    let (mut total_acks, mut checked) = (0u64, 0u64);
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "kill9_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).split(b'\n') {
                match line {
                    Ok(l) => lines.push(String::from_utf8_lossy(&l).into_owned()),
                    Err(_) => break,
                }
            }
            lines
        });
        std::thread::sleep(Duration::from_micros(2_000 + rng.next() % 40_000));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child must die by the signal: {status}"
        );
        // Only whole lines count: a line cut by the kill was never fully reported.
        for line in reader.join().unwrap() {
            let Some(at) = line.find('@') else { continue };
            let mut parts = line[at + 1..].split(' ');
            let (Some(tag), Some(Ok(seq))) = (parts.next(), parts.next().map(str::parse::<u64>))
            else {
                continue;
            };
            match tag {
                "D" => {
                    assert!(
                        durable.last().is_none_or(|&l| seq > l),
                        "round {round}: seq {seq} reused"
                    );
                    durable.insert(seq);
                }
                "a" => last_intent = Some(seq),
                "A" => {
                    acked = Some(acked.map_or(seq, |a: u64| a.max(seq)));
                    total_acks += 1;
                }
                _ => {}
            }
        }
        let mut q = open(dir.path(), small_config());
        let recs = q.read_batch(usize::MAX, usize::MAX).unwrap();
        let present: BTreeSet<u64> = recs.iter().map(|r| r.seq).collect();
        assert!(
            recs.windows(2).all(|w| w[0].seq < w[1].seq),
            "round {round}: order"
        );
        for r in &recs {
            assert!(
                acked.is_none_or(|a| r.seq > a),
                "round {round}: acked record {} returned",
                r.seq
            );
            assert_eq!(
                r.payload,
                payload_for(r.seq),
                "round {round}: payload of {}",
                r.seq
            );
        }
        // An acknowledgement cut short by the kill may or may not have landed.
        let maybe_acked = last_intent.max(acked);
        for &d in durable.range(maybe_acked.map_or(0, |a| a + 1)..) {
            assert!(
                present.contains(&d),
                "round {round}: durable record {d} lost"
            );
            checked += 1;
        }
        if let Some(a) = q.acked_through() {
            // Adopt what recovery says landed, so later rounds check against it.
            acked = Some(acked.map_or(a, |b| b.max(a)));
        }
        assert_eq!(
            q.stats().damaged_bytes,
            0,
            "round {round}: a process crash tears nothing"
        );
    }
    eprintln!(
        "{ROUNDS} kills: {} durable records, {total_acks} acks, {checked} presence checks",
        durable.len()
    );
    assert!(
        durable.len() > ROUNDS,
        "the children barely ran: {} records",
        durable.len()
    );
    assert!(
        total_acks > ROUNDS as u64 / 4,
        "too few acknowledgements to mean anything: {total_acks}"
    );
}
