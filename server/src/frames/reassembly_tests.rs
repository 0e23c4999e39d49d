//! Properties of the reassembler: fragments in any order, duplicated and
//! overlapping, give back exactly the record; a disagreeing fragment is
//! refused and changes nothing; the bounds hold.

use proptest::prelude::*;

use super::*;

const LIMITS: FragmentLimits = FragmentLimits {
    max_record_bytes: 4096,
    max_pending_bytes: 1 << 20,
};

fn frag(record: &[u8], offset: usize, len: usize) -> NewFragment {
    NewFragment {
        seq: 7,
        at_ms: 99,
        class: RecordClass::Log,
        total_len: u32::try_from(record.len()).unwrap(),
        offset: u32::try_from(offset).unwrap(),
        data: record[offset..offset + len].to_vec(),
    }
}

/// Cut points splitting `len` bytes, plus extra overlapping ranges.
fn cover(len: usize, cuts: &[usize], extra: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % len).filter(|c| *c > 0).collect();
    points.extend([0, len]);
    points.sort_unstable();
    points.dedup();
    let mut ranges: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1] - w[0])).collect();
    for (a, b) in extra {
        let start = a % len;
        let n = 1 + b % (len - start);
        ranges.push((start, n));
    }
    ranges
}

fn invariants(p: &Partial) {
    let mut last_end: Option<u64> = None;
    for (start, data) in p.pieces() {
        assert!(!data.is_empty());
        if let Some(e) = last_end {
            assert!(
                u64::from(start) > e,
                "pieces must be disjoint and not adjacent"
            );
        }
        last_end = Some(u64::from(start) + data.len() as u64);
    }
    assert!(last_end.unwrap_or(0) <= u64::from(p.total_len));
    assert!(p.bytes() <= u64::from(p.total_len));
}

proptest! {
    #[test]
    fn any_order_and_duplication_reassembles_exactly(
        record in prop::collection::vec(any::<u8>(), 1..600),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        extra in prop::collection::vec((any::<usize>(), any::<usize>()), 0..8),
        order in any::<u64>(),
        dup in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut ranges = cover(record.len(), &cuts, &extra);
        for d in &dup {
            let r = ranges[d.index(ranges.len())];
            ranges.push(r);
        }
        // A deterministic shuffle from `order`.
        let mut state = order | 1;
        for i in (1..ranges.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            ranges.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut partial: Option<Partial> = None;
        let mut completed_at = None;
        for (i, (o, n)) in ranges.iter().enumerate() {
            let f = frag(&record, *o, *n);
            match &mut partial {
                None => partial = Some(Partial::from_fragment(&f, LIMITS).unwrap()),
                Some(p) => p.add(&f).unwrap(),
            }
            let p = partial.as_ref().unwrap();
            invariants(p);
            if p.is_complete() && completed_at.is_none() {
                completed_at = Some(i);
            }
        }
        let p = partial.unwrap();
        prop_assert!(p.is_complete());
        prop_assert_eq!(p.into_record().unwrap(), record);
    }

    #[test]
    fn a_disagreeing_overlap_is_refused_and_changes_nothing(
        record in prop::collection::vec(any::<u8>(), 2..300),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let len = record.len();
        let first_start = a.index(len);
        let first = frag(&record, first_start, len - first_start);
        let mut p = Partial::from_fragment(&first, LIMITS).unwrap();
        let before = p.clone();
        // A fragment overlapping the first one with one byte changed.
        let at = first_start + b.index(len - first_start);
        let mut bad = frag(&record, at, 1);
        bad.data[0] ^= flip;
        prop_assert_eq!(p.add(&bad), Err(Refusal::Conflict { seq: 7 }));
        prop_assert_eq!(&p, &before);
        // Another header for the same seq is a conflict too.
        let mut other = frag(&record, 0, 1);
        other.total_len += 1;
        prop_assert_eq!(p.add(&other), Err(Refusal::Conflict { seq: 7 }));
        other = frag(&record, 0, 1);
        other.at_ms += 1;
        prop_assert_eq!(p.add(&other), Err(Refusal::Conflict { seq: 7 }));
        prop_assert_eq!(&p, &before);
    }

    #[test]
    fn bounds_hold(total in 0u32..10_000, offset in 0u32..10_000, len in 0usize..64) {
        let f = NewFragment { seq: 1, at_ms: 0, class: RecordClass::Event, total_len: total, offset, data: vec![1; len] };
        match Partial::from_fragment(&f, LIMITS) {
            Ok(p) => {
                prop_assert!(total <= LIMITS.max_record_bytes);
                prop_assert!(len > 0 && u64::from(offset) + len as u64 <= u64::from(total));
                invariants(&p);
            }
            Err(Refusal::RecordTooLarge { .. }) => prop_assert!(total > LIMITS.max_record_bytes),
            Err(Refusal::Conflict { .. }) => {
                prop_assert!(len == 0 || u64::from(offset) + len as u64 > u64::from(total));
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}

#[test]
fn adjacent_fragments_merge_into_one_piece() {
    let record: Vec<u8> = (0..30).collect();
    let mut p = Partial::from_fragment(&frag(&record, 10, 10), LIMITS).unwrap();
    p.add(&frag(&record, 20, 5)).unwrap();
    p.add(&frag(&record, 0, 10)).unwrap();
    assert_eq!(p.pieces().count(), 1);
    assert!(!p.is_complete());
    p.add(&frag(&record, 24, 6)).unwrap();
    assert!(p.is_complete());
    assert_eq!(p.into_record().unwrap(), record);
}
