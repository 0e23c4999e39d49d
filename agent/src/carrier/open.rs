//! The frame carrier of a window: which carrier a `links` entry opens and
//! with which packing settings (the `[udp]`, `[sbd]` or `[lorawan]` table), so
//! `window.rs` stays one code path for every frame carrier.

use super::{
    CarrierError, FrameCarrier, FramePacking, Governed, LinkKind, LoraCarrier, SbdCarrier,
    SharedGovernor, UdpCarrier,
};
use crate::config::AgentConfig;
use crate::frames::PackPolicy;

/// An opened frame carrier and its table's packing settings.
pub(crate) struct FrameLink {
    /// The carrier, opened for one window.
    pub(crate) carrier: Box<dyn FrameCarrier>,
    /// `max_record_bytes` of its table.
    pub(crate) max_record_bytes: usize,
    /// Its packing policy.
    pub(crate) policy: PackPolicy,
}

/// Open the carrier of `kind` (`None` for `tls`, which carries no frames),
/// behind `governor` (`governed.rs`: a no-op for links nothing meters).
///
/// # Errors
/// The carrier's open error (an unresolvable address, a missing tty).
pub(crate) fn open_frame_link(
    kind: LinkKind,
    cfg: &AgentConfig,
    governor: &SharedGovernor,
) -> Option<Result<FrameLink, CarrierError>> {
    let link = |carrier: Result<Box<dyn FrameCarrier>, CarrierError>, table: &dyn FramePacking| {
        Ok(FrameLink {
            carrier: Box::new(Governed::new(carrier?, governor.clone())),
            max_record_bytes: table.max_record_bytes(),
            policy: table.pack_policy(),
        })
    };
    fn boxed(
        c: Result<impl FrameCarrier + 'static, CarrierError>,
    ) -> Result<Box<dyn FrameCarrier>, CarrierError> {
        Ok(Box::new(c?))
    }
    match kind {
        LinkKind::Tls => None,
        LinkKind::Udp => Some(link(boxed(UdpCarrier::open(&cfg.udp)), &cfg.udp)),
        LinkKind::Sbd => Some(link(boxed(SbdCarrier::open(&cfg.sbd)), &cfg.sbd)),
        LinkKind::Lorawan => Some(link(boxed(LoraCarrier::open(&cfg.lorawan)), &cfg.lorawan)),
    }
}
