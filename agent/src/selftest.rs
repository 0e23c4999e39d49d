//! A short self-test run on real hardware or under qemu-user: exercises the
//! queue's file I/O (append, fsync, rename, recovery, ack), key and CSR
//! generation (ring's assembly for this CPU) and TLS client set-up.

use std::path::Path;

use flotta_proto::record::RecordClass;

use crate::clock::SystemClock;
use crate::queue::{Durability, Queue, QueueConfig, StatVfs};

/// Run the self-test in `dir` (created, and emptied of queue files afterwards).
pub fn run(dir: &Path) -> Result<String, String> {
    let qdir = dir.join("selftest-queue");
    let cfg = QueueConfig {
        min_free_disk_bytes: 0,
        ..QueueConfig::default()
    };
    let (mut q, _) =
        Queue::open(&qdir, cfg.clone(), SystemClock, StatVfs).map_err(|e| e.to_string())?;
    let payloads: Vec<[u8; 16]> = (0..100u8).map(|i| [i; 16]).collect();
    let seqs = q
        .append_batch(payloads.iter().map(|p| (RecordClass::Log, &p[..])))
        .map_err(|e| e.to_string())?;
    drop(q);
    let (mut q, report) =
        Queue::open(&qdir, cfg, SystemClock, StatVfs).map_err(|e| e.to_string())?;
    let back = q
        .read_batch(usize::MAX, usize::MAX)
        .map_err(|e| e.to_string())?;
    if back.len() != 100 || back.first().map(|r| r.seq) != Some(seqs.start) {
        return Err(format!("queue returned {} of 100 records", back.len()));
    }
    q.ack(seqs.end - 1).map_err(|e| e.to_string())?;
    q.append(RecordClass::Event, b"after-ack", Durability::Durable)
        .map_err(|e| e.to_string())?;
    drop(q);
    let _ = std::fs::remove_dir_all(&qdir);
    let key = crate::identity::new_key_and_csr("selftest").map_err(|e| e.to_string())?;
    let link = crate::link::LinkProfile::preset("ethernet").ok_or("no ethernet preset")?;
    // A self-signed pair is enough to build the TLS client configuration.
    let kp = rcgen::KeyPair::from_pem(&key.key_pem).map_err(|e| e.to_string())?;
    let cert = rcgen::CertificateParams::new(vec!["selftest".into()])
        .and_then(|p| p.self_signed(&kp))
        .map_err(|e| e.to_string())?;
    crate::client::EdgeClient::new(
        "https://localhost:1",
        "selftest",
        &cert.pem(),
        &cert.pem(),
        &key.key_pem,
        &link,
    )
    .map_err(|e| e.to_string())?;
    Ok(format!(
        "selftest ok: queue wrote, recovered ({} records) and acknowledged 100 records; P-256 key, CSR and TLS client built",
        report.records
    ))
}
