//! MT delivery: sealed answers sent back to the modem through Rock7's MT
//! API (`POST {rock7_mt_url}` with form fields `imei, username, password,
//! data=<hex>, flush=yes`; reply `OK,<id>` or `FAILED,<code>,<text>`).
//!
//! [`MtQueue`] is bounded by IMEI and keeps only the **newest** answer per
//! IMEI: acks are cumulative and `flush=yes` replaces Rock7's own queue, so
//! an older answer waiting is worthless once a newer exists. One blocking
//! worker thread ([`MtWorker::run`]) delivers with a deadline per request
//! and retries network errors, 5xx and `FAILED,99` with exponential
//! back-off; other `FAILED` codes are final (15: data too long). The same
//! bytes delivered for an IMEI before (Rock7 re-delivering an MO, whose
//! duplicate gets the kept answer) are not sent again: a fetched MT costs
//! credits. Outcomes are counted in `flotta_sbd_mt_total{result}`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::mo::encode_hex;
use crate::clock::Clock;
use crate::device_id::DeviceId;
use crate::metrics::Metrics;
use crate::store::{Store, sbd_credits};

/// Where and how MT messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtSettings {
    /// `rock7_mt_url`.
    pub url: String,
    /// `rock7_username`.
    pub username: String,
    /// The contents of `rock7_password_file`.
    pub password: String,
    /// Deadline of one request (`rock7_mt_timeout_seconds`).
    pub timeout: Duration,
    /// First retry delay; doubled each attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Attempts before giving up on one answer (`rock7_mt_max_attempts`).
    pub max_attempts: u32,
    /// IMEIs with an answer waiting at most (`rock7_mt_queue_imeis`).
    pub queue_imeis: usize,
}

#[derive(Debug)]
struct Pending {
    device: DeviceId,
    data: Arc<[u8]>,
    attempts: u32,
    due: Instant,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<String, Pending>,
    /// The last bytes Rock7 accepted per IMEI (bounded like `pending`).
    delivered: HashMap<String, Arc<[u8]>>,
    delivered_order: VecDeque<String>,
    closed: bool,
}

/// The answers waiting for delivery, newest per IMEI.
#[derive(Debug, Default)]
pub struct MtQueue {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
}

impl MtQueue {
    /// A queue holding answers for at most `capacity` IMEIs.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `data` for `imei` (replacing an older answer waiting). Returns
    /// the outcome label when it is not queued (`unchanged`, `queue_full`)
    /// or replaced one (`replaced`).
    pub fn push(
        &self,
        imei: &str,
        device: DeviceId,
        data: Arc<[u8]>,
        metrics: &Metrics,
    ) -> Option<&'static str> {
        let mut s = self.lock();
        if s.delivered.get(imei).is_some_and(|d| **d == *data) {
            metrics.count_mt("unchanged");
            return Some("unchanged");
        }
        let new = Pending {
            device,
            data,
            attempts: 0,
            due: Instant::now(),
        };
        let outcome = if let Some(p) = s.pending.get_mut(imei) {
            *p = new;
            Some("replaced")
        } else {
            if s.pending.len() >= self.capacity {
                metrics.count_mt("queue_full");
                return Some("queue_full");
            }
            s.pending.insert(imei.to_owned(), new);
            None
        };
        if let Some(o) = outcome {
            metrics.count_mt(o);
        }
        drop(s);
        self.wake.notify_all();
        outcome
    }

    /// Stop the worker (answers waiting are dropped).
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// Answers waiting.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next due answer (taken out), waiting for one; `None` once closed.
    fn next(&self) -> Option<(String, Pending)> {
        let mut s = self.lock();
        loop {
            if s.closed {
                return None;
            }
            let now = Instant::now();
            let due = s
                .pending
                .iter()
                .min_by_key(|(_, p)| p.due)
                .map(|(k, p)| (k.clone(), p.due));
            match due {
                Some((imei, at)) if at <= now => {
                    let p = s.pending.remove(&imei)?;
                    return Some((imei, p));
                }
                Some((_, at)) => {
                    s = self
                        .wake
                        .wait_timeout(s, at - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                None => s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Put a failed attempt back, unless a newer answer arrived meanwhile.
    fn retry(&self, imei: String, p: Pending) {
        let mut s = self.lock();
        s.pending.entry(imei).or_insert(p);
        drop(s);
        self.wake.notify_all();
    }

    fn delivered(&self, imei: String, data: Arc<[u8]>) {
        let mut s = self.lock();
        if s.delivered.insert(imei.clone(), data).is_none() {
            s.delivered_order.push_back(imei);
        }
        while s.delivered_order.len() > self.capacity {
            if let Some(old) = s.delivered_order.pop_front() {
                s.delivered.remove(&old);
            }
        }
    }
}

/// What Rock7 answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtReply {
    /// `OK,<id>`.
    Ok(String),
    /// `FAILED,<code>,<text>`.
    Failed(u32, String),
    /// Anything else, a 5xx or a network error: try again.
    Transient(String),
}

/// Rock7's reply body `text` with HTTP `status`.
pub fn parse_reply(status: u16, text: &str) -> MtReply {
    let text = text.trim();
    if status >= 500 {
        return MtReply::Transient(format!("HTTP {status}"));
    }
    if let Some(id) = text.strip_prefix("OK,") {
        return MtReply::Ok(id.trim().to_owned());
    }
    if let Some(rest) = text.strip_prefix("FAILED,") {
        let (code, why) = rest.split_once(',').unwrap_or((rest, ""));
        if let Ok(code) = code.trim().parse() {
            return MtReply::Failed(code, why.trim().to_owned());
        }
    }
    MtReply::Transient(format!("HTTP {status}: unexpected reply"))
}

/// Rock7's code for "data too long".
pub const FAILED_TOO_LONG: u32 = 15;
/// Rock7's code for a system error (retried).
pub const FAILED_SYSTEM: u32 = 99;

/// The delivering thread.
#[derive(Debug)]
pub struct MtWorker {
    /// The queue it drains.
    pub queue: Arc<MtQueue>,
    /// Where and how.
    pub settings: MtSettings,
    /// Where accepted MT credits are counted.
    pub store: Arc<dyn Store>,
    /// The credit day's clock.
    pub clock: Arc<dyn Clock>,
    /// Outcomes.
    pub metrics: Arc<Metrics>,
}

impl MtWorker {
    /// Deliver until the queue is closed (blocking: run it on its own thread).
    pub fn run(self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.settings.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        while let Some((imei, mut p)) = self.queue.next() {
            let reply = self.send(&agent, &imei, &p.data);
            match reply {
                MtReply::Ok(id) => {
                    tracing::debug!(%imei, device = %p.device, mt_id = %id, bytes = p.data.len(), "MT accepted");
                    self.metrics.count_mt("ok");
                    let day = super::utc_day(self.clock.now_ms());
                    let credits = sbd_credits(p.data.len());
                    if let Err(e) = self.store.add_sbd_credits(&p.device, &day, credits) {
                        tracing::warn!(device = %p.device, "counting MT credits: {e}");
                    }
                    self.queue.delivered(imei, p.data);
                }
                MtReply::Failed(code, why) if code != FAILED_SYSTEM => {
                    tracing::warn!(%imei, device = %p.device, code, "Rock7 refused the MT: {why}");
                    self.metrics.count_mt(if code == FAILED_TOO_LONG {
                        "too_long"
                    } else {
                        "failed"
                    });
                }
                MtReply::Failed(_, why) | MtReply::Transient(why) => {
                    p.attempts += 1;
                    if p.attempts >= self.settings.max_attempts {
                        tracing::warn!(%imei, device = %p.device, attempts = p.attempts, "MT given up: {why}");
                        self.metrics.count_mt("gave_up");
                        continue;
                    }
                    tracing::debug!(%imei, attempts = p.attempts, "MT to retry: {why}");
                    self.metrics.count_mt("retry");
                    p.due = Instant::now() + self.backoff(p.attempts);
                    self.queue.retry(imei, p);
                }
            }
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        self.settings
            .backoff_initial
            .saturating_mul(factor)
            .min(self.settings.backoff_max)
    }

    fn send(&self, agent: &ureq::Agent, imei: &str, data: &[u8]) -> MtReply {
        let s = &self.settings;
        let hex = encode_hex(data);
        let form = [
            ("imei", imei),
            ("username", s.username.as_str()),
            ("password", s.password.as_str()),
            ("data", hex.as_str()),
            ("flush", "yes"),
        ];
        match agent.post(&s.url).send_form(form) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(4096)
                    .read_to_string()
                    .unwrap_or_default();
                parse_reply(status, &text)
            }
            // The error never carries the form (no password in logs).
            Err(e) => MtReply::Transient(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(parse_reply(200, "OK,12345\n"), MtReply::Ok("12345".into()));
        assert_eq!(
            parse_reply(200, "FAILED,15,Data too long"),
            MtReply::Failed(15, "Data too long".into())
        );
        assert!(matches!(parse_reply(503, "OK,1"), MtReply::Transient(_)));
        assert!(matches!(parse_reply(200, "hello"), MtReply::Transient(_)));
        assert!(matches!(
            parse_reply(200, "FAILED,x"),
            MtReply::Transient(_)
        ));
    }

    #[test]
    fn the_newest_answer_per_imei_is_kept_and_delivered_bytes_are_not_resent() {
        let m = Metrics::new();
        let q = MtQueue::new(2);
        let d = DeviceId::parse("dev-1").unwrap();
        assert_eq!(q.push("1", d.clone(), Arc::from(&[1u8][..]), &m), None);
        assert_eq!(
            q.push("1", d.clone(), Arc::from(&[2u8][..]), &m),
            Some("replaced")
        );
        assert_eq!(q.push("2", d.clone(), Arc::from(&[3u8][..]), &m), None);
        assert_eq!(
            q.push("3", d.clone(), Arc::from(&[4u8][..]), &m),
            Some("queue_full")
        );
        let mut got = Vec::new();
        for _ in 0..2 {
            let (imei, p) = q.next().unwrap();
            got.push((imei.clone(), p.data.to_vec()));
            q.delivered(imei, p.data);
        }
        got.sort();
        assert_eq!(got, vec![("1".into(), vec![2]), ("2".into(), vec![3])]);
        assert_eq!(
            q.push("1", d, Arc::from(&[2u8][..]), &m),
            Some("unchanged"),
            "delivered before"
        );
        q.close();
        assert!(q.next().is_none());
    }
}
