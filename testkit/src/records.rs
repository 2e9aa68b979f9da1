//! Reading and replacing one module's relocation records in a well-formed
//! archive, for tests that forge them (tests/test_forged.py through
//! `cds-reseal`): the records are a variable-length stream, so an edit may
//! change its size, and the streams after it move.

use crate::claimed_expectations;
use crate::fields::{field, put32};
use crate::reseal::{reseal, Reseal};
use cds_core::format::*;

/// Module `name`'s table entry, validated (the archive is one a real
/// interpreter dumped, so it is checked against what it claims).
fn view_of(b: &[u8], name: &str) -> Result<ModuleView, String> {
    let archive = Archive::parse(b, &claimed_expectations(b)).map_err(|e| e.to_string())?;
    let index = archive.find(b, name).ok_or(format!("no module {name}"))?;
    archive.module(b, index).map_err(|e| e.to_string())
}

/// Module `name`'s records, decoded and validated.
pub fn relocations_of(b: &[u8], name: &str) -> Result<Vec<Reloc>, String> {
    let view = view_of(b, name)?;
    Ok(read_relocations(b, &view).map_err(|e| e.to_string())?.to_vec())
}

/// Replaces module `name`'s records with `records` (sorted here, so an
/// edited slot may move past others) as its last stream, the others and
/// its list of names left empty (a stamp check then finds the split wrong,
/// so every process reads both: the forged records are always read), moves the streams after it,
/// and reseals the archive.
pub fn replace_relocations(b: &mut Vec<u8>, name: &str, mut records: Vec<Reloc>) -> Result<(), String> {
    let view = view_of(b, name)?;
    let (index, old) = (view.index, view.relocs);
    records.sort_by_key(|r| r.slot);
    let new = reloc_codec::encode(&records);
    let table = field(b, header::RELOCS);
    let grow = new.len() as isize - old.len() as isize;
    for i in 0..field(b, header::MODULE_COUNT) {
        let at = HEADER_SIZE + i * MODULE_ENTRY_SIZE;
        let start = table + field(b, at + entry::RELOC_START);
        if i == index {
            put32(b, at + entry::RELOC_SIZE, new.len() as u32);
            put32(b, at + entry::RELOC_WORK_SIZE, 0);
            put32(b, at + entry::RELOC_NAMES_SIZE, 0);
            put32(b, at + entry::RELOC_IMAGE_SIZE, 0);
        } else if start >= old.end {
            put32(b, at + entry::RELOC_START, (start - table).wrapping_add_signed(grow) as u32);
        }
    }
    b.splice(old, new);
    let size = field(b, header::RELOCS_SIZE).wrapping_add_signed(grow);
    put32(b, header::RELOCS_SIZE, size as u32);
    reseal(b, Reseal::ALL);
    Ok(())
}
