//! The end of the demo: what the server knows, through its own admin CLI.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::process;

/// Print the server's view of the demo device.
pub(crate) fn print(server: &Path, server_toml: &Path, admin_port: u16) -> Result<()> {
    let admin = format!("127.0.0.1:{admin_port}");
    for args in [
        vec!["get", "edgedevices"],
        vec!["get", "edgedevice", "demo-device-1", "-o", "yaml"],
    ] {
        println!("  $ flotta-server {}", args.join(" "));
        let out = process::stdout_of(
            Command::new(server)
                .arg("--config")
                .arg(server_toml)
                .arg("--admin-addr")
                .arg(&admin)
                .args(&args),
        )?;
        for line in out.lines() {
            println!("  {line}");
        }
    }
    Ok(())
}
