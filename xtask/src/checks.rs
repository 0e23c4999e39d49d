//! Checks on a built binary: fully static, stripped, right architecture, right ARM ABI.
//!
//! The facts come from `file` and binutils' `readelf` (run with `LC_ALL=C`); `verify` is a pure
//! function over their output so it is tested on real captured text as well as live binaries.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::process::stdout_of;
use crate::targets::Target;

/// What the inspection tools said about one binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Inspection {
    /// `file -b` output.
    pub(crate) file: String,
    /// `readelf -lW` output (program headers).
    pub(crate) program_headers: String,
    /// `readelf -dW` output (dynamic section).
    pub(crate) dynamic: String,
    /// `readelf -A` output (architecture-specific attributes; empty on non-ARM).
    pub(crate) attributes: String,
}

fn tool(program: &str, args: &[&str], path: &Path) -> Result<String> {
    stdout_of(
        Command::new(program)
            .args(args)
            .arg(path)
            .env("LC_ALL", "C"),
    )
}

/// Run the inspection tools on `path`.
pub(crate) fn inspect(path: &Path) -> Result<Inspection> {
    Ok(Inspection {
        file: tool("file", &["-b"], path)?,
        program_headers: tool("readelf", &["-lW"], path)?,
        dynamic: tool("readelf", &["-dW"], path)?,
        attributes: tool("readelf", &["-A"], path)?,
    })
}

/// Every way `insp` falls short of what `target` requires; empty means it passed.
pub(crate) fn problems(target: &Target, insp: &Inspection) -> Vec<String> {
    let mut out = Vec::new();
    // `static-pie linked` is also fully static (no interpreter, no shared libraries); rustc
    // produces it for x86_64 musl, and it keeps ASLR.
    if !(insp.file.contains("statically linked") || insp.file.contains("static-pie linked")) {
        out.push(format!(
            "`file` does not say it is statically linked: {}",
            insp.file.trim()
        ));
    }
    if !insp.file.contains(target.file_arch) {
        out.push(format!(
            "`file` does not say `{}`: {}",
            target.file_arch,
            insp.file.trim()
        ));
    }
    if !insp.file.contains(", stripped") {
        out.push(format!(
            "not stripped (size budgets are for stripped binaries): {}",
            insp.file.trim()
        ));
    }
    if insp
        .program_headers
        .lines()
        .any(|l| l.trim_start().starts_with("INTERP"))
    {
        out.push("has a PT_INTERP program header (needs a dynamic loader)".to_owned());
    }
    for line in insp.dynamic.lines().filter(|l| l.contains("(NEEDED)")) {
        out.push(format!("needs a shared library: {}", line.trim()));
    }
    for (tag, value) in target.arm_attributes {
        if !has_attribute(&insp.attributes, tag, value) {
            out.push(format!("`readelf -A` lacks `{tag}: {value}`"));
        }
    }
    out
}

/// Whether `readelf -A` output has the line `<tag>: <value>` (exactly that value).
fn has_attribute(attributes: &str, tag: &str, value: &str) -> bool {
    attributes.lines().any(|line| {
        line.trim()
            .split_once(':')
            .is_some_and(|(t, v)| t.trim() == tag && v.trim() == value)
    })
}

/// Inspect `path` and fail with every problem found.
pub(crate) fn verify(target: &Target, path: &Path) -> Result<()> {
    let insp = inspect(path)?;
    let found = problems(target, &insp);
    if !found.is_empty() {
        bail!(
            "{} fails its checks:\n  - {}",
            path.display(),
            found.join("\n  - ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::find;

    const ARM_FILE: &str = "ELF 32-bit LSB executable, ARM, EABI5 version 1 (SYSV), \
                            statically linked, stripped\n";
    const ARM_ATTRS: &str = "Attribute Section: aeabi\nFile Attributes\n  \
        Tag_CPU_name: \"arm1176jzf-s\"\n  Tag_CPU_arch: v6\n  Tag_FP_arch: VFPv2\n  \
        Tag_ABI_VFP_args: VFP registers\n";
    const STATIC_HEADERS: &str = "Elf file type is EXEC (Executable file)\nProgram Headers:\n  \
        Type Offset VirtAddr\n  LOAD 0x000000 0x00010000\n  GNU_STACK 0x000000 0x00000000\n";

    fn armv6_ok() -> Inspection {
        Inspection {
            file: ARM_FILE.into(),
            program_headers: STATIC_HEADERS.into(),
            dynamic: "\nThere is no dynamic section in this file.\n".into(),
            attributes: ARM_ATTRS.into(),
        }
    }

    fn armv6() -> &'static Target {
        find("arm-unknown-linux-musleabihf").unwrap()
    }

    #[test]
    fn a_static_stripped_armv6_hard_float_binary_passes() {
        assert_eq!(problems(armv6(), &armv6_ok()), Vec::<String>::new());
    }

    #[test]
    fn armv7_or_soft_float_is_rejected() {
        let mut insp = armv6_ok();
        insp.attributes = insp
            .attributes
            .replace("Tag_CPU_arch: v6", "Tag_CPU_arch: v7");
        insp.attributes = insp
            .attributes
            .replace("\n  Tag_ABI_VFP_args: VFP registers", "");
        let found = problems(armv6(), &insp);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("Tag_CPU_arch: v6"));
        assert!(found[1].contains("Tag_ABI_VFP_args"));
    }

    #[test]
    fn v6k_is_not_v6() {
        let mut insp = armv6_ok();
        insp.attributes = insp
            .attributes
            .replace("Tag_CPU_arch: v6", "Tag_CPU_arch: v6K");
        assert_eq!(problems(armv6(), &insp).len(), 1);
    }

    #[test]
    fn dynamic_unstripped_or_wrong_arch_binaries_are_rejected() {
        let insp = Inspection {
            file: "ELF 64-bit LSB pie executable, x86-64, dynamically linked, \
                   interpreter /lib64/ld-linux-x86-64.so.2, not stripped"
                .into(),
            program_headers: "  INTERP 0x000318 0x0000000000000318\n".into(),
            dynamic: " 0x0000000000000001 (NEEDED) Shared library: [libc.so.6]\n".into(),
            attributes: String::new(),
        };
        let found = problems(armv6(), &insp);
        // not static, wrong arch, not stripped, INTERP, NEEDED, and both ARM attributes.
        assert_eq!(found.len(), 7, "{found:?}");
    }

    #[test]
    fn static_pie_counts_as_static() {
        let x86 = find("x86_64-unknown-linux-musl").unwrap();
        let insp = Inspection {
            file: "ELF 64-bit LSB pie executable, x86-64, version 1 (SYSV), static-pie linked, \
                   BuildID[sha1]=ca, stripped"
                .into(),
            program_headers: "  LOAD 0x0 0x0\n  DYNAMIC 0xf8a60\n".into(),
            dynamic: " 0x000000000000001e (FLAGS) BIND_NOW\n".into(),
            attributes: String::new(),
        };
        assert_eq!(problems(x86, &insp), Vec::<String>::new());
    }

    #[test]
    fn the_host_shell_is_dynamic_and_fails_verification() {
        // A live run of the real tools: a dynamically linked Debian binary must not pass.
        let x86 = find("x86_64-unknown-linux-musl").unwrap();
        let err = verify(x86, Path::new("/bin/sh")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("PT_INTERP"), "{msg}");
        assert!(msg.contains("NEEDED"), "{msg}");
    }
}
