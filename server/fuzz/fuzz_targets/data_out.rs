//! Fuzz the decoder of Flotta's JSON `message` (`POST /data/{id}/out`):
//! it must never panic, and whatever it accepts must survive a re-encode and
//! decode unchanged.
#![no_main]

use flotta_server::decode::{DataOut, decode_data_out};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((mut msg, out)) = decode_data_out(data) else {
        return;
    };
    let content = match &out {
        DataOut::Enrolment(info) => serde_json::to_value(info),
        DataOut::Registration(info) => serde_json::to_value(info),
        DataOut::Heartbeat(_, raw) => Ok(raw.clone()),
    }
    .expect("decoded content serialises");
    msg.content = Some(content);
    let again = serde_json::to_vec(&msg).expect("message serialises");
    let (_, out2) = decode_data_out(&again).expect("re-encoded message decodes");
    assert_eq!(out, out2);
});
