//! Valid archives whose shape (modules, objects, relocations) the fuzz
//! input chooses, built with `ArchiveBuilder`: the builder must produce an
//! archive that passes every check, so it is fuzzed too.

use crate::input::Input;
use cds_core::format::*;
use cds_testkit::{check_archive, claimed_expectations, CheckOptions, Choices, FakeFixups, SYMBOL_LIMIT};

/// Names with duplicates, the empty name and non-ASCII names.
const NAMES: [&str; 10] = ["a", "alpha", "pkg", "pkg.sub", "zeta", "é", "encodings.utf_8", "", "a.b.c", "ÿ"];

/// What [`build_archive`] made, for checking the unmutated archive.
pub struct Built {
    pub bytes: Vec<u8>,
    pub names: Vec<String>,
    /// Some module has a symbol id the fake fix-ups refuse.
    pub unknown_symbol: bool,
}

/// Builds a valid archive of 1-4 modules (some abandoned before `finish`),
/// each with 1-6 objects in both regions and 0-9 relocations of every kind.
pub fn build_archive(input: &mut Input) -> Built {
    let mut b = ArchiveBuilder::new();
    let mut names = Vec::new();
    let mut unknown_symbol = false;
    let modules = 1 + input.below(4);
    for k in 0..modules {
        let name = match input.u8() {
            n if (n as usize) < NAMES.len() * 20 => NAMES[n as usize % NAMES.len()].to_string(),
            n => format!("m{n}.{k}"),
        };
        let flags = input.u8();
        let meta = ModuleMeta {
            name: name.clone(),
            origin: if flags & 2 != 0 { FROZEN_ORIGIN.to_string() } else { format!("/lib/{name}.py") },
            is_package: flags & 1 != 0,
            source_mtime_ns: input.u32() as i64 * 1_000_003,
            source_size: input.u16() as u64,
            source_hash: input.u32() as u64 * 0x9e37_79b9,
            source_dev: input.u16() as u64,
            source_ino: input.u32() as u64,
            source_realpath: if flags & 4 != 0 { format!("/real/{name}.py") } else { String::new() },
        };
        let Ok(mut m) = b.module(meta) else { continue };
        // Objects: the first is the code object (hot).
        let mut objs = Vec::new();
        let count = 1 + input.below(6);
        for j in 0..count {
            let region = if j == 0 || input.u8() & 1 == 0 { Region::Hot } else { Region::Cold };
            let size = 16 * (1 + input.below(8));
            let at = m.alloc(region, size);
            let fill = input.bytes(size.min(24));
            m.bytes_mut(at, fill.len()).copy_from_slice(fill);
            objs.push((at, size));
        }
        let relocs = input.below(10);
        let mut unknown_here = false;
        // Each slot gets at most one record (readers refuse repeats).
        let mut used = std::collections::HashSet::new();
        for _ in 0..relocs {
            let (slot_obj, size) = objs[input.below(objs.len())];
            let kind = input.u8() % 6;
            if kind == 4 {
                // Per-process state of a code object: the slot is an object start.
                if used.insert(slot_obj) {
                    m.reloc(slot_obj, Target::CodeInit);
                }
                continue;
            }
            let slot = slot_obj.add(8 * input.below(size / 8));
            if !used.insert(slot) {
                continue;
            }
            let (target_obj, target_size) = objs[input.below(objs.len())];
            let target = match kind {
                0 => Target::Object(target_obj),
                1 => Target::InternedStr(target_obj),
                2 => {
                    let id = input.u16() as u32 % (SYMBOL_LIMIT + 64);
                    unknown_here |= id >= SYMBOL_LIMIT;
                    Target::Symbol(id)
                }
                3 => Target::FrozenSet(target_obj),
                // Anywhere inside an object, e.g. a str's own character data.
                _ => Target::Interior(target_obj.add(input.below(target_size))),
            };
            m.reloc(slot, target);
        }
        if input.u8() == 0xff {
            continue; // abandoned: the builder must roll it back
        }
        m.finish(objs[0].0);
        unknown_symbol |= unknown_here;
        names.push(name);
    }
    let hex = 0x030b_0000 | input.u16() as u32;
    let mut id = [0u8; 16];
    let raw = input.bytes(16);
    id[..raw.len()].copy_from_slice(raw);
    let bytes = b.finish(hex, id).expect("small archive");
    Built { bytes, names, unknown_symbol }
}

/// An unmutated archive from the builder passes every check.
pub fn check_built(built: &Built) {
    let bytes = &built.bytes;
    let a = Archive::parse(bytes, &claimed_expectations(bytes)).expect("builder output parses");
    assert_eq!(a.module_count(), built.names.len());
    let mut work = bytes.clone();
    for name in &built.names {
        let i = a.find(bytes, name).expect("every module is found");
        let v = a.module(bytes, i).expect("builder output has valid entries");
        assert_eq!(v.name(bytes), name);
        v.verify(bytes).expect("builder output verifies");
        let base = work.as_ptr() as usize;
        match apply_relocations(&mut work, &v, &mut FakeFixups::new(base, &v)) {
            Ok(()) => {}
            Err(RelocError::UnknownSymbol { id }) => assert!(built.unknown_symbol && id >= SYMBOL_LIMIT),
            Err(e) => panic!("builder output refused: {e:?}"),
        }
        work.copy_from_slice(bytes);
    }
    let out = check_archive(bytes, &[], CheckOptions::default());
    assert_eq!(out.modules, built.names.len());
    assert_eq!(out.verified, built.names.len());
}
