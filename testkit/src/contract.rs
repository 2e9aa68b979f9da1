//! The reader's contract, asserted on any bytes: `parse`, `module`,
//! `verify`, `find` and `apply_relocations` return `Ok` or `Err` without
//! panicking; an accepted archive's strict prefixes and the archive with a
//! byte appended are refused; and relocation writes exactly its records'
//! slots, each with the value its kind says, inside the module's hot and
//! cold spans, or nothing at all when a record is refused. A failed
//! assertion is a finding.

use crate::fixups::{fake_frozenset, fake_symbol, FakeFixups};
use cds_core::format::reloc::read_relocations;
use cds_core::format::*;
use std::collections::HashMap;
use std::ops::Range;

/// The expectations the bytes claim for themselves, so that inputs get past
/// the version and build-id checks (tested on their own in core/tests/format.rs).
pub fn claimed_expectations(bytes: &[u8]) -> Expectations {
    cds_core::inspect::claimed_expectations(bytes)
        .unwrap_or(Expectations { python_hexversion: 0x030b_00f0, build_id: [0; 16] })
}

/// How far an input got through the reader.
#[derive(Default, Debug, Clone, Copy)]
pub struct Outcome {
    pub parsed: bool,
    /// Modules that passed their entry check (`Archive::module`).
    pub modules: usize,
    pub verified: usize,
    pub relocated: usize,
}

/// Options of [`check_archive`].
#[derive(Default, Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Make this intern call of each module fail (1-based).
    pub fail_intern_at: Option<usize>,
    /// Relocate modules whose checksum fails too. The interpreter never does,
    /// but the relocation checks must not rely on the checksum.
    pub relocate_unverified: bool,
}

fn assert_inside(r: &Range<usize>, len: usize, what: &str) {
    assert!(r.start <= r.end && r.end <= len, "{what} {r:?} outside the file ({len} bytes)");
}

/// Runs the whole reader over `bytes` as the interpreter would (parse, then
/// per module: entry check, find by name, verify, relocate), asserting its
/// contract. `names` are extra names to look up.
pub fn check_archive(bytes: &[u8], names: &[&str], opts: CheckOptions) -> Outcome {
    let mut out = Outcome::default();
    let expect = claimed_expectations(bytes);
    let archive = match Archive::parse(bytes, &expect) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.to_string();
            return out;
        }
    };
    out.parsed = true;
    assert_eq!(archive.len(), bytes.len());
    for cut in [0, HEADER_SIZE - 1, HEADER_SIZE, bytes.len() / 2, bytes.len() - 1] {
        let cut = cut.min(bytes.len() - 1);
        assert!(Archive::parse(&bytes[..cut], &expect).is_err(), "a {cut}-byte prefix was accepted");
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(Archive::parse(&longer, &expect).is_err(), "archive with a byte appended accepted");
    let pool = archive.names();
    assert!(pool.start <= pool.end && pool.end <= bytes.len(), "name pool outside the file");
    match archive.verify_names(bytes) {
        Ok(()) => {}
        Err(e) => assert_eq!(e, FormatError::NamesChecksum, "verify_names gave {e:?}"),
    }

    // The pool's index offers hints only: probing never panics and stops.
    for hash in [0, u64::MAX, 0x9e37_79b9_7f4a_7c15] {
        assert!(archive.names_index(bytes).candidates(hash).count() <= names_index::MAX_PROBE);
    }

    let mut work = bytes.to_vec();
    for i in 0..archive.module_count() {
        let view = match archive.module(bytes, i) {
            Ok(v) => v,
            Err(e) => {
                assert!(matches!(e, FormatError::BadEntry { index, .. } if index == i), "module({i}) gave {e:?}");
                let _ = e.to_string();
                continue;
            }
        };
        out.modules += 1;
        assert_eq!(view.index, i);
        assert_inside(&view.hot, bytes.len(), "hot span");
        assert_inside(&view.cold, bytes.len(), "cold span");
        assert_inside(&view.relocs, bytes.len(), "relocation records");
        assert!(view.hot.contains(&view.code), "code object outside the hot span");
        assert!(view.hot.end <= view.cold.start, "hot and cold spans overlap");
        assert_inside(&view.relocs_names, bytes.len(), "names region");
        assert!(view.relocs_work.end == view.relocs_names.start && view.relocs_names.end == view.relocs_image.start);
        assert!(view.relocs_image.end <= view.relocs.end && view.relocs_internal().end == view.relocs.end);
        if let Ok(image) = read_image_relocations(bytes, &view) {
            assert!(image.iter().all(|r| view.owns(r.slot as usize, 8)), "an image record outside the module");
        }
        if let Ok(listed) = read_names(bytes, &view) {
            assert!(listed.iter().all(|&t| pool.contains(&(t as usize))), "a listed name outside the pool");
        }
        if let Ok(pooled) = read_pooled_name_relocations(bytes, &view) {
            assert!(pooled.iter().all(|r| view.owns(r.slot as usize, 8)), "a pooled-name record outside the module");
        }

        let name = view.name(bytes);
        let _ = (view.origin(bytes), view.is_frozen(bytes), view.source_hash);
        check_find(&archive, bytes, name);

        let verified = match view.verify(bytes) {
            Ok(()) => true,
            Err(e) => {
                assert!(matches!(e, FormatError::ModuleChecksum { .. }), "verify gave {e:?}");
                let _ = e.to_string();
                false
            }
        };
        out.verified += verified as usize;
        if verified || opts.relocate_unverified {
            out.relocated += relocate_and_check(bytes, &mut work, &view, opts) as usize;
        }
    }
    for name in names {
        check_find(&archive, bytes, name);
    }
    out
}

/// Looking a name up finds an entry of that name or nothing (maybe another
/// entry than expected, if names repeat or the table is unsorted).
fn check_find(archive: &Archive, bytes: &[u8], name: &str) {
    if let Some(j) = archive.find(bytes, name) {
        assert!(j < archive.module_count());
        if let Ok(other) = archive.module(bytes, j) {
            assert_eq!(other.name(bytes), name, "find({name:?}) returned entry {j}");
        }
    }
}

/// Relocates `view` in `work` (a copy of `bytes`), checks what was written,
/// then restores `work`. Returns whether relocation succeeded.
fn relocate_and_check(bytes: &[u8], work: &mut [u8], view: &ModuleView, opts: CheckOptions) -> bool {
    debug_assert_eq!(&work[..], bytes);
    let base = work.as_ptr() as usize;
    let mut fx = FakeFixups::new(base, view);
    fx.fail_intern_at = opts.fail_intern_at;
    let result = apply_relocations(work, view, &mut fx);
    assert_eq!(work.as_ptr() as usize, base);
    let ok = match result {
        Ok(()) => {
            let relocs = read_relocations(bytes, view).expect("apply succeeded, so the records are valid");
            check_written(bytes, work, view, &relocs);
            let count = |kind| relocs.iter().filter(|r| r.kind == kind).count();
            assert_eq!(fx.interned.len(), count(RelocKind::InternedStr));
            assert_eq!(fx.frozensets.len(), count(RelocKind::FrozenSet));
            assert_eq!(fx.code_inits.len(), count(RelocKind::CodeInit));
            true
        }
        Err(RelocError::Runtime(_)) => {
            // A failing fix-up after the writes: they stay inside the spans.
            restore(work, bytes, view);
            assert!(work[..] == *bytes, "relocation wrote outside the module's spans");
            false
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(work[..] == *bytes, "refused relocation ({e:?}) wrote");
            false
        }
    };
    restore(work, bytes, view);
    ok
}

/// Asserts that relocating `bytes` into `work` changed exactly the records'
/// slots, each to what its record says (with [`FakeFixups`]' values).
fn check_written(bytes: &[u8], work: &mut [u8], view: &ModuleView, relocs: &[Reloc]) {
    let base = work.as_ptr() as usize;
    let mut expected: HashMap<usize, u64> = HashMap::new();
    for r in relocs {
        // Whatever its kind, a record names an 8-aligned slot of the module.
        assert!(r.slot % 8 == 0 && view.owns(r.slot as usize, 8), "slot of {r:?} outside the module");
        if r.kind.targets_object() {
            let pooled = r.kind == RelocKind::InternedStr && view.in_names(r.target as usize, 16);
            assert!(view.owns(r.target as usize, 16) || pooled, "target of {r:?} outside the module");
        }
        if r.kind == RelocKind::Interior {
            assert!(view.owns(r.target as usize, 1), "target of {r:?} outside the module");
        }
        // The one table of what each kind writes (layout::SlotValue), with
        // the fakes' runtime answers: a symbol's fake address, the str
        // itself for interning, a fake set.
        let value = match r.kind.slot_value(r.target, base as u64) {
            SlotValue::Address(a) | SlotValue::Interned(a) => a,
            SlotValue::Symbol(id) => fake_symbol(id),
            SlotValue::FrozenSetOf(tuple) => fake_frozenset(tuple as usize),
            // Writes no slot: the fix-ups get the code object's address.
            SlotValue::CodeState => continue,
        };
        expected.insert(r.slot as usize, value);
    }
    for (&slot, &value) in &expected {
        let got = u64::from_le_bytes(work[slot..slot + 8].try_into().unwrap());
        assert_eq!(got, value, "slot {slot}");
        work[slot..slot + 8].copy_from_slice(&bytes[slot..slot + 8]);
    }
    assert!(work[..] == *bytes, "relocation wrote outside its slots");
}

fn restore(work: &mut [u8], bytes: &[u8], view: &ModuleView) {
    work[view.hot.clone()].copy_from_slice(&bytes[view.hot.clone()]);
    work[view.cold.clone()].copy_from_slice(&bytes[view.cold.clone()]);
}
