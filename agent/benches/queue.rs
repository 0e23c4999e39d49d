//! Queue benchmark: prints numbers, asserts nothing about speed.
//!
//! `cargo bench -p flotta-agent --bench queue` reports, on the disk holding
//! `$FLOTTA_BENCH_DIR` (default: the system temp dir; use the device's SD card
//! for real numbers):
//! - appends/s of 64-byte records with group commit (32 per fsync) and with
//!   one fsync per record;
//! - fsyncs per 1,000 records for each;
//! - recovery time of a 64 MiB queue;
//! - write amplification: bytes the kernel wrote to storage for this process
//!   (`write_bytes` of `/proc/self/io`) divided by payload bytes appended.

use std::path::{Path, PathBuf};
use std::time::Instant;

use flotta_agent::clock::SystemClock;
use flotta_agent::queue::{Queue, QueueConfig, StatVfs};
use flotta_proto::record::RecordClass;

fn bench_dir() -> PathBuf {
    std::env::var_os("FLOTTA_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn io_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

fn config() -> QueueConfig {
    QueueConfig {
        max_total_bytes: 256 * 1024 * 1024,
        min_free_disk_bytes: 0,
        ..QueueConfig::default()
    }
}

fn open(dir: &Path) -> Queue<SystemClock, StatVfs> {
    Queue::open(dir, config(), SystemClock, StatVfs)
        .expect("open queue")
        .0
}

fn appends(label: &str, records: u64, group: u64) {
    let dir = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let mut q = open(dir.path());
    let payload = [0x5A_u8; 64];
    let io_before = io_write_bytes();
    let start = Instant::now();
    let mut done = 0;
    while done < records {
        let n = group.min(records - done);
        q.append_batch((0..n).map(|_| (RecordClass::Log, &payload[..])))
            .expect("append");
        done += n;
    }
    let secs = start.elapsed().as_secs_f64();
    let s = q.stats();
    let amplification = match (io_before, io_write_bytes()) {
        (Some(a), Some(b)) => format!("{:.2}", (b - a) as f64 / s.payload_bytes as f64),
        _ => "n/a (no /proc/self/io)".into(),
    };
    println!(
        "{label:<34} {:>10.0} appends/s  {:>7.1} fsyncs/1000 records  write amplification {amplification} (queue bytes/payload {:.2})",
        records as f64 / secs,
        s.fsyncs as f64 * 1000.0 / records as f64,
        s.bytes_written as f64 / s.payload_bytes as f64,
    );
}

fn recovery(total_bytes: u64) {
    let dir = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let mut q = open(dir.path());
    let payload = [0xA5_u8; 64];
    while q.stats().bytes < total_bytes {
        q.append_batch((0..1024).map(|_| (RecordClass::Event, &payload[..])))
            .expect("append");
    }
    let records = q.stats().records;
    drop(q);
    let start = Instant::now();
    let (q, report) = Queue::open(dir.path(), config(), SystemClock, StatVfs).expect("reopen");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(report.records, records);
    println!(
        "recovery of {:>5.1} MiB ({records} records, {} segments): {:.3} s ({:.0} MiB/s)",
        total_bytes as f64 / 1048576.0,
        q.stats().segments,
        secs,
        q.stats().bytes as f64 / 1048576.0 / secs
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 2_000 } else { 100_000 };
    println!(
        "queue benchmark in {} ({})",
        bench_dir().display(),
        if quick { "quick" } else { "full" }
    );
    appends("group commit (32 records/fsync)", n, 32);
    appends("group commit (256 records/fsync)", n, 256);
    appends("one fsync per record", n / 20, 1);
    recovery(if quick { 1 << 20 } else { 64 << 20 });
}
