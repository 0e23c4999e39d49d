//! `cargo xtask`: the project's build tasks (static cross builds, board table, full test run).
//!
//! Thin entry point: parse the command line and dispatch. Each concept lives in its own
//! module: the target table (`targets`), per-target toolchain environment (`toolchain`), tool
//! preflight (`preflight`), binary checks (`checks`), smoke runs (`smoke`), the size report
//! (`size`), board profiles (`boards`), the server's container image (`container`, run by
//! `container_test`), the test step list (`steps`), real server and agent
//! processes (`harness`) for the demo (`demo`) and the ARMv6 end-to-end run (`armv6_e2e`), the
//! emulated Raspberry Pi Zero boot test (`pi_boot`).
#![forbid(unsafe_code)]

mod armv6_e2e;
mod armv6_links;
mod boards;
mod checks;
mod cli;
mod container;
mod container_test;
mod cross_toml;
mod deb;
mod demo;
mod demo_report;
mod disk;
mod dist;
mod e2e_parse;
mod harness;
mod pi_boot;
mod preflight;
mod process;
mod size;
mod slowest;
mod smoke;
mod steps;
mod stress;
mod targets;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cli::Task;

/// The repository root: xtask lives in `<root>/xtask`.
fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn run(task: Task) -> anyhow::Result<()> {
    let root = repo_root();
    match task {
        Task::Help => print!("{}", cli::USAGE),
        Task::Boards => print!(
            "{}",
            boards::markdown_table(&boards::load_dir(&root.join("boards"))?)
        ),
        Task::Dist(opts) => dist::run(&root, &opts)?,
        Task::Container(opts) => container::run(&root, opts)?,
        Task::Armv6E2e => armv6_e2e::run(&root)?,
        Task::PiBoot { smoke: false } => pi_boot::run(&root)?,
        Task::PiBoot { smoke: true } => pi_boot::smoke(&root)?,
        Task::Test => steps::run_steps(&root, steps::STEPS)?,
        Task::StressTests(opts) => stress::run(&root, &opts)?,
        Task::Demo => demo::run(&root)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = cli::parse(std::env::args_os().skip(1)).and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
