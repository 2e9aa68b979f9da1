//! What the fuzz targets share: the reader sequence every input goes through
//! ([`check_archive`]), a fake [`Fixups`] that never dereferences anything,
//! an archive built from fuzz bytes ([`build_archive`]) and structure-aware
//! mutations of it ([`mutate`], [`reseal`]).
//!
//! Everything here asserts the reader's contract: on any bytes, `parse`,
//! `module`, `verify`, `find` and `apply_relocations` return `Ok` or `Err`
//! without panicking, and relocation writes only its own slots, inside the
//! module's hot and cold spans. A failed assertion is a finding.

use cds_core::format::reloc::read_relocations;
use cds_core::format::*;
use std::collections::HashMap;
use std::ops::Range;

/// Symbol ids below this resolve (the real table is smaller; unknown ids
/// must be refused by the caller's `Fixups`, which the fake does above it).
pub const SYMBOL_LIMIT: u32 = 1536;

/// The fake address of runtime object `id`: a value only, never followed.
pub fn fake_symbol(id: u32) -> u64 {
    0x7f00_0000_0000 + id as u64 * 16
}

/// The fake frozenset "built" from the tuple at `tuple`.
pub fn fake_frozenset(tuple: usize) -> u64 {
    tuple as u64 ^ 0x5a5a_0000_0000_0000
}

/// A `Fixups` that returns fixed fake addresses and never reads or writes
/// through the pointers it is given: it only checks that they lie inside the
/// module being relocated.
pub struct FakeFixups {
    /// Address of the buffer being relocated.
    pub base: usize,
    /// The module's spans (file offsets).
    pub hot: Range<usize>,
    pub cold: Range<usize>,
    /// Make the n-th `intern` call fail (to exercise the runtime-error path).
    pub fail_intern_at: Option<usize>,
    pub interned: usize,
    pub frozensets: usize,
    pub code_inits: usize,
}

impl FakeFixups {
    pub fn new(base: usize, view: &ModuleView) -> Self {
        Self {
            base,
            hot: view.hot.clone(),
            cold: view.cold.clone(),
            fail_intern_at: None,
            interned: 0,
            frozensets: 0,
            code_inits: 0,
        }
    }

    fn owns(&self, addr: usize, len: usize) -> bool {
        let Some(off) = addr.checked_sub(self.base) else { return false };
        let end = off + len;
        (self.hot.start <= off && end <= self.hot.end) || (self.cold.start <= off && end <= self.cold.end)
    }
}

impl Fixups for FakeFixups {
    fn symbol(&mut self, id: u32) -> Option<usize> {
        (id < SYMBOL_LIMIT).then(|| fake_symbol(id) as usize)
    }

    unsafe fn intern(&mut self, string: usize) -> Result<usize, String> {
        // Never read the str: only check where it is.
        assert!(self.owns(string, 16), "interned str {string:#x} outside the module");
        self.interned += 1;
        if self.fail_intern_at == Some(self.interned) {
            return Err("fake intern failure".into());
        }
        Ok(string)
    }

    unsafe fn frozenset(&mut self, tuple: usize) -> Result<usize, String> {
        assert!(self.owns(tuple, 16), "frozenset tuple {tuple:#x} outside the module");
        self.frozensets += 1;
        Ok(fake_frozenset(tuple) as usize)
    }

    unsafe fn init_code(&mut self, code: usize) {
        // Never touch the code object: only check where it is.
        assert!(
            self.owns(code, 16) && (code - self.base).is_multiple_of(OBJECT_ALIGN),
            "code object {code:#x} misplaced"
        );
        self.code_inits += 1;
    }
}

/// The expectations the bytes claim for themselves, so that inputs get past
/// the version and build-id checks (which are tested elsewhere).
pub fn claimed_expectations(bytes: &[u8]) -> Expectations {
    let mut e = Expectations { python_hexversion: 0x030b_00f0, build_id: [0; 16] };
    if bytes.len() >= header::BUILD_ID + 16 {
        e.python_hexversion = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
        e.build_id.copy_from_slice(&bytes[header::BUILD_ID..header::BUILD_ID + 16]);
    }
    e
}

/// How far an input got through the reader.
#[derive(Default, Debug, Clone, Copy)]
pub struct Outcome {
    pub parsed: bool,
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

/// Runs the whole reader over `bytes`, asserting its contract. `names` are
/// extra names to look up.
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
    // Any strict prefix of an accepted archive is refused.
    for cut in [bytes.len() - 1, bytes.len() / 2, HEADER_SIZE - 1] {
        assert!(Archive::parse(&bytes[..cut.min(bytes.len() - 1)], &expect).is_err(), "prefix of {cut} bytes accepted");
    }
    // So is the archive with a byte appended.
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(Archive::parse(&longer, &expect).is_err(), "archive with a byte appended accepted");

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
        assert_eq!(view.relocs.len() % RELOC_SIZE, 0);
        assert!(view.hot.contains(&view.code), "code object outside the hot span");
        assert!(view.hot.end <= view.cold.start, "hot and cold spans overlap");

        let name = view.name(bytes);
        let _ = (view.origin(bytes), view.is_frozen(bytes), view.source_hash);
        // Looking a module up by its own name finds a module of that name
        // (maybe another entry, if names repeat or the table is unsorted).
        check_find(&archive, bytes, name);

        let verified = match view.verify(bytes) {
            Ok(()) => true,
            Err(e) => {
                assert!(matches!(e, FormatError::ModuleChecksum { .. }));
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
            // Exactly the slots changed, each to what its record says.
            let relocs = read_relocations(bytes, view).expect("apply succeeded, so the records are valid");
            let mut expected: HashMap<usize, u64> = HashMap::new();
            for r in &relocs {
                // Whatever its kind, a record names an 8-aligned slot of the module.
                assert!(r.slot % 8 == 0 && view.owns(r.slot as usize, 8), "slot of {r:?} outside the module");
                if r.kind.targets_object() {
                    assert!(view.owns(r.target as usize, 16), "target of {r:?} outside the module");
                }
                if r.kind == RelocKind::Interior {
                    assert!(view.owns(r.target as usize, 1), "target of {r:?} outside the module");
                }
                let value = match r.kind {
                    RelocKind::Object | RelocKind::Interior => (base + r.target as usize) as u64,
                    RelocKind::Symbol => fake_symbol(r.target),
                    RelocKind::FrozenSet => 0,
                    // Written in a later pass, once the str is relocated.
                    RelocKind::InternedStr => continue,
                    // Writes no slot: the fix-ups get the code object's address.
                    RelocKind::CodeInit => continue,
                };
                expected.insert(r.slot as usize, value);
            }
            // Passes in the order apply_relocations runs them: interned strs
            // (the fake returns the str itself), then frozensets.
            for r in relocs.iter().filter(|r| r.kind == RelocKind::InternedStr) {
                expected.insert(r.slot as usize, (base + r.target as usize) as u64);
            }
            for r in relocs.iter().filter(|r| r.kind == RelocKind::FrozenSet) {
                expected.insert(r.slot as usize, fake_frozenset(base + r.target as usize));
            }
            for (&slot, &value) in &expected {
                assert!(view.owns(slot, 8), "slot {slot} outside the module");
                let got = u64::from_le_bytes(work[slot..slot + 8].try_into().unwrap());
                assert_eq!(got, value, "slot {slot}");
                work[slot..slot + 8].copy_from_slice(&bytes[slot..slot + 8]);
            }
            assert!(work[..] == *bytes, "relocation wrote outside its slots");
            assert_eq!(fx.interned, relocs.iter().filter(|r| r.kind == RelocKind::InternedStr).count());
            assert_eq!(fx.frozensets, relocs.iter().filter(|r| r.kind == RelocKind::FrozenSet).count());
            assert_eq!(fx.code_inits, relocs.iter().filter(|r| r.kind == RelocKind::CodeInit).count());
            true
        }
        Err(RelocError::Runtime(_)) => {
            // A failing fix-up after the writes: they stay inside the spans.
            restore(work, bytes, view);
            assert!(work[..] == *bytes, "relocation wrote outside the module's spans");
            false
        }
        Err(e) => {
            // A refused record: nothing was written at all.
            let _ = e.to_string();
            assert!(work[..] == *bytes, "refused relocation ({e:?}) wrote");
            false
        }
    };
    restore(work, bytes, view);
    ok
}

fn restore(work: &mut [u8], bytes: &[u8], view: &ModuleView) {
    work[view.hot.clone()].copy_from_slice(&bytes[view.hot.clone()]);
    work[view.cold.clone()].copy_from_slice(&bytes[view.cold.clone()]);
}

/// Reads fuzz input as a stream of small decisions; zeros once exhausted.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.u32() as usize % n
        }
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (self.pos + n).min(self.data.len());
        self.pos += n;
        &self.data[start..end]
    }
}

const NAMES: [&str; 10] = ["a", "alpha", "pkg", "pkg.sub", "zeta", "é", "encodings.utf_8", "", "a.b.c", "ÿ"];

/// What [`build_archive`] made, for checking the unmutated archive.
pub struct Built {
    pub bytes: Vec<u8>,
    pub names: Vec<String>,
    /// Some module has a symbol id the fake fixups refuse.
    pub unknown_symbol: bool,
}

/// Builds a valid archive whose shape (modules, objects, relocations) comes
/// from `input`.
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
            source_dev: 0,
            source_ino: 0,
            source_realpath: String::new(),
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
        for _ in 0..relocs {
            let (slot_obj, size) = objs[input.below(objs.len())];
            let kind = input.u8() % 6;
            if kind == 4 {
                // Per-process state of a code object: the slot is an object start.
                m.reloc(slot_obj, Target::CodeInit);
                continue;
            }
            let slot = slot_obj.add(8 * input.below(size / 8));
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
        let r = apply_relocations(&mut work, &v, &mut FakeFixups::new(base, &v));
        match r {
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

fn get32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().unwrap()))
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

const HEADER_U32: [usize; 16] = [
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
    header::RELOC_COUNT,
    header::HOT,
    header::HOT_SIZE,
    header::COLD,
    header::COLD_SIZE,
];
const ENTRY_U32: [usize; 14] = [
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
    entry::SOURCE_MTIME_NS,
    entry::CHECKSUM,
];

/// A value likely to sit on a boundary the reader checks.
fn interesting(input: &mut Input, b: &[u8], old: u32) -> u32 {
    let field = |at| get32(b, at).unwrap_or(0);
    let raw = input.u32();
    match input.u8() % 14 {
        0 => 0,
        1 => 1,
        2 => u32::MAX,
        3 => b.len() as u32,
        4 => field(header::HOT),
        5 => field(header::COLD),
        6 => field(header::HOT).wrapping_add(field(header::HOT_SIZE)),
        7 => field(header::COLD).wrapping_add(field(header::COLD_SIZE)),
        8 => 1 << (raw % 32),
        9 => old.wrapping_add((raw as i8) as u32),
        10 => old.wrapping_add(((raw as i8) as u32).wrapping_mul(16)),
        11 => field(header::RELOC_COUNT),
        12 => field(header::STRINGS_SIZE),
        _ => raw,
    }
}

/// Applies input-driven mutations to an archive: byte flips, field rewrites
/// with boundary values, truncation, extension, splices, entry copies.
pub fn mutate(input: &mut Input, b: &mut Vec<u8>) {
    let rounds = input.below(6);
    for _ in 0..rounds {
        let count = get32(b, header::MODULE_COUNT).unwrap_or(0) as usize;
        let relocs = get32(b, header::RELOCS).unwrap_or(0) as usize;
        let nrelocs = get32(b, header::RELOC_COUNT).unwrap_or(0) as usize;
        match input.u8() % 10 {
            0 | 1 if !b.is_empty() => {
                let at = input.below(b.len());
                b[at] ^= input.u8() | 1;
            }
            2 => {
                let at = HEADER_U32[input.below(HEADER_U32.len())];
                let old = get32(b, at).unwrap_or(0);
                let v = interesting(input, b, old);
                put32(b, at, v);
            }
            3 => {
                let at = HEADER_SIZE
                    + input.below(count.max(1)) * MODULE_ENTRY_SIZE
                    + ENTRY_U32[input.below(ENTRY_U32.len())];
                let old = get32(b, at).unwrap_or(0);
                let v = interesting(input, b, old);
                put32(b, at, v);
            }
            4 => {
                let at = relocs + input.below(nrelocs.max(1)) * RELOC_SIZE + 4 * input.below(3);
                let old = get32(b, at).unwrap_or(0);
                let v = match input.u8() % 3 {
                    0 => input.u8() as u32 % 8, // the kinds, and 0 and 7 (unknown)
                    _ => interesting(input, b, old),
                };
                put32(b, at, v);
            }
            5 => {
                let len = input.below(b.len() + 1);
                b.truncate(len);
            }
            6 => {
                let n = input.below(64);
                let v = input.u8();
                b.extend(std::iter::repeat_n(v, n));
            }
            7 if !b.is_empty() => {
                let src = input.below(b.len());
                let dst = input.below(b.len());
                let n = input.below(256).min(b.len() - src).min(b.len() - dst);
                b.copy_within(src..src + n, dst);
            }
            8 if count > 0 => {
                let (x, y) = (input.below(count), input.below(count));
                let (x, y) = (HEADER_SIZE + x * MODULE_ENTRY_SIZE, HEADER_SIZE + y * MODULE_ENTRY_SIZE);
                if y + MODULE_ENTRY_SIZE <= b.len() && x + MODULE_ENTRY_SIZE <= b.len() {
                    b.copy_within(x..x + MODULE_ENTRY_SIZE, y);
                }
            }
            9 => {
                // An entry's 64-bit fields, and the file size.
                let at = match input.u8() % 4 {
                    0 => header::FILE_SIZE,
                    1 => HEADER_SIZE + input.below(count.max(1)) * MODULE_ENTRY_SIZE + entry::SOURCE_HASH,
                    2 => HEADER_SIZE + input.below(count.max(1)) * MODULE_ENTRY_SIZE + entry::SOURCE_SIZE,
                    _ => HEADER_SIZE + input.below(count.max(1)) * MODULE_ENTRY_SIZE + entry::CHECKSUM,
                };
                let v = match input.u8() % 3 {
                    0 => b.len() as u64,
                    1 => u64::MAX,
                    _ => input.u32() as u64 | ((input.u32() as u64) << 32),
                };
                put64(b, at, v);
            }
            _ => {}
        }
    }
}

/// Which checksums [`reseal`] recomputes (so mutations reach deeper checks).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reseal {
    pub modules: bool,
    pub table: bool,
    pub file_size: bool,
    pub header: bool,
}

impl Reseal {
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
    let field = |b: &[u8], at| get32(b, at).unwrap_or(0) as usize;
    if what.modules {
        let count = field(b, header::MODULE_COUNT).min((b.len() - HEADER_SIZE) / MODULE_ENTRY_SIZE);
        let relocs = field(b, header::RELOCS);
        for i in 0..count {
            let e = HEADER_SIZE + i * MODULE_ENTRY_SIZE;
            let span = |b: &[u8], s, t| field(b, e + s)..field(b, e + t);
            let hot = span(b, entry::HOT_START, entry::HOT_END);
            let cold = span(b, entry::COLD_START, entry::COLD_END);
            let first = relocs + field(b, e + entry::RELOC_START) * RELOC_SIZE;
            let rel = first..first + field(b, e + entry::RELOC_COUNT) * RELOC_SIZE;
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

/// A few valid archives covering every relocation kind, packages, empty
/// regions and several modules: the seed corpus of `archive_reader`.
pub fn seed_archives() -> Vec<Vec<u8>> {
    let hex = 0x030b_02f0;
    let id = *b"0123456789abcdef";
    let mut seeds = Vec::new();

    // One module, one code object, no relocations, empty cold region.
    let mut b = ArchiveBuilder::new();
    let mut m = b.module(meta("solo", false)).unwrap();
    let code = m.alloc(Region::Hot, 48);
    m.finish(code);
    seeds.push(b.finish(hex, id).unwrap());

    // Three modules with every relocation kind (as in core/tests/format.rs).
    let mut b = ArchiveBuilder::new();
    for name in ["zeta", "alpha", "pkg"] {
        let mut m = b.module(meta(name, name == "pkg")).unwrap();
        let cold = m.alloc(Region::Cold, 16);
        m.bytes_mut(cold, 16).copy_from_slice(&[7u8; 16]);
        let tuple = m.alloc(Region::Cold, 32);
        m.reloc(tuple, Target::Symbol(17));
        m.reloc(tuple.add(24), Target::Object(cold));
        let code = m.alloc(Region::Hot, 64);
        m.reloc(code.add(8), Target::Symbol(16));
        m.reloc(code.add(16), Target::Object(cold));
        m.reloc(code.add(24), Target::InternedStr(cold));
        m.reloc(code.add(32), Target::FrozenSet(tuple));
        m.reloc(code.add(40), Target::Symbol(1024 + b'x' as u32));
        m.reloc(code, Target::CodeInit);
        m.reloc(code.add(48), Target::Interior(cold.add(4)));
        m.finish(code);
    }
    seeds.push(b.finish(hex, id).unwrap());

    // Many small modules (a longer table to search).
    let mut b = ArchiveBuilder::new();
    for k in 0..24 {
        let name = format!("mod{k:02}.sub");
        let mut m = b.module(meta(&name, k % 5 == 0)).unwrap();
        let code = m.alloc(Region::Hot, 32);
        let c = m.alloc(Region::Cold, 16);
        m.reloc(code, Target::Symbol(16));
        m.reloc(code.add(8), Target::Object(c));
        m.reloc(c.add(8), Target::Symbol(k));
        m.finish(code);
    }
    seeds.push(b.finish(hex, id).unwrap());
    seeds
}

fn meta(name: &str, is_package: bool) -> ModuleMeta {
    ModuleMeta {
        name: name.into(),
        origin: format!("/usr/lib/python3.11/{name}.py"),
        is_package,
        source_mtime_ns: 1_700_000_000_123_456_789,
        source_size: 4321,
        source_hash: 0x1234_5678_9abc_def0,
        source_dev: 0,
        source_ino: 0,
        source_realpath: String::new(),
    }
}

/// The `archive_reader` target: `data` as an archive, as is and resealed.
/// Returns how far each of the two got.
pub fn run_archive_reader(data: &[u8]) -> [Outcome; 2] {
    // A few names to look up besides each module's own: fixed ones, and the
    // input's last bytes (often a module name or origin in the strings).
    let tail = String::from_utf8_lossy(&data[data.len().saturating_sub(12)..]);
    let names = ["", "a", "pkg", "zeta", "\u{10ffff}", &tail];
    let opts = CheckOptions {
        // Relocation checks must hold whatever the checksum says.
        relocate_unverified: true,
        // Now and then, a fix-up that fails halfway.
        fail_intern_at: (data.len() % 7 == 3).then_some(1),
    };
    let raw = check_archive(data, &names, opts);
    let mut sealed = data.to_vec();
    reseal(&mut sealed, Reseal { modules: true, table: true, file_size: true, header: true });
    let sealed = check_archive(&sealed, &names, CheckOptions { relocate_unverified: false, ..opts });
    [raw, sealed]
}

/// The `mutated_archive` target: build an archive as `data` describes,
/// check it, mutate it, maybe reseal it, check it again.
pub fn run_mutated_archive(data: &[u8]) -> Outcome {
    let mut input = Input::new(data);
    let built = build_archive(&mut input);
    check_built(&built);
    let mut bytes = built.bytes.clone();
    mutate(&mut input, &mut bytes);
    let bits = input.u8();
    reseal(&mut bytes, Reseal::from_bits(bits));
    let opts = CheckOptions { relocate_unverified: bits & 0x10 != 0, fail_intern_at: (bits & 0x20 != 0).then_some(1) };
    let names: Vec<&str> = built.names.iter().map(String::as_str).chain(["", "b", "zzz"]).collect();
    check_archive(&bytes, &names, opts)
}
