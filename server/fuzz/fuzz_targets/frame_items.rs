//! Fuzz the decoding of an authenticated uplink plaintext (a buggy or
//! compromised device controls every byte of it) and the reassembly of its
//! fragments: never a panic; what is accepted respects the bounds; a
//! completed record holds exactly the bytes its fragments carried.
#![no_main]

use std::collections::BTreeMap;

use flotta_server::frames::items::decode_uplink;
use flotta_server::frames::reassembly::{FragmentLimits, Partial};
use libfuzzer_sys::fuzz_target;

const LIMITS: FragmentLimits = FragmentLimits {
    max_record_bytes: 4096,
    max_pending_bytes: 1 << 16,
};

fuzz_target!(|data: &[u8]| {
    let Ok(uplink) = decode_uplink(data, LIMITS.max_record_bytes) else {
        return;
    };
    assert!(uplink.records.iter().all(|r| r.seq <= i64::MAX as u64));
    let mut partials: BTreeMap<u64, Partial> = BTreeMap::new();
    for f in &uplink.fragments {
        assert!(f.total_len <= LIMITS.max_record_bytes && !f.data.is_empty());
        let added = match partials.get_mut(&f.seq) {
            Some(p) => p.add(f),
            None => Partial::from_fragment(f, LIMITS).map(|p| {
                partials.insert(f.seq, p);
            }),
        };
        if added.is_err() {
            continue;
        }
        let p = &partials[&f.seq];
        assert!(p.bytes() <= u64::from(p.total_len));
        // The fragment's bytes are now part of the record, unchanged.
        let start = f.offset;
        let covered = p.pieces().any(|(s, d)| {
            s <= start
                && u64::from(start) + f.data.len() as u64 <= u64::from(s) + d.len() as u64
                && d[(start - s) as usize..(start - s) as usize + f.data.len()] == f.data[..]
        });
        assert!(covered);
    }
    for (_, p) in partials {
        if p.is_complete() {
            let len = p.total_len as usize;
            assert_eq!(p.into_record().map(|r| r.len()), Some(len));
        }
    }
});
