//! Lays an archive out: objects into two regions per module and one name
//! pool per archive, modules into a sorted table.
//!
//! The CPython glue allocates each object's bytes here and records, for every
//! pointer slot, what the slot must point to at load ([`Target`]). Nothing
//! here knows CPython layouts. Modules never share objects, so each module's
//! objects occupy one contiguous span per region and can be checked and fixed
//! up alone, at its first import.

use super::compile::CompileSettings;
use super::layout::*;
use super::names_index;
use super::reloc_codec;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// The object regions. `Hot` holds what the interpreter writes to (code
/// objects: quickening, co_extra, ...); `Cold` holds constants that are
/// only read, so their pages can stay clean and shared where the version's
/// refcounting allows it. `Names` is the archive's name pool: each distinct
/// interned name once, shared by every module (see
/// [`ModuleBuilder::pooled`]); interning and hashing write there.
///
/// `HotEnd` is one end of the module's hot span: what is allocated there is
/// placed after all of the module's other hot objects when the module is
/// finished (before them in every other module, so that two neighbours'
/// meet), so that objects written whatever code runs (module and class
/// bodies, tuples of names) share pages with each other rather than with
/// code objects that may never run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    Hot,
    HotEnd,
    Cold,
    Names,
}

/// A position inside one of the regions under construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegionRef {
    pub region: Region,
    pub offset: usize,
}

impl RegionRef {
    /// The position `bytes` further on (a field of the object at `self`).
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, bytes: usize) -> Self {
        Self { region: self.region, offset: self.offset + bytes }
    }
}

/// What a pointer slot refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// An archived object of the same module.
    Object(RegionRef),
    /// An archived str to intern at load.
    InternedStr(RegionRef),
    /// A runtime object named by symbol id.
    Symbol(u32),
    /// A frozenset rebuilt at load from the archived tuple.
    FrozenSet(RegionRef),
    /// Not a pointer: the slot is a code object that gets its per-process
    /// state at load (see `Fixups::init_code`).
    CodeInit,
    /// A position inside an object of the same module (not an object start).
    Interior(RegionRef),
}

/// What the table says of a module besides its objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleMeta {
    pub name: String,
    pub origin: String,
    pub is_package: bool,
    pub source_mtime_ns: i64,
    pub source_size: u64,
    /// xxh3-64 of the source file's bytes, for `-X cds_check=hash`.
    pub source_hash: u64,
    /// `st_dev`, `st_ino` and the symlink-free path of the file the origin
    /// resolved to (0, 0, "" when unknown, e.g. for frozen modules): a
    /// release directory switched behind a symlink is another file.
    pub source_dev: u64,
    pub source_ino: u64,
    pub source_realpath: String,
}

struct PendingReloc {
    slot: RegionRef,
    target: Target,
    /// What `finish_at` writes into the slot instead of the value computed
    /// from `target` (see `ModuleBuilder::reloc_prewritten`).
    prewritten: Option<u64>,
}

/// One name of the pool (see `ArchiveBuilder::pool_entries`).
#[derive(Clone, Copy)]
struct PoolEntry {
    offset: usize,
    size: usize,
    type_slot: usize,
    type_id: u32,
    /// The interpreter interns this name during its own start-up
    /// ([`ModuleBuilder::pooled`]).
    startup: bool,
    /// The name's `names_index::hash`.
    name_hash: u64,
}

struct PendingModule {
    meta: ModuleMeta,
    /// Every process imports it while starting (`ModuleBuilder::imported_at_startup`).
    at_startup: bool,
    code: RegionRef,
    hot: Range<usize>,
    cold: Range<usize>,
    relocs: Range<usize>,
}

/// Errors the builder can report.
#[derive(Debug, PartialEq, Eq)]
pub enum BuildError {
    DuplicateModule(String),
    TooLarge,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DuplicateModule(n) => write!(f, "module {n} listed twice"),
            Self::TooLarge => write!(f, "archive would exceed 4 GiB"),
        }
    }
}
impl std::error::Error for BuildError {}

#[derive(Default)]
pub struct ArchiveBuilder {
    hot: Vec<u8>,
    cold: Vec<u8>,
    /// The current module's `HotEnd` objects, until it is finished.
    hot_end: Vec<u8>,
    pool: Vec<u8>,
    /// Pool entry by its bytes, so each distinct name is stored once.
    pooled: HashMap<Vec<u8>, usize>,
    /// Pool entries in the order they were added: offset, padded size, and
    /// the type slot (relative to the entry; entries have no relocation
    /// records) with the symbol `finish_at` pre-writes there.
    pool_entries: Vec<PoolEntry>,
    /// Code serials handed out so far, from `layer.first_code_serial()`.
    code_serials: u32,
    layer: Layer,
    relocs: Vec<PendingReloc>,
    modules: Vec<PendingModule>,
    names: HashSet<String>,
    compile: CompileSettings,
}

impl ArchiveBuilder {
    /// A builder for an archive of code compiled with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder for an archive of code compiled with `compile` (the
    /// dumping interpreter's settings), which its readers must match.
    pub fn with_compile_settings(compile: CompileSettings) -> Self {
        Self { compile, ..Self::default() }
    }

    /// Lays the archive out as `layer` (its code serials; the caller passes
    /// `layer.preferred_base()` to `finish_at`).
    pub fn set_layer(&mut self, layer: Layer) {
        self.layer = layer;
    }

    /// Starts a module. Its objects are dropped again unless
    /// [`ModuleBuilder::finish`] is called.
    pub fn module(&mut self, meta: ModuleMeta) -> Result<ModuleBuilder<'_>, BuildError> {
        if self.names.contains(&meta.name) {
            return Err(BuildError::DuplicateModule(meta.name));
        }
        let start = (self.hot.len(), self.cold.len(), self.relocs.len());
        Ok(ModuleBuilder { archive: self, meta: Some(meta), at_startup: false, start })
    }

    pub fn module_count(&self) -> usize {
        self.modules.len()
    }

    fn buf(&mut self, region: Region) -> &mut Vec<u8> {
        match region {
            Region::Hot => &mut self.hot,
            Region::HotEnd => &mut self.hot_end,
            Region::Cold => &mut self.cold,
            Region::Names => &mut self.pool,
        }
    }

    /// Writes the archive bytes. `python_hexversion` and `build_id` name the
    /// interpreter build that may read it. Pointer slots are left zero.
    pub fn finish(self, python_hexversion: u32, build_id: [u8; 16]) -> Result<Vec<u8>, BuildError> {
        // No runtime object is known to be a static of the image: every
        // Symbol record goes with those that need work.
        self.finish_at(python_hexversion, build_id, 0, |_| 0, |_| false)
    }

    /// Lays the pool out with the start-up names first (every process
    /// interns them before its own, `header::NAMES_STARTUP_SIZE`), then the
    /// other names of modules imported at start-up (every process interns
    /// them too), then by how many modules use each name, most first, and
    /// in order of first use among equals: every process interns (writes)
    /// the entries its modules name, so the names most modules share fill
    /// pages of their own, and a module's own names sit together, instead
    /// of each page mixing names of many modules that a process mostly does
    /// not import (measured on the stdlib archive: docs/PERFORMANCE.md).
    /// Returns each entry's new offset by its old one.
    fn reorder_pool(&mut self) -> HashMap<usize, usize> {
        let mut users: HashMap<usize, usize> = HashMap::new();
        let mut at_startup = HashSet::new();
        for m in &self.modules {
            let mut named = HashSet::new();
            for r in &self.relocs[m.relocs.clone()] {
                if let Target::InternedStr(t) | Target::Object(t) = r.target {
                    if t.region == Region::Names && named.insert(t.offset) {
                        *users.entry(t.offset).or_default() += 1;
                    }
                }
            }
            if m.at_startup {
                at_startup.extend(named);
            }
        }
        let mut order: Vec<usize> = (0..self.pool_entries.len()).collect();
        order.sort_by_key(|&i| {
            let e = &self.pool_entries[i];
            (!e.startup, !at_startup.contains(&e.offset), std::cmp::Reverse(users.get(&e.offset).copied().unwrap_or(0)))
        });
        let mut pool = Vec::with_capacity(self.pool.len());
        let mut moves = HashMap::with_capacity(order.len());
        let mut entries = Vec::with_capacity(order.len());
        for i in order {
            let e = &self.pool_entries[i];
            moves.insert(e.offset, pool.len());
            entries.push(PoolEntry { offset: pool.len(), ..*e });
            pool.extend_from_slice(&self.pool[e.offset..e.offset + e.size]);
        }
        self.pool = pool;
        self.pool_entries = entries;
        moves
    }

    /// As [`finish`](Self::finish), with every pointer slot already holding
    /// the value relocation would write if the archive is mapped at `base`
    /// and runtime object `id` is at `symbol(id)`. A process that maps it
    /// there, with the same runtime addresses (a non-PIE interpreter), then
    /// writes nothing during relocation, and the pages stay shared.
    pub fn finish_at(
        mut self,
        python_hexversion: u32,
        build_id: [u8; 16],
        base: u64,
        symbol: impl Fn(u32) -> u64,
        is_static: impl Fn(u32) -> bool,
    ) -> Result<Vec<u8>, BuildError> {
        self.modules.sort_by(|a, b| a.meta.name.as_bytes().cmp(b.meta.name.as_bytes()));
        let pool_moves = self.reorder_pool();

        let mut strings = Vec::new();
        let mut string_refs = Vec::with_capacity(self.modules.len());
        for m in &self.modules {
            let name = (strings.len(), m.meta.name.len());
            strings.extend_from_slice(m.meta.name.as_bytes());
            let origin = (strings.len(), m.meta.origin.len());
            strings.extend_from_slice(m.meta.origin.as_bytes());
            let realpath = (strings.len(), m.meta.source_realpath.len());
            strings.extend_from_slice(m.meta.source_realpath.as_bytes());
            string_refs.push((name, origin, realpath));
        }

        let index: Vec<(usize, u64)> = self.pool_entries.iter().map(|e| (e.offset, e.name_hash)).collect();
        let index = names_index::build(&index);

        let table_off = HEADER_SIZE;
        let strings_off = table_off + self.modules.len() * MODULE_ENTRY_SIZE;
        let index_off = align_up(strings_off + strings.len(), names_index::SLOT_SIZE);
        let names_off = align_up(index_off + index.len(), PAGE);
        let hot_off = align_up(names_off + self.pool.len(), PAGE);
        let cold_off = align_up(hot_off + self.hot.len(), PAGE);
        // Last, as their encoded size depends on the offsets of everything else.
        let relocs_off = cold_off + self.cold.len();
        let file_offset = |r: RegionRef| -> usize {
            match r.region {
                Region::Hot => hot_off + r.offset,
                // Moved into Hot when its module was finished.
                Region::HotEnd => unreachable!("HotEnd reference outlived its module"),
                Region::Cold => cold_off + r.offset,
                // A pool reference names an entry, which `reorder_pool` moved.
                Region::Names => names_off + pool_moves[&r.offset],
            }
        };
        if relocs_off > u32::MAX as usize {
            return Err(BuildError::TooLarge);
        }
        let file_offset = |r: RegionRef| file_offset(r) as u32;

        // Relocation records, encoded per module.
        let records: Vec<Reloc> = self
            .relocs
            .iter()
            .map(|r| {
                let (kind, target) = match r.target {
                    Target::Object(t) => (RelocKind::Object, file_offset(t)),
                    Target::InternedStr(t) => (RelocKind::InternedStr, file_offset(t)),
                    Target::Symbol(id) => (RelocKind::Symbol, id),
                    Target::FrozenSet(t) => (RelocKind::FrozenSet, file_offset(t)),
                    Target::CodeInit => (RelocKind::CodeInit, 0),
                    Target::Interior(t) => (RelocKind::Interior, file_offset(t)),
                };
                Reloc { slot: file_offset(r.slot), target, kind }
            })
            .collect();
        // Per module, four streams: the records every process applies
        // (`RelocKind::needs_work`); the pool entries its pooled-name records
        // name, which every process interns, and those records, read only
        // where interning found another str; the Symbol records naming the
        // interpreter's image, read where that image moved (PIE, a shared
        // libpython); the records pointing into the archive, read only
        // where it is not known to be right.
        let names = names_off..names_off + self.pool.len();
        let mut encoded = Vec::new();
        let mut module_records = Vec::with_capacity(self.modules.len());
        for m in &self.modules {
            let start = encoded.len();
            let (work, rest): (Vec<Reloc>, Vec<Reloc>) =
                records[m.relocs.clone()].iter().partition(|r| r.kind.needs_work(r.target, &is_static, &names));
            encoded.extend(reloc_codec::encode(&work));
            let work_size = encoded.len() - start;
            let (pooled, rest): (Vec<Reloc>, Vec<Reloc>) = rest
                .into_iter()
                .partition(|r| r.kind == RelocKind::InternedStr && names.contains(&(r.target as usize)));
            encoded.extend(reloc_codec::encode_names_region(&pooled, names.start as u32));
            let names_size = encoded.len() - start - work_size;
            let (image, internal): (Vec<Reloc>, Vec<Reloc>) =
                rest.into_iter().partition(|r| r.kind == RelocKind::Symbol);
            encoded.extend(reloc_codec::encode_image_stream(&image));
            let image_size = encoded.len() - start - work_size - names_size;
            encoded.extend(reloc_codec::encode(&internal));
            module_records.push((start..encoded.len(), work_size, names_size, image_size));
        }
        let file_size = relocs_off + encoded.len();
        if file_size > u32::MAX as usize {
            return Err(BuildError::TooLarge);
        }

        let mut out = vec![0u8; file_size];
        out[relocs_off..].copy_from_slice(&encoded);
        out[names_off..names_off + self.pool.len()].copy_from_slice(&self.pool);
        out[hot_off..hot_off + self.hot.len()].copy_from_slice(&self.hot);
        out[cold_off..cold_off + self.cold.len()].copy_from_slice(&self.cold);
        if base != 0 {
            for (r, &Reloc { slot, target, kind }) in self.relocs.iter().zip(&records) {
                // What relocation at the preferred base would write; a name
                // is the str itself until interned (its slot may say more).
                let value = match (r.prewritten, kind.slot_value(target, base)) {
                    (Some(v), _) => v,
                    (None, SlotValue::Address(a) | SlotValue::Interned(a)) => a,
                    (None, SlotValue::Symbol(id)) => symbol(id),
                    (None, SlotValue::FrozenSetOf(_) | SlotValue::CodeState) => continue,
                };
                put_u64(&mut out, slot as usize, value);
            }
            for e in &self.pool_entries {
                put_u64(&mut out, names_off + e.offset + e.type_slot, symbol(e.type_id));
            }
        }
        out[strings_off..strings_off + strings.len()].copy_from_slice(&strings);
        out[index_off..index_off + index.len()].copy_from_slice(&index);

        // Module table, with each module's checksum over its final bytes.
        for (i, ((m, (name, origin, realpath)), (records, work_size, names_size, image_size))) in
            self.modules.iter().zip(&string_refs).zip(&module_records).enumerate()
        {
            let at = table_off + i * MODULE_ENTRY_SIZE;
            let hot = (hot_off + m.hot.start, hot_off + m.hot.end);
            let cold = (cold_off + m.cold.start, cold_off + m.cold.end);
            let rel = relocs_off + records.start..relocs_off + records.end;
            let sum = checksum(&[&out[hot.0..hot.1], &out[cold.0..cold.1], &out[rel]]);
            let e = &mut out[at..at + MODULE_ENTRY_SIZE];
            put_u32(e, entry::NAME, name.0 as u32);
            put_u32(e, entry::NAME_LEN, name.1 as u32);
            put_u32(e, entry::ORIGIN, origin.0 as u32);
            put_u32(e, entry::ORIGIN_LEN, origin.1 as u32);
            put_u32(e, entry::FLAGS, if m.meta.is_package { MODULE_IS_PACKAGE } else { 0 });
            put_u32(e, entry::CODE, file_offset(m.code));
            put_u64(e, entry::SOURCE_MTIME_NS, m.meta.source_mtime_ns as u64);
            put_u64(e, entry::SOURCE_SIZE, m.meta.source_size);
            put_u32(e, entry::HOT_START, hot.0 as u32);
            put_u32(e, entry::HOT_END, hot.1 as u32);
            put_u32(e, entry::COLD_START, cold.0 as u32);
            put_u32(e, entry::COLD_END, cold.1 as u32);
            put_u32(e, entry::RELOC_START, records.start as u32);
            put_u32(e, entry::RELOC_SIZE, records.len() as u32);
            put_u32(e, entry::RELOC_WORK_SIZE, *work_size as u32);
            put_u32(e, entry::RELOC_NAMES_SIZE, *names_size as u32);
            put_u32(e, entry::RELOC_IMAGE_SIZE, *image_size as u32);
            put_u64(e, entry::CHECKSUM, sum);
            put_u64(e, entry::SOURCE_HASH, m.meta.source_hash);
            put_u64(e, entry::SOURCE_DEV, m.meta.source_dev);
            put_u64(e, entry::SOURCE_INO, m.meta.source_ino);
            put_u32(e, entry::SOURCE_REALPATH, realpath.0 as u32);
            put_u32(e, entry::SOURCE_REALPATH_LEN, realpath.1 as u32);
        }

        let h = &mut out[..HEADER_SIZE];
        h[header::MAGIC..header::MAGIC + 8].copy_from_slice(&MAGIC);
        put_u32(h, header::FORMAT_VERSION, FORMAT_VERSION);
        put_u32(h, header::HEADER_SIZE, HEADER_SIZE as u32);
        put_u32(h, header::PYTHON_HEXVERSION, python_hexversion);
        h[header::BUILD_ID..header::BUILD_ID + 16].copy_from_slice(&build_id);
        put_u64(h, header::FILE_SIZE, file_size as u64);
        put_u32(h, header::MODULE_COUNT, self.modules.len() as u32);
        put_u32(h, header::MODULE_TABLE, table_off as u32);
        put_u32(h, header::STRINGS, strings_off as u32);
        put_u32(h, header::STRINGS_SIZE, strings.len() as u32);
        put_u32(h, header::RELOCS, relocs_off as u32);
        put_u32(h, header::RELOCS_SIZE, encoded.len() as u32);
        put_u32(h, header::HOT, hot_off as u32);
        put_u32(h, header::HOT_SIZE, self.hot.len() as u32);
        put_u32(h, header::COLD, cold_off as u32);
        put_u32(h, header::COLD_SIZE, self.cold.len() as u32);
        put_u32(h, header::NAMES, names_off as u32);
        put_u32(h, header::NAMES_SIZE, self.pool.len() as u32);
        put_u32(h, header::CODE_SERIALS, self.code_serials);
        put_u32(h, header::CODE_SERIAL_START, self.layer.first_code_serial());
        let startup_names: usize = self.pool_entries.iter().take_while(|e| e.startup).map(|e| e.size).sum();
        put_u32(h, header::NAMES_STARTUP_SIZE, startup_names as u32);
        put_u32(h, header::NAMES_INDEX, index_off as u32);
        put_u32(h, header::NAMES_INDEX_SLOTS, (index.len() / names_index::SLOT_SIZE) as u32);
        let names_sum = checksum(&[&out[names_off..names_off + self.pool.len()]]);
        put_u64(&mut out, header::NAMES_CHECKSUM, names_sum);
        let table_sum = checksum(&[&out[table_off..strings_off + strings.len()]]);
        put_u64(&mut out, header::TABLE_CHECKSUM, table_sum);
        put_u64(&mut out, header::PREFERRED_BASE, base);
        put_u32(&mut out, header::OPTIMIZE, self.compile.optimize);
        put_u32(&mut out, header::COMPILE_FLAGS, self.compile.flags());
        let header_sum = header_checksum(&out);
        put_u64(&mut out, header::HEADER_CHECKSUM, header_sum);
        Ok(out)
    }
}

/// Collects one module's objects. Dropping it without `finish` discards them,
/// so a module that cannot be archived leaves no trace.
pub struct ModuleBuilder<'a> {
    archive: &'a mut ArchiveBuilder,
    meta: Option<ModuleMeta>,
    at_startup: bool,
    start: (usize, usize, usize),
}

impl ModuleBuilder<'_> {
    /// The pool entry holding an object of exactly `bytes` (whose type slot,
    /// at `type_slot`, is to hold symbol `type_id`), added unless an equal
    /// one is there. Entries are shared by every module and stay even if
    /// this module is abandoned. Slots pointing at one use
    /// `Target::InternedStr`. `startup`: the dumping interpreter interned
    /// this name during its start-up, so every process does (the entry goes
    /// with the start-up names). `name_hash`: the name's
    /// `names_index::hash`, by which the pool's index finds the entry.
    pub fn pooled(&mut self, bytes: &[u8], type_slot: usize, type_id: u32, startup: bool, name_hash: u64) -> RegionRef {
        let a = &mut *self.archive;
        let offset = match a.pooled.get(bytes) {
            Some(&offset) => {
                if startup {
                    // Entries are pushed in offset order, one per offset.
                    let i = a.pool_entries.partition_point(|e| e.offset < offset);
                    a.pool_entries[i].startup = true;
                }
                offset
            }
            None => {
                let offset = align_up(a.pool.len(), OBJECT_ALIGN);
                a.pool.resize(offset + align_up(bytes.len(), OBJECT_ALIGN), 0);
                a.pool[offset..offset + bytes.len()].copy_from_slice(bytes);
                a.pooled.insert(bytes.to_vec(), offset);
                let size = a.pool.len() - offset;
                a.pool_entries.push(PoolEntry { offset, size, type_slot, type_id, startup, name_hash });
                offset
            }
        };
        RegionRef { region: Region::Names, offset }
    }

    /// Marks the module as one every process imports while starting (the
    /// stdlib archive's start-up modules): the pool puts its names right
    /// after the start-up names, where the interpreter cannot tell us which
    /// it interns at start-up (3.11's interned dict is private).
    pub fn imported_at_startup(&mut self) {
        self.at_startup = true;
    }

    /// A code serial unique in the archive (see [`CODE_SERIAL_BASE`]), or an
    /// error once `MAX_CODE_SERIALS` are out.
    pub fn code_serial(&mut self) -> Result<u32, BuildError> {
        let a = &mut *self.archive;
        if a.code_serials >= MAX_CODE_SERIALS {
            return Err(BuildError::TooLarge);
        }
        a.code_serials += 1;
        Ok(a.layer.first_code_serial() + a.code_serials - 1)
    }

    /// Reserves `size` zeroed bytes, aligned for an object, in `Hot` or `Cold`.
    pub fn alloc(&mut self, region: Region, size: usize) -> RegionRef {
        assert!(region != Region::Names, "the name pool is filled by `pooled`");
        let buf = self.archive.buf(region);
        let offset = align_up(buf.len(), OBJECT_ALIGN);
        buf.resize(offset + align_up(size, OBJECT_ALIGN), 0);
        RegionRef { region, offset }
    }

    /// The bytes at `at`, which must lie inside an allocation of this module.
    pub fn bytes_mut(&mut self, at: RegionRef, len: usize) -> &mut [u8] {
        &mut self.archive.buf(at.region)[at.offset..at.offset + len]
    }

    /// Records that the pointer slot at `slot` must point to `target` at load.
    /// Each slot takes one record (readers refuse a repeat).
    pub fn reloc(&mut self, slot: RegionRef, target: Target) {
        self.archive.relocs.push(PendingReloc { slot, target, prewritten: None });
    }

    /// As `reloc`, when the dumping process knows the value the slot will end
    /// up with (e.g. the interned str that interning will return: a static
    /// one, at a fixed address in a non-PIE interpreter); `finish_at` writes
    /// it so that a matching process need not.
    pub fn reloc_prewritten(&mut self, slot: RegionRef, target: Target, value: u64) {
        self.archive.relocs.push(PendingReloc { slot, target, prewritten: Some(value) });
    }

    /// Adds the module with `code` as its code object.
    pub fn finish(mut self, code: RegionRef) {
        let a = &mut *self.archive;
        let meta = self.meta.take().expect("finish called once");
        // The HotEnd objects (written at every load) and the module's other
        // hot objects (functions' code, written only if it runs) meet on one
        // page of its span. Every other module puts the HotEnd objects first,
        // so that two neighbours' written objects meet, and so do their
        // other objects: one page per module mixes the two, not two.
        let own_start = self.start.0;
        let (end_at, own_shift) = if a.modules.len() % 2 == 1 {
            let own = a.hot.split_off(own_start);
            let at = align_up(own_start, OBJECT_ALIGN);
            // A multiple of the alignment, so the module's objects stay aligned.
            let shift = align_up(at - own_start + a.hot_end.len(), OBJECT_ALIGN);
            a.hot.resize(at, 0);
            a.hot.append(&mut a.hot_end);
            a.hot.resize(own_start + shift, 0);
            a.hot.extend(own);
            (at, shift)
        } else {
            let at = align_up(a.hot.len(), OBJECT_ALIGN);
            a.hot.resize(at, 0);
            a.hot.append(&mut a.hot_end);
            (at, 0)
        };
        // Only this module's objects lie at or after `own_start`.
        let moved = |r: RegionRef| match r.region {
            Region::HotEnd => RegionRef { region: Region::Hot, offset: r.offset + end_at },
            Region::Hot if r.offset >= own_start => RegionRef { region: Region::Hot, offset: r.offset + own_shift },
            _ => r,
        };
        for r in &mut a.relocs[self.start.2..] {
            r.slot = moved(r.slot);
            r.target = match r.target {
                Target::Object(t) => Target::Object(moved(t)),
                Target::InternedStr(t) => Target::InternedStr(moved(t)),
                Target::FrozenSet(t) => Target::FrozenSet(moved(t)),
                Target::Interior(t) => Target::Interior(moved(t)),
                t @ (Target::Symbol(_) | Target::CodeInit) => t,
            };
        }
        let code = moved(code);
        // Records in file order of their slots (hot region before cold),
        // which readers require and the shape check walks in step with.
        a.relocs[self.start.2..].sort_by_key(|r| (r.slot.region == Region::Cold, r.slot.offset));
        a.names.insert(meta.name.clone());
        a.modules.push(PendingModule {
            meta,
            at_startup: self.at_startup,
            code,
            hot: self.start.0..a.hot.len(),
            cold: self.start.1..a.cold.len(),
            relocs: self.start.2..a.relocs.len(),
        });
    }
}

impl Drop for ModuleBuilder<'_> {
    fn drop(&mut self) {
        if self.meta.is_some() {
            // Abandoned: roll the shared buffers back to where the module began.
            self.archive.hot.truncate(self.start.0);
            self.archive.hot_end.clear();
            self.archive.cold.truncate(self.start.1);
            self.archive.relocs.truncate(self.start.2);
        }
    }
}
