//! Checks the agent binary's ELF header against the board's userland, so an AArch64 binary
//! never lands on a Pi Zero (where it would fail with "Exec format error" at every boot).

use crate::board::Userland;

/// `e_machine` for 32-bit ARM.
const EM_ARM: u16 = 40;
/// `e_machine` for AArch64.
const EM_AARCH64: u16 = 183;
/// `e_flags` mask of the ARM EABI version.
const EF_ARM_EABIMASK: u32 = 0xff00_0000;
/// ARM EABI version 5.
const EF_ARM_EABI_VER5: u32 = 0x0500_0000;
/// ARM hard-float calling convention.
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x0000_0400;

/// What an ELF header says about the machine it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfKind {
    /// 64-bit (`ELFCLASS64`).
    pub class64: bool,
    /// Little-endian.
    pub little_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `e_flags` (0 when not read).
    pub flags: u32,
}

impl ElfKind {
    /// Parse the identification and header of an ELF file; `None` when `head` is not one.
    pub fn parse(head: &[u8]) -> Option<ElfKind> {
        if head.len() < 20 || head[..4] != *b"\x7fELF" {
            return None;
        }
        let class64 = match head[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little_endian = match head[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let u16_at = |o: usize| -> Option<u16> {
            let b: [u8; 2] = head.get(o..o + 2)?.try_into().ok()?;
            Some(if little_endian {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            })
        };
        let u32_at = |o: usize| -> Option<u32> {
            let b: [u8; 4] = head.get(o..o + 4)?.try_into().ok()?;
            Some(if little_endian {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            })
        };
        let machine = u16_at(18)?;
        // e_flags follows e_entry, e_phoff and e_shoff, whose width depends on the class.
        let flags_at = if class64 { 48 } else { 36 };
        let flags = u32_at(flags_at).unwrap_or(0);
        Some(ElfKind {
            class64,
            little_endian,
            machine,
            flags,
        })
    }

    /// A human description, for messages.
    pub fn describe(&self) -> String {
        let machine = match self.machine {
            EM_ARM => "ARM".to_string(),
            EM_AARCH64 => "AArch64".to_string(),
            62 => "x86-64".to_string(),
            3 => "i386".to_string(),
            243 => "RISC-V".to_string(),
            m => format!("machine {m}"),
        };
        let bits = if self.class64 { 64 } else { 32 };
        let mut s = format!("a {bits}-bit {machine} ELF");
        if self.machine == EM_ARM && !self.class64 {
            let eabi = (self.flags & EF_ARM_EABIMASK) >> 24;
            let float = if self.flags & EF_ARM_ABI_FLOAT_HARD != 0 {
                "hard-float"
            } else {
                "soft-float"
            };
            s.push_str(&format!(" (EABI{eabi}, {float})"));
        }
        if !self.little_endian {
            s.push_str(", big-endian");
        }
        s
    }

    /// Whether this binary runs on `userland`.
    pub fn fits(&self, userland: Userland) -> bool {
        if !self.little_endian {
            return false;
        }
        match userland {
            Userland::Armhf => {
                !self.class64
                    && self.machine == EM_ARM
                    && self.flags & EF_ARM_EABIMASK == EF_ARM_EABI_VER5
                    && self.flags & EF_ARM_ABI_FLOAT_HARD != 0
            }
            Userland::Arm64 => self.class64 && self.machine == EM_AARCH64,
        }
    }
}

/// Check `head` (the first bytes of the agent binary, at least 64) against `userland`;
/// the error says what the board needs and what the binary is.
pub fn check(head: &[u8], board: &str, userland: Userland) -> Result<(), String> {
    let Some(kind) = ElfKind::parse(head) else {
        return Err(format!(
            "the agent binary is not an ELF executable; board {board} needs {}",
            userland.binary_kind()
        ));
    };
    if kind.fits(userland) {
        return Ok(());
    }
    Err(format!(
        "the agent binary is {}, but board {board} ({userland} userland) needs {}",
        kind.describe(),
        userland.binary_kind()
    ))
}

/// A minimal ELF header for tests: 64 bytes, little-endian.
#[doc(hidden)]
pub fn synthetic_header(class64: bool, machine: u16, flags: u32) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if class64 { 2 } else { 1 };
    h[5] = 1;
    h[6] = 1;
    h[16] = 2; // ET_EXEC
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    let at = if class64 { 48 } else { 36 };
    h[at..at + 4].copy_from_slice(&flags.to_le_bytes());
    h
}

/// Synthetic headers of the two agent builds, for tests.
#[doc(hidden)]
pub fn synthetic_agent(userland: Userland) -> Vec<u8> {
    match userland {
        Userland::Armhf => {
            synthetic_header(false, EM_ARM, EF_ARM_EABI_VER5 | EF_ARM_ABI_FLOAT_HARD)
        }
        Userland::Arm64 => synthetic_header(true, EM_AARCH64, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_agent_builds_fit_their_userland_only() {
        let armhf = synthetic_agent(Userland::Armhf);
        let arm64 = synthetic_agent(Userland::Arm64);
        assert!(check(&armhf, "rpi-zero", Userland::Armhf).is_ok());
        assert!(check(&arm64, "rpi-4", Userland::Arm64).is_ok());
        let err = check(&arm64, "rpi-zero", Userland::Armhf).unwrap_err();
        assert!(
            err.contains("64-bit AArch64") && err.contains("rpi-zero"),
            "{err}"
        );
        let err = check(&armhf, "rpi-4", Userland::Arm64).unwrap_err();
        assert!(err.contains("32-bit ARM") && err.contains("rpi-4"), "{err}");
    }

    #[test]
    fn soft_float_old_eabi_x86_and_non_elf_are_refused() {
        let soft = synthetic_header(false, EM_ARM, EF_ARM_EABI_VER5);
        let err = check(&soft, "rpi-zero", Userland::Armhf).unwrap_err();
        assert!(err.contains("soft-float"), "{err}");
        let eabi4 = synthetic_header(false, EM_ARM, 0x0400_0000 | EF_ARM_ABI_FLOAT_HARD);
        assert!(check(&eabi4, "rpi-zero", Userland::Armhf).is_err());
        let x86 = synthetic_header(true, 62, 0);
        let err = check(&x86, "rpi-4", Userland::Arm64).unwrap_err();
        assert!(err.contains("x86-64"), "{err}");
        let err = check(b"#!/bin/sh\necho hi\n", "rpi-4", Userland::Arm64).unwrap_err();
        assert!(err.contains("not an ELF"), "{err}");
        assert!(ElfKind::parse(&[0x7f, b'E', b'L', b'F']).is_none());
    }
}
