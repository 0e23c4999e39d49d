//! `flotta-agent`: thin binary over the `flotta_agent` library.

use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: flotta-agent <command>\n\
     commands:\n  \
       --version      print the version and target\n  \
       selftest DIR   exercise the on-disk queue in DIR (used by the cross-build smoke test)\n"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version" | "-V") => {
            println!(
                "flotta-agent {} ({}-{})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH,
                std::env::consts::OS
            );
            ExitCode::SUCCESS
        }
        Some("selftest") => {
            let Some(dir) = args.get(1) else {
                eprint!("{}", usage());
                return ExitCode::from(2);
            };
            match flotta_agent::selftest::run(std::path::Path::new(dir)) {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("selftest failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprint!("{}", usage());
            ExitCode::from(2)
        }
    }
}
