//! What LoRaWAN modems print, as pure functions of untrusted text (fuzzed
//! by `agent/fuzz/fuzz_targets/lorawan_wire.rs`): hex payloads (at most
//! 242 bytes, held in fixed-size buffers), ports, data rates, DevEUIs,
//! RSSI/SNR, and the lines of each dialect:
//!
//! - RAK3172 (RUI3): `AT+NJS=1` query answers; events `+EVT:JOINED`,
//!   `+EVT:JOIN_FAILED_<why>`, `+EVT:TX_DONE`, `+EVT:SEND_CONFIRMED_OK`,
//!   `+EVT:SEND_CONFIRMED_FAILED(<status>)` and downlinks
//!   `+EVT:RX_<1|2|B|C>:<rssi>:<snr>:<UNICAST|MULTICAST>:<port>:<hex>`
//!   (lowercase hex, `%02x`, in RUI3's `service_lora.c`);
//! - RN2483/RN2903: `mac_rx <port> <hex>` and the `mac get status` word
//!   (bit 0: joined).

use core::fmt::Write as _;

/// Largest LoRaWAN application payload in any region (N at EU868 DR4–7,
/// US915 DR3–4).
pub const MAX_PAYLOAD: usize = 242;

/// A payload, bounded.
pub type Payload = heapless::Vec<u8, MAX_PAYLOAD>;
/// A payload as hex digits, bounded.
pub type Hex = heapless::String<{ 2 * MAX_PAYLOAD }>;

/// Why modem text did not parse (the text, cut to 64 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not an even number of hex digits, or more than [`MAX_PAYLOAD`] bytes.
    #[error("bad hex payload {0:?}")]
    Hex(String),
    /// Not a number in range.
    #[error("bad number {0:?}")]
    Number(String),
    /// A line of the wrong shape.
    #[error("unexpected line {0:?}")]
    Line(String),
}

impl WireError {
    /// Whether reading again may succeed: a line error on the serial
    /// port, always.
    pub fn is_retriable(&self) -> bool {
        true
    }
}

fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

/// One downlink received in an uplink's receive windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downlink {
    /// FPort (0 for a MAC-only downlink).
    pub port: u8,
    /// FRMPayload.
    pub data: Payload,
    /// RSSI at the device, dBm (when the modem reports it).
    pub rssi: Option<i16>,
    /// SNR at the device, dB (when the modem reports it).
    pub snr: Option<i8>,
}

/// Decode hex digits (either case) into at most [`MAX_PAYLOAD`] bytes.
///
/// # Errors
/// [`WireError::Hex`] for an odd length, a non-hex digit or too many bytes.
pub fn decode_hex(s: &str) -> Result<Payload, WireError> {
    let bad = || WireError::Hex(cut(s));
    let digits = s.as_bytes();
    if !digits.len().is_multiple_of(2) || digits.len() > 2 * MAX_PAYLOAD {
        return Err(bad());
    }
    let nibble = |b: u8| char::from(b).to_digit(16).ok_or_else(bad);
    let mut out = Payload::new();
    for pair in digits.chunks_exact(2) {
        let byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        // Cannot overflow: at most MAX_PAYLOAD pairs (checked above).
        out.push(u8::try_from(byte).map_err(|_| bad())?)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

/// `data` as lowercase hex digits.
///
/// # Errors
/// [`WireError::Hex`] if `data` exceeds [`MAX_PAYLOAD`] bytes.
pub fn encode_hex(data: &[u8]) -> Result<Hex, WireError> {
    if data.len() > MAX_PAYLOAD {
        return Err(WireError::Hex(format!("{} bytes", data.len())));
    }
    let mut out = Hex::new();
    for b in data {
        // Cannot overflow: 2 digits per byte, checked above.
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

fn number<T: core::str::FromStr>(s: &str) -> Result<T, WireError> {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WireError::Number(cut(s)));
    }
    t.parse().map_err(|_| WireError::Number(cut(s)))
}

/// An FPort, 0..=255.
///
/// # Errors
/// [`WireError::Number`].
pub fn parse_port(s: &str) -> Result<u8, WireError> {
    number(s)
}

/// Whether `port` may carry application data up (1..=223).
#[must_use]
pub fn is_app_port(port: u8) -> bool {
    (1..=223).contains(&port)
}

/// A data rate index, 0..=15.
///
/// # Errors
/// [`WireError::Number`].
pub fn parse_data_rate(s: &str) -> Result<u8, WireError> {
    number::<u8>(s).and_then(|dr| {
        if dr <= 15 {
            Ok(dr)
        } else {
            Err(WireError::Number(cut(s)))
        }
    })
}

/// A DevEUI: 16 hex digits (either case; `:` or `-` separators allowed).
///
/// # Errors
/// [`WireError::Hex`].
pub fn parse_dev_eui(s: &str) -> Result<[u8; 8], WireError> {
    let mut digits: heapless::String<16> = heapless::String::new();
    for c in s.trim().chars().filter(|c| !matches!(c, ':' | '-')) {
        digits.push(c).map_err(|_| WireError::Hex(cut(s)))?;
    }
    let bytes = decode_hex(&digits)?;
    <[u8; 8]>::try_from(bytes.as_slice()).map_err(|_| WireError::Hex(cut(s)))
}

/// The value of a RUI3 query answer: `AT+NJS=1` for key `AT+NJS` gives
/// `1` (a bare value is accepted too).
///
/// # Errors
/// [`WireError::Line`] for another key's answer.
pub fn rak_value<'a>(line: &'a str, key: &str) -> Result<&'a str, WireError> {
    match line.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
        Some(v) => Ok(v.trim()),
        None if !line.starts_with("AT") && !line.starts_with('+') => Ok(line.trim()),
        None => Err(WireError::Line(cut(line))),
    }
}

/// A RUI3 event line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "bounded and heap-free by design: one event lives on the stack while its line is handled"
)]
pub enum RakEvent {
    /// `+EVT:JOINED`.
    Joined,
    /// `+EVT:JOIN_FAILED_<why>` (`RX_TIMEOUT`, `TX_TIMEOUT`, a status).
    JoinFailed(heapless::String<32>),
    /// `+EVT:TX_DONE`: an unconfirmed uplink went out.
    TxDone,
    /// `+EVT:SEND_CONFIRMED_OK`.
    ConfirmedOk,
    /// `+EVT:SEND_CONFIRMED_FAILED(<status>)`, or another failure of an
    /// uplink (`+EVT:TX_FAILED…`).
    TxFailed(heapless::String<32>),
    /// `+EVT:RX_…`: a downlink.
    Rx(Downlink),
    /// Any other event (`+EVT:LINKCHECK…`, `+EVT:BEACON…`).
    Other,
}

fn short(s: &str) -> heapless::String<32> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// Parse a RUI3 `+EVT:` line.
///
/// # Errors
/// [`WireError`] for a line that is not an event or a malformed downlink.
pub fn parse_rak_event(line: &str) -> Result<RakEvent, WireError> {
    let ev = line
        .strip_prefix("+EVT:")
        .ok_or_else(|| WireError::Line(cut(line)))?
        .trim();
    if ev == "JOINED" {
        return Ok(RakEvent::Joined);
    }
    if let Some(why) = ev.strip_prefix("JOIN_FAILED") {
        return Ok(RakEvent::JoinFailed(short(why.trim_start_matches('_'))));
    }
    if ev == "TX_DONE" {
        return Ok(RakEvent::TxDone);
    }
    if ev == "SEND_CONFIRMED_OK" {
        return Ok(RakEvent::ConfirmedOk);
    }
    if ev.starts_with("SEND_CONFIRMED_FAILED") || ev.starts_with("TX_FAIL") {
        return Ok(RakEvent::TxFailed(short(ev)));
    }
    let Some(rx) = ev.strip_prefix("RX_") else {
        return Ok(RakEvent::Other);
    };
    // <window>:<rssi>:<snr>:<UNICAST|MULTICAST>:<port>[:<hex>]
    let bad = || WireError::Line(cut(line));
    let mut f = rx.split(':');
    let window = f.next().ok_or_else(bad)?;
    if !matches!(window, "1" | "2" | "B" | "C") {
        return Err(bad());
    }
    let rssi = number::<i16>(f.next().ok_or_else(bad)?)?;
    let snr = number::<i8>(f.next().ok_or_else(bad)?)?;
    if !matches!(f.next(), Some("UNICAST" | "MULTICAST")) {
        return Err(bad());
    }
    let port = parse_port(f.next().ok_or_else(bad)?)?;
    let data = decode_hex(f.next().unwrap_or(""))?;
    if f.next().is_some() {
        return Err(bad());
    }
    Ok(RakEvent::Rx(Downlink {
        port,
        data,
        rssi: Some(rssi),
        snr: Some(snr),
    }))
}

/// Parse an RN2483 `mac_rx <port> <hex>` line (no RSSI/SNR: the module
/// does not report them with the downlink).
///
/// # Errors
/// [`WireError`] for another line or a malformed one.
pub fn parse_rn_rx(line: &str) -> Result<Downlink, WireError> {
    let bad = || WireError::Line(cut(line));
    let rest = line.strip_prefix("mac_rx ").ok_or_else(bad)?;
    let mut f = rest.split(' ');
    let port = parse_port(f.next().ok_or_else(bad)?)?;
    let data = decode_hex(f.next().unwrap_or(""))?;
    if f.next().is_some() {
        return Err(bad());
    }
    Ok(Downlink {
        port,
        data,
        rssi: None,
        snr: None,
    })
}

/// Whether an RN2483 `mac get status` answer (4 or 8 hex digits) says
/// the module has joined (bit 0).
///
/// # Errors
/// [`WireError::Hex`].
pub fn rn_status_joined(line: &str) -> Result<bool, WireError> {
    let t = line.trim();
    if !matches!(t.len(), 4 | 8) {
        return Err(WireError::Hex(cut(line)));
    }
    let word = u32::from_str_radix(t, 16).map_err(|_| WireError::Hex(cut(line)))?;
    Ok(word & 1 == 1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rak_events_parse() {
        assert_eq!(parse_rak_event("+EVT:JOINED"), Ok(RakEvent::Joined));
        assert_eq!(
            parse_rak_event("+EVT:JOIN_FAILED_RX_TIMEOUT"),
            Ok(RakEvent::JoinFailed(short("RX_TIMEOUT")))
        );
        assert_eq!(parse_rak_event("+EVT:TX_DONE"), Ok(RakEvent::TxDone));
        assert!(matches!(
            parse_rak_event("+EVT:SEND_CONFIRMED_FAILED(4)"),
            Ok(RakEvent::TxFailed(_))
        ));
        let Ok(RakEvent::Rx(d)) = parse_rak_event("+EVT:RX_1:-70:8:UNICAST:1:1234") else {
            panic!("not a downlink");
        };
        assert_eq!(
            (d.port, d.data.as_slice(), d.rssi, d.snr),
            (1, &[0x12, 0x34][..], Some(-70), Some(8))
        );
        let Ok(RakEvent::Rx(d)) = parse_rak_event("+EVT:RX_2:-119:-12:UNICAST:0") else {
            panic!("not a downlink");
        };
        assert_eq!((d.port, d.data.len(), d.snr), (0, 0, Some(-12)));
        assert_eq!(parse_rak_event("+EVT:LINKCHECK:0:0"), Ok(RakEvent::Other));
        for bad in [
            "+EVT:RX_3:-70:8:UNICAST:1:12",
            "+EVT:RX_1:-70:8:BROADCAST:1:12",
            "+EVT:RX_1:-70:8:UNICAST:256:12",
            "+EVT:RX_1:-70:8:UNICAST:1:123",
            "+EVT:RX_1:x:8:UNICAST:1:12",
            "+EVT:RX_1:-70:8:UNICAST:1:12:34",
            "EVT:JOINED",
        ] {
            assert!(parse_rak_event(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_ports_and_euis() {
        assert_eq!(rak_value("AT+NJS=1", "AT+NJS"), Ok("1"));
        assert_eq!(rak_value("5", "AT+DR"), Ok("5"));
        assert!(rak_value("AT+DR=5", "AT+NJS").is_err());
        assert_eq!(parse_data_rate("5"), Ok(5));
        assert!(parse_data_rate("16").is_err() && parse_data_rate("").is_err());
        assert_eq!(
            parse_dev_eui("AC1F09FFFE000001"),
            Ok([0xac, 0x1f, 0x09, 0xff, 0xfe, 0x00, 0x00, 0x01])
        );
        assert_eq!(
            parse_dev_eui("ac:1f:09:ff:fe:00:00:01"),
            parse_dev_eui("AC1F09FFFE000001")
        );
        assert!(parse_dev_eui("AC1F09FFFE0000").is_err());
        assert!(parse_dev_eui("AC1F09FFFE00000102").is_err());
        assert_eq!(rn_status_joined("00000001"), Ok(true));
        assert_eq!(rn_status_joined("0400"), Ok(false));
        assert!(rn_status_joined("1").is_err() && rn_status_joined("zzzz").is_err());
        let d = parse_rn_rx("mac_rx 10 CAFE").unwrap();
        assert_eq!(
            (d.port, d.data.as_slice(), d.rssi),
            (10, &[0xca, 0xfe][..], None)
        );
        assert!(parse_rn_rx("mac_rx x CAFE").is_err() && parse_rn_rx("mac_tx_ok").is_err());
        assert!(is_app_port(1) && is_app_port(223) && !is_app_port(0) && !is_app_port(224));
    }

    proptest! {
        #[test]
        fn hex_round_trips(data in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD)) {
            let hex = encode_hex(&data).unwrap();
            prop_assert_eq!(decode_hex(&hex).unwrap().to_vec(), data.clone());
            prop_assert_eq!(decode_hex(&hex.to_ascii_uppercase()).unwrap().to_vec(), data);
        }

        #[test]
        fn oversized_payloads_are_refused(data in proptest::collection::vec(any::<u8>(), MAX_PAYLOAD + 1..400)) {
            prop_assert!(encode_hex(&data).is_err());
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            prop_assert!(decode_hex(&hex).is_err());
        }

        #[test]
        fn downlink_events_round_trip(window in prop::sample::select(vec!["1", "2", "B", "C"]),
                                      rssi in -150i16..0, snr in -30i8..20, port: u8,
                                      data in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD)) {
            let line = format!("+EVT:RX_{window}:{rssi}:{snr}:UNICAST:{port}:{}", encode_hex(&data).unwrap());
            let Ok(RakEvent::Rx(d)) = parse_rak_event(&line) else { panic!("{line}") };
            prop_assert_eq!((d.port, d.data.as_slice(), d.rssi, d.snr), (port, &data[..], Some(rssi), Some(snr)));
            let line = format!("mac_rx {port} {}", encode_hex(&data).unwrap().to_ascii_uppercase());
            let d = parse_rn_rx(&line).unwrap();
            prop_assert_eq!((d.port, d.data.as_slice()), (port, &data[..]));
        }

        #[test]
        fn parsers_never_panic(line in "\\PC{0,600}") {
            let _ = parse_rak_event(&line);
            let _ = parse_rn_rx(&line);
            let _ = rn_status_joined(&line);
            let _ = parse_dev_eui(&line);
            let _ = rak_value(&line, "AT+NJS");
            let _ = decode_hex(&line);
            let _ = parse_data_rate(&line);
        }
    }
}
