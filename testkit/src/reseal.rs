//! Recomputing an archive's checksums and recorded size after a mutation,
//! so that mutations reach the checks behind them (neither a fuzzer nor a
//! random mutation forges xxh3).

use crate::fields::{field, put64};
use cds_core::format::*;
use std::ops::Range;

/// Which checksums [`reseal`] recomputes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reseal {
    pub modules: bool,
    pub table: bool,
    pub file_size: bool,
    pub header: bool,
}

impl Reseal {
    pub const ALL: Self = Self { modules: true, table: true, file_size: true, header: true };
    /// The table and the header: what an edit of a table entry needs to
    /// reach `Archive::module`.
    pub const TABLE: Self = Self { modules: false, table: true, file_size: false, header: true };
    /// The header only: what an edit of a header field needs to reach the
    /// layout checks.
    pub const HEADER: Self = Self { modules: false, table: false, file_size: false, header: true };

    /// Bits 0-3: modules, table, file size, header.
    pub fn from_bits(bits: u8) -> Self {
        Self { modules: bits & 1 != 0, table: bits & 2 != 0, file_size: bits & 4 != 0, header: bits & 8 != 0 }
    }
}

/// Recomputes the checksums `what` names, in dependency order (module
/// checksums live in the table, the table checksum in the header), wherever
/// the fields they cover lie inside the file.
pub fn reseal(b: &mut [u8], what: Reseal) {
    if b.len() < HEADER_SIZE {
        return;
    }
    if what.modules {
        let names = field(b, header::NAMES)..field(b, header::NAMES) + field(b, header::NAMES_SIZE);
        if names.end <= b.len() {
            let sum = checksum(&[&b[names]]);
            put64(b, header::NAMES_CHECKSUM, sum);
        }
        let count = field(b, header::MODULE_COUNT).min((b.len() - HEADER_SIZE) / MODULE_ENTRY_SIZE);
        let relocs = field(b, header::RELOCS);
        for i in 0..count {
            let e = HEADER_SIZE + i * MODULE_ENTRY_SIZE;
            let span = |b: &[u8], s, t| field(b, e + s)..field(b, e + t);
            let hot = span(b, entry::HOT_START, entry::HOT_END);
            let cold = span(b, entry::COLD_START, entry::COLD_END);
            let first = relocs + field(b, e + entry::RELOC_START);
            let rel = first..first + field(b, e + entry::RELOC_SIZE);
            let fits = |r: &Range<usize>| r.start <= r.end && r.end <= b.len();
            if fits(&hot) && fits(&cold) && fits(&rel) {
                let sum = checksum(&[&b[hot], &b[cold], &b[rel]]);
                put64(b, e + entry::CHECKSUM, sum);
            }
        }
    }
    if what.table {
        let end = field(b, header::STRINGS) + field(b, header::STRINGS_SIZE);
        if (HEADER_SIZE..=b.len()).contains(&end) {
            let sum = checksum(&[&b[HEADER_SIZE..end]]);
            put64(b, header::TABLE_CHECKSUM, sum);
        }
    }
    if what.file_size {
        put64(b, header::FILE_SIZE, b.len() as u64);
    }
    if what.header {
        let sum = header_checksum(b);
        put64(b, header::HEADER_CHECKSUM, sum);
    }
}
