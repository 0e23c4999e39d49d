//! The server's downlink answer to one uplink frame: recognising it among
//! whatever arrives, and reading what it says.
//!
//! An answer is accepted only if it opens under the device's context as a
//! `DownlinkAnswer`, all its items parse, and its `Ack` acknowledges the
//! counter of the frame in flight. Anything else (forged or damaged
//! datagrams, answers to earlier frames, replays of old answers, which can
//! never acknowledge a newer counter) is skipped by the carrier. Only an
//! accepted answer's other items are applied: `Config` (JSON or zlib JSON,
//! inflated within a bound), `ConfigPending`, `Rekey`, and a `Part` of a
//! larger one (`parts.rs`), whose reassembled item is read by [`item`]
//! exactly as if it had come whole.

use flotta_proto::batch::ConfigUpdate;
use flotta_proto::frame::{
    Ack, ConfigEncoding, DownItem, FrameContext, FrameError, FrameType, TAG_LEN, down_items, open,
};
use flotta_proto::frame_keys::FrameKeys;

use super::parts::PartIn;

/// The largest configuration a zlib `Config` item may inflate to.
pub(crate) const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// What an accepted answer asks of the device besides its ack.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    /// A configuration to store (already inflated), or why it could not be
    /// read.
    pub(crate) config: Option<Result<ConfigUpdate, String>>,
    /// A newer configuration waits for a TLS window.
    pub(crate) pending: Option<String>,
    /// The next key epoch.
    pub(crate) rekey: Option<FrameKeys>,
    /// A part of an item too large for one answer.
    pub(crate) part: Option<PartIn>,
}

/// The plaintext of `datagram` if it is an authentic answer under `ctx`.
fn plaintext(ctx: &FrameContext, datagram: &[u8]) -> Option<Vec<u8>> {
    opened(ctx, datagram).map(|(_, plain)| plain)
}

/// The downlink counter and plaintext of an authentic answer.
fn opened(ctx: &FrameContext, datagram: &[u8]) -> Option<(u32, Vec<u8>)> {
    let mut out = vec![0; datagram.len().saturating_sub(TAG_LEN)];
    let opened = open(ctx, datagram, &mut out).ok()?;
    if opened.header.frame_type != FrameType::DownlinkAnswer {
        return None;
    }
    let (counter, len) = (opened.header.counter, opened.plaintext.len());
    out.truncate(len);
    Some((counter, out))
}

/// The downlink counter and ack of an authentic, well-formed answer to
/// *some* frame (carriers whose answers come later: the in-flight ledger
/// decides whether it is fresh).
pub(crate) fn ack_of(ctx: &FrameContext, datagram: &[u8]) -> Option<(u32, Ack)> {
    let (counter, plain) = opened(ctx, datagram)?;
    let mut ack = None;
    for item in down_items(&plain) {
        match item {
            Ok(DownItem::Ack(a)) => ack = Some(a),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    Some((counter, ack?))
}

/// Whether `datagram` is an authentic, well-formed answer acknowledging
/// uplink `counter`.
pub(crate) fn acks(ctx: &FrameContext, datagram: &[u8], counter: u32) -> bool {
    let Some(plain) = plaintext(ctx, datagram) else {
        return false;
    };
    let mut acked = false;
    for item in down_items(&plain) {
        match item {
            Ok(DownItem::Ack(a)) => acked |= a.acks(counter),
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    acked
}

/// Read an answer [`acks`] accepted.
///
/// # Errors
/// [`FrameError`] if it does not open or parse (it did when accepted).
pub(crate) fn read(ctx: &FrameContext, datagram: &[u8]) -> Result<Answer, FrameError> {
    let plain = plaintext(ctx, datagram).ok_or(FrameError::AuthenticationFailed)?;
    let mut answer = Answer::default();
    for item in down_items(&plain) {
        self::item(item?, &mut answer);
    }
    Ok(answer)
}

/// Note one down item in `answer` (an ack says nothing more).
pub(crate) fn item(item: DownItem<'_>, answer: &mut Answer) {
    match item {
        DownItem::Ack(_) => {}
        DownItem::Config {
            version,
            encoding,
            body,
        } => answer.config = Some(config(version, encoding, body)),
        DownItem::ConfigPending { version } => answer.pending = Some(version.to_owned()),
        DownItem::Rekey {
            key_id,
            epoch,
            master_secret,
            salt,
        } => {
            answer.rekey = Some(FrameKeys {
                key_id: key_id.0,
                epoch,
                master_secret: *master_secret,
                master_salt: salt.to_vec(),
            });
        }
        DownItem::Part {
            id,
            total,
            offset,
            data,
        } => {
            answer.part = Some(PartIn {
                id,
                total,
                offset,
                data: data.to_vec(),
            });
        }
    }
}

fn config(version: &str, encoding: ConfigEncoding, body: &[u8]) -> Result<ConfigUpdate, String> {
    let json = match encoding {
        ConfigEncoding::Json => body.to_vec(),
        ConfigEncoding::ZlibJson => flotta_proto::compress::inflate(body, MAX_CONFIG_BYTES)
            .map_err(|e| format!("configuration {version}: {e}"))?,
    };
    let message_json =
        String::from_utf8(json).map_err(|_| format!("configuration {version} is not UTF-8"))?;
    Ok(ConfigUpdate {
        version: version.to_owned(),
        message_json,
    })
}
