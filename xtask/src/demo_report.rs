//! The end of the demo: what the server knows, through its own admin CLI.

use anyhow::Result;

use crate::harness::Server;

/// The demo's device.
pub(crate) const DEVICE_ID: &str = "demo-device-1";

/// Print the server's view of the demo device.
pub(crate) fn print(server: &Server) -> Result<()> {
    for args in [
        vec!["get", "edgedevices"],
        vec!["get", "edgedevice", DEVICE_ID, "-o", "yaml"],
    ] {
        println!("  $ flotta-server {}", args.join(" "));
        for line in server.admin(&args)?.lines() {
            println!("  {line}");
        }
    }
    Ok(())
}
