//! What a sealed frame adds to its device's link statistics
//! (`store/link_days.rs`): one frame and its bytes up, written in the
//! frame's transaction together with what waits in the [`LinkTally`]; the
//! answer's bytes (sealed after the commit), and a duplicate answered from
//! the answer cache without the store, wait there for the device's next
//! frame on that link.

use crate::device_id::DeviceId;
use crate::link_stats::LinkTally;
use crate::store::LinkUsage;

/// One authenticated frame of `bytes` received.
pub(super) fn received(bytes: usize) -> LinkUsage {
    LinkUsage {
        frames: 1,
        bytes_up: u64::try_from(bytes).unwrap_or(u64::MAX),
        ..LinkUsage::default()
    }
}

/// Keep the bytes of an answer the link will carry: every answer over UDP
/// and SBD, on LoRaWAN only the ones the frame asked for (the others are
/// never sent: `lorawan/downlink.rs`).
pub(super) fn answered(
    tally: &LinkTally,
    device: &DeviceId,
    link: &'static str,
    answer: Option<&[u8]>,
    wanted: bool,
) {
    let Some(answer) = answer else {
        return;
    };
    if link == "lorawan" && !wanted {
        return;
    }
    let usage = LinkUsage {
        bytes_down: u64::try_from(answer.len()).unwrap_or(u64::MAX),
        ..LinkUsage::default()
    };
    tally.add(device, link, &usage);
}
