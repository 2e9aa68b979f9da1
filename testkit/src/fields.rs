//! Field access on possibly short or corrupt bytes (out of bounds reads
//! give `None`, writes are dropped), and the fields mutations aim at.

use cds_core::format::{entry, header};

pub fn get32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().unwrap()))
}

/// The u32 at `at` as an offset or count, 0 where the bytes end before it.
pub fn field(b: &[u8], at: usize) -> usize {
    get32(b, at).unwrap_or(0) as usize
}

pub fn put32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at.saturating_add(4)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

pub fn put64(b: &mut [u8], at: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at.saturating_add(8)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Every 32-bit header field (and both halves of the 64-bit file size, and
/// the first code serial), as offsets into the header.
pub const HEADER_U32: [usize; 21] = [
    header::FORMAT_VERSION,
    header::HEADER_SIZE,
    header::PYTHON_HEXVERSION,
    header::FLAGS,
    header::FILE_SIZE,
    header::FILE_SIZE + 4,
    header::MODULE_COUNT,
    header::MODULE_TABLE,
    header::STRINGS,
    header::STRINGS_SIZE,
    header::RELOCS,
    header::RELOCS_SIZE,
    header::HOT,
    header::HOT_SIZE,
    header::COLD,
    header::COLD_SIZE,
    header::NAMES,
    header::NAMES_SIZE,
    header::CODE_SERIAL_START,
    header::NAMES_INDEX,
    header::NAMES_INDEX_SLOTS,
];

/// The 32-bit fields of a module table entry (and the low halves of its
/// mtime and checksum), as offsets into the entry.
pub const ENTRY_U32: [usize; 18] = [
    entry::NAME,
    entry::NAME_LEN,
    entry::ORIGIN,
    entry::ORIGIN_LEN,
    entry::FLAGS,
    entry::CODE,
    entry::HOT_START,
    entry::HOT_END,
    entry::COLD_START,
    entry::COLD_END,
    entry::RELOC_START,
    entry::RELOC_SIZE,
    entry::RELOC_WORK_SIZE,
    entry::RELOC_NAMES_SIZE,
    entry::RELOC_IMAGE_SIZE,
    entry::RESERVED,
    entry::SOURCE_MTIME_NS,
    entry::CHECKSUM,
];
