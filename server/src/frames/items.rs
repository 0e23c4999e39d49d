//! Decoding an uplink frame's plaintext (untrusted even once authenticated:
//! a device may be buggy or compromised) into what the store takes: the
//! device's status, whole records checked exactly as the batch route checks
//! them ([`check_record`]), and fragments. Pure, property-tested through
//! the frame tests and fuzzed (`server/fuzz`, target `frame_items`).
//!
//! Rules: the first item is the `Status`, and there is only one; a record's
//! class is 0, 1 or 2 and its `seq` and `at_ms` fit the store; a fragment's
//! record is at most `max_record_bytes` long. Any violation refuses the
//! whole frame ([`ItemError`]): nothing of it is stored.

use flotta_proto::frame::{FrameError, PartProgress, RecordHead, UpItem, up_items};
use flotta_proto::record::RecordClass;

use super::reassembly::NewFragment;
use crate::decode::check_record;
use crate::store::{NewRecord, StatusUpdate};

/// Largest sequence number or timestamp the store accepts.
const MAX_STORED: u64 = i64::MAX as u64;

/// What one uplink frame says.
#[derive(Debug, Clone, PartialEq)]
pub struct Uplink {
    /// The configuration version the device applies (empty: none).
    pub config_version: String,
    /// The lowest uplink counter the device still waits an ack for.
    pub low_water: u32,
    /// The device asks for an answer even if it would carry only the ack
    /// (links with few downlinks answer only when asked or when there is
    /// configuration or keys to send).
    pub ack_wanted: bool,
    /// The device's progress of an item it receives in parts.
    pub partial: Option<PartProgress>,
    /// Whole records, checked.
    pub records: Vec<NewRecord>,
    /// The status update of the newest heartbeat (or summary) among them.
    pub status: Option<StatusUpdate>,
    /// Fragments, in frame order.
    pub fragments: Vec<NewFragment>,
}

/// Why a plaintext was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ItemError {
    /// The items do not decode.
    #[error("items: {0}")]
    Malformed(#[from] FrameError),
    /// The first item is not the status, or there are two.
    #[error("the status must be the first item, and only once")]
    Status,
    /// A record (or a fragment's head) is unusable.
    #[error("{0}")]
    Record(String),
    /// A fragment announces a record longer than the server reassembles.
    #[error(
        "fragment of record seq {seq}: {total_len} bytes exceeds frame_max_record_bytes ({max})"
    )]
    TooLarge {
        /// The record.
        seq: u64,
        /// Its announced length.
        total_len: u32,
        /// The limit.
        max: u32,
    },
}

fn class_of(head: &RecordHead) -> Result<RecordClass, ItemError> {
    match head.class {
        0 => Ok(RecordClass::Heartbeat),
        1 => Ok(RecordClass::Log),
        2 => Ok(RecordClass::Event),
        other => Err(ItemError::Record(format!(
            "record seq {}: unknown class {other}",
            head.seq
        ))),
    }
}

/// Decode and check an uplink plaintext.
///
/// # Errors
/// [`ItemError`] for anything that is not a valid uplink.
pub fn decode_uplink(plaintext: &[u8], max_record_bytes: u32) -> Result<Uplink, ItemError> {
    let mut items = up_items(plaintext);
    let Some(Ok(UpItem::Status {
        config_version,
        low_water,
        ack_wanted,
        partial,
    })) = items.next()
    else {
        return Err(ItemError::Status);
    };
    let mut uplink = Uplink {
        config_version: config_version.to_owned(),
        low_water,
        ack_wanted,
        partial,
        records: Vec::new(),
        status: None,
        fragments: Vec::new(),
    };
    for item in items {
        match item? {
            UpItem::Status { .. } => return Err(ItemError::Status),
            UpItem::Record { head, payload } => {
                let class = class_of(&head)?;
                let (record, status) = check_record(head.seq, head.at_ms, class, payload.to_vec())
                    .map_err(|e| ItemError::Record(e.to_string()))?;
                if let Some(s) = status
                    && uplink.status.as_ref().is_none_or(|old| old.seq < s.seq)
                {
                    uplink.status = Some(s);
                }
                uplink.records.push(record);
            }
            UpItem::Fragment {
                head,
                total_len,
                offset,
                data,
            } => {
                let class = class_of(&head)?;
                if head.seq > MAX_STORED || head.at_ms > MAX_STORED {
                    return Err(ItemError::Record(format!(
                        "record seq {}: seq and at_ms must not exceed 2^63-1",
                        head.seq
                    )));
                }
                if total_len > max_record_bytes {
                    return Err(ItemError::TooLarge {
                        seq: head.seq,
                        total_len,
                        max: max_record_bytes,
                    });
                }
                uplink.fragments.push(NewFragment {
                    seq: head.seq,
                    at_ms: head.at_ms,
                    class,
                    total_len,
                    offset,
                    data: data.to_vec(),
                });
            }
        }
    }
    Ok(uplink)
}

#[cfg(test)]
mod tests {
    use flotta_proto::frame::{ItemWriter, RecordHead, UpItem};
    use flotta_proto::payload::{Level, LogLine, Payload};
    use proptest::prelude::*;

    use super::*;

    fn log_payload() -> Vec<u8> {
        Payload::Log(LogLine {
            source: "agent".into(),
            level: Level::Info,
            message: "hello".into(),
        })
        .encode()
    }

    fn plaintext(items: &[UpItem<'_>]) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let mut w = ItemWriter::new(&mut buf);
        for i in items {
            w.push(i).unwrap();
        }
        w.written().to_vec()
    }

    const STATUS: UpItem<'static> = UpItem::Status {
        config_version: "3",
        low_water: 5,
        ack_wanted: true,
        partial: Some(flotta_proto::frame::PartProgress {
            id: 0xfeed,
            offset: 27,
        }),
    };

    #[test]
    fn status_first_then_records_and_fragments() {
        let payload = log_payload();
        let head = RecordHead {
            seq: 9,
            at_ms: 1,
            class: 1,
        };
        let text = plaintext(&[
            STATUS,
            UpItem::Record {
                head,
                payload: &payload,
            },
            UpItem::Fragment {
                head: RecordHead { seq: 10, ..head },
                total_len: 40,
                offset: 8,
                data: &[1, 2, 3],
            },
        ]);
        let up = decode_uplink(&text, 1024).unwrap();
        assert_eq!(
            (up.config_version.as_str(), up.low_water, up.ack_wanted),
            ("3", 5, true)
        );
        assert_eq!(up.partial.map(|p| (p.id, p.offset)), Some((0xfeed, 27)));
        assert_eq!(up.records.len(), 1);
        assert_eq!(up.records[0].payload, payload);
        assert_eq!(up.fragments[0].offset, 8);
        assert!(up.status.is_none());
    }

    #[test]
    fn invalid_items_refuse_the_frame() {
        let payload = log_payload();
        let head = RecordHead {
            seq: 9,
            at_ms: 1,
            class: 1,
        };
        let record = UpItem::Record {
            head,
            payload: &payload,
        };
        assert_eq!(
            decode_uplink(&plaintext(&[record]), 1024),
            Err(ItemError::Status)
        );
        assert_eq!(
            decode_uplink(&plaintext(&[STATUS, STATUS]), 1024),
            Err(ItemError::Status)
        );
        let wrong_class = UpItem::Record {
            head: RecordHead { class: 2, ..head },
            payload: &payload,
        };
        assert!(matches!(
            decode_uplink(&plaintext(&[STATUS, wrong_class]), 1024),
            Err(ItemError::Record(_))
        ));
        let unknown_class = UpItem::Record {
            head: RecordHead { class: 7, ..head },
            payload: &payload,
        };
        assert!(decode_uplink(&plaintext(&[STATUS, unknown_class]), 1024).is_err());
        let big = UpItem::Fragment {
            head,
            total_len: 2000,
            offset: 0,
            data: &[1],
        };
        assert!(matches!(
            decode_uplink(&plaintext(&[STATUS, big]), 1024),
            Err(ItemError::TooLarge { .. })
        ));
        let huge_seq = UpItem::Fragment {
            head: RecordHead {
                seq: u64::MAX,
                ..head
            },
            total_len: 20,
            offset: 0,
            data: &[1],
        };
        assert!(decode_uplink(&plaintext(&[STATUS, huge_seq]), 1024).is_err());
        let mut cut = plaintext(&[STATUS, record]);
        cut.pop();
        assert!(matches!(
            decode_uplink(&cut, 1024),
            Err(ItemError::Malformed(_) | ItemError::Record(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(up) = decode_uplink(&bytes, 4096) {
                prop_assert!(up.fragments.iter().all(|f| f.total_len <= 4096 && !f.data.is_empty()));
                prop_assert!(up.records.iter().all(|r| r.seq <= MAX_STORED));
            }
        }
    }
}
