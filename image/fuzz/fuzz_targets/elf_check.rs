//! Fuzz the agent binary's ELF header check on arbitrary bytes: no panic, and a header
//! accepted for one userland is never accepted for the other.
#![no_main]

use flotta_image::board::Userland;
use flotta_image::elf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|head: &[u8]| {
    let armhf = elf::check(head, "rpi-zero", Userland::Armhf).is_ok();
    let arm64 = elf::check(head, "rpi-4", Userland::Arm64).is_ok();
    assert!(!(armhf && arm64));
    if let Some(kind) = elf::ElfKind::parse(head) {
        let _ = kind.describe();
    }
});
