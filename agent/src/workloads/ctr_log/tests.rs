use proptest::prelude::*;

use super::*;

#[test]
fn lines_as_conmon_writes_them() {
    let l = decode(b"2026-12-02T14:39:53.368043934+00:00 stdout P partial").unwrap();
    assert_eq!(
        l,
        CtrLine {
            stamp: "2026-12-02T14:39:53.368043934Z".into(),
            stderr: false,
            partial: true,
            text: b"partial",
        }
    );
    let l = decode(b"2026-12-02T14:39:54.353976176+00:00 stderr F err with  spaces ").unwrap();
    assert!(l.stderr && !l.partial);
    assert_eq!(l.text, b"err with  spaces ");
    let l = decode(b"2026-12-02T14:39:54.35+00:00 stdout F").unwrap();
    assert_eq!(l.text, b"", "an empty line");
    assert_eq!(l.stamp, "2026-12-02T14:39:54.350000000Z");
    assert_eq!(
        decode(b"2026-12-02T14:39:54Z stdin F x"),
        Err(CtrLogError::Stream)
    );
    assert_eq!(
        decode(b"2026-12-02T14:39:54Z stdout X x"),
        Err(CtrLogError::Tag)
    );
    assert_eq!(decode(b"yesterday stdout F x"), Err(CtrLogError::Timestamp));
    assert_eq!(decode(b""), Err(CtrLogError::Timestamp));
}

#[test]
fn local_times_become_utc_across_days_and_years() {
    assert_eq!(
        to_utc("2026-12-02T14:39:53.360172787+01:00").unwrap(),
        "2026-12-02T13:39:53.360172787Z"
    );
    assert_eq!(
        to_utc("2027-01-01T00:30:00-05:30").unwrap(),
        "2027-01-01T06:00:00.000000000Z"
    );
    assert_eq!(
        to_utc("2027-01-01T00:30:00.5+02:00").unwrap(),
        "2026-12-31T22:30:00.500000000Z"
    );
    assert_eq!(
        to_utc("2028-03-01T00:00:00+00:30").unwrap(),
        "2028-02-29T23:30:00.000000000Z",
        "a leap day"
    );
    for bad in [
        "2026-12-02T14:39:53",
        "2026-12-02T14:39:53+0100",
        "2026-13-02T14:39:53Z",
        "2026-12-02T14:39:53.1234567890Z",
        "2026-12-02 14:39:53Z",
        "2026-12-02T14:39:5xZ",
        "+026-12-02T14:39:53Z",
    ] {
        assert_eq!(to_utc(bad), None, "{bad}");
    }
}

proptest! {
    /// Whatever bytes a damaged log holds, decoding never panics, and what
    /// decodes has a UTC stamp that parses again to itself.
    #[test]
    fn decoding_is_total(line in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(l) = decode(&line) {
            prop_assert_eq!(to_utc(&l.stamp), Some(l.stamp.clone()));
        }
    }

    /// Round trip through the civil-day arithmetic for any offset.
    #[test]
    fn utc_conversion_matches_seconds_arithmetic(
        days in 0i64..200_000, secs in 0i64..86_400, offset_min in -23i64 * 60..23 * 60,
    ) {
        let (y, m, d) = civil_from_days(days);
        prop_assert_eq!(days_from_civil(y, m, d), days);
        let local = days * 86_400 + secs;
        let (ly, lm, ld) = civil_from_days(local.div_euclid(86_400));
        let s = local.rem_euclid(86_400);
        let sign = if offset_min < 0 { '-' } else { '+' };
        let stamp = format!(
            "{ly:04}-{lm:02}-{ld:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            s / 3600, s % 3600 / 60, s % 60, offset_min.abs() / 60, offset_min.abs() % 60
        );
        let utc = local - offset_min * 60;
        let (uy, um, ud) = civil_from_days(utc.div_euclid(86_400));
        let us = utc.rem_euclid(86_400);
        let want = format!(
            "{uy:04}-{um:02}-{ud:02}T{:02}:{:02}:{:02}.000000000Z",
            us / 3600, us % 3600 / 60, us % 60
        );
        prop_assert_eq!(to_utc(&stamp), Some(want));
    }
}
