//! Finding the boot partition: partition 1 of an MBR (what Raspberry Pi OS images carry), or
//! the first partition of a GPT behind a protective MBR. Read-only; nothing here writes.

use std::io::{Read, Seek, SeekFrom, Write};

use crate::error::{ImageError, Result};

/// Sector size of SD card images.
pub const SECTOR: u64 = 512;

/// MBR partition types of FAT file systems (FAT12/16/32, CHS and LBA, hidden, EFI).
const FAT_MBR_TYPES: &[u8] = &[
    0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e, 0x11, 0x14, 0x16, 0x1b, 0x1c, 0x1e, 0xef,
];
/// The MBR type of a protective MBR in front of a GPT.
const GPT_PROTECTIVE: u8 = 0xee;

/// Which partition table the image has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// DOS/MBR.
    Mbr,
    /// GPT (behind a protective MBR).
    Gpt,
}

/// One partition, as the image's table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based number.
    pub number: u32,
    /// Byte offset in the image.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// The type: `0x0c` for MBR, the type GUID for GPT.
    pub kind: String,
    /// Whether the table types it as FAT (MBR) or EFI/basic data (GPT).
    pub fat_typed: bool,
}

/// The partition table of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// MBR or GPT.
    pub kind: TableKind,
    /// The used partitions, by number.
    pub partitions: Vec<Partition>,
}

impl Table {
    /// The boot partition: partition 1 for MBR, the lowest-numbered one for GPT.
    pub fn boot(&self) -> Result<&Partition> {
        self.partitions
            .first()
            .filter(|p| self.kind == TableKind::Gpt || p.number == 1)
            .ok_or_else(|| {
                ImageError::Unrecognised(
                    "the partition table has no partition 1 (the boot partition)".into(),
                )
            })
    }
}

/// Read the partition table of `disk` (`disk_len` bytes).
pub fn read_table<D: Read + Write + Seek + std::fmt::Debug>(
    disk: &mut D,
    disk_len: u64,
) -> Result<Table> {
    let mut sector0 = [0u8; 512];
    disk.seek(SeekFrom::Start(0)).map_err(ImageError::BootFs)?;
    if disk_len < SECTOR || disk.read_exact(&mut sector0).is_err() || sector0[510..] != [0x55, 0xaa]
    {
        return Err(ImageError::Unrecognised(
            "no MBR/GPT partition table (sector 0 has no 0x55AA boot signature): not a disk image"
                .into(),
        ));
    }
    disk.seek(SeekFrom::Start(0)).map_err(ImageError::BootFs)?;
    let mbr = mbrman::MBR::read_from(disk, SECTOR as u32)
        .map_err(|e| ImageError::Unrecognised(format!("no usable MBR partition table: {e}")))?;
    if mbr
        .iter()
        .any(|(_, p)| p.is_used() && p.sys == GPT_PROTECTIVE)
    {
        return read_gpt(disk);
    }
    let mut partitions = Vec::new();
    for (i, p) in mbr.iter() {
        if !p.is_used() || p.is_extended() {
            continue;
        }
        let start = u64::from(p.starting_lba) * SECTOR;
        let len = u64::from(p.sectors) * SECTOR;
        if start + len > disk_len {
            return Err(ImageError::Unrecognised(format!(
                "MBR partition {i} ends at byte {} but the image has only {disk_len} bytes (truncated image?)",
                start + len
            )));
        }
        partitions.push(Partition {
            number: i as u32,
            start,
            len,
            kind: format!("0x{:02x}", p.sys),
            fat_typed: FAT_MBR_TYPES.contains(&p.sys),
        });
    }
    if partitions.is_empty() {
        return Err(ImageError::Unrecognised(
            "no MBR/GPT partition table: the MBR has no partitions".into(),
        ));
    }
    Ok(Table {
        kind: TableKind::Mbr,
        partitions,
    })
}

fn read_gpt<D: Read + Write + Seek + std::fmt::Debug>(disk: &mut D) -> Result<Table> {
    let gpt = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .open_from_device(disk)
        .map_err(|e| {
            ImageError::Unrecognised(format!("protective MBR found but no readable GPT: {e}"))
        })?;
    let fat_guids = [
        gpt::partition_types::EFI.guid,
        gpt::partition_types::BASIC.guid,
    ];
    let mut partitions = Vec::new();
    for (n, p) in gpt.partitions() {
        if !p.is_used() {
            continue;
        }
        partitions.push(Partition {
            number: *n,
            start: p.first_lba * SECTOR,
            len: (p.last_lba + 1 - p.first_lba) * SECTOR,
            kind: p.part_type_guid.guid.to_string(),
            fat_typed: fat_guids.contains(&p.part_type_guid.guid),
        });
    }
    partitions.sort_by_key(|p| p.number);
    if partitions.is_empty() {
        return Err(ImageError::Unrecognised(
            "no MBR/GPT partition table: the GPT has no partitions".into(),
        ));
    }
    Ok(Table {
        kind: TableKind::Gpt,
        partitions,
    })
}
