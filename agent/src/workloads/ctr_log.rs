//! Container log files as conmon writes them for podman's `k8s-file` log
//! driver (`…/userdata/ctr.log`): one line per write,
//! `<timestamp> <stream> <tag> <text>`, the timestamp RFC 3339 with
//! nanoseconds in the device's local time
//! (`2026-12-02T14:39:53.360172787+01:00`), the stream `stdout` or
//! `stderr`, the tag `F` (the line is complete) or `P` (a partial line: the
//! text goes on in the next one). Decoded here so the agent follows a log
//! by reading that file ([`super::tail`]) instead of running a
//! `podman logs --follow` per container (`PODMAN-4.3.md`, section 12).
//!
//! Timestamps are turned into UTC (`…Z`): local time jumps with DST and
//! time zone changes, and the line stamps the agent keeps
//! (`logs-since.json`) must order by time.

use crate::agent_time::civil::{civil_from_days, days_from_civil};

/// A decoded line (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrLine<'a> {
    /// The timestamp in UTC, `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
    pub stamp: String,
    /// Written to stderr.
    pub stderr: bool,
    /// The text goes on in the next line (`P`).
    pub partial: bool,
    /// The text, without the newline.
    pub text: &'a [u8],
}

/// Why a line is not a `k8s-file` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CtrLogError {
    /// The timestamp is missing or not RFC 3339 with an offset.
    #[error("bad timestamp")]
    Timestamp,
    /// The stream is neither `stdout` nor `stderr`.
    #[error("bad stream")]
    Stream,
    /// The tag is neither `F` nor `P`.
    #[error("bad tag")]
    Tag,
}

impl CtrLogError {
    /// A line that does not decode never will.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// Decode one line of a `k8s-file` log, without its newline.
pub fn decode(line: &[u8]) -> Result<CtrLine<'_>, CtrLogError> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let stamp = fields
        .next()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(to_utc)
        .ok_or(CtrLogError::Timestamp)?;
    let stderr = match fields.next() {
        Some(b"stdout") => false,
        Some(b"stderr") => true,
        _ => return Err(CtrLogError::Stream),
    };
    let partial = match fields.next() {
        Some(b"F") => false,
        Some(b"P") => true,
        _ => return Err(CtrLogError::Tag),
    };
    Ok(CtrLine {
        stamp,
        stderr,
        partial,
        text: fields.next().unwrap_or_default(),
    })
}

/// For the fuzz target (`ctr_log`): any bytes decode or fail cleanly,
/// never panic; a decoded stamp is UTC and converts to itself.
pub fn fuzz_line(bytes: &[u8]) {
    for line in bytes.split(|b| *b == b'\n') {
        if let Ok(l) = decode(line) {
            assert!(l.stamp.ends_with('Z'));
            assert_eq!(to_utc(&l.stamp).as_deref(), Some(l.stamp.as_str()));
        }
    }
}

/// `2026-12-02T14:39:53.360172787+01:00` (or `…Z`, any fraction of up to 9
/// digits or none) as `2026-12-02T13:39:53.360172787Z`.
pub fn to_utc(stamp: &str) -> Option<String> {
    let b = stamp.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = stamp.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let rest = &stamp[19..];
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(f) => {
            let digits = f.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            (&f[..digits], &f[digits..])
        }
        None => ("", rest),
    };
    let offset_seconds = match zone {
        "Z" => 0,
        z if z.len() == 6 && matches!(&z[..1], "+" | "-") && &z[3..4] == ":" => {
            let (h, m): (i64, i64) = (z[1..3].parse().ok()?, z[4..6].parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            let s = h * 3600 + m * 60;
            if z.starts_with('-') { -s } else { s }
        }
        _ => return None,
    };
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let utc = local - offset_seconds;
    let (days, secs) = (utc.div_euclid(86_400), utc.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{fraction:0<9}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    ))
}

#[cfg(test)]
mod tests;
