//! Fuzz the batch decoder (`POST /batch/{id}`): it must never panic, and a
//! batch it accepts has ascending sequence numbers the store can hold, a
//! status only if it carries a heartbeat, and an upload interval only in
//! format 3.
#![no_main]

use flotta_proto::record::RecordClass;
use flotta_server::decode::decode_batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = decode_batch(data) {
        assert!(batch.records.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(batch.records.iter().all(|r| r.seq <= i64::MAX as u64));
        let has_heartbeat = batch.records.iter().any(|r| r.class == RecordClass::Heartbeat);
        assert_eq!(batch.status.is_some(), has_heartbeat);
        // Only format 3 carries an upload interval.
        assert!(batch.upload_interval_seconds.is_none() || batch.format >= 3);
    }
});
