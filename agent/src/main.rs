//! `flotta-agent`: thin binary over the `flotta_agent` library.

use std::path::PathBuf;
use std::process::ExitCode;

use flotta_agent::config::AgentConfig;

const USAGE: &str = "usage: flotta-agent <command>
commands:
  run [--config FILE] [--once]   run the agent (--once: one heartbeat, one upload window, exit;
                                 for devices woken by an RTC alarm)
  check-config [--config FILE]   load and validate the configuration, print it
{emit}
  selftest DIR                   exercise the on-disk queue in DIR (cross-build smoke test)
  --version                      print the version and target
configuration: compiled-in defaults, then FILE (TOML), then FLOTTA_AGENT_* environment variables
";

/// `emit [--config FILE] event|log ...`: only a leading `--config` is the
/// agent's; anything after the kind belongs to the record (`emit log -- --config`).
fn emit(args: &[String]) -> Result<(), String> {
    let split = if args.first().is_some_and(|a| a == "--config") {
        2.min(args.len())
    } else {
        0
    };
    let cfg = load(&args[..split])?;
    let payload = flotta_agent::emit::parse(&args[split..])?;
    let now = flotta_agent::clock::Clock::now_ms(&flotta_agent::clock::SystemClock);
    flotta_agent::inbox::submit(&cfg.data_dir, &payload, now)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn usage() -> String {
    USAGE.replace("{emit}", flotta_agent::emit::USAGE)
}

fn config_arg(args: &[String]) -> Result<Option<PathBuf>, String> {
    match args.iter().position(|a| a == "--config") {
        Some(i) => args
            .get(i + 1)
            .map(|p| Some(PathBuf::from(p)))
            .ok_or_else(|| "--config needs a FILE".into()),
        None => Ok(None),
    }
}

fn load(args: &[String]) -> Result<AgentConfig, String> {
    let file = config_arg(args)?;
    AgentConfig::load(file.as_deref(), |k| std::env::var(k).ok()).map_err(|e| e.to_string())
}

/// `sysexits.h`'s "configuration error".
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--version" | "-V") => {
            println!(
                "flotta-agent {} ({}-{})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH,
                std::env::consts::OS
            );
            Ok(())
        }
        Some("run") => match load(&args[1..]) {
            Ok(cfg) => flotta_agent::runtime::run(cfg, args.iter().any(|a| a == "--once"))
                .map_err(|e| e.to_string()),
            Err(e) => {
                // EX_CONFIG: the unit does not restart an agent that cannot
                // start until someone mends its configuration
                // (RestartPreventExitStatus=78).
                flotta_agent::journal::print(flotta_agent::journal::Priority::Err, &e);
                return ExitCode::from(EX_CONFIG);
            }
        },
        Some("check-config") => load(&args[1..]).map(|cfg| println!("{cfg:#?}")),
        Some("emit") => emit(&args[1..]),
        Some("selftest") => match args.get(1) {
            Some(dir) => flotta_agent::selftest::run(std::path::Path::new(dir))
                .map(|report| println!("{report}"))
                .map_err(|e| format!("selftest failed: {e}")),
            None => Err(usage()),
        },
        _ => {
            eprint!("{}", usage());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            flotta_agent::journal::print(flotta_agent::journal::Priority::Err, &e.to_string());
            ExitCode::FAILURE
        }
    }
}
