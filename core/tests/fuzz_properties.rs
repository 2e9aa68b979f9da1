//! Property tests of the reader on corrupt bytes: the stable-Rust, always-run
//! companion of the cargo-fuzz targets in fuzz/ (docs/RELIABILITY.md).
//!
//! A small deterministic PRNG drives truncations, byte flips and multi-byte
//! mutations of sample archives, with and without recomputing the checksums
//! (so mutations also reach the checks behind them). On every input the
//! reader must return `Ok` or `Err` without panicking; a strict prefix of an
//! archive is always refused; and relocating a module (with fix-ups that
//! never dereference) writes only its own slots, inside its hot and cold
//! spans, or nothing at all when a record is refused.

mod common;

use cds_core::format::*;
use common::{meta, EXPECT, HEX, ID};
use std::ops::Range;

/// SplitMix64: tiny, deterministic, good enough to pick offsets.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
}

/// Three modules using every relocation kind; each has a code object in the
/// hot region pointing at a str-like and a tuple-like object in the cold one.
fn sample() -> Vec<u8> {
    let mut b = ArchiveBuilder::new();
    for name in ["zeta", "alpha", "pkg"] {
        let mut m = b.module(meta(name)).unwrap();
        let s = m.alloc(Region::Cold, 16);
        m.bytes_mut(s, 16).copy_from_slice(&[7u8; 16]);
        let tuple = m.alloc(Region::Cold, 32);
        m.reloc(tuple, Target::Symbol(17));
        m.reloc(tuple.add(24), Target::Object(s));
        let code = m.alloc(Region::Hot, 48);
        m.reloc(code.add(8), Target::Symbol(16));
        m.reloc(code.add(16), Target::Object(s));
        m.reloc(code.add(24), Target::InternedStr(s));
        m.reloc(code.add(32), Target::FrozenSet(tuple));
        m.reloc(code, Target::CodeInit);
        m.reloc(s.add(8), Target::Interior(s.add(12)));
        m.finish(code);
    }
    b.finish(HEX, ID).unwrap()
}

/// Fix-ups returning fake addresses; they never read or write through the
/// pointers they get, only check that those lie inside the module.
struct FakeFixups {
    base: usize,
    hot: Range<usize>,
    cold: Range<usize>,
    fail_intern: bool,
}
impl FakeFixups {
    fn owns(&self, addr: usize, len: usize) -> bool {
        let Some(off) = addr.checked_sub(self.base) else { return false };
        (self.hot.start <= off && off + len <= self.hot.end) || (self.cold.start <= off && off + len <= self.cold.end)
    }
}
impl Fixups for FakeFixups {
    fn symbol(&mut self, id: u32) -> Option<usize> {
        (id < 1536).then_some(0x7f00_0000_0000 + id as usize * 16)
    }
    unsafe fn intern(&mut self, string: usize) -> Result<usize, String> {
        assert!(self.owns(string, 16), "interned str outside the module");
        if self.fail_intern {
            return Err("fake intern failure".into());
        }
        Ok(string)
    }
    unsafe fn frozenset(&mut self, tuple: usize) -> Result<usize, String> {
        assert!(self.owns(tuple, 16), "frozenset tuple outside the module");
        Ok(0x5a5a_0000)
    }
    unsafe fn init_code(&mut self, code: usize) {
        assert!(self.owns(code, 16) && (code - self.base).is_multiple_of(OBJECT_ALIGN), "code object misplaced");
    }
}

fn get32(b: &[u8], at: usize) -> usize {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()) as usize)
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Recomputes module checksums, the table checksum, the file size and the
/// header checksum, as far as `mask` says and the fields are in bounds.
fn reseal(b: &mut [u8], mask: u32) {
    if b.len() < HEADER_SIZE {
        return;
    }
    if mask & 1 != 0 {
        let count = get32(b, header::MODULE_COUNT).min((b.len() - HEADER_SIZE) / MODULE_ENTRY_SIZE);
        for i in 0..count {
            let e = HEADER_SIZE + i * MODULE_ENTRY_SIZE;
            let hot = get32(b, e + entry::HOT_START)..get32(b, e + entry::HOT_END);
            let cold = get32(b, e + entry::COLD_START)..get32(b, e + entry::COLD_END);
            let first = get32(b, header::RELOCS) + get32(b, e + entry::RELOC_START) * RELOC_SIZE;
            let rel = first..first + get32(b, e + entry::RELOC_COUNT) * RELOC_SIZE;
            if [&hot, &cold, &rel].iter().all(|r| r.start <= r.end && r.end <= b.len()) {
                let sum = checksum(&[&b[hot], &b[cold], &b[rel]]);
                put64(b, e + entry::CHECKSUM, sum);
            }
        }
    }
    if mask & 2 != 0 {
        let end = get32(b, header::STRINGS) + get32(b, header::STRINGS_SIZE);
        if (HEADER_SIZE..=b.len()).contains(&end) {
            let sum = checksum(&[&b[HEADER_SIZE..end]]);
            put64(b, header::TABLE_CHECKSUM, sum);
        }
    }
    if mask & 4 != 0 {
        put64(b, header::FILE_SIZE, b.len() as u64);
    }
    if mask & 8 != 0 {
        let sum = header_checksum(b);
        put64(b, header::HEADER_CHECKSUM, sum);
    }
}

const SEAL_ALL: u32 = 0b1111;

#[derive(Default, Debug)]
struct Outcome {
    parsed: bool,
    modules: usize,
    verified: usize,
    relocated: usize,
}

/// Runs the reader over `b` as the interpreter would (parse, then per module:
/// entry check, find by name, verify, relocate), asserting its contract.
/// With `relocate_unverified`, modules failing their checksum are relocated
/// too: the relocation checks must not depend on the checksum.
fn check(b: &[u8], relocate_unverified: bool, fail_intern: bool) -> Outcome {
    let mut out = Outcome::default();
    let Ok(a) = Archive::parse(b, &EXPECT) else { return out };
    out.parsed = true;
    for cut in [0, HEADER_SIZE - 1, HEADER_SIZE, b.len() / 2, b.len() - 1] {
        assert!(Archive::parse(&b[..cut], &EXPECT).is_err(), "a {cut}-byte prefix was accepted");
    }
    let mut work = b.to_vec();
    for i in 0..a.module_count() {
        let Ok(v) = a.module(b, i) else { continue };
        out.modules += 1;
        for r in [&v.hot, &v.cold, &v.relocs] {
            assert!(r.start <= r.end && r.end <= b.len());
        }
        assert!(v.hot.contains(&v.code) && v.hot.end <= v.cold.start);
        let name = v.name(b);
        let _ = v.origin(b);
        if let Some(j) = a.find(b, name) {
            if let Ok(w) = a.module(b, j) {
                assert_eq!(w.name(b), name);
            }
        }
        let verified = v.verify(b).is_ok();
        out.verified += verified as usize;
        if !verified && !relocate_unverified {
            continue;
        }
        let base = work.as_ptr() as usize;
        let mut fx = FakeFixups { base, hot: v.hot.clone(), cold: v.cold.clone(), fail_intern };
        let result = apply_relocations(&mut work, &v, &mut fx);
        match &result {
            Ok(()) | Err(RelocError::Runtime(_)) => {}
            // A refused record is refused before the first write.
            Err(e) => assert!(work[..] == *b, "refused relocation ({e:?}) wrote"),
        }
        // Outside the module's spans, nothing changed.
        work[v.hot.clone()].copy_from_slice(&b[v.hot.clone()]);
        work[v.cold.clone()].copy_from_slice(&b[v.cold.clone()]);
        assert!(work[..] == *b, "relocation of module {i} wrote outside its spans");
        out.relocated += result.is_ok() as usize;
    }
    for name in ["", "a", "pkg", "zz", "\u{10ffff}"] {
        if let Some(j) = a.find(b, name) {
            if let Ok(w) = a.module(b, j) {
                assert_eq!(w.name(b), name);
            }
        }
    }
    out
}

#[test]
fn sample_passes_every_check() {
    let b = sample();
    let out = check(&b, false, false);
    assert!(out.parsed);
    assert_eq!((out.modules, out.verified, out.relocated), (3, 3, 3));
}

#[test]
fn every_truncation_is_refused() {
    let b = sample();
    for len in 0..b.len() {
        assert!(Archive::parse(&b[..len], &EXPECT).is_err(), "truncated to {len}");
    }
    // Even with the recorded size and every checksum recomputed to match, a
    // truncated archive is refused: its last region now ends past the file.
    for len in 0..b.len() {
        let mut c = b[..len].to_vec();
        reseal(&mut c, SEAL_ALL);
        assert!(!check(&c, true, false).parsed, "resealed truncation to {len} accepted");
    }
}

/// The bytes every check covers: header, table and strings, and every
/// module's objects and relocation records.
fn covered(b: &[u8]) -> Vec<Range<usize>> {
    let a = Archive::parse(b, &EXPECT).unwrap();
    let table_end = get32(b, header::STRINGS) + get32(b, header::STRINGS_SIZE);
    let mut r = Vec::new();
    r.push(0..table_end);
    for i in 0..a.module_count() {
        let v = a.module(b, i).unwrap();
        r.extend([v.hot, v.cold, v.relocs]);
    }
    r
}

#[test]
fn every_single_byte_flip_is_caught_or_harmless() {
    let b = sample();
    let covered = covered(&b);
    let mut harmless = 0;
    for at in 0..b.len() {
        for bit in [0x01, 0x80] {
            let mut c = b.clone();
            c[at] ^= bit;
            let out = check(&c, true, false);
            if out.parsed && out.verified == 3 {
                // Nothing noticed: the flip must be in padding no check covers.
                assert!(!covered.iter().any(|r| r.contains(&at)), "flip at {at} went unnoticed");
                harmless += 1;
            }
        }
    }
    // Padding before the page-aligned regions is most of a small archive.
    assert!(harmless > 0);
}

/// Puts a boundary value into a random header, entry or relocation field,
/// flips, truncates, extends or splices bytes.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>) {
    let header_fields = [
        header::FORMAT_VERSION,
        header::FLAGS,
        header::FILE_SIZE,
        header::MODULE_COUNT,
        header::MODULE_TABLE,
        header::STRINGS,
        header::STRINGS_SIZE,
        header::RELOCS,
        header::RELOC_COUNT,
        header::HOT,
        header::HOT_SIZE,
        header::COLD,
        header::COLD_SIZE,
        header::RESERVED,
    ];
    let entry_fields = [
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
        entry::RELOC_COUNT,
    ];
    let boundary = |rng: &mut Rng, b: &[u8], old: usize| -> u32 {
        let old = old as u32;
        match rng.below(10) {
            0 => 0,
            1 => u32::MAX,
            2 => b.len() as u32,
            3 => get32(b, header::HOT) as u32,
            4 => get32(b, header::COLD) as u32,
            5 => (get32(b, header::COLD) + get32(b, header::COLD_SIZE)) as u32,
            6 => old.wrapping_add(rng.below(33) as u32).wrapping_sub(16),
            7 => 1 << rng.below(32),
            8 => rng.below(8) as u32, // relocation kinds, known and not
            _ => rng.u32(),
        }
    };
    let count = get32(b, header::MODULE_COUNT).clamp(1, 8);
    match rng.below(8) {
        0 | 1 if !b.is_empty() => {
            let at = rng.below(b.len());
            b[at] ^= 1 << rng.below(8);
        }
        2 => {
            let at = header_fields[rng.below(header_fields.len())];
            let v = boundary(rng, b, get32(b, at));
            put32(b, at, v);
        }
        3 => {
            let at = HEADER_SIZE + rng.below(count) * MODULE_ENTRY_SIZE + entry_fields[rng.below(entry_fields.len())];
            let v = boundary(rng, b, get32(b, at));
            put32(b, at, v);
        }
        4 => {
            let n = get32(b, header::RELOC_COUNT).clamp(1, 64);
            let at = get32(b, header::RELOCS) + rng.below(n) * RELOC_SIZE + 4 * rng.below(3);
            let v = boundary(rng, b, get32(b, at));
            put32(b, at, v);
        }
        5 => {
            let len = rng.below(b.len() + 1);
            b.truncate(len);
        }
        6 => b.extend(std::iter::repeat_n(rng.next() as u8, rng.below(48))),
        _ if !b.is_empty() => {
            let (src, dst) = (rng.below(b.len()), rng.below(b.len()));
            let n = rng.below(128).min(b.len() - src).min(b.len() - dst);
            b.copy_within(src..src + n, dst);
        }
        _ => {}
    }
}

#[test]
fn random_mutations_are_refused_or_harmless() {
    let b = sample();
    let mut rng = Rng(0x00c0_ffee);
    let (mut parsed, mut relocated, mut refused_later) = (0, 0, 0);
    for iter in 0..20_000 {
        let mut c = b.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut c);
        }
        // A quarter as is, the rest resealed in part or in full.
        let mask = if iter % 4 == 0 { 0 } else { rng.u32() & SEAL_ALL | if iter % 2 == 1 { SEAL_ALL } else { 0 } };
        reseal(&mut c, mask);
        let out = check(&c, iter % 3 == 0, iter % 5 == 0);
        parsed += out.parsed as usize;
        relocated += out.relocated;
        refused_later += out.modules - out.relocated.min(out.modules);
    }
    // The mutations must reach the deep checks, or this test proves little.
    assert!(parsed > 2_000, "only {parsed} mutants parsed");
    assert!(relocated > 2_000, "only {relocated} modules relocated");
    assert!(refused_later > 500, "only {refused_later} modules refused by verify or relocation");
    eprintln!(
        "{parsed} mutants parsed, {relocated} modules relocated, {refused_later} refused by verify or relocation"
    );
}
