//! Following `podman events`: a thread blocked in `read` on the stream
//! of this agent's container events (`--filter label=<managed>`), which
//! asks the supervisor for a look at each line, as the inbox watcher
//! does for files: no polling. The lines are not parsed (a look lists the
//! pods again, which is what counts), so nothing podman prints can upset
//! the agent.
//!
//! `podman events` streams from "now" (`PODMAN-4.3.md`, section 3): when
//! the stream ends (podman upgraded, its events file gone), the thread
//! asks for a look (what happened in between is in `pod ps`) and starts
//! it again after a back-off. If podman cannot be run at all, the thread
//! ends: the monitoring interval still looks.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::plan::MANAGED_LABEL;
use super::podman::PodmanCli;

/// The event stream's thread; stopped (and podman killed) on drop.
pub struct EventStream {
    child: Arc<Mutex<Option<Child>>>,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

/// Follow the events of `cli`'s podman, calling `look` for each.
pub fn follow(
    cli: &PodmanCli,
    look: impl Fn() + Send + 'static,
    log: impl Fn(&str) + Send + 'static,
) -> std::io::Result<EventStream> {
    let child = Arc::new(Mutex::new(None));
    let (stop, stopped) = channel();
    let cli = cli.clone();
    let shared = Arc::clone(&child);
    let thread = std::thread::Builder::new()
        .name("podman-events".into())
        .spawn(move || run(&cli, &shared, &stopped, &look, &log))?;
    Ok(EventStream {
        child,
        stop,
        thread: Some(thread),
    })
}

fn command(cli: &PodmanCli) -> Command {
    let mut c = Command::new(&cli.program);
    c.args(&cli.global_args)
        .args(["events", "--format", "json", "--filter", "type=container"])
        .arg("--filter")
        .arg(format!("label={MANAGED_LABEL}=true"))
        .envs(cli.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    c
}

fn run(
    cli: &PodmanCli,
    child: &Mutex<Option<Child>>,
    stopped: &Receiver<()>,
    look: &dyn Fn(),
    log: &dyn Fn(&str),
) {
    let mut delay = Duration::from_secs(1);
    loop {
        let began = Instant::now();
        let mut c = match command(cli).spawn() {
            Ok(c) => c,
            Err(e) => {
                log(&format!(
                    "podman events not followed ({e}); looking every monitoring interval"
                ));
                return;
            }
        };
        let mut out = c.stdout.take().expect("piped");
        *child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c);
        if !matches!(
            stopped.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Empty)
        ) {
            break;
        }
        let mut buf = [0u8; 8192];
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) if buf[..n].contains(&b'\n') => look(),
                Ok(_) => {}
            }
        }
        end(child);
        // What happened while no stream was read is in `pod ps`.
        look();
        if began.elapsed() > Duration::from_secs(60) {
            delay = Duration::from_secs(1);
        }
        match stopped.recv_timeout(delay) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => break,
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
    end(child);
}

/// Kill and reap the stream's podman, if one runs.
fn end(child: &Mutex<Option<Child>>) {
    if let Some(mut c) = child
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(c) = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            let _ = c.kill();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A "podman" that prints three event lines, then stays silent until
    /// killed: three looks, and dropping the stream ends it at once.
    #[test]
    fn each_line_is_a_look_and_drop_kills_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let fake = crate::workloads::fake_podman(
            dir.path(),
            "for i in 1 2 3; do echo '{\"Status\":\"died\"}'; sleep 0.1; done\nexec sleep 600\n",
        );
        let looks = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&looks);
        let cli = PodmanCli {
            program: fake,
            ..PodmanCli::default()
        };
        let stream = follow(
            &cli,
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
            },
            |_| {},
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while looks.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(looks.load(Ordering::SeqCst), 3);
        let t = Instant::now();
        drop(stream);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn no_podman_ends_the_thread_with_a_message() {
        let said = Arc::new(Mutex::new(String::new()));
        let keep = Arc::clone(&said);
        let cli = PodmanCli {
            program: "/nonexistent/podman".into(),
            ..PodmanCli::default()
        };
        let stream = follow(&cli, || {}, move |m| *keep.lock().unwrap() = m.to_owned()).unwrap();
        drop(stream);
        assert!(said.lock().unwrap().contains("podman events not followed"));
    }
}
