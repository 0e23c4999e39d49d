//! What the server asked of the Kubernetes API, phase by phase: its
//! `flotta_kubernetes_requests_total{verb,result}` scraped at each phase's
//! end, the difference per minute by verb, and the status writes still
//! queued (`flotta_kubernetes_status_pending`) when the phase ended.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::server::{Server, metric};
use crate::windows::{Clients, Phase};

/// The verbs the server counts, writes first.
const VERBS: [&str; 5] = ["create", "patch", "status", "delete", "get"];

/// The verbs that write.
const WRITES: [&str; 4] = ["create", "patch", "status", "delete"];

/// Request counts by (verb, result).
#[derive(Debug, Default, Clone)]
pub(crate) struct Requests(BTreeMap<(String, String), f64>);

/// The value of `label="…"` in a metric line's label set.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

impl Requests {
    /// The counters in a scrape of the server's metrics.
    fn parse(scrape: &str) -> Self {
        let prefix = "flotta_kubernetes_requests_total{";
        let mut counts = BTreeMap::new();
        for line in scrape.lines().filter(|l| l.starts_with(prefix)) {
            let Some((labels, value)) = line[prefix.len()..].split_once("} ") else {
                continue;
            };
            let (Some(verb), Some(result), Ok(value)) = (
                label(labels, "verb"),
                label(labels, "result"),
                value.trim().parse::<f64>(),
            ) else {
                continue;
            };
            counts.insert((verb.to_owned(), result.to_owned()), value);
        }
        Requests(counts)
    }

    /// These counts less `before`'s.
    fn since(&self, before: &Requests) -> Requests {
        Requests(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v - before.0.get(k).copied().unwrap_or(0.0)))
                .collect(),
        )
    }

    /// Requests of `verb` that succeeded.
    pub(crate) fn ok(&self, verb: &str) -> f64 {
        self.0
            .get(&(verb.to_owned(), "ok".to_owned()))
            .copied()
            .unwrap_or(0.0)
    }

    /// Writes that succeeded (every verb but `get`).
    pub(crate) fn writes(&self) -> f64 {
        WRITES.iter().map(|v| self.ok(v)).sum()
    }

    /// Requests that did not succeed, by result (`conflict`, `retry`, …).
    fn not_ok(&self) -> BTreeMap<&str, f64> {
        let mut by = BTreeMap::new();
        for ((_, result), n) in self.0.iter().filter(|((_, r), n)| r != "ok" && **n > 0.0) {
            *by.entry(result.as_str()).or_insert(0.0) += n;
        }
        by
    }
}

/// One phase's requests.
#[derive(Debug, Clone)]
pub(crate) struct KubePhase {
    pub(crate) name: String,
    pub(crate) elapsed: Duration,
    pub(crate) requests: Requests,
    /// Status writes still queued at the phase's end.
    pub(crate) pending: u64,
}

impl KubePhase {
    fn per_minute(&self, n: f64) -> f64 {
        n * 60.0 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Successful writes per minute.
    pub(crate) fn writes_per_minute(&self) -> f64 {
        self.per_minute(self.requests.writes())
    }
}

impl std::fmt::Display for KubePhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut verbs = String::new();
        for verb in VERBS {
            let n = self.requests.ok(verb);
            let _ = write!(verbs, " {verb} {n:.0} ({:.1}/min)", self.per_minute(n));
        }
        let not_ok = self.requests.not_ok();
        write!(
            f,
            "{:<13} {:>7.1} s: writes {:.1}/min;{verbs}; not ok: {}; status writes pending at the end: {}",
            self.name,
            self.elapsed.as_secs_f64(),
            self.writes_per_minute(),
            if not_ok.is_empty() {
                "none".to_owned()
            } else {
                format!("{not_ok:?}")
            },
            self.pending,
        )
    }
}

/// The server's Kubernetes requests and queued statuses now.
fn scrape(server: &Server) -> (Requests, u64) {
    let s = server.scrape();
    (
        Requests::parse(&s),
        metric(&s, "flotta_kubernetes_status_pending") as u64,
    )
}

/// Phases measured so far, each from the end of the previous one.
pub(crate) struct Recorder {
    label: String,
    last: Requests,
    since: Instant,
    pub(crate) phases: Vec<KubePhase>,
}

impl Recorder {
    /// A recorder whose first phase starts now (before the server starts:
    /// its counters start at 0).
    pub(crate) fn new(label: String) -> Self {
        Recorder {
            label,
            last: Requests::default(),
            since: Instant::now(),
            phases: Vec::new(),
        }
    }

    /// End phase `name` now: its requests and the statuses still queued,
    /// printed and kept.
    pub(crate) fn mark(&mut self, server: &Server, name: &str) -> &KubePhase {
        let (now, pending) = scrape(server);
        let phase = KubePhase {
            name: name.to_owned(),
            elapsed: self.since.elapsed(),
            requests: now.since(&self.last),
            pending,
        };
        println!("{} kube {phase}", self.label);
        self.last = now;
        self.since = Instant::now();
        self.phases.push(phase);
        self.phases.last().expect("just pushed")
    }

    /// The seeding phase in the cluster: from the server's start until its
    /// controller created every device's EdgeDeviceSignedRequest and
    /// EdgeDevice and wrote their statuses (no write queued, none for a
    /// second). Progress every 30 s; checked against the cluster's count.
    pub(crate) fn objects(&mut self, server: &Server, cluster: &Cluster, devices: usize) {
        let want = 2.0 * devices as f64;
        let deadline = Instant::now() + Duration::from_secs(6 * 3600);
        let mut report = Instant::now() + Duration::from_secs(30);
        let mut previous = f64::NAN;
        loop {
            let (now, pending) = scrape(server);
            let writes = now.since(&self.last).writes();
            if now.ok("create") >= want && pending == 0 && writes == previous {
                break;
            }
            previous = writes;
            if Instant::now() >= report {
                report += Duration::from_secs(30);
                println!(
                    "{} kube objects: {:.0?} so far, {:.0} of {want:.0} created, {:.0} statuses written, {pending} queued",
                    self.label,
                    self.since.elapsed(),
                    now.ok("create"),
                    now.ok("status"),
                );
            }
            assert!(
                Instant::now() < deadline,
                "the EdgeDevices were not all created within 6 h\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        let phase = self.mark(server, "objects").clone();
        println!(
            "{} kube objects: {devices} devices' EdgeDeviceSignedRequests and EdgeDevices created in {:.1?} ({:.0} creates/s, {:.1} statuses/s)",
            self.label,
            phase.elapsed,
            phase.requests.ok("create") / phase.elapsed.as_secs_f64(),
            phase.requests.ok("status") / phase.elapsed.as_secs_f64(),
        );
        let edgedevices = cluster.count("edgedevices");
        assert_eq!(edgedevices, devices, "EdgeDevices in the cluster");
    }

    /// Nothing uploads for at least `at_least` (presence may flip), then
    /// until no status write is queued: the phase `settle`.
    pub(crate) fn settle(&mut self, server: &Server, at_least: Duration) {
        std::thread::sleep(at_least);
        let deadline = Instant::now() + Duration::from_secs(3 * 3600);
        while scrape(server).1 > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
        }
        self.mark(server, "settle");
    }

    /// The paced phase ([`Clients::paced`]) with its requests counted in two
    /// parts: `paced warm-up` (the first `warm_up`, while presence flips
    /// only one way) and `paced steady` (the rest: the steady state).
    pub(crate) fn paced(
        &mut self,
        server: &Server,
        clients: &Clients,
        rate: f64,
        duration: Duration,
        warm_up: Duration,
    ) -> Phase {
        if duration <= warm_up {
            let phase = clients.paced(2, rate, duration);
            self.mark(server, "paced");
            return phase;
        }
        let phase = std::thread::scope(|scope| {
            let paced = scope.spawn(|| clients.paced(2, rate, duration));
            std::thread::sleep(warm_up);
            self.mark(server, "paced warm-up");
            paced.join().expect("the paced uploads")
        });
        self.mark(server, "paced steady");
        phase
    }
}

/// The phases of one run, one line each.
pub(crate) fn table(label: &str, phases: &[KubePhase]) -> String {
    let mut out = String::new();
    for phase in phases {
        let _ = writeln!(out, "{label} kube {phase}");
    }
    out
}
