//! The 9603's SBD data formats, as pure functions of untrusted bytes (fuzzed
//! by `agent/fuzz/fuzz_targets/sbd_wire.rs`):
//!
//! - the message checksum: the low 16 bits of the byte sum, sent high byte
//!   first after `AT+SBDWB` data and after `AT+SBDRB` messages;
//! - the `AT+SBDRB` framing: 2-byte big-endian length, message, checksum;
//! - the `+SBDIX:` (and `+SBDIXA`) and `+SBDSX:` result lines.

/// Largest mobile-originated message (`AT+SBDWB`).
pub const MAX_MO: usize = 340;
/// Largest mobile-terminated message (`AT+SBDRB`).
pub const MAX_MT: usize = 270;

/// The SBD checksum of `data`: the low 16 bits of its byte sum.
#[must_use]
pub fn checksum(data: &[u8]) -> u16 {
    data.iter()
        .fold(0u16, |sum, b| sum.wrapping_add(u16::from(*b)))
}

/// Why SBD bytes or lines did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer or more bytes than the framing announces.
    #[error("SBDRB framing: {0} bytes do not match the announced length")]
    Length(usize),
    /// The announced MT length exceeds 270 bytes.
    #[error("SBDRB length {0} exceeds {MAX_MT}")]
    TooLong(usize),
    /// The message's checksum does not match.
    #[error("SBDRB checksum {got:#06x}, computed {want:#06x}")]
    Checksum {
        /// Received.
        got: u16,
        /// Computed.
        want: u16,
    },
    /// A result line that is not `+SBDIX:`/`+SBDSX:` with six numbers.
    #[error("malformed status line {0:?}")]
    Status(String),
}

impl WireError {
    /// Whether reading again may succeed: a line error on the serial
    /// port, always.
    pub fn is_retriable(&self) -> bool {
        true
    }
}

/// The length announced by the first two bytes of an `AT+SBDRB` response.
#[must_use]
pub fn sbdrb_length(head: [u8; 2]) -> usize {
    usize::from(u16::from_be_bytes(head))
}

/// The message of a complete `AT+SBDRB` response (`len`, message,
/// checksum), checked.
///
/// # Errors
/// [`WireError::Length`], [`WireError::TooLong`], [`WireError::Checksum`].
pub fn decode_sbdrb(bytes: &[u8]) -> Result<&[u8], WireError> {
    let [h0, h1, rest @ ..] = bytes else {
        return Err(WireError::Length(bytes.len()));
    };
    let len = sbdrb_length([*h0, *h1]);
    if len > MAX_MT {
        return Err(WireError::TooLong(len));
    }
    if rest.len() != len + 2 {
        return Err(WireError::Length(bytes.len()));
    }
    let (msg, sum) = rest.split_at(len);
    let got = u16::from_be_bytes([sum[0], sum[1]]);
    let want = checksum(msg);
    if got != want {
        return Err(WireError::Checksum { got, want });
    }
    Ok(msg)
}

/// Frame `msg` as `AT+SBDRB` answers it (for simulators and tests).
#[must_use]
pub fn encode_sbdrb(msg: &[u8]) -> Vec<u8> {
    let len = u16::try_from(msg.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(msg.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    out.extend_from_slice(&checksum(msg).to_be_bytes());
    out
}

/// The six numbers after `prefix` (`+SBDIX:`), comma-separated.
fn six_numbers(line: &str, prefix: &str) -> Result<[u32; 6], WireError> {
    let bad = || WireError::Status(line.chars().take(64).collect());
    let rest = line.strip_prefix(prefix).ok_or_else(bad)?;
    let mut out = [0u32; 6];
    let mut parts = rest.split(',');
    for slot in &mut out {
        let part = parts.next().ok_or_else(bad)?.trim();
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        *slot = part.parse().map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(out)
}

/// The result of an SBD session, `+SBDIX: <MO status>, <MOMSN>, <MT
/// status>, <MTMSN>, <MT length>, <MT queued>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStatus {
    /// 0–2: the MO message (if any) was delivered; above 2: the session
    /// failed (10 call timeout, 13 incomplete, 17 gateway not responding,
    /// 18 RF drop, 32 no network, 35 busy…).
    pub mo_status: u8,
    /// The MO sequence number (16 bits, wraps).
    pub momsn: u16,
    /// 0: no MT message; 1: one received into the MT buffer; 2: error.
    pub mt_status: u8,
    /// The MT sequence number.
    pub mtmsn: u16,
    /// The received MT message's length.
    pub mt_length: u16,
    /// MT messages still queued at the gateway.
    pub mt_queued: u32,
}

impl SessionStatus {
    /// Parse a `+SBDIX:` line (the answer to `AT+SBDIX` and `AT+SBDIXA`).
    ///
    /// # Errors
    /// [`WireError::Status`] unless it is six in-range numbers.
    pub fn parse(line: &str) -> Result<Self, WireError> {
        let n = six_numbers(line, "+SBDIX:")?;
        let bad = || WireError::Status(line.chars().take(64).collect());
        let u8_ = |v: u32| u8::try_from(v).map_err(|_| bad());
        let u16_ = |v: u32| u16::try_from(v).map_err(|_| bad());
        let status = Self {
            mo_status: u8_(n[0])?,
            momsn: u16_(n[1])?,
            mt_status: u8_(n[2])?,
            mtmsn: u16_(n[3])?,
            mt_length: u16_(n[4])?,
            mt_queued: n[5],
        };
        if status.mt_status > 2 || usize::from(status.mt_length) > MAX_MT {
            return Err(bad());
        }
        Ok(status)
    }

    /// Whether the session succeeded (MO status 0–2).
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.mo_status <= 2
    }

    /// Whether an MT message was received into the MT buffer.
    #[must_use]
    pub fn mt_received(&self) -> bool {
        self.mt_status == 1
    }
}

/// The modem's buffers and ring-alert flag, `+SBDSX: <MO flag>, <MOMSN>,
/// <MT flag>, <MTMSN>, <RA flag>, <messages waiting>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferStatus {
    /// The MO buffer holds a message.
    pub mo_pending: bool,
    /// The next MO sequence number.
    pub momsn: u16,
    /// The MT buffer holds a message.
    pub mt_pending: bool,
    /// The last MT sequence number.
    pub mtmsn: u16,
    /// A ring alert is pending (answer with `AT+SBDIXA`).
    pub ring_alert: bool,
    /// MT messages waiting at the gateway (as of the last session).
    pub waiting: u32,
}

impl BufferStatus {
    /// Parse a `+SBDSX:` line.
    ///
    /// # Errors
    /// [`WireError::Status`] unless it is six in-range numbers.
    pub fn parse(line: &str) -> Result<Self, WireError> {
        let n = six_numbers(line, "+SBDSX:")?;
        let bad = || WireError::Status(line.chars().take(64).collect());
        let flag = |v: u32| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad()),
        };
        let u16_ = |v: u32| u16::try_from(v).map_err(|_| bad());
        Ok(Self {
            mo_pending: flag(n[0])?,
            momsn: u16_(n[1])?,
            mt_pending: flag(n[2])?,
            mtmsn: u16_(n[3])?,
            ring_alert: flag(n[4])?,
            waiting: n[5],
        })
    }
}

/// The number of Iridium credits a session costs: one per started 50 bytes
/// of each message (MO and MT), at least one per session.
#[must_use]
pub fn credits(mo_bytes: usize, mt_bytes: usize) -> u64 {
    let per = |n: usize| n.div_ceil(50) as u64;
    (per(mo_bytes) + per(mt_bytes)).max(1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_checksum_of_hello_is_0214() {
        assert_eq!(checksum(b"hello"), 0x0214);
        assert_eq!(checksum(&[0xff; 300]), (255u32 * 300 % 65_536) as u16);
        assert_eq!(encode_sbdrb(b"hello"), b"\x00\x05hello\x02\x14");
    }

    #[test]
    fn sbdix_lines_parse_and_reject_garbage() {
        let s = SessionStatus::parse("+SBDIX: 0, 65535, 1, 7, 20, 2").unwrap();
        assert_eq!(
            s,
            SessionStatus {
                mo_status: 0,
                momsn: 65_535,
                mt_status: 1,
                mtmsn: 7,
                mt_length: 20,
                mt_queued: 2
            }
        );
        assert!(s.is_success() && s.mt_received());
        let s = SessionStatus::parse("+SBDIX: 32, 4, 2, 0, 0, 0").unwrap();
        assert!(!s.is_success() && !s.mt_received());
        assert!(
            SessionStatus::parse("+SBDIX:2,0,0,0,0,0")
                .unwrap()
                .is_success()
        );
        for bad in [
            "+SBDIX: 0, 1, 0, 0, 0",
            "+SBDIX: 0, 1, 0, 0, 0, 0, 0",
            "+SBDIX: 0, 65536, 0, 0, 0, 0",
            "+SBDIX: 256, 1, 0, 0, 0, 0",
            "+SBDIX: 0, 1, 3, 0, 0, 0",
            "+SBDIX: 0, 1, 1, 0, 271, 0",
            "+SBDIX: -1, 1, 0, 0, 0, 0",
            "+SBDIX: 0, +1, 0, 0, 0, 0",
            "+SBDSX: 0, 1, 0, 0, 0, 0",
            "",
        ] {
            assert!(SessionStatus::parse(bad).is_err(), "{bad:?}");
        }
        let b = BufferStatus::parse("+SBDSX: 1, 12, 0, 3, 1, 2").unwrap();
        assert!(b.mo_pending && b.ring_alert && !b.mt_pending);
        assert_eq!((b.momsn, b.mtmsn, b.waiting), (12, 3, 2));
        assert!(BufferStatus::parse("+SBDSX: 2, 12, 0, 3, 1, 2").is_err());
    }

    #[test]
    fn sbdrb_framing_is_checked() {
        assert_eq!(decode_sbdrb(b"\x00\x00\x00\x00").unwrap(), b"");
        assert_eq!(decode_sbdrb(b"\x00\x05hello\x02\x14").unwrap(), b"hello");
        assert_eq!(
            decode_sbdrb(b"\x00\x05hello\x02\x15"),
            Err(WireError::Checksum {
                got: 0x0215,
                want: 0x0214
            })
        );
        assert!(matches!(
            decode_sbdrb(b"\x00\x06hello\x02\x14"),
            Err(WireError::Length(_))
        ));
        assert!(matches!(
            decode_sbdrb(b"\x01\x0f"),
            Err(WireError::TooLong(271))
        ));
        assert!(decode_sbdrb(b"\x00").is_err());
    }

    #[test]
    fn credits_are_per_started_50_bytes_and_at_least_one() {
        assert_eq!(credits(0, 0), 1);
        assert_eq!(credits(50, 0), 1);
        assert_eq!(credits(51, 0), 2);
        assert_eq!(credits(340, 270), 7 + 6);
        assert_eq!(credits(1, 1), 2);
    }

    proptest! {
        #[test]
        fn sbdrb_round_trips_and_any_corruption_is_caught(
            msg in proptest::collection::vec(any::<u8>(), 0..=MAX_MT),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let framed = encode_sbdrb(&msg);
            prop_assert_eq!(decode_sbdrb(&framed).unwrap(), &msg[..]);
            let mut bad = framed.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 1 << bit;
            // A single flipped bit changes the length, the sum or the
            // checksum: never accepted as the same message.
            prop_assert!(decode_sbdrb(&bad).map(<[u8]>::to_vec) != Ok(msg));
        }

        #[test]
        fn sbdix_round_trips(mo in 0u8..=255, momsn: u16, mt in 0u8..=2, mtmsn: u16,
                             len in 0u16..=270, queued: u32, spaces in 0usize..3) {
            let sep = format!(",{}", " ".repeat(spaces));
            let line = format!("+SBDIX:{}{mo}{sep}{momsn}{sep}{mt}{sep}{mtmsn}{sep}{len}{sep}{queued}",
                               " ".repeat(spaces));
            let s = SessionStatus::parse(&line).unwrap();
            prop_assert_eq!((s.mo_status, s.momsn, s.mt_status, s.mtmsn, s.mt_length, s.mt_queued),
                            (mo, momsn, mt, mtmsn, len, queued));
            prop_assert_eq!(s.is_success(), mo <= 2);
        }

        #[test]
        fn parsers_never_panic(line in "\\PC{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = SessionStatus::parse(&line);
            let _ = BufferStatus::parse(&line);
            let _ = decode_sbdrb(&bytes);
        }
    }
}
