//! Structure-aware mutations of an archive: byte flips, boundary values in
//! header, table-entry and relocation fields, 64-bit fields, truncation,
//! extension, splices, one table entry copied over another.

use crate::fields::{field, get32, put32, put64, ENTRY_U32, HEADER_U32};
use cds_core::format::*;

/// Where mutations get their decisions from: the fuzzer's input bytes, or
/// a seeded PRNG in the stable-Rust property tests.
pub trait Choices {
    fn u8(&mut self) -> u8;
    fn u32(&mut self) -> u32;
    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.u32() as usize % n
        }
    }
}

/// A value likely to sit on a boundary the reader checks, in place of `old`.
fn boundary(choices: &mut impl Choices, b: &[u8], old: u32) -> u32 {
    let at = |off| field(b, off) as u32;
    let raw = choices.u32();
    match choices.u8() % 14 {
        0 => 0,
        1 => 1,
        2 => u32::MAX,
        3 => b.len() as u32,
        4 => at(header::HOT),
        5 => at(header::COLD),
        6 => at(header::HOT).wrapping_add(at(header::HOT_SIZE)),
        7 => at(header::COLD).wrapping_add(at(header::COLD_SIZE)),
        8 => 1 << (raw % 32),
        9 => old.wrapping_add((raw as i8) as u32),
        10 => old.wrapping_add(((raw as i8) as u32).wrapping_mul(16)),
        11 => at(header::RELOCS).wrapping_add(at(header::RELOCS_SIZE)),
        12 => at(header::STRINGS_SIZE),
        _ => raw,
    }
}

/// The offset of a table entry among the `count` the header claims (entry 0
/// when it claims none).
fn entry_at(choices: &mut impl Choices, count: usize) -> usize {
    HEADER_SIZE + choices.below(count.max(1)) * MODULE_ENTRY_SIZE
}

/// Applies 0-5 mutations to `b`, as `choices` decide.
pub fn mutate(choices: &mut impl Choices, b: &mut Vec<u8>) {
    let rounds = choices.below(6);
    for _ in 0..rounds {
        let count = field(b, header::MODULE_COUNT);
        let relocs = field(b, header::RELOCS);
        let relocs_size = field(b, header::RELOCS_SIZE);
        match choices.u8() % 10 {
            0 | 1 if !b.is_empty() => {
                let at = choices.below(b.len());
                b[at] ^= choices.u8() | 1;
            }
            2 => {
                let at = HEADER_U32[choices.below(HEADER_U32.len())];
                let v = boundary(choices, b, get32(b, at).unwrap_or(0));
                put32(b, at, v);
            }
            3 => {
                let at = entry_at(choices, count) + ENTRY_U32[choices.below(ENTRY_U32.len())];
                let v = boundary(choices, b, get32(b, at).unwrap_or(0));
                put32(b, at, v);
            }
            4 => {
                // A byte of the encoded records: a slot delta, kind or target.
                let at = relocs + choices.below(relocs_size.max(1));
                let how = choices.u8() % 3;
                let with = choices.u8();
                if let Some(byte) = b.get_mut(at) {
                    *byte = match how {
                        0 => (*byte & !7) | (with % 8), // the kinds, and 0 and 7 (unknown), if a head
                        1 => *byte ^ (1 << (with % 8)),
                        _ => with,
                    };
                }
            }
            5 => {
                let len = choices.below(b.len() + 1);
                b.truncate(len);
            }
            6 => {
                let n = choices.below(64);
                let v = choices.u8();
                b.extend(std::iter::repeat_n(v, n));
            }
            7 if !b.is_empty() => {
                let src = choices.below(b.len());
                let dst = choices.below(b.len());
                let n = choices.below(256).min(b.len() - src).min(b.len() - dst);
                b.copy_within(src..src + n, dst);
            }
            8 if count > 0 => {
                let (x, y) = (choices.below(count), choices.below(count));
                let (x, y) = (HEADER_SIZE + x * MODULE_ENTRY_SIZE, HEADER_SIZE + y * MODULE_ENTRY_SIZE);
                if y + MODULE_ENTRY_SIZE <= b.len() && x + MODULE_ENTRY_SIZE <= b.len() {
                    b.copy_within(x..x + MODULE_ENTRY_SIZE, y);
                }
            }
            9 => {
                // A 64-bit field: the file size, or an entry's hash, size or checksum.
                let at = match choices.u8() % 4 {
                    0 => header::FILE_SIZE,
                    1 => entry_at(choices, count) + entry::SOURCE_HASH,
                    2 => entry_at(choices, count) + entry::SOURCE_SIZE,
                    _ => entry_at(choices, count) + entry::CHECKSUM,
                };
                let v = match choices.u8() % 3 {
                    0 => b.len() as u64,
                    1 => u64::MAX,
                    _ => choices.u32() as u64 | ((choices.u32() as u64) << 32),
                };
                put64(b, at, v);
            }
            _ => {}
        }
    }
}
