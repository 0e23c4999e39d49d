//! The `flotta-server` binary run as the kubectl-style CLI against a test
//! server's admin listener, and checks of how it ended.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use flotta_server::testing::TestServer;

/// Flotta's example manifests.
pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crd/examples");

/// Run `flotta-server --admin-addr <s> args...` with `stdin` piped in.
pub fn ctl(s: &TestServer, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flotta-server"));
    c.arg("--admin-addr")
        .arg(s.admin_addr.to_string())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // A command refused before it reads its input (a bad flag) may exit before
    // this write: a broken pipe then is its answer, not the test's failure
    // (this raced once in 20 stress runs); its status and output tell.
    match pipe.write_all(stdin.unwrap_or("").as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// The standard output of a run that succeeded.
pub fn ok(out: Output) -> String {
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "stdout: {text}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The standard error of a run that failed.
pub fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// The path of an example manifest.
pub fn example(name: &str) -> String {
    Path::new(EXAMPLES).join(name).display().to_string()
}
