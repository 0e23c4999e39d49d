//! `podman logs --follow --timestamps [--since TS] CONTAINER` as a
//! [`Follower`]: the process and two threads blocked in read on its
//! stdout (the container's stdout) and stderr (the container's stderr),
//! handing each line to a sink. Lines are read up to [`MAX_READ_BYTES`];
//! the rest of a longer line is skipped. Dropping the follower kills the
//! process; [`Follower::is_done`] says the stream ended (the container
//! stopped).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::logs::RawLine;
use super::podman::PodmanCli;

/// The most bytes of one line read (a line is cut further when queued).
pub const MAX_READ_BYTES: usize = 8192;

/// Where the lines go.
pub type Sink = Arc<dyn Fn(RawLine) + Send + Sync>;

/// A running `podman logs --follow` (module docs).
pub struct Follower {
    child: Arc<Mutex<Child>>,
    /// Reader threads still reading.
    open: Arc<AtomicUsize>,
}

impl Follower {
    /// Start following `container` of `cli`'s podman.
    pub fn start(
        cli: &PodmanCli,
        container: &str,
        since: Option<&str>,
        sink: Sink,
    ) -> std::io::Result<Self> {
        let mut c = Command::new(&cli.program);
        c.args(&cli.global_args)
            .args(["logs", "--follow", "--timestamps"]);
        if let Some(s) = since {
            c.args(["--since", s]);
        }
        c.arg(container)
            .envs(cli.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn()?;
        let open = Arc::new(AtomicUsize::new(2));
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        for (pipe, stderr) in [
            (Box::new(out) as Box<dyn Read + Send>, false),
            (Box::new(err), true),
        ] {
            let (sink, open, container) =
                (Arc::clone(&sink), Arc::clone(&open), container.to_owned());
            std::thread::Builder::new()
                .name("podman-logs".into())
                .spawn(move || {
                    read_lines(pipe, &|bytes| {
                        sink(RawLine {
                            container: container.clone(),
                            stderr,
                            bytes,
                        });
                    });
                    open.fetch_sub(1, Ordering::SeqCst);
                })?;
        }
        Ok(Self {
            child: Arc::new(Mutex::new(child)),
            open,
        })
    }

    /// The stream ended (both pipes closed).
    pub fn is_done(&self) -> bool {
        self.open.load(Ordering::SeqCst) == 0
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut c = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Each line of `r` (without its newline, at most [`MAX_READ_BYTES`])
/// to `each`, until the end.
fn read_lines(r: Box<dyn Read + Send>, each: &dyn Fn(Vec<u8>)) {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut r).take(MAX_READ_BYTES as u64);
        match limited.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        } else {
            // Longer than the limit: skip to the end of the line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let mut limited = (&mut r).take(MAX_READ_BYTES as u64);
                match limited.read_until(b'\n', &mut rest) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
        }
        each(std::mem::take(&mut line));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn lines_of_both_streams_arrive_and_long_ones_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        // Echoes its arguments, then a long line and a stderr line.
        let fake = crate::workloads::fake_podman(
            dir.path(),
            "echo \"args $*\"\nhead -c 20000 /dev/zero | tr '\\0' x; echo\necho oops >&2\necho end\n",
        );
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&got);
        let cli = PodmanCli {
            program: fake,
            ..PodmanCli::default()
        };
        let f = Follower::start(
            &cli,
            "web-app",
            Some("2026-12-02T07:39:42Z"),
            Arc::new(move |l| keep.lock().unwrap().push(l)),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f.is_done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(f.is_done());
        let got = got.lock().unwrap();
        let text = |l: &RawLine| String::from_utf8_lossy(&l.bytes).into_owned();
        let out: Vec<String> = got.iter().filter(|l| !l.stderr).map(text).collect();
        assert_eq!(
            out[0],
            "args logs --follow --timestamps --since 2026-12-02T07:39:42Z web-app"
        );
        assert_eq!(out[1].len(), MAX_READ_BYTES);
        assert_eq!(out[2], "end");
        let err: Vec<String> = got.iter().filter(|l| l.stderr).map(text).collect();
        assert_eq!(err, ["oops"]);
        assert!(got.iter().all(|l| l.container == "web-app"));
    }
}
