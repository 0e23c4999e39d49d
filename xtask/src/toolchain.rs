//! The cargo command line and environment that build the agent for one target.
//!
//! All cross settings are passed as *target-scoped* environment variables
//! (`CC_<triple>`, `CARGO_TARGET_<TRIPLE>_LINKER`, `CARGO_TARGET_<TRIPLE>_RUSTFLAGS`), never as
//! global `CC`/`RUSTFLAGS`, so build scripts and proc macros compiled for the host are not
//! affected.

use std::path::Path;

use crate::targets::{CcSetup, Target, Toolchain};

/// The dated nightly that builds std for targets without a prebuilt one (`-Zbuild-std`), as
/// named in `cross/nightly-toolchain` (which `scripts/setup.sh` installs). Pinned: a moving
/// nightly breaks build-std (and the ARMv6 agent) without any change here.
pub(crate) const NIGHTLY: &str = include_str!("../../cross/nightly-toolchain").trim_ascii();

/// `+<pinned nightly>`, the first argument of a build-std cargo or rustc call.
pub(crate) fn nightly_arg() -> String {
    format!("+{NIGHTLY}")
}

/// The package and binary `dist` builds.
pub(crate) const AGENT_PACKAGE: &str = "flotta-agent";

/// The package and binary `container` builds (into its image).
pub(crate) const SERVER_PACKAGE: &str = "flotta-server";

/// What `dist` builds the agent with: the size-tuned release profile.
pub(crate) const AGENT_PROFILE: &str = "release";

/// What `container` builds the server with (the workspace `Cargo.toml` says why).
pub(crate) const SERVER_PROFILE: &str = "server-release";

/// Variables removed from the child environment: a global `RUSTFLAGS` would silently replace the
/// per-target flags below, and `RUSTUP_TOOLCHAIN` (set by `cargo run`) would override
/// `rust-toolchain.toml` for the stable builds.
pub(crate) const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTUP_TOOLCHAIN",
    "RUSTUP_TOOLCHAIN_SOURCE",
];

/// Build options that apply to every target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BuildOptions {
    /// Build std with the unstable `immediate-abort` panic strategy (build-std targets only):
    /// smaller, but a panic then kills the process without printing any message.
    pub(crate) panic_immediate_abort: bool,
}

/// A fully described `cargo build` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildCommand {
    /// Arguments after `cargo` (starting with `+nightly-<date>` when needed).
    pub(crate) args: Vec<String>,
    /// Variables to set.
    pub(crate) env: Vec<(String, String)>,
}

impl BuildCommand {
    /// A shell-pasteable rendering, for logs and for reproducing a failure by hand.
    pub(crate) fn display(&self) -> String {
        let mut parts: Vec<String> = vec!["env".into()];
        parts.extend(
            self.env
                .iter()
                .map(|(k, v)| format!("{k}={}", shell_quote(v))),
        );
        parts.push("cargo".into());
        parts.extend(self.args.iter().map(|a| shell_quote(a)));
        parts.join(" ")
    }
}

/// Quote `s` for a POSIX shell if it contains anything but safe characters.
fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `x86_64-unknown-linux-musl` -> `x86_64_unknown_linux_musl` (the cc crate's spelling).
pub(crate) fn cc_suffix(triple: &str) -> String {
    triple.replace(['-', '.'], "_")
}

/// `x86_64-unknown-linux-musl` -> `X86_64_UNKNOWN_LINUX_MUSL` (cargo's spelling).
pub(crate) fn cargo_suffix(triple: &str) -> String {
    cc_suffix(triple).to_ascii_uppercase()
}

/// The rustc flags for `target`, in order.
pub(crate) fn rustflags(target: &Target, opts: BuildOptions) -> Vec<String> {
    let mut flags = Vec::new();
    if matches!(target.cc, CcSetup::Zig { .. }) {
        // zig brings its own musl, crt objects and libunwind; rustc must not add its copies.
        flags.push("-C".to_owned());
        flags.push("link-self-contained=no".to_owned());
    }
    if let Some(cpu) = target.target_cpu {
        flags.push("-C".to_owned());
        flags.push(format!("target-cpu={cpu}"));
    }
    if opts.panic_immediate_abort && target.toolchain == Toolchain::NightlyBuildStd {
        flags.push("-Zunstable-options".to_owned());
        flags.push("-Cpanic=immediate-abort".to_owned());
    }
    flags
}

/// The environment for building `target` from the repository at `root`.
pub(crate) fn build_env(target: &Target, root: &Path, opts: BuildOptions) -> Vec<(String, String)> {
    let cc = cc_suffix(target.triple);
    let cargo = cargo_suffix(target.triple);
    let mut env = Vec::new();
    match target.cc {
        CcSetup::MuslGcc => {
            env.push((format!("CC_{cc}"), "musl-gcc".to_owned()));
        }
        CcSetup::GnuCross { prefix } => {
            env.push((format!("CC_{cc}"), format!("{prefix}-gcc")));
            env.push((format!("AR_{cc}"), format!("{prefix}-ar")));
            env.push((
                format!("CARGO_TARGET_{cargo}_LINKER"),
                format!("{prefix}-gcc"),
            ));
        }
        CcSetup::Zig { wrapper } => {
            let wrapper = root.join(wrapper).display().to_string();
            env.push((format!("CC_{cc}"), wrapper.clone()));
            env.push((format!("CARGO_TARGET_{cargo}_LINKER"), wrapper));
        }
    }
    let flags = rustflags(target, opts);
    if !flags.is_empty() {
        env.push((format!("CARGO_TARGET_{cargo}_RUSTFLAGS"), flags.join(" ")));
    }
    env
}

/// The `cargo` arguments that build `package` (its binary of the same name) for `target` in
/// `profile`.
pub(crate) fn build_args(target: &Target, package: &str, profile: &str) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    if target.toolchain == Toolchain::NightlyBuildStd {
        args.push(nightly_arg());
    }
    args.extend(
        [
            "build",
            "--profile",
            profile,
            "--package",
            package,
            "--bin",
            package,
            "--target",
        ]
        .map(String::from),
    );
    args.push(target.triple.into());
    if target.toolchain == Toolchain::NightlyBuildStd {
        args.push("-Zbuild-std=std,panic_abort".into());
    }
    args
}

/// The full build command of `package` for `target` in `profile`.
pub(crate) fn build_command(
    target: &Target,
    root: &Path,
    opts: BuildOptions,
    (package, profile): (&str, &str),
) -> BuildCommand {
    BuildCommand {
        args: build_args(target, package, profile),
        env: build_env(target, root, opts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::find;

    fn env_of(triple: &str, opts: BuildOptions) -> Vec<(String, String)> {
        build_env(find(triple).expect("known"), Path::new("/repo"), opts)
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn suffixes_follow_cc_and_cargo_conventions() {
        assert_eq!(
            cc_suffix("arm-unknown-linux-musleabihf"),
            "arm_unknown_linux_musleabihf"
        );
        assert_eq!(
            cargo_suffix("x86_64-unknown-linux-musl"),
            "X86_64_UNKNOWN_LINUX_MUSL"
        );
    }

    #[test]
    fn x86_64_uses_musl_gcc_and_no_flags() {
        let env = env_of("x86_64-unknown-linux-musl", BuildOptions::default());
        assert_eq!(get(&env, "CC_x86_64_unknown_linux_musl"), Some("musl-gcc"));
        assert!(
            env.iter().all(|(k, _)| !k.ends_with("RUSTFLAGS")),
            "{env:?}"
        );
    }

    #[test]
    fn aarch64_uses_gnu_cross_gcc_as_cc_and_linker() {
        let env = env_of("aarch64-unknown-linux-musl", BuildOptions::default());
        assert_eq!(
            get(&env, "CC_aarch64_unknown_linux_musl"),
            Some("aarch64-linux-gnu-gcc")
        );
        assert_eq!(
            get(&env, "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER"),
            Some("aarch64-linux-gnu-gcc")
        );
    }

    #[test]
    fn armv6_uses_zig_wrapper_and_target_scoped_rustflags() {
        let env = env_of("arm-unknown-linux-musleabihf", BuildOptions::default());
        assert_eq!(
            get(&env, "CC_arm_unknown_linux_musleabihf"),
            Some("/repo/cross/zig-cc-armv6")
        );
        assert_eq!(
            get(&env, "CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_LINKER"),
            Some("/repo/cross/zig-cc-armv6")
        );
        assert_eq!(
            get(&env, "CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS"),
            Some("-C link-self-contained=no -C target-cpu=arm1176jzf-s")
        );
        assert!(get(&env, "RUSTFLAGS").is_none());
    }

    #[test]
    fn immediate_abort_only_touches_build_std_targets() {
        let opts = BuildOptions {
            panic_immediate_abort: true,
        };
        let arm = env_of("arm-unknown-linux-musleabihf", opts);
        let flags = get(&arm, "CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS").unwrap();
        assert!(
            flags.ends_with("-Zunstable-options -Cpanic=immediate-abort"),
            "{flags}"
        );
        let x86 = env_of("x86_64-unknown-linux-musl", opts);
        assert!(x86.iter().all(|(_, v)| !v.contains("immediate-abort")));
    }

    #[test]
    fn nightly_args_add_toolchain_and_build_std() {
        let args = build_args(
            find("arm-unknown-linux-musleabihf").unwrap(),
            AGENT_PACKAGE,
            AGENT_PROFILE,
        );
        assert_eq!(args.first(), Some(&nightly_arg()));
        assert!(
            NIGHTLY.starts_with("nightly-20"),
            "pinned by date: {NIGHTLY}"
        );
        assert_eq!(
            args.last().map(String::as_str),
            Some("-Zbuild-std=std,panic_abort")
        );
        let stable = build_args(
            find("aarch64-unknown-linux-musl").unwrap(),
            SERVER_PACKAGE,
            SERVER_PROFILE,
        );
        assert_eq!(
            stable[..7],
            [
                "build",
                "--profile",
                "server-release",
                "--package",
                "flotta-server",
                "--bin",
                "flotta-server"
            ]
        );
        assert!(stable.iter().all(|a| !a.starts_with("-Z")));
    }

    #[test]
    fn display_quotes_values_with_spaces() {
        let cmd = BuildCommand {
            args: vec!["build".into()],
            env: vec![("A".into(), "x y".into()), ("B".into(), "it's".into())],
        };
        assert_eq!(cmd.display(), r"env A='x y' B='it'\''s' cargo build");
    }
}
