//! The armhf `.deb` installed on the emulated board with `dpkg -i` (fetched over HTTP from
//! the host as 10.0.2.2).

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::qemu::{Console, show_value};
use super::*;

/// Serve `body` over HTTP/1.0 on the host's loopback (for any path) from a thread that
/// lives as long as the process; the port.
pub(super) fn serve_bytes(body: Vec<u8>) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut req = [0u8; 2048];
            let _ = stream.read(&mut req);
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    Ok(port)
}

/// Serve `deb` on the host's loopback (the guest's 10.0.2.2), fetch it with busybox wget,
/// `dpkg -i` it (the guest is Debian armel; the package is armhf like Raspberry Pi OS's
/// userland, whose ARMv6 static binary runs on armel), and check its unit runs.
pub(super) fn install_deb(deb: &Path, console: &mut Console) -> Result<()> {
    let body = std::fs::read(deb).with_context(|| format!("reading {}", deb.display()))?;
    let port = serve_bytes(body)?;
    let name = deb
        .file_name()
        .and_then(|n| n.to_str())
        .context("deb name")?
        .to_owned();
    let url = format!("http://{HOST_FROM_GUEST}:{port}/{name}");
    console.run_ok(
        &format!("busybox wget -q -O /tmp/{name} {url} && ls -l /tmp/{name}"),
        Duration::from_secs(120),
    )?;
    // The firstrun install's unit in /etc would shadow the package's: take it away so the
    // package's own unit (/usr/bin/flotta-agent) is what starts.
    let (status, out) = console.run(
        &format!(
            "systemctl disable --now flotta-agent; rm -f /etc/systemd/system/flotta-agent.service; \
             dpkg --add-architecture armhf; dpkg --force-confold --force-confdef -i /tmp/{name}"
        ),
        Duration::from_secs(300),
    )?;
    if status != 0 {
        bail!("`dpkg -i {name}` on the guest exited {status}:\n{out}");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let show = console.run_ok(
            "systemctl show flotta-agent -p ActiveState -p FragmentPath -p MainPID",
            COMMAND,
        )?;
        // The package's unit, running the package's binary (not the firstrun install's).
        let exe = match show_value(&show, "MainPID") {
            Some(pid) if pid != "0" => console
                .run(&format!("readlink /proc/{pid}/exe"), COMMAND)
                .map(|(_, o)| o.trim().to_owned())
                .unwrap_or_default(),
            _ => String::new(),
        };
        let packaged = show_value(&show, "FragmentPath")
            .is_some_and(|p| p.ends_with("lib/systemd/system/flotta-agent.service"))
            && exe == "/usr/bin/flotta-agent";
        if show_value(&show, "ActiveState") == Some("active") && packaged {
            println!(
                "  deb: {name} installed with dpkg -i on the guest; its unit runs: {}",
                show.replace('\n', ", ")
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "after `dpkg -i {name}` the package's flotta-agent is not active (main \
                 process: {exe:?}):\n{show}\ndpkg said:\n{out}"
            );
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}
