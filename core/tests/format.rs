//! The archive format on plain bytes: round trip, every check of the reader
//! refusing bad bytes with its own error, and every flipped bit refused
//! unless it lies in padding that nothing reads.

use cds_core::format::*;
use cds_testkit::fields::{field, put32};
use cds_testkit::{fake_symbol, meta, reseal, sample_archive, FakeFixups, Reseal, EXPECT, HEX, ID};
use std::ops::Range;

/// Three modules; each has a 32-byte "code object" in the hot region whose
/// second word points to a 16-byte cold object, then a symbol reference and
/// an interned str. Record 0 of each module is its `Object` relocation.
fn sample() -> Vec<u8> {
    let mut b = ArchiveBuilder::new();
    for name in ["zeta", "alpha", "pkg"] {
        let mut m = b.module(meta(name)).unwrap();
        let cold = m.alloc(Region::Cold, 16);
        m.bytes_mut(cold, 16).copy_from_slice(&[7u8; 16]);
        let code = m.alloc(Region::Hot, 32);
        m.reloc(code.add(8), Target::Object(cold));
        m.reloc(code.add(16), Target::Symbol(3));
        m.reloc(code.add(24), Target::InternedStr(cold));
        m.finish(code);
    }
    b.finish(HEX, ID).unwrap()
}

/// Fake fix-ups for `view` relocated in place in `bytes`.
fn fixups(bytes: &[u8], view: &ModuleView) -> FakeFixups {
    FakeFixups::new(bytes.as_ptr() as usize, view)
}

#[test]
fn round_trip_finds_every_module_and_relocates() {
    let mut bytes = sample();
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    assert_eq!(a.module_count(), 3);
    assert_eq!(a.find(&bytes, "nope"), None);
    for name in ["alpha", "pkg", "zeta"] {
        let i = a.find(&bytes, name).expect(name);
        let v = a.module(&bytes, i).unwrap();
        assert_eq!(v.name(&bytes), name);
        assert_eq!(v.origin(&bytes), format!("/lib/{name}.py"));
        assert_eq!(v.is_package, name == "pkg");
        assert_eq!(v.source_size, 4321);
        assert_eq!(v.source_mtime_ns, 1_700_000_000_123_456_789);
        assert_eq!(v.source_hash, 0x1234_5678_9abc_def0);
        v.verify(&bytes).unwrap();
    }
    let v = a.module(&bytes, a.find(&bytes, "alpha").unwrap()).unwrap();
    let mut fx = fixups(&bytes, &v);
    apply_relocations(&mut bytes, &v, &mut fx).unwrap();
    let base = bytes.as_ptr() as usize;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let cold = word(v.code + 8) - base;
    assert!(v.cold.contains(&cold));
    assert_eq!(&bytes[cold..cold + 16], &[7u8; 16]);
    assert_eq!(word(v.code + 16) as u64, fake_symbol(3));
    assert_eq!(fx.interned, vec![base + cold]);
}

#[test]
fn sections_are_page_aligned() {
    let bytes = sample();
    let field = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(field(header::HOT) % PAGE, 0);
    assert_eq!(field(header::COLD) % PAGE, 0);
    assert!(field(header::COLD) >= field(header::HOT) + field(header::HOT_SIZE));
}

#[test]
fn abandoned_module_leaves_nothing() {
    let mut b = ArchiveBuilder::new();
    {
        let mut m = b.module(meta("broken")).unwrap();
        m.alloc(Region::Hot, 64);
        // dropped without finish
    }
    let mut m = b.module(meta("ok")).unwrap();
    let code = m.alloc(Region::Hot, 16);
    m.finish(code);
    assert_eq!(b.module_count(), 1);
    let bytes = b.finish(HEX, ID).unwrap();
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let v = a.module(&bytes, 0).unwrap();
    assert_eq!(a.module_count(), 1);
    assert_eq!(v.name(&bytes), "ok");
    assert_eq!(v.hot.len(), 16);
}

#[test]
fn duplicate_module_name_is_refused() {
    let mut b = ArchiveBuilder::new();
    let mut m = b.module(meta("x")).unwrap();
    let c = m.alloc(Region::Hot, 16);
    m.finish(c);
    assert!(b.module(meta("x")).is_err());
    assert_eq!(b.module_count(), 1);
}

fn parse_err(b: &[u8]) -> FormatError {
    Archive::parse(b, &EXPECT).unwrap_err()
}

#[test]
fn rejects_empty_short_and_foreign_files() {
    assert_eq!(parse_err(&[]), FormatError::NotAnArchive);
    assert_eq!(parse_err(b"#!/bin/sh\nexit 0\n"), FormatError::NotAnArchive);
    let bytes = sample();
    assert!(matches!(parse_err(&bytes[..64]), FormatError::Truncated { .. }));
    assert!(matches!(parse_err(&bytes[..bytes.len() - 1]), FormatError::Truncated { .. }));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(parse_err(&longer), FormatError::SizeMismatch { .. }));
}

#[test]
fn rejects_other_format_versions_pythons_and_builds() {
    let mut b = sample();
    put32(&mut b, header::FORMAT_VERSION, 99);
    assert_eq!(parse_err(&b), FormatError::FormatVersion { found: 99 });

    let b = sample();
    let other = Expectations { python_hexversion: 0x030d05f0, build_id: ID };
    assert!(matches!(Archive::parse(&b, &other), Err(FormatError::ForeignPython { .. })));
    let other = Expectations { python_hexversion: HEX, build_id: [0; 16] };
    assert_eq!(Archive::parse(&b, &other).unwrap_err(), FormatError::ForeignBuild);
    // A different release serial of the same version is the same layout.
    let same = Expectations { python_hexversion: HEX + 1, build_id: ID };
    assert!(Archive::parse(&b, &same).is_ok());
}

#[test]
fn rejects_header_and_table_corruption() {
    let mut b = sample();
    b[header::MODULE_COUNT] ^= 1;
    assert_eq!(parse_err(&b), FormatError::HeaderChecksum);

    let mut b = sample();
    b[HEADER_SIZE + 3] ^= 0x40; // inside the module table
    assert_eq!(parse_err(&b), FormatError::TableChecksum);

    let mut b = sample();
    b[header::FLAGS] = 1;
    reseal(&mut b, Reseal::HEADER);
    assert!(matches!(parse_err(&b), FormatError::BadLayout(_)));

    let mut b = sample();
    b[header::RESERVED] = 1;
    reseal(&mut b, Reseal::HEADER);
    assert!(matches!(parse_err(&b), FormatError::BadLayout(_)));

    // Start-up names past the pool, or not a whole number of entries.
    let names_size = field(&sample(), header::NAMES_SIZE) as u32;
    for startup in [names_size + 16, 8] {
        let mut b = sample();
        put32(&mut b, header::NAMES_STARTUP_SIZE, startup);
        reseal(&mut b, Reseal::HEADER);
        assert_eq!(parse_err(&b), FormatError::BadLayout("start-up names outside the name pool"), "{startup}");
    }

    // Code serials below their base, or running past 2^32.
    for start in [0, CODE_SERIAL_BASE - 1, u32::MAX] {
        let mut b = sample();
        b[header::CODE_SERIALS..header::CODE_SERIALS + 4].copy_from_slice(&1u32.to_le_bytes());
        b[header::CODE_SERIAL_START..header::CODE_SERIAL_START + 4].copy_from_slice(&start.to_le_bytes());
        reseal(&mut b, Reseal::HEADER);
        assert_eq!(parse_err(&b), FormatError::BadLayout("code serials outside their range"), "start {start:#x}");
    }
}

/// Pool entries of `size` bytes filled with `fill`: `(fill, startup)` each,
/// one module naming them in this order.
fn pooled_archive(entries: &[(u8, bool)]) -> Vec<u8> {
    let mut b = ArchiveBuilder::new();
    let mut m = b.module(meta("alpha")).unwrap();
    let code = m.alloc(Region::Hot, 16 + 8 * entries.len());
    for (i, &(fill, startup)) in entries.iter().enumerate() {
        let entry = m.pooled(&[fill; 32], 8, 18, startup, u64::from(fill));
        m.reloc(code.add(16 + 8 * i), Target::InternedStr(entry));
    }
    m.finish(code);
    b.finish(HEX, ID).unwrap()
}

#[test]
fn startup_names_come_first_in_the_pool_and_the_header_says_how_many_bytes() {
    // Marked on a later use too: 3 is a start-up name although first pooled without.
    let bytes = pooled_archive(&[(1, false), (2, true), (3, false), (3, true), (4, false)]);
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let (names, startup) = (a.names(), a.startup_names());
    assert_eq!(startup, names.start..names.start + 64);
    // Start-up entries in first-use order, then the rest.
    let firsts: Vec<u8> = (names.start..names.end).step_by(32).map(|at| bytes[at + 16]).collect();
    assert_eq!(firsts, vec![2, 3, 1, 4]);

    let none = pooled_archive(&[(1, false), (2, false)]);
    let a = Archive::parse(&none, &EXPECT).unwrap();
    assert!(a.startup_names().is_empty());
    assert_eq!(a.startup_names().start, a.names().start);
}

#[test]
fn names_of_modules_imported_at_startup_follow_the_startup_names() {
    // By users alone the order would be 1, 2, 4 (two modules each), 3;
    // "early", imported at start-up, names 2 and 3, which go first.
    let mut b = ArchiveBuilder::new();
    for (name, fills, at_startup) in
        [("late", &[1u8, 2, 4][..], false), ("other", &[1, 4], false), ("early", &[2, 3], true)]
    {
        let mut m = b.module(meta(name)).unwrap();
        if at_startup {
            m.imported_at_startup();
        }
        let code = m.alloc(Region::Hot, 16 + 8 * fills.len());
        for (i, &fill) in fills.iter().enumerate() {
            let entry = m.pooled(&[fill; 32], 8, 18, false, u64::from(fill));
            m.reloc(code.add(16 + 8 * i), Target::InternedStr(entry));
        }
        m.finish(code);
    }
    let bytes = b.finish(HEX, ID).unwrap();
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let names = a.names();
    let order: Vec<u8> = (names.start..names.end).step_by(32).map(|at| bytes[at + 16]).collect();
    // Then by users, first use among equals.
    assert_eq!(order, vec![2, 3, 1, 4]);
    // Not start-up names: nothing is interned before the interpreter's own.
    assert!(a.startup_names().is_empty());
}

#[test]
fn rejects_sections_out_of_bounds() {
    for (field, value) in [
        (header::MODULE_COUNT, 1_000_000),
        (header::STRINGS_SIZE, 1 << 30),
        (header::RELOCS_SIZE, u32::MAX),
        (header::HOT, 12),
        (header::COLD_SIZE, 1 << 31),
        (header::MODULE_TABLE, 0),
    ] {
        let mut b = sample();
        put32(&mut b, field, value);
        reseal(&mut b, Reseal::HEADER);
        assert!(matches!(parse_err(&b), FormatError::BadLayout(_)), "field at {field}");
    }
}

/// Sets a field of module entry 0 and reseals, so only the entry check can catch it.
fn entry_err(field: usize, value: u32) -> FormatError {
    let mut b = sample();
    put32(&mut b, HEADER_SIZE + field, value);
    reseal(&mut b, Reseal::TABLE);
    let a = Archive::parse(&b, &EXPECT).unwrap();
    a.module(&b, 0).unwrap_err()
}

#[test]
fn rejects_every_bad_entry_offset() {
    for (field, value) in [
        (entry::NAME, 1 << 20),
        (entry::NAME_LEN, 1 << 20),
        (entry::ORIGIN, 1 << 20),
        (entry::FLAGS, 2),
        (entry::CODE, 8),
        (entry::CODE, 1 << 30),
        (entry::HOT_START, 3),
        (entry::HOT_END, 1 << 30),
        (entry::COLD_START, 0),
        (entry::COLD_END, 1),
        (entry::RELOC_START, 1 << 30),
        (entry::RELOC_SIZE, u32::MAX),
    ] {
        assert!(matches!(entry_err(field, value), FormatError::BadEntry { index: 0, .. }), "field {field}");
    }
    let b = sample();
    let a = Archive::parse(&b, &EXPECT).unwrap();
    assert!(matches!(a.module(&b, 3), Err(FormatError::BadEntry { index: 3, .. })));
}

#[test]
fn rejects_module_corruption_by_checksum() {
    let b = sample();
    let a = Archive::parse(&b, &EXPECT).unwrap();
    let v = a.module(&b, 0).unwrap();
    for at in [v.hot.start, v.cold.start + 3, v.relocs.start + 1] {
        let mut c = b.clone();
        c[at] ^= 0x10;
        assert!(matches!(v.verify(&c), Err(FormatError::ModuleChecksum { .. })), "offset {at}");
    }
}

/// Relocates module 0 of the sample with its records replaced by `stream`
/// (appended to the file: relocation does not consult the checksum, so only
/// the relocation checks can catch it). Returns the result, the bytes before
/// and after.
fn apply_stream(edit: impl FnOnce(Vec<Reloc>) -> Vec<u8>) -> (Result<(), RelocError>, Vec<u8>, Vec<u8>) {
    let mut b = sample();
    let a = Archive::parse(&b, &EXPECT).unwrap();
    let mut v = a.module(&b, 0).unwrap();
    let records = read_relocations(&b, &v).unwrap().to_vec();
    let stream = edit(records);
    // One stream: the second, the first left empty.
    v.relocs = b.len()..b.len() + stream.len();
    v.relocs_work = v.relocs.start..v.relocs.start;
    v.relocs_names = v.relocs.start..v.relocs.start;
    v.relocs_image = v.relocs.start..v.relocs.start;
    b.extend(stream);
    let before = b.clone();
    let mut fx = fixups(&b, &v);
    let result = apply_relocations(&mut b, &v, &mut fx);
    (result, before, b)
}

/// [`apply_stream`] of module 0's records after `edit`, which must keep them sorted.
fn reloc_err(edit: impl FnOnce(&mut [Reloc])) -> RelocError {
    apply_stream(|mut records| {
        edit(&mut records);
        reloc_codec::encode(&records)
    })
    .0
    .unwrap_err()
}

#[test]
fn rejects_every_bad_relocation() {
    // Records 0, 1, 2: Object, Symbol, InternedStr.
    assert!(matches!(reloc_err(|r| r[0].slot = 8), RelocError::SlotOutOfBounds { index: 0 })); // in the header
    assert!(matches!(reloc_err(|r| r[2].slot = 1 << 30), RelocError::SlotOutOfBounds { index: 2 }));
    assert!(matches!(reloc_err(|r| r[0].target = 8), RelocError::TargetOutOfBounds { index: 0 }));
    assert!(matches!(reloc_err(|r| r[2].target = 1 << 30), RelocError::TargetOutOfBounds { index: 2 }));
    assert!(matches!(reloc_err(|r| r[0].target += 8), RelocError::TargetOutOfBounds { index: 0 })); // misaligned
    assert_eq!(reloc_err(|r| r[1].target = 5000), RelocError::UnknownSymbol { id: 5000 });
    let (truncated, ..) = apply_stream(|r| {
        let mut s = reloc_codec::encode(&r);
        s.pop();
        s
    });
    assert!(matches!(truncated, Err(RelocError::Malformed { index: 2 })));
    let (repeated, ..) = apply_stream(|r| {
        let mut s = reloc_codec::encode(&r);
        s.push(3); // slot delta 0: the same slot again
        s
    });
    assert!(matches!(repeated, Err(RelocError::Unsorted { index: 3 })));
}

#[test]
fn records_that_need_work_form_the_first_stream_and_both_merge_by_slot() {
    let bytes = sample();
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let v = a.module(&bytes, 0).unwrap();
    assert!(!v.relocs_work.is_empty() && v.relocs_work.end < v.relocs.end);
    // `finish` knows no static symbols: Symbol and InternedStr need work, Object does not.
    let work = read_work_relocations(&bytes, &v).unwrap();
    assert_eq!(work.iter().map(|r| r.kind).collect::<Vec<_>>(), vec![RelocKind::Symbol, RelocKind::InternedStr]);
    let all = read_relocations(&bytes, &v).unwrap();
    let kinds: Vec<_> = all.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, vec![RelocKind::Object, RelocKind::Symbol, RelocKind::InternedStr]);
    assert!(all.windows(2).all(|w| w[0].slot < w[1].slot));

    // A slot in both streams is refused, as a repeated slot in one is.
    let mut b = bytes.clone();
    let first = reloc_codec::encode(&all[..2]);
    let second = reloc_codec::encode(&all[1..]);
    let mut w = v.clone();
    w.relocs = b.len()..b.len() + first.len() + second.len();
    w.relocs_work = w.relocs.start..w.relocs.start + first.len();
    w.relocs_names = w.relocs_work.end..w.relocs_work.end;
    w.relocs_image = w.relocs_work.end..w.relocs_work.end;
    b.extend(first);
    b.extend(second);
    assert!(matches!(read_relocations(&b, &w), Err(RelocError::Unsorted { .. })));
}

#[test]
fn bad_relocation_writes_nothing() {
    let (result, before, after) = apply_stream(|r| {
        let mut s = reloc_codec::encode(&r[..2]);
        s.extend([1 << 3 | 7, 0]); // a third record of unknown kind 7
        s
    });
    assert!(matches!(result, Err(RelocError::BadKind { index: 2 })));
    assert_eq!(before, after);
}

/// The bytes no check covers: the alignment padding after the strings,
/// before each page-aligned region and at the end of the file. Computed
/// from the header fields (docs/FORMAT.md), not by the reader.
fn padding(b: &[u8]) -> Vec<Range<usize>> {
    let end = |start, size| field(b, start) + field(b, size);
    vec![
        end(header::STRINGS, header::STRINGS_SIZE)..field(b, header::NAMES_INDEX),
        index(b).end..field(b, header::NAMES),
        end(header::NAMES, header::NAMES_SIZE)..field(b, header::HOT),
        end(header::HOT, header::HOT_SIZE)..field(b, header::COLD),
    ]
}

/// The name pool's index: no check covers it either, as its answers are
/// hints (each entry it offers is checked before use).
fn index(b: &[u8]) -> Range<usize> {
    let start = field(b, header::NAMES_INDEX);
    start..start + field(b, header::NAMES_INDEX_SLOTS) * cds_core::format::names_index::SLOT_SIZE
}

/// Whether the reader refuses `b` or any of its modules (entry check or checksum).
fn refused(b: &[u8]) -> bool {
    let Ok(a) = Archive::parse(b, &EXPECT) else { return true };
    a.verify_names(b).is_err() || (0..a.module_count()).any(|i| a.module(b, i).and_then(|v| v.verify(b)).is_err())
}

/// `b` copied into `work` (same address every time, so that relocated
/// pointers compare equal) with every module relocated.
fn relocated(work: &mut [u8], b: &[u8]) -> Vec<u8> {
    work.copy_from_slice(b);
    let a = Archive::parse(b, &EXPECT).unwrap();
    for i in 0..a.module_count() {
        let v = a.module(b, i).unwrap();
        let mut fx = fixups(work, &v);
        apply_relocations(work, &v, &mut fx).unwrap();
    }
    work.to_vec()
}

#[test]
fn every_flipped_bit_is_refused_or_lies_in_padding() {
    let b = sample_archive();
    let padding = padding(&b);
    // The builder pads with zeros, and a small archive is mostly padding
    // (its regions start on pages), so both branches below are exercised.
    assert!(padding.iter().all(|r| b[r.clone()].iter().all(|&x| x == 0)), "padding is not zeroed");
    let unchecked: Vec<Range<usize>> = padding.into_iter().chain([index(&b)]).collect();
    let in_padding = |at: usize| unchecked.iter().any(|r| r.contains(&at));
    let padding_len: usize = unchecked.iter().map(|r| r.len()).sum();
    assert!(padding_len > 0 && padding_len < b.len() && !index(&b).is_empty());

    let mut work = vec![0u8; b.len()];
    let expected = relocated(&mut work, &b);
    let mut ignored = 0;
    for at in 0..b.len() {
        for bit in [0x01, 0x80] {
            let mut c = b.clone();
            c[at] ^= bit;
            if !in_padding(at) {
                // Header, table, strings, and every module's objects and
                // relocation records are covered by some check.
                assert!(refused(&c), "flip of bit {bit:#x} at {at} went unnoticed");
                continue;
            }
            // Padding is read by nothing: the archive is accepted, and
            // relocating it gives the same bytes but for the flipped one.
            assert!(!refused(&c), "flip in padding at {at} refused");
            let mut got = relocated(&mut work, &c);
            got[at] ^= bit;
            assert!(got == expected, "flip in padding at {at} changed the relocated archive");
            ignored += 1;
        }
    }
    assert_eq!(ignored, 2 * padding_len);
}

#[test]
fn format_md_gives_the_module_entry_size_of_the_code() {
    let doc = format_md();
    let heading = format!("## Module table entry ({} bytes)", cds_core::format::layout::MODULE_ENTRY_SIZE);
    assert!(doc.lines().any(|l| l == heading), "docs/FORMAT.md lacks {heading:?}");
}

#[test]
fn format_md_gives_the_version_and_header_size_of_the_code() {
    use cds_core::format::layout::{FORMAT_VERSION, HEADER_SIZE};
    let doc = format_md();
    for line in [
        format!("# cds archive format, version {FORMAT_VERSION}"),
        format!("## Header ({HEADER_SIZE} bytes)"),
        format!("| 8 | 4 | format_version | {FORMAT_VERSION} |"),
        format!("| 12 | 4 | header_size | {HEADER_SIZE} |"),
    ] {
        assert!(doc.lines().any(|l| l == line), "docs/FORMAT.md lacks {line:?}");
    }
}

#[test]
fn format_md_lists_the_object_types_of_the_code() {
    let (first, last) = (OBJECT_TYPES[0].0, OBJECT_TYPES[OBJECT_TYPES.len() - 1].0);
    assert!(OBJECT_TYPES.iter().zip(first..).all(|((id, _), want)| *id == want), "type ids are consecutive");
    let names: Vec<&str> = OBJECT_TYPES.iter().map(|(_, name)| *name).collect();
    let line = format!("| {first}–{last} | types: {} |", names.join(", "));
    assert!(format_md().lines().any(|l| l == line), "docs/FORMAT.md lacks {line:?}");
}

#[test]
fn hot_end_objects_follow_the_modules_other_hot_objects() {
    let mut b = ArchiveBuilder::new();
    let mut m = b.module(meta("alpha")).unwrap();
    let first = m.alloc(Region::Hot, 32);
    let tail = m.alloc(Region::HotEnd, 32);
    m.bytes_mut(tail, 32).copy_from_slice(&[5u8; 32]);
    let code = m.alloc(Region::Hot, 32);
    m.reloc(code.add(8), Target::Object(tail));
    m.reloc(tail.add(8), Target::Object(first));
    m.finish(code);
    let bytes = b.finish(HEX, ID).unwrap();
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let v = a.module(&bytes, 0).unwrap();
    let relocs = cds_core::format::reloc::read_relocations(&bytes, &v).unwrap();
    // The tail object now lies after `code`, at the end of the hot span,
    // and both records name it there.
    let tail_at = relocs[0].target as usize;
    assert_eq!(relocs[1].slot as usize, tail_at + 8);
    assert!(tail_at > v.code && tail_at + 32 == v.hot.end, "{tail_at} {v:?}");
    assert_eq!(&bytes[tail_at + 16..tail_at + 32], &[5u8; 16]);
}

#[test]
fn every_other_module_puts_its_hot_end_objects_first_so_neighbours_meet() {
    let mut b = ArchiveBuilder::new();
    for (name, fill) in [("a", 1u8), ("b", 2), ("c", 3)] {
        let mut m = b.module(meta(name)).unwrap();
        let code = m.alloc(Region::Hot, 48);
        let tail = m.alloc(Region::HotEnd, 24);
        m.bytes_mut(tail, 24).copy_from_slice(&[fill; 24]);
        m.reloc(code.add(8), Target::Object(tail));
        m.reloc(tail.add(8), Target::Object(code));
        m.finish(code);
    }
    let bytes = b.finish(HEX, ID).unwrap();
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let view = |name| a.module(&bytes, a.find(&bytes, name).unwrap()).unwrap();
    let (va, vb, vc) = (view("a"), view("b"), view("c"));
    // a: code, tail | b: tail, code | c: code, tail (in the order finished).
    assert!(va.hot.end <= vb.hot.start && vb.hot.end <= vc.hot.start);
    let tail_of = |v: &ModuleView| {
        let relocs = cds_core::format::reloc::read_relocations(&bytes, v).unwrap();
        let code_slot = relocs.iter().find(|r| r.slot as usize == v.code + 8).unwrap();
        code_slot.target as usize
    };
    assert!(tail_of(&va) > va.code && tail_of(&vc) > vc.code);
    assert!(tail_of(&vb) == vb.hot.start && vb.code > tail_of(&vb));
    assert!(vb.code.is_multiple_of(16));
    // Every pointer still names the same object: b's tail holds 2s and points at b's code.
    let t = tail_of(&vb);
    assert_eq!(&bytes[t + 16..t + 24], &[2u8; 8]);
    let back = cds_core::format::reloc::read_relocations(&bytes, &vb).unwrap();
    assert!(back.iter().any(|r| r.slot as usize == t + 8 && r.target as usize == vb.code));
}

/// Rows `| offset | size | field | ... |` of the table under `heading` in docs/FORMAT.md.
fn format_md_table(heading: &str) -> Vec<(usize, usize, String)> {
    let doc = format_md();
    let mut rows = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.starts_with("## ") {
            inside = line.starts_with(heading);
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if inside && cells.len() > 4 {
            if let (Ok(offset), Ok(size)) = (cells[1].parse(), cells[2].parse()) {
                rows.push((offset, size, cells[3].to_string()));
            }
        }
    }
    rows
}

#[test]
fn format_md_header_and_entry_tables_match_layout_rs() {
    use cds_core::format::layout::{entry as e, header as h, HEADER_SIZE, MODULE_ENTRY_SIZE};
    let header: Vec<(usize, usize, &str)> = vec![
        (h::MAGIC, 8, "magic"),
        (h::FORMAT_VERSION, 4, "format_version"),
        (h::HEADER_SIZE, 4, "header_size"),
        (h::PYTHON_HEXVERSION, 4, "python_hexversion"),
        (h::FLAGS, 4, "flags"),
        (h::BUILD_ID, 16, "build_id"),
        (h::FILE_SIZE, 8, "file_size"),
        (h::TABLE_CHECKSUM, 8, "table_checksum"),
        (h::MODULE_COUNT, 4, "module_count"),
        (h::MODULE_TABLE, 4, "module_table"),
        (h::STRINGS, 4, "strings"),
        (h::STRINGS_SIZE, 4, "strings_size"),
        (h::RELOCS, 4, "relocs"),
        (h::RELOCS_SIZE, 4, "relocs_size"),
        (h::HOT, 4, "hot"),
        (h::HOT_SIZE, 4, "hot_size"),
        (h::COLD, 4, "cold"),
        (h::COLD_SIZE, 4, "cold_size"),
        (h::HEADER_CHECKSUM, 8, "header_checksum"),
        (h::PREFERRED_BASE, 8, "preferred_base"),
        (h::OPTIMIZE, 4, "optimize"),
        (h::COMPILE_FLAGS, 4, "compile_flags"),
        (h::NAMES, 4, "names"),
        (h::NAMES_SIZE, 4, "names_size"),
        (h::NAMES_CHECKSUM, 8, "names_checksum"),
        (h::CODE_SERIALS, 4, "code_serials"),
        (h::CODE_SERIAL_START, 4, "code_serial_start"),
        (h::NAMES_STARTUP_SIZE, 4, "names_startup_size"),
        (h::NAMES_INDEX, 4, "names_index"),
        (h::NAMES_INDEX_SLOTS, 4, "names_index_slots"),
        (h::RESERVED, 4, "reserved"),
    ];
    let entry: Vec<(usize, usize, &str)> = vec![
        (e::NAME, 4, "name"),
        (e::NAME_LEN, 4, "name_len"),
        (e::ORIGIN, 4, "origin"),
        (e::ORIGIN_LEN, 4, "origin_len"),
        (e::FLAGS, 4, "flags"),
        (e::CODE, 4, "code"),
        (e::SOURCE_MTIME_NS, 8, "source_mtime_ns"),
        (e::SOURCE_SIZE, 8, "source_size"),
        (e::HOT_START, 4, "hot_start"),
        (e::HOT_END, 4, "hot_end"),
        (e::COLD_START, 4, "cold_start"),
        (e::COLD_END, 4, "cold_end"),
        (e::RELOC_START, 4, "reloc_start"),
        (e::RELOC_SIZE, 4, "reloc_size"),
        (e::CHECKSUM, 8, "checksum"),
        (e::SOURCE_HASH, 8, "source_hash"),
        (e::SOURCE_DEV, 8, "source_dev"),
        (e::SOURCE_INO, 8, "source_ino"),
        (e::SOURCE_REALPATH, 4, "source_realpath"),
        (e::SOURCE_REALPATH_LEN, 4, "source_realpath_len"),
        (e::RELOC_WORK_SIZE, 4, "reloc_work_size"),
        (e::RELOC_NAMES_SIZE, 4, "reloc_names_size"),
        (e::RELOC_IMAGE_SIZE, 4, "reloc_image_size"),
        (e::RESERVED, 4, "reserved"),
    ];
    for (heading, code, total) in
        [("## Header", &header, HEADER_SIZE), ("## Module table entry", &entry, MODULE_ENTRY_SIZE)]
    {
        let doc = format_md_table(heading);
        let code: Vec<(usize, usize, String)> = code.iter().map(|(o, s, n)| (*o, *s, n.to_string())).collect();
        assert_eq!(doc, code, "docs/FORMAT.md {heading} differs from layout.rs");
        // The fields tile the record exactly.
        let mut at = 0;
        for (offset, size, name) in &code {
            assert_eq!(*offset, at, "{name} does not follow the previous field");
            at += size;
        }
        assert_eq!(at, total, "{heading} fields do not fill the record");
    }
}

#[test]
fn format_md_relocation_kinds_match_the_code() {
    let doc = format_md();
    let mut kinds = 0;
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3 && cells[2].chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            if let Ok(n) = cells[1].parse::<u32>() {
                let kind = RelocKind::from_u32(n).unwrap_or_else(|| panic!("docs/FORMAT.md lists unknown kind {n}"));
                assert_eq!(format!("{kind:?}"), cells[2], "kind {n}");
                kinds += 1;
            }
        }
    }
    assert_eq!(
        kinds,
        (1..100).filter(|n| RelocKind::from_u32(*n).is_some()).count(),
        "a kind is missing from docs/FORMAT.md"
    );
}

/// The text of docs/FORMAT.md, which these tests hold against the code.
fn format_md() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORMAT.md")).unwrap()
}

#[test]
fn pooled_names_are_listed_once_each_with_their_slots() {
    // Slots 0 and 2 name the entry of 1s, slot 1 the entry of 2s.
    let bytes = pooled_archive(&[(1, false), (2, false), (1, false)]);
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let v = a.module(&bytes, 0).unwrap();
    let pool = a.names().start as u32;
    assert_eq!(read_names(&bytes, &v).unwrap(), vec![pool, pool + 32]);
    assert!(v.relocs_work.end == v.relocs_names.start && v.relocs_names.end <= v.relocs.end);
    // Interned once per entry: no per-slot record in the first stream ...
    assert!(read_work_relocations(&bytes, &v).unwrap().iter().all(|r| r.kind != RelocKind::InternedStr));
    // ... all three in the names region, read only when asked for.
    let pooled = read_pooled_name_relocations(&bytes, &v).unwrap();
    assert_eq!(pooled.len(), 3);
    let all = read_relocations(&bytes, &v).unwrap();
    let targets: Vec<u32> = all.iter().filter(|r| r.kind == RelocKind::InternedStr).map(|r| r.target).collect();
    assert_eq!(targets, vec![pool, pool + 32, pool]);
}

#[test]
fn a_names_region_naming_outside_the_pool_or_twice_is_refused() {
    let bytes = pooled_archive(&[(1, false), (2, false)]);
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let v = a.module(&bytes, 0).unwrap();
    let mut b = bytes.clone();
    let mut w = v.clone();
    // Per name: its entry's delta (in 16-byte units, +1), its slot list's
    // length, the list (slot deltas in words: 8 is slot 64).
    for (region, refused) in [
        (vec![1u8, 1, 8, 2, 1, 9], false),
        (vec![1, 1, 8, 0, 1, 9], true),                   // the same entry twice
        (vec![0x80, 0x80, 0x80, 0x80, 0x40, 1, 8], true), // beyond the pool
        (vec![1, 0], true),                               // a name without slots
        (vec![1, 3, 8], true),                            // a list longer than the region
    ] {
        w.relocs_names = b.len()..b.len() + region.len();
        b.extend(&region);
        assert_eq!(read_names(&b, &w).is_err(), refused, "{region:?}");
    }
}

#[test]
fn a_slot_named_by_two_names_is_refused() {
    let bytes = pooled_archive(&[(1, false), (2, false)]);
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let v = a.module(&bytes, 0).unwrap();
    let slot = read_pooled_name_relocations(&bytes, &v).unwrap()[0].slot;
    let words = leb128(u64::from(slot / 8));
    let mut b = bytes.clone();
    let mut w = v.clone();
    // Both entries (0 and 32: deltas 1 and 2) name the same slot.
    let mut region = Vec::new();
    for delta in [1, 2] {
        region.extend([delta, words.len() as u8]);
        region.extend(&words);
    }
    w.relocs_names = b.len()..b.len() + region.len();
    b.extend(&region);
    assert_eq!(read_names(&b, &w).unwrap().len(), 2);
    assert!(matches!(read_pooled_name_relocations(&b, &w), Err(RelocError::Unsorted { .. })));
}

#[test]
fn only_the_slots_of_moved_pool_entries_are_rewritten() {
    // Slots 0 and 2 name the entry of 1s, slot 1 the entry of 2s; the
    // first entry stands for another str in this process.
    let mut bytes = pooled_archive(&[(1, false), (2, false), (1, false)]);
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let v = a.module(&bytes, 0).unwrap();
    let pool = a.names().start as u32;
    let pooled = read_pooled_name_relocations(&bytes, &v).unwrap();
    let before = bytes.clone();
    let (base, len) = (bytes.as_mut_ptr(), bytes.len());
    // SAFETY: `bytes` is the whole archive, not otherwise touched meanwhile.
    unsafe { rewrite_pooled_names_at(base, len, &v, |entry| entry == pool, |entry, _| 0xabc0_0000 + u64::from(entry)) }
        .unwrap();
    let slot = |b: &[u8], at: u32| u64::from_le_bytes(b[at as usize..at as usize + 8].try_into().unwrap());
    for r in pooled.iter() {
        let expected = if r.target == pool { 0xabc0_0000 + u64::from(pool) } else { slot(&before, r.slot) };
        assert_eq!(slot(&bytes, r.slot), expected);
    }
    let written: Vec<u32> = pooled.iter().filter(|r| r.target == pool).map(|r| r.slot).collect();
    assert_eq!(written.len(), 2);
    let elsewhere = |b: &[u8]| {
        b.iter()
            .enumerate()
            .filter(|(i, _)| !written.iter().any(|&s| (s as usize..s as usize + 8).contains(i)))
            .map(|(_, x)| *x)
            .collect::<Vec<u8>>()
    };
    assert_eq!(elsewhere(&bytes), elsewhere(&before), "a byte outside the moved entries' slots changed");
}

#[test]
fn image_symbols_are_grouped_by_id_and_resolved_once() {
    // Symbol 3 is a static of the image (in the last stream), 5 is not
    // (first stream, applied with the records that need work).
    let mut b = ArchiveBuilder::new();
    let mut m = b.module(meta("alpha")).unwrap();
    let code = m.alloc(Region::Hot, 48);
    m.reloc(code.add(16), Target::Symbol(3));
    m.reloc(code.add(24), Target::Symbol(5));
    m.reloc(code.add(32), Target::Object(code));
    m.reloc(code.add(40), Target::Symbol(3));
    m.finish(code);
    let mut bytes = b.finish_at(HEX, ID, 0, |_| 0, |id| id == 3).unwrap();
    let before = bytes.clone();
    let a = Archive::parse(&bytes, &EXPECT).unwrap();
    let v = a.module(&bytes, 0).unwrap();
    let (base, len) = (bytes.as_mut_ptr(), bytes.len());
    // SAFETY: `bytes` is the whole archive, not otherwise touched meanwhile.
    let statics = unsafe { read_image_symbols_at(base, len, &v, |id| Some(0x7000 + id as usize)) }.unwrap();
    // SAFETY: as above.
    unsafe { statics.write_at(base, len, &v) };
    let slot = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let start = v.code;
    assert_eq!((slot(&bytes, start + 16), slot(&bytes, start + 40)), (0x7003, 0x7003));
    for other in [start + 24, start + 32] {
        assert_eq!(slot(&bytes, other), slot(&before, other), "not an image static: left as it was");
    }
    // SAFETY: as above.
    let unknown = unsafe { read_image_symbols_at(base, len, &v, |_| None) };
    assert_eq!(unknown.err(), Some(RelocError::UnknownSymbol { id: 3 }));
    // A slot in two groups (symbols 3 and 4: key deltas 4 and 1, one-slot
    // lists), or outside the module, is refused.
    let words = leb128((start as u64 + 16) / 8);
    let list = |slot: &[u8]| [&[slot.len() as u8][..], slot].concat();
    for (stream, refused) in [
        ([&[4][..], &list(&words), &[1], &list(&words)].concat(), RelocError::Unsorted { index: 1 }),
        ([&[4][..], &list(&leb128(1 << 28))].concat(), RelocError::SlotOutOfBounds { index: 0 }),
    ] {
        let mut b = bytes.clone();
        let mut w = v.clone();
        w.relocs_image = b.len()..b.len() + stream.len();
        b.extend(&stream);
        assert_eq!(read_image_relocations(&b, &w).err(), Some(refused), "{stream:?}");
    }
}

/// `n` as LEB128, as the record streams hold numbers.
fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}
