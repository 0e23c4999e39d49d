//! Workload stdout and stderr into the queue, for workloads whose
//! EdgeWorkload names a `logCollection` receiver.
//!
//! One `podman logs --follow --timestamps` per running container
//! ([`PodmanCli`]'s `follow_logs`), read by two threads blocked in read
//! (stdout, stderr). `podman logs -f` ends when its container stops, even
//! if it is restarted (`PODMAN-4.3.md`, section 5): the supervisor starts
//! it again, `--since` the last line taken, and the [`LogGate`] drops the
//! lines it already took (same timestamp or older), so a restart of the
//! follower neither loses nor repeats lines.
//!
//! Every line passes the workload's [`LogCap`]; what is over it is
//! counted and reported as one warn log line per pass ("N lines (B
//! bytes) over the cap dropped"). Lines longer than [`MAX_LINE_BYTES`]
//! are cut (with `…`), never split into several records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use flotta_proto::payload::{Level, LogLine, Payload};

use super::log_cap::{Limits, LogCap};

/// The longest line taken (bytes, the `…` included).
pub const MAX_LINE_BYTES: usize = 2048;

/// Where a queued record goes (the agent's queue).
pub type Emit = Arc<dyn Fn(Payload) + Send + Sync>;

/// A line as `podman logs --timestamps` printed it: the timestamp, a
/// space, the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// The container.
    pub container: String,
    /// From its stderr.
    pub stderr: bool,
    /// The line without its newline.
    pub bytes: Vec<u8>,
}

/// A timestamp podman prints (`2026-12-02T07:39:42.859348205Z`; Go trims
/// trailing zeros of the fraction; a local offset instead of `Z` on a
/// device with a time zone), kept in UTC and ordered by time: the part up
/// to the seconds, then nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    seconds: String,
    nanos: u32,
    /// As printed (for `--since`).
    raw: String,
}

impl Stamp {
    /// Parse the start of a line: `(stamp, rest)`; `None` when the line
    /// does not start with a timestamp.
    pub fn split(line: &str) -> Option<(Stamp, &str)> {
        let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
        // In UTC, whatever offset it was printed with: stamps from podman
        // logs and from log files, before and after a DST change, order
        // by time.
        let utc = super::ctr_log::to_utc(head);
        let head = utc.as_deref().unwrap_or(head);
        let b = head.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[10] != b'T' || b[13] != b':' {
            return None;
        }
        let seconds = head.get(..19)?;
        let tail = &head[19..];
        let nanos = match tail.strip_prefix('.') {
            Some(f) => {
                let digits: String = f.chars().take_while(char::is_ascii_digit).collect();
                if digits.is_empty() || digits.len() > 9 {
                    return None;
                }
                format!("{digits:0<9}").parse().ok()?
            }
            None => 0,
        };
        Some((
            Stamp {
                seconds: seconds.to_owned(),
                nanos,
                raw: head.to_owned(),
            },
            rest,
        ))
    }

    /// As podman printed it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

/// Cut `text` to [`MAX_LINE_BYTES`] at a character boundary, with `…`.
fn cut(text: &str) -> String {
    if text.len() <= MAX_LINE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_LINE_BYTES - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[derive(Default)]
struct GateState {
    /// Per workload.
    caps: BTreeMap<String, LogCap>,
    /// Per container and stream (stderr?): the last line taken. The two
    /// streams are read by two threads, so their lines arrive in no
    /// common order: each is deduplicated on its own.
    last: BTreeMap<(String, bool), Stamp>,
}

/// Dedup by timestamp and caps per workload, between the followers and
/// the queue (module docs). Shared by the followers' threads.
#[derive(Clone)]
pub struct LogGate {
    limits: Limits,
    emit: Emit,
    state: Arc<Mutex<GateState>>,
}

impl LogGate {
    /// A gate with these caps, queueing through `emit`.
    pub fn new(limits: Limits, emit: Emit) -> Self {
        Self {
            limits,
            emit,
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where a new follower of `container` starts (`--since`): the older
    /// of its streams' last lines taken, so that neither loses a line (the
    /// other's repeats are dropped).
    pub fn since(&self, container: &str) -> Option<String> {
        let st = self.state();
        [false, true]
            .iter()
            .filter_map(|e| st.last.get(&(container.to_owned(), *e)))
            .min()
            .map(|s| s.raw.clone())
    }

    /// A line from `workload`'s container: queued as a log line (stdout
    /// `info`, stderr `warn`, source the workload) unless already taken or
    /// over the cap.
    pub fn line(&self, workload: &str, line: &RawLine, now: Instant) {
        let text = String::from_utf8_lossy(&line.bytes);
        let text = text.trim_end_matches('\r');
        let (stamp, text) = match Stamp::split(text) {
            Some((s, t)) => (Some(s), t),
            None => (None, text),
        };
        {
            let mut st = self.state();
            if let Some(s) = &stamp {
                let key = (line.container.clone(), line.stderr);
                if st.last.get(&key).is_some_and(|l| s <= l) {
                    return;
                }
                st.last.insert(key, s.clone());
            }
            let limits = self.limits;
            let cap = st
                .caps
                .entry(workload.to_owned())
                .or_insert_with(|| LogCap::new(limits, now));
            if !cap.admit(text.len(), now) {
                return;
            }
        }
        (self.emit)(Payload::Log(LogLine {
            source: workload.to_owned(),
            level: if line.stderr {
                Level::Warn
            } else {
                Level::Info
            },
            message: cut(text),
        }));
    }

    /// Queue one warn line per workload that had lines dropped by its cap
    /// since the last call.
    pub fn report_drops(&self) {
        let reports: Vec<(String, super::log_cap::Dropped)> = self
            .state()
            .caps
            .iter_mut()
            .filter_map(|(w, c)| Some((w.clone(), c.take_report()?)))
            .collect();
        for (workload, d) in reports {
            (self.emit)(Payload::Log(LogLine {
                source: workload,
                level: Level::Warn,
                message: format!(
                    "{} log lines ({} bytes) over the cap of {} lines a second and {} bytes a day were dropped",
                    d.lines, d.bytes, self.limits.lines_per_second, self.limits.bytes_per_day
                ),
            }));
        }
    }

    /// The last line taken per container and stream (`<container>/out`,
    /// `<container>/err`; timestamps as printed), to keep across restarts
    /// of the agent.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.state()
            .last
            .iter()
            .map(|((c, err), s)| {
                let stream = if *err { "err" } else { "out" };
                (format!("{c}/{stream}"), s.raw.clone())
            })
            .collect()
    }

    /// Take up a [`snapshot`](Self::snapshot) (entries that do not parse
    /// are skipped: their streams start from the beginning).
    pub fn restore(&self, snapshot: &BTreeMap<String, String>) {
        let mut st = self.state();
        for (key, raw) in snapshot {
            let parsed = match key.rsplit_once('/') {
                Some((c, "out")) => Some((c, false)),
                Some((c, "err")) => Some((c, true)),
                _ => None,
            };
            if let (Some((c, err)), Some((s, _))) = (parsed, Stamp::split(raw)) {
                st.last.insert((c.to_owned(), err), s);
            }
        }
    }

    /// Forget containers and workloads that are gone.
    pub fn retain(&self, containers: &[String], workloads: &[String]) {
        let mut st = self.state();
        st.last.retain(|(c, _), _| containers.contains(c));
        st.caps.retain(|w, _| workloads.contains(w));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> (LogGate, Arc<Mutex<Vec<Payload>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&got);
        let limits = Limits {
            lines_per_second: 3,
            bytes_per_day: 1 << 20,
        };
        (
            LogGate::new(limits, Arc::new(move |p| keep.lock().unwrap().push(p))),
            got,
        )
    }

    fn raw(text: &str, stderr: bool) -> RawLine {
        RawLine {
            container: "web-app".into(),
            stderr,
            bytes: text.as_bytes().to_vec(),
        }
    }

    fn messages(got: &Mutex<Vec<Payload>>) -> Vec<(Level, String)> {
        got.lock()
            .unwrap()
            .iter()
            .map(|p| match p {
                Payload::Log(l) => (l.level, l.message.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn timestamps_parse_and_order_whatever_their_precision() {
        let (a, rest) = Stamp::split("2026-12-02T07:39:42.8593482Z hello world").unwrap();
        assert_eq!(rest, "hello world");
        let (b, _) = Stamp::split("2026-12-02T07:39:42.85934821Z x").unwrap();
        let (c, _) = Stamp::split("2026-12-02T07:39:43Z x").unwrap();
        assert!(a < b && b < c, "{a:?} {b:?} {c:?}");
        assert_eq!(a.as_str(), "2026-12-02T07:39:42.859348200Z", "kept in UTC");
        // The same instant printed with a local offset is the same stamp.
        let (local, _) = Stamp::split("2026-12-02T08:39:42.8593482+01:00 x").unwrap();
        assert_eq!(local, a);
        assert!(Stamp::split("hello world").is_none());
        assert!(Stamp::split("2026-12-02T07:39:42.Z x").is_none());
        assert!(Stamp::split("").is_none());
    }

    #[test]
    fn lines_already_taken_are_dropped_and_stderr_is_warn() {
        let (g, got) = gate();
        let t = Instant::now();
        g.line("web", &raw("2026-12-02T07:39:42.1Z one", false), t);
        g.line("web", &raw("2026-12-02T07:39:42.2Z two", true), t);
        // A follower started again --since the older last line repeats
        // lines of both streams.
        g.line("web", &raw("2026-12-02T07:39:42.2Z two", true), t);
        g.line("web", &raw("2026-12-02T07:39:42.1Z one", false), t);
        assert_eq!(
            g.since("web-app").as_deref(),
            Some("2026-12-02T07:39:42.100000000Z")
        );
        assert_eq!(
            messages(&got),
            [(Level::Info, "one".into()), (Level::Warn, "two".into())]
        );
    }

    #[test]
    fn each_stream_is_deduplicated_on_its_own_and_since_is_the_older() {
        let (g, got) = gate();
        let t = Instant::now();
        // stdout's reader runs ahead of stderr's: an earlier stderr line
        // arrives after a later stdout line, and is kept.
        g.line("web", &raw("2026-12-02T07:39:42.1Z up", false), t);
        g.line("web", &raw("2026-12-02T07:39:42.3Z tick", false), t);
        g.line("web", &raw("2026-12-02T07:39:42.2Z oops", true), t);
        assert_eq!(
            g.since("web-app").as_deref(),
            Some("2026-12-02T07:39:42.200000000Z")
        );
        // A new follower --since the older: stdout's repeat is dropped.
        g.line("web", &raw("2026-12-02T07:39:42.3Z tick", false), t);
        assert_eq!(messages(&got).len(), 3);
        // And the state survives a restart of the agent.
        let (h, _) = gate();
        h.restore(&g.snapshot());
        assert_eq!(h.since("web-app"), g.since("web-app"));
        assert_eq!(g.snapshot().len(), 2);
    }

    #[test]
    fn over_the_cap_is_counted_and_reported_and_long_lines_are_cut() {
        let (g, got) = gate();
        let t = Instant::now();
        for i in 0..10 {
            g.line(
                "web",
                &raw(&format!("2026-12-02T07:39:42.{i}Z line {i}"), false),
                t,
            );
        }
        g.report_drops();
        g.report_drops();
        let m = messages(&got);
        assert_eq!(m.len(), 4, "{m:?}");
        assert_eq!(m[3].0, Level::Warn);
        assert!(
            m[3].1.starts_with("7 log lines (42 bytes) over the cap"),
            "{m:?}"
        );
        let long = format!("2026-12-02T07:39:50Z {}", "é".repeat(3000));
        g.line(
            "web",
            &raw(&long, false),
            t + std::time::Duration::from_secs(2),
        );
        let m = messages(&got);
        let last = &m.last().unwrap().1;
        assert!(
            last.len() <= MAX_LINE_BYTES && last.ends_with('…'),
            "{}",
            last.len()
        );
    }
}
