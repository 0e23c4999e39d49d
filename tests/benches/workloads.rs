//! Workloads on a device, measured on a real podman (4.3.1 here, a private
//! storage: `flotta_e2e::podman`) with busybox pods. Printed, not asserted:
//!
//! - **converge**: one reconcile pass deploying 10, then 50 workloads
//!   from nothing (`kube play` each), the pass after it (nothing to do:
//!   what every look costs), and the pass removing them all;
//! - **log followers** for 10 running containers that print a line every
//!   2 s, side by side: the previous design (a `podman logs --follow`
//!   process per container: their memory and wake-ups) and this one (the
//!   `k8s-file` log read by one inotify thread per container, `tail.rs`:
//!   the agent's memory growth and its threads' wake-ups), with the lines
//!   each received;
//! - **the agent with 10 workloads running** (release build, real server,
//!   logs collected): its resident memory, the podman processes it keeps
//!   (`podman events`), and wake-ups per minute of each.
//!
//! Run: `cargo bench -p flotta-e2e --bench workloads` (about 5 minutes, most
//! of it podman starting 60 pods; `FLOTTA_BENCH_SAMPLE_SECONDS` sets the
//! sampling periods, default 30).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark binary

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use flotta_agent::workloads::follow::{Follower, Sink};
use flotta_agent::workloads::secrets::Secrets;
use flotta_agent::workloads::{Podman, PodmanCli, reconcile};
use flotta_e2e::podman::{BUSYBOX_IMAGE, TestPodman};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir, release_agent_dir};
use flotta_e2e::procstat::{Sample, children_sample, sample};
use flotta_e2e::wait::wait_for;
use serde_json::{Value, json};

fn sample_seconds() -> u64 {
    std::env::var("FLOTTA_BENCH_SAMPLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn workload(name: &str, script: &str) -> Value {
    json!({
        "name": name,
        "specification": format!(
            "containers:\n- name: app\n  image: {BUSYBOX_IMAGE}\n  command: [sh, -c, '{script}']\n"
        ),
    })
}

fn running(p: &TestPodman) -> usize {
    p.ok(&[
        "pod",
        "ps",
        "--filter",
        "status=running",
        "--format",
        "{{.Name}}",
    ])
    .lines()
    .count()
}

fn converge(p: &TestPodman, n: usize) {
    let files = tempfile::tempdir().unwrap();
    let mut cli = p.cli.clone();
    let ws: Vec<Value> = (0..n)
        .map(|i| workload(&format!("c{i}"), "exec sleep 600"))
        .collect();
    let t = Instant::now();
    let pass = reconcile(&mut cli, files.path(), &ws, &Secrets::new(), false).unwrap();
    let deploy = t.elapsed();
    assert_eq!(pass.deployed.len(), n, "{:?}", pass.failed);
    wait_for("every pod running", Duration::from_secs(120), || {
        running(p) == n
    });
    let t = Instant::now();
    assert!(
        reconcile(&mut cli, files.path(), &ws, &Secrets::new(), false)
            .unwrap()
            .is_noop()
    );
    let look = t.elapsed();
    let t = Instant::now();
    let pass = reconcile(&mut cli, files.path(), &[], &Secrets::new(), false).unwrap();
    let remove = t.elapsed();
    assert_eq!(pass.removed.len(), n);
    println!(
        "  {n:>3} workloads: deploy {:>6.1} s ({:.2} s each) | pass with nothing to do {:>5.0} ms | remove all {:>5.1} s",
        deploy.as_secs_f64(),
        deploy.as_secs_f64() / n as f64,
        look.as_secs_f64() * 1000.0,
        remove.as_secs_f64()
    );
}

/// Lines a follower hands out, counted.
fn counting() -> (Sink, Arc<AtomicUsize>) {
    let lines = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&lines);
    (
        Arc::new(move |_| {
            n.fetch_add(1, Ordering::Relaxed);
        }),
        lines,
    )
}

fn followers(p: &TestPodman, n: usize) {
    let files = tempfile::tempdir().unwrap();
    let mut cli: PodmanCli = p.cli.clone();
    let ws: Vec<Value> = (0..n)
        .map(|i| workload(&format!("f{i}"), "while true; do echo tick; sleep 2; done"))
        .collect();
    reconcile(&mut cli, files.path(), &ws, &Secrets::new(), false).unwrap();
    wait_for("every pod running", Duration::from_secs(120), || {
        running(p) == n
    });
    let secs = sample_seconds();
    let me = std::process::id();
    println!(
        "\n== log followers for {n} running containers (a line every 2 s each), {secs} s sampled"
    );
    println!(
        "  {:<34} {:>9} {:>12} {:>14} {:>8}",
        "design", "processes", "memory KiB", "wake-ups/min", "lines"
    );

    // Before: a `podman logs --follow` per container.
    let (sink, lines) = counting();
    let old: Vec<Follower> = (0..n)
        .map(|i| Follower::start(&cli, &format!("f{i}-app"), None, Arc::clone(&sink)).unwrap())
        .collect();
    sleep(Duration::from_secs(5));
    let (procs, s0) = children_sample(me);
    let l0 = lines.load(Ordering::Relaxed);
    sleep(Duration::from_secs(secs));
    let (_, s1) = children_sample(me);
    let got = lines.load(Ordering::Relaxed) - l0;
    row(
        "podman logs --follow (before)",
        procs,
        s1.rss_kib,
        s0,
        s1,
        secs,
        got,
    );
    drop(old);
    sleep(Duration::from_secs(1));

    // Now: the log files, one inotify thread each.
    let (sink, lines) = counting();
    let before = sample(me, None).rss_kib;
    let new: Vec<_> = (0..n)
        .map(|i| {
            cli.follow_logs(&format!("f{i}-app"), None, Arc::clone(&sink))
                .unwrap()
        })
        .collect();
    sleep(Duration::from_secs(5));
    let s0 = sample(me, Some("ctr-log"));
    let l0 = lines.load(Ordering::Relaxed);
    sleep(Duration::from_secs(secs));
    let s1 = sample(me, Some("ctr-log"));
    let got = lines.load(Ordering::Relaxed) - l0;
    let grew = s1.rss_kib.saturating_sub(before);
    row(
        "k8s-file read by the agent (now)",
        0,
        grew,
        s0,
        s1,
        secs,
        got,
    );
    println!(
        "  (now: memory is what the agent process grew by, wake-ups those of its {n} threads)"
    );
    drop(new);
    reconcile(&mut cli, files.path(), &[], &Secrets::new(), false).unwrap();
}

fn row(design: &str, procs: usize, kib: u64, s0: Sample, s1: Sample, secs: u64, lines: usize) {
    let per_min = (s1.voluntary - s0.voluntary) as f64 * 60.0 / secs as f64;
    println!("  {design:<34} {procs:>9} {kib:>12} {per_min:>14.0} {lines:>8}");
}

fn agent_with_workloads(p: &TestPodman, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProc::start(
        &bin_dir().unwrap(),
        dir.path(),
        "default_heartbeat_period_seconds = 60\ncontroller_interval_seconds = 1\n",
    )
    .unwrap();
    let url = format!("https://localhost:{}", server.api_addr.port());
    let args: Vec<String> = p.cli.global_args.iter().map(|a| format!("{a:?}")).collect();
    let toml = format!(
        "heartbeat_period_seconds = 60\n[workloads]\npodman_args = [{}]\n\
         play_args = [\"--network\", \"none\"]\npull_on_link_profiles = []\nstop_timeout_seconds = 1\n",
        args.join(", ")
    );
    let release = release_agent_dir().unwrap();
    let mut agent = AgentProc::configure(
        &release,
        dir.path(),
        "bench-1",
        &url,
        &server.factory_dir,
        &toml,
    )
    .unwrap();
    for (k, v) in &p.cli.env {
        agent.set_env(k, v);
    }
    agent.restart().unwrap();
    wait_for("the first window", Duration::from_secs(60), || {
        agent.windows_ended() >= 1
    });
    for i in 0..n {
        server.apply(&format!(
            "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeWorkload\n\
             metadata:\n  name: a{i}\n  namespace: default\nspec:\n  type: pod\n  device: bench-1\n  \
             logCollection: syslog\n  pod:\n    spec:\n      containers:\n      - name: app\n        \
             image: {BUSYBOX_IMAGE}\n        command: [sh, -c, 'while true; do echo tick; sleep 60; done']\n"
        ));
    }
    let t = Instant::now();
    wait_for("every workload running", Duration::from_secs(300), || {
        running(p) == n
    });
    let converged = t.elapsed();
    // The pass after the last pod, the followers started, tokio's idle
    // blocking thread retired.
    sleep(Duration::from_secs(15));
    let secs = sample_seconds() * 2;
    let pid = agent.pid().unwrap();
    let (a0, (kids, c0)) = (sample(pid, None), children_sample(pid));
    sleep(Duration::from_secs(secs));
    let (a1, (_, c1)) = (sample(pid, None), children_sample(pid));
    println!(
        "\n== the agent (release) with {n} workloads running, logs collected, {secs} s sampled"
    );
    println!(
        "  converged (applied on the server -> every pod running; the agent takes a new \
         configuration at its next window, every 60 s on ethernet): {:.1} s",
        converged.as_secs_f64()
    );
    println!(
        "  agent: {} KiB resident, {:.1} wake-ups/min (all threads)",
        a1.rss_kib,
        (a1.voluntary - a0.voluntary) as f64 * 60.0 / secs as f64
    );
    println!(
        "  its podman processes ({kids}: `podman events`): {} KiB resident, {:.1} wake-ups/min",
        c1.rss_kib,
        (c1.voluntary.saturating_sub(c0.voluntary)) as f64 * 60.0 / secs as f64
    );
    agent.stop().unwrap();
}

fn main() {
    let p = TestPodman::start();
    println!("== converge: one reconcile pass, real podman, busybox pods");
    converge(&p, 10);
    converge(&p, 50);
    followers(&p, 10);
    agent_with_workloads(&p, 10);
}
