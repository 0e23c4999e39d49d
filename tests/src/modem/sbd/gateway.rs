//! The satellite side of the simulated RockBLOCK: a [`Gateway`] receives
//! the MO messages of successful sessions and holds the MT queue, with
//! Rock7's semantics (an MT over 270 bytes is refused, `FAILED,15`; `flush`
//! replaces the whole queue). [`MemoryGateway`] keeps everything in memory
//! and can answer each MO with a scripted MT, queued *after* the session
//! that carried the MO (as the server's answer posted to Rock7 would be),
//! so the modem announces it with a ring alert.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Largest MT message Rock7 accepts.
pub const MAX_MT: usize = 270;

/// One MO message as the gateway received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoMessage {
    /// The modem's IMEI.
    pub imei: String,
    /// Its MO sequence number.
    pub momsn: u16,
    /// The message.
    pub data: Vec<u8>,
}

/// Why Rock7 refused an MT message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MtRejected {
    /// `FAILED,15,Data too long`.
    #[error("FAILED,15,Data too long ({0} bytes)")]
    TooLong(usize),
}

/// The Iridium network and Rock7 behind one modem. Called from the
/// modem's thread.
pub trait Gateway: Send + Sync {
    /// A successful session delivered `data` (MO number `momsn`).
    fn deliver_mo(&self, imei: &str, momsn: u16, data: &[u8]);
    /// The next MT message for `imei`, removed from the queue (a session
    /// takes one).
    fn take_mt(&self, imei: &str) -> Option<Vec<u8>>;
    /// MT messages queued for `imei` (ring alerts, `MT queued`).
    fn mt_queued(&self, imei: &str) -> usize;
}

/// Computes the MT answer to an MO message, if any.
pub type Responder = Box<dyn FnMut(&MoMessage) -> Option<Vec<u8>> + Send>;

#[derive(Default)]
struct Inner {
    delivered: Vec<MoMessage>,
    mt: VecDeque<Vec<u8>>,
    responder: Option<Responder>,
    flush_answers: bool,
}

/// An in-memory gateway for one or more modems (one MT queue for all).
#[derive(Default)]
pub struct MemoryGateway {
    inner: Mutex<Inner>,
}

impl MemoryGateway {
    /// An empty gateway that answers nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answer every delivered MO with `f`'s MT (queued after the session,
    /// with `flush` when `flush` is set, as the server does for acks).
    pub fn respond_with(
        &self,
        flush: bool,
        f: impl FnMut(&MoMessage) -> Option<Vec<u8>> + Send + 'static,
    ) {
        let mut inner = self.lock();
        inner.responder = Some(Box::new(f));
        inner.flush_answers = flush;
    }

    /// Queue an MT message as Rock7's MT API does: `flush` empties the
    /// queue first.
    ///
    /// # Errors
    /// [`MtRejected::TooLong`] over 270 bytes (nothing queued).
    pub fn queue_mt(&self, data: &[u8], flush: bool) -> Result<(), MtRejected> {
        Self::push(&mut self.lock(), data.to_vec(), flush)
    }

    fn push(inner: &mut Inner, data: Vec<u8>, flush: bool) -> Result<(), MtRejected> {
        if data.len() > MAX_MT {
            return Err(MtRejected::TooLong(data.len()));
        }
        if flush {
            inner.mt.clear();
        }
        inner.mt.push_back(data);
        Ok(())
    }

    /// Every MO delivered so far, in order.
    #[must_use]
    pub fn delivered(&self) -> Vec<MoMessage> {
        self.lock().delivered.clone()
    }

    /// MT messages still queued.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.lock().mt.len()
    }
}

impl Gateway for MemoryGateway {
    fn deliver_mo(&self, imei: &str, momsn: u16, data: &[u8]) {
        let mut inner = self.lock();
        let mo = MoMessage {
            imei: imei.into(),
            momsn,
            data: data.to_vec(),
        };
        let answer = inner.responder.as_mut().and_then(|f| f(&mo));
        inner.delivered.push(mo);
        if let Some(mt) = answer {
            let flush = inner.flush_answers;
            // A too-long answer is refused, as Rock7 would.
            let _ = Self::push(&mut inner, mt, flush);
        }
    }

    fn take_mt(&self, _imei: &str) -> Option<Vec<u8>> {
        self.lock().mt.pop_front()
    }

    fn mt_queued(&self, _imei: &str) -> usize {
        self.lock().mt.len()
    }
}
