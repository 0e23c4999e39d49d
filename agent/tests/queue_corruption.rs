//! Power loss and bit rot: truncate every segment at every byte offset, flip
//! random bits, write garbage files; recovery keeps every intact record and
//! counts the damage, and never panics.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{all_seqs, open, payload_for, small_config};
use flotta_agent::queue::Durability;
use flotta_proto::record::RecordClass;
use proptest::prelude::*;

/// A queue of `n` records spread over several small segments; returns the
/// segment files in order.
fn build(dir: &Path, n: u64) -> Vec<PathBuf> {
    let mut q = open(dir, small_config());
    for seq in 0..n {
        q.append(
            RecordClass::ALL[(seq % 3) as usize],
            &payload_for(seq),
            Durability::Buffered,
        )
        .unwrap();
    }
    q.sync().unwrap();
    drop(q);
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Which records live wholly inside `file`'s first `cut` bytes, and which after.
fn seqs_in(path: &Path) -> Vec<u64> {
    let scratch = common::fast_tempdir();
    fs::copy(path, scratch.path().join(path.file_name().unwrap())).unwrap();
    let mut q = open(scratch.path(), small_config());
    all_seqs(&mut q)
}

#[test]
fn truncation_at_every_offset_of_every_segment_keeps_all_intact_records() {
    let src = common::fast_tempdir();
    let files = build(src.path(), 40);
    assert!(
        files.len() >= 3,
        "want several segments, got {}",
        files.len()
    );
    let per_file: Vec<Vec<u64>> = files.iter().map(|f| seqs_in(f)).collect();
    let all: Vec<u64> = (0..40).collect();
    assert_eq!(per_file.concat(), all);
    for (fi, file) in files.iter().enumerate() {
        let len = fs::metadata(file).unwrap().len();
        for cut in 0..len {
            let work = common::fast_tempdir();
            copy_dir(src.path(), work.path());
            let target = work.path().join(file.file_name().unwrap());
            fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .unwrap()
                .set_len(cut)
                .unwrap();
            // Records of this file that survive the cut.
            let bytes = fs::read(&target).unwrap();
            let kept_here = {
                let scratch = common::fast_tempdir();
                fs::write(scratch.path().join(file.file_name().unwrap()), &bytes).unwrap();
                let mut q = open(scratch.path(), small_config());
                all_seqs(&mut q)
            };
            assert!(kept_here.len() <= per_file[fi].len());
            assert_eq!(
                kept_here,
                per_file[fi][..kept_here.len()],
                "file {fi} cut at {cut}"
            );
            let mut q = open(work.path(), small_config());
            let got = all_seqs(&mut q);
            let mut expected: Vec<u64> = Vec::new();
            for (j, seqs) in per_file.iter().enumerate() {
                expected.extend(if j == fi { &kept_here } else { seqs });
            }
            assert_eq!(got, expected, "file {fi} cut at {cut}");
            // A cut inside a frame is damage, reported; a cut on a boundary is not.
            let lost = per_file[fi].len() - kept_here.len();
            if lost > 0 && cut > 0 {
                let s = q.stats();
                assert!(
                    s.damaged_bytes > 0 || is_boundary(&bytes),
                    "file {fi} cut at {cut}: {s:?}"
                );
            }
            // The queue goes on working after recovery, and never reuses a number
            // that an intact record still holds.
            let seq = q
                .append(RecordClass::Event, b"after", Durability::Durable)
                .unwrap();
            assert!(got.last().is_none_or(|&l| seq > l));
        }
    }
}

/// Whether the bytes end exactly at a frame boundary (no partial frame).
fn is_boundary(bytes: &[u8]) -> bool {
    let scratch = common::fast_tempdir();
    let report = flotta_agent::queue::fuzz_recover(scratch.path(), bytes).unwrap();
    report.damaged_bytes == 0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn bit_flips_lose_only_the_records_they_hit(flips in prop::collection::vec((0usize..64, any::<u32>()), 1..4)) {
        let src = common::fast_tempdir();
        let files = build(src.path(), 30);
        let mut hit_files = std::collections::BTreeSet::new();
        for (fi, bit) in &flips {
            let file = &files[fi % files.len()];
            let mut bytes = fs::read(file).unwrap();
            let bit = (*bit as usize) % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            fs::write(file, &bytes).unwrap();
            hit_files.insert(fi % files.len());
        }
        let mut q = open(src.path(), small_config());
        let got = all_seqs(&mut q);
        // Every record is either intact and returned with its exact payload, or missing.
        let recs = q.read_batch(usize::MAX, usize::MAX).unwrap();
        for r in &recs {
            prop_assert_eq!(&r.payload, &payload_for(r.seq));
        }
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
        let missing = 30 - got.len();
        prop_assert!(missing <= flips.len(), "{} flips lost {} records", flips.len(), missing);
        if missing > 0 {
            prop_assert!(q.stats().damaged_bytes > 0);
        }
    }

    #[test]
    fn arbitrary_segment_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let dir = common::fast_tempdir();
        let _ = flotta_agent::queue::fuzz_recover(dir.path(), &bytes);
    }
}

#[test]
fn stray_files_and_a_leftover_compaction_are_handled() {
    let dir = common::fast_tempdir();
    build(dir.path(), 10);
    fs::write(dir.path().join("README"), b"not ours").unwrap();
    fs::write(
        dir.path().join("00000000000000000003.compact"),
        b"half a compaction",
    )
    .unwrap();
    let mut q = open(dir.path(), small_config());
    assert_eq!(all_seqs(&mut q), (0..10).collect::<Vec<_>>());
    assert!(!dir.path().join("00000000000000000003.compact").exists());
    assert!(dir.path().join("README").exists());
}
