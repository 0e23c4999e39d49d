//! Iridium Short Burst Data through Rock7 (RockBLOCK), server side.
//!
//! A RockBLOCK sends sealed frames (`proto/FRAMES.md`) without key id: the
//! network identifies the modem by IMEI, bound to a device in the store
//! ([`crate::links`]). Rock7 posts each MO to our webhook; the frame is
//! stored exactly as over UDP (link `sbd`) and the sealed answer goes back
//! as an MT message through Rock7's HTTP API. Rock7 sees the sealed frame
//! in hex, never its plaintext.
//!
//! - [`jwt`]: verifying Rock7's RS256 webhook JWT;
//! - [`mo`]: the webhook body (form or JSON) and the MO from its claims;
//! - [`webhook`]: the `POST /rock7/mo` route;
//! - [`mt`]: the MT queue (newest answer per IMEI) and its worker;
//! - [`testing`]: JWTs signed as Rock7 does, for tests and simulators.

pub mod jwt;
pub mod mo;
pub mod mt;
pub mod testing;
pub mod webhook;

pub use jwt::{JwtError, Rock7Key};
pub use mo::{MoError, MoMessage};
pub use mt::{MtQueue, MtSettings, MtWorker};
pub use webhook::{MO_ROUTE, Rock7Webhook};

/// The UTC day (`YYYY-MM-DD`) of `now_ms`, on which SBD credits count.
pub fn utc_day(now_ms: u64) -> String {
    let secs = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}
