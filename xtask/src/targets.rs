//! The table of targets `cargo xtask dist` builds the agent for.
//!
//! Everything target-specific lives here as data: which toolchain builds it, which C compiler
//! and linker it needs, what the finished ELF must look like, how to run it on this x86_64
//! machine and how big it may get. The code that acts on it is in `toolchain`, `checks`,
//! `smoke` and `size`.

/// The Rust toolchain a target is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Toolchain {
    /// The workspace's pinned stable toolchain (`rust-toolchain.toml`), with a prebuilt std.
    Stable,
    /// `cargo +nightly` with `-Zbuild-std`, for targets that have no prebuilt std.
    NightlyBuildStd,
}

/// How C code (ring's assembly and C) is compiled, and how the final binary is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CcSetup {
    /// Debian's `musl-gcc` wrapper compiles C; rustc links with its self-contained musl.
    MuslGcc,
    /// A GNU cross gcc (`<prefix>-gcc`) compiles C and drives the link; rustc supplies musl.
    GnuCross {
        /// The binutils/gcc prefix, e.g. `aarch64-linux-gnu`.
        prefix: &'static str,
    },
    /// `zig cc` through a wrapper script under `cross/`, as C compiler *and* linker; zig
    /// supplies musl, crt objects and libunwind, so rustc's self-contained linking is off.
    Zig {
        /// The wrapper script, relative to the repository root.
        wrapper: &'static str,
    },
}

/// How the built binary is run on the (x86_64) build machine for the smoke test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runner {
    /// Run the binary directly.
    Native,
    /// Run it under qemu user-mode emulation, always with an explicit `-cpu`.
    Qemu {
        /// The qemu-user binary, e.g. `qemu-arm`.
        program: &'static str,
        /// The CPU model used when no board profile names one for this target.
        default_cpu: &'static str,
    },
}

/// One cross-compilation target and everything needed to build and verify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    /// The Rust target triple.
    pub(crate) triple: &'static str,
    /// Which toolchain builds it.
    pub(crate) toolchain: Toolchain,
    /// C compiler and linker setup.
    pub(crate) cc: CcSetup,
    /// `-C target-cpu` for the whole build (std included), if the target needs one.
    pub(crate) target_cpu: Option<&'static str>,
    /// Substring `file` prints for this architecture (e.g. `ARM aarch64`).
    pub(crate) file_arch: &'static str,
    /// Lines that must appear in `readelf -A` (ARM build attributes), as (tag, value).
    pub(crate) arm_attributes: &'static [(&'static str, &'static str)],
    /// How to run it here.
    pub(crate) runner: Runner,
    /// The stripped binary must stay strictly under this many bytes, if set.
    pub(crate) size_budget_bytes: Option<u64>,
}

/// 2.5 MiB: the ARMv6 (Raspberry Pi Zero) agent must stay under this, stripped.
pub(crate) const ARMV6_BUDGET_BYTES: u64 = 2_621_440;

/// Every target `cargo xtask dist` knows, in build order.
pub(crate) const TARGETS: &[Target] = &[
    Target {
        triple: "x86_64-unknown-linux-musl",
        toolchain: Toolchain::Stable,
        cc: CcSetup::MuslGcc,
        target_cpu: None,
        file_arch: "x86-64",
        arm_attributes: &[],
        runner: Runner::Native,
        size_budget_bytes: None,
    },
    Target {
        triple: "aarch64-unknown-linux-musl",
        toolchain: Toolchain::Stable,
        cc: CcSetup::GnuCross {
            prefix: "aarch64-linux-gnu",
        },
        target_cpu: None,
        file_arch: "ARM aarch64",
        arm_attributes: &[],
        runner: Runner::Qemu {
            program: "qemu-aarch64",
            default_cpu: "cortex-a53",
        },
        size_budget_bytes: None,
    },
    Target {
        triple: "arm-unknown-linux-musleabihf",
        toolchain: Toolchain::NightlyBuildStd,
        cc: CcSetup::Zig {
            wrapper: "cross/zig-cc-armv6",
        },
        target_cpu: Some("arm1176jzf-s"),
        file_arch: "ARM, EABI5",
        arm_attributes: &[
            ("Tag_CPU_arch", "v6"),
            ("Tag_ABI_VFP_args", "VFP registers"),
        ],
        runner: Runner::Qemu {
            program: "qemu-arm",
            default_cpu: "arm1176",
        },
        size_budget_bytes: Some(ARMV6_BUDGET_BYTES),
    },
];

/// Look a target up by its triple.
pub(crate) fn find(triple: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.triple == triple)
}

/// All known triples, for error messages.
pub(crate) fn known_triples() -> String {
    TARGETS
        .iter()
        .map(|t| t.triple)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_are_unique_and_findable() {
        for (i, t) in TARGETS.iter().enumerate() {
            assert_eq!(find(t.triple), Some(t));
            assert!(
                TARGETS[i + 1..].iter().all(|o| o.triple != t.triple),
                "{}",
                t.triple
            );
        }
        assert_eq!(find("riscv64gc-unknown-linux-musl"), None);
    }

    #[test]
    fn only_armv6_needs_build_std_and_has_the_budget() {
        let armv6 = find("arm-unknown-linux-musleabihf").expect("armv6 target");
        assert_eq!(armv6.toolchain, Toolchain::NightlyBuildStd);
        assert_eq!(armv6.size_budget_bytes, Some(2_621_440));
        assert_eq!(armv6.target_cpu, Some("arm1176jzf-s"));
        assert!(matches!(
            armv6.runner,
            Runner::Qemu {
                default_cpu: "arm1176",
                ..
            }
        ));
    }
}
